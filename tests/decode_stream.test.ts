/**
 * Streaming decode (issue 14, item 4) on the tiny model (weights/tiny: the real window arithmetic, 40.96 s windows
 * at hop 30.72 s): decodeStream's chunks are final as they come — the first one is out before the last window is
 * sampled — and join to decode's output bit for bit; leaving the stream early frees everything and releases the
 * codec's queue; the CLI's streamed WAV has the bytes of the whole-song writer.
 */
import { afterAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MuCodec } from '../src/codec.js';
import { encodeWav, type Audio } from '../src/audio/wav.js';
import { decodeCommand } from '../src/commands/decode.js';
import { writeCodesFile } from '../src/codesfile.js';
import { planCode2Sound } from '../src/decoder.js';
import { windowSamples } from '../src/synthesis.js';
import { SeededNoise, type NoiseSource } from '../src/noise.js';
import { WavStreamWriter } from '../src/audio/wav_writer.js';
import { TINY, allFinite, useTinyCodec } from './helpers/tiny_codec.js';

const env = useTinyCodec();
const tmp = mkdtempSync(join(tmpdir(), 'mucodec-dstream-'));
afterAll(() => { rmSync(tmp, { recursive: true, force: true }); });

// 1600 codes: 2 windows (padded to 1792 codes), 64 s of audio (each window's VAE + vocoder of 40.96 s is the cost)
const CODES = Int32Array.from({ length: 1600 }, (_, i) => (i * 7 + (i >> 5)) % 64);
const OPTS = { steps: 2, seed: 11 } as const;

function join2(chunks: Audio[]): Float32Array[] {
  return [0, 1].map((r) => {
    const out = new Float32Array(chunks.reduce((n, c) => n + c.channels[r]!.length, 0));
    let off = 0;
    for (const c of chunks) { out.set(c.channels[r]!, off); off += c.channels[r]!.length; }
    return out;
  });
}
const bytes = (a: Float32Array): Buffer => Buffer.from(a.buffer, a.byteOffset, a.byteLength);

describe('decodeStream', () => {
  let whole: Audio;

  it('yields the first chunk before the last window is sampled; the chunks join to decode’s output exactly', async () => {
    const plan = planCode2Sound(CODES.length);
    expect(plan.windowStarts).toHaveLength(2);
    const events: string[] = [];
    const chunks: Audio[] = [];
    for await (const c of env.codec.decodeStream(CODES, {
      ...OPTS, onProgress: (p) => { if (p.phase === 'sample' && events.at(-1) !== `sample ${p.window}`) events.push(`sample ${p.window}`); },
    })) {
      events.push(`chunk ${chunks.length}`);
      chunks.push(c);
    }
    // window by window: a chunk after each window, and the cross-faded tail after the last
    expect(events).toEqual(['sample 0', 'chunk 0', 'sample 1', 'chunk 1', 'chunk 2']);
    const w = windowSamples();
    // window 0's audio but its last ovlp samples (those cross-fade with window 1), then window 1's hop, then the
    // cross-faded tail cut to the target length
    expect(chunks.map((c) => c.channels[0]!.length)).toEqual([w.hopSamples, w.hopSamples, plan.targetLen - 2 * w.hopSamples]);
    expect(chunks.every((c) => c.sampleRate === 48000 && c.channels.length === 2 && allFinite(c.channels))).toBe(true);
    whole = await env.codec.decode(CODES, OPTS);
    const joined = join2(chunks);
    expect(joined[0]!.length).toBe(plan.targetLen);
    expect(bytes(joined[0]!).equals(bytes(whole.channels[0]!))).toBe(true);
    expect(bytes(joined[1]!).equals(bytes(whole.channels[1]!))).toBe(true);
  });

  it('break after the first chunk: tensors back to the start, the queue released (the next call runs)', async () => {
    const before = tf.memory().numTensors;
    const c = await MuCodec.load({ weightsDir: TINY });
    let sampled = 0;
    let first: Audio | null = null;
    for await (const chunk of c.decodeStream(CODES, { ...OPTS, onProgress: (p) => { if (p.phase === 'sample') sampled = Math.max(sampled, p.window); } })) {
      first = chunk;
      break;
    }
    expect(sampled).toBe(0); // window 1 was never sampled
    expect(bytes(first!.channels[0]!).equals(bytes(whole.channels[0]!.subarray(0, first!.channels[0]!.length)))).toBe(true);
    // the next call on the same codec gets its turn (a held queue would hang here)
    const enc = await c.encode({ sampleRate: 48000, channels: [new Float32Array(9600)] });
    expect(enc.codes.length).toBeGreaterThan(0);
    c.dispose();
    expect(tf.memory().numTensors).toBe(before);
  });

  it('an abort while the consumer holds a chunk stops the stream at its next pull, nothing left allocated', async () => {
    // the shared codec has decoded above: its model is resident from here on
    const resident = tf.memory().numTensors;
    const ac = new AbortController();
    const got: number[] = [];
    await expect((async () => {
      for await (const chunk of env.codec.decodeStream(CODES, { ...OPTS, signal: ac.signal })) {
        got.push(chunk.channels[0]!.length);
        ac.abort(new Error('stop after one chunk'));
      }
    })()).rejects.toThrow('stop after one chunk');
    expect(got).toHaveLength(1);
    expect(tf.memory().numTensors).toBe(resident);
  });

  it('non-finite output in a later window: the chunks before it were final and finite, then the error names the window; a sink aborted on it leaves no file', async () => {
    // the noise of window 1 (its in-context fill) is NaN: window 0 decodes, window 1's latents are refused
    const seeded = new SeededNoise(5);
    const noise: NoiseSource = { randn: (shape, what) => (what === 'in-context fill' ? new Float32Array(shape.reduce((a, b) => a * b, 1)).fill(NaN) : seeded.randn(shape)) };
    const out = join(tmp, 'nan.wav');
    const sink = await WavStreamWriter.create(out, 48000, 2);
    const got: Audio[] = [];
    await expect((async () => {
      try {
        for await (const c of env.codec.decodeStream(CODES, { steps: 1, noise })) { got.push(c); await sink.write(c.channels); }
        await sink.finish();
      } catch (e) {
        await sink.abort();
        throw e;
      }
    })()).rejects.toThrow(/^decode: the DiT sampler produced non-finite latents in window 2 of 2 .*no audio returned/);
    expect(got).toHaveLength(1);
    expect(allFinite(got[0]!.channels)).toBe(true);
    expect(readdirSync(tmp).filter((f) => f.startsWith('nan.wav'))).toEqual([]);
  });

  it('arguments are checked when decodeStream is called, before any work', () => {
    expect(() => env.codec.decodeStream(Int32Array.from([1, 64]))).toThrow(/decodeStream: code 1 is 64, outside the codebook/);
    expect(() => env.codec.decodeStream(CODES, { steps: 0 })).toThrow(/steps/);
  });

  // (the float WAV and the chunked writes are compared with encodeWav in tests/wav_writer.test.ts, without the model)
  it('mucodec decode streams to disk: the bytes of the whole-song writer', async () => {
    const mc = join(tmp, 's.mcodes');
    await writeCodesFile(mc, {
      sampleRate: 48000, originalLength: 1600 * 1920, channels: 2, frameRate: 25, codebookSize: 64, muqLayer: 7, nCodebooks: 1, codes: CODES,
    });
    const quiet = { log: () => undefined, stderr: { write: () => true, isTTY: false } as unknown as NodeJS.WriteStream };
    const pcm = join(tmp, 's.wav');
    expect(await decodeCommand([mc, '-o', pcm, '--steps', '2', '--seed', '11', '--weights', TINY, '--quiet'], quiet)).toBe(0);
    expect(readFileSync(pcm).equals(Buffer.from(encodeWav(whole, 'pcm16')))).toBe(true);
    expect(readdirSync(tmp).filter((f) => f.includes('.tmp-'))).toEqual([]);
  });
});
