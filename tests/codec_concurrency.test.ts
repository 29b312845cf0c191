/**
 * Issue 12 B4: calls on one MuCodec run one at a time. Two decodes started together (also on first use, when both
 * would load the model) both succeed with the bytes of sequential runs, the model is built once, and dispose()
 * leaves no tensor behind; dispose() while calls run or wait stops them with a clear error.
 */
import { describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../src/backend.js';
import { MuCodec } from '../src/codec.js';
import { TINY } from './helpers/tiny_codec.js';

const A = Int32Array.from({ length: 60 }, (_, i) => (i * 5) % 64);
const B = Int32Array.from({ length: 40 }, (_, i) => (i * 7 + 3) % 64);

function sameBytes(x: Float32Array[], y: Float32Array[]): boolean {
  return x.length === y.length && x.every((c, i) => Buffer.from(c.buffer, c.byteOffset, c.byteLength).equals(Buffer.from(y[i]!.buffer, y[i]!.byteOffset, y[i]!.byteLength)));
}

/** counts how often each weights file is read (the private `weights(file)` every part's loading goes through) */
function countReads(c: MuCodec): Record<string, number> {
  const counts: Record<string, number> = {};
  const inner = c as unknown as { weights: (file: string) => Promise<unknown> };
  const orig = inner.weights.bind(c);
  inner.weights = (file) => { counts[file] = (counts[file] ?? 0) + 1; return orig(file); };
  return counts;
}

describe('concurrent calls on one codec', () => {
  it('two decodes at once on first use: both succeed, equal the sequential results, the model loads once, no tensor left after dispose', async () => {
    await initBackend();
    const before = tf.memory().numTensors;
    const c = await MuCodec.load({ weightsDir: TINY });
    const reads = countReads(c);
    const [ra, rb] = await Promise.all([c.decode(A, { steps: 1, seed: 1 }), c.decode(B, { steps: 1, seed: 2 })]);
    expect(reads).toEqual({ decoder: 1, vae: 1 }); // the decode side was loaded once, not once per call
    const resident = tf.memory().numTensors;
    const sa = await c.decode(A, { steps: 1, seed: 1 });
    const sb = await c.decode(B, { steps: 1, seed: 2 });
    expect(tf.memory().numTensors).toBe(resident); // the concurrent pair left nothing beyond the model itself
    expect(ra.channels[0]!.length).toBe(Math.trunc(60 / 100 * 4 * 48000));
    expect(rb.channels[0]!.length).toBe(Math.trunc(40 / 100 * 4 * 48000));
    expect(sameBytes(ra.channels, sa.channels)).toBe(true);
    expect(sameBytes(rb.channels, sb.channels)).toBe(true);
    c.dispose();
    expect(tf.memory().numTensors).toBe(before);
  });

  it('dispose() while a decode runs and an encode waits: the decode stops, the encode never starts, then every tensor is freed', async () => {
    await initBackend();
    const before = tf.memory().numTensors;
    const c = await MuCodec.load({ weightsDir: TINY });
    let disposedAt = '';
    const running = c.decode(A, {
      steps: 3, seed: 1,
      onProgress: (p) => { if (!disposedAt && p.phase === 'sample') { disposedAt = p.phase; c.dispose(); } },
    });
    const waiting = c.encode({ sampleRate: 48000, channels: [new Float32Array(4800)] });
    const [r1, r2] = await Promise.allSettled([running, waiting]);
    expect(disposedAt).toBe('sample');
    expect(r1.status === 'rejected' && (r1.reason as Error).message).toBe('MuCodec: dispose() was called during this decode; it stopped');
    expect(r2.status === 'rejected' && (r2.reason as Error).message).toBe('MuCodec: dispose() was called before this encode started; it did not run');
    await new Promise((r) => setTimeout(r, 10)); // the release follows the stopped call
    expect(tf.memory().numTensors).toBe(before);
    await expect(c.decode(A, { steps: 1 })).rejects.toThrow('MuCodec: decode called after dispose()');
  });
});
