/**
 * The codec as users call it (issue 7), on the tiny model in weights/tiny (every real block, random weights):
 * streaming memory and the CLI round trip (split from codec.test.ts so the two run in parallel).
 */
import { afterAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readWav } from '../src/audio/wav.js';
import { decodeCommand, reconstructCommand } from '../src/commands/decode.js';
import { encodeCommand } from '../src/commands/encode.js';
import { readCodesFile } from '../src/codesfile.js';
import { planCode2Sound } from '../src/decoder.js';
import { TEST_WAV, TINY, useTinyCodec } from './helpers/tiny_codec.js';
import { startHelper } from './helpers/run_child.js';

const env = useTinyCodec();
const tmp = mkdtempSync(join(tmpdir(), 'mucodec-codec-'));
afterAll(() => { rmSync(tmp, { recursive: true, force: true }); });

describe('streaming: memory does not grow with the number of windows', () => {
  it('a 3-window decode peaks within 1.5× a 1-window decode', async () => {
    // wasm: the heap only grows, so its size after a run is that run's high-water mark; other backends: the tfjs
    // bytes sampled at every progress report (each solver step and window phase)
    const heap = (): number | null => (tf.backend() as unknown as { wasm?: { HEAPU8?: Uint8Array } }).wasm?.HEAPU8?.length ?? null;
    const run = async (codes: Int32Array): Promise<number> => {
      let peak = tf.memory().numBytes;
      await env.codec.decode(codes, { steps: 1, seed: 2, onProgress: () => { peak = Math.max(peak, tf.memory().numBytes); } });
      return heap() ?? peak;
    };
    const one = Int32Array.from({ length: 300 }, (_, i) => (i * 3) % 64);      // 1 window
    const three = Int32Array.from({ length: 2000 }, (_, i) => (i * 3) % 64);   // 3 windows
    expect(planCode2Sound(one.length).windowStarts).toHaveLength(1);
    expect(planCode2Sound(three.length).windowStarts).toHaveLength(3);
    const p1 = await run(one);
    const p3 = await run(three);
    expect(p3).toBeLessThanOrEqual(1.5 * p1);
  });
});

describe('CLI round trip on the tiny model', () => {
  it('encode → decode writes a valid 48 kHz stereo WAV; failures leave no output', async () => {
    const mc = join(tmp, 't.mcodes');
    const wav = join(tmp, 't.wav');
    const quiet = { log: () => undefined, stderr: { write: () => true, isTTY: false } as unknown as NodeJS.WriteStream };
    expect(await encodeCommand([TEST_WAV, '-o', mc, '--weights', TINY, '--quiet'], quiet)).toBe(0);
    expect(await decodeCommand([mc, '-o', wav, '--steps', '1', '--seed', '3', '--weights', TINY, '--quiet', '--float'], quiet)).toBe(0);
    const out = await readWav(wav);
    expect(out.sampleRate).toBe(48000);
    expect(out.channels).toHaveLength(2);
    expect(out.info.encoding).toBe('float');
    expect(out.channels[0]!.length).toBe(Math.trunc((await readCodesFile(mc)).frames / 100 * 4 * 48000));
    // bad inputs: a WAV given to decode, an unknown sampler — rejected before any output is written
    const bad = join(tmp, 'bad.wav');
    await expect(decodeCommand([TEST_WAV, '-o', bad, '--weights', TINY], quiet)).rejects.toThrow(/test\.wav/);
    await expect(reconstructCommand([TEST_WAV, '-o', bad, '--sampler', 'leapfrog', '--weights', TINY], quiet)).rejects.toThrow(/unknown sampler "leapfrog"/);
    expect(existsSync(bad)).toBe(false);
    expect(readdirSync(tmp).filter((f) => f.includes('.tmp-'))).toEqual([]);
  });

  it('Ctrl-C during a decode stops it within seconds (between sampler steps), exit 1, no output, no temp file', async () => {
    const dir = mkdtempSync(join(tmp, 'sigint-'));
    const mc = join(dir, 's.mcodes');
    const wav = join(dir, 's.wav');
    const quiet = { log: () => undefined, stderr: { write: () => true, isTTY: false } as unknown as NodeJS.WriteStream };
    expect(await encodeCommand([TEST_WAV, '-o', mc, '--weights', TINY, '--quiet'], quiet)).toBe(0);
    // 1000 steps (the CLI's maximum): a long sampling phase on the tiny model, so the signal lands inside it
    const run = startHelper('cli_src.ts', ['decode', mc, '-o', wav, '--steps', '1000', '--weights', TINY], { MUCODEC_BACKEND: 'wasm' }, 300_000);
    const t0 = Date.now();
    while (!/decode: \d+% window \d+\/\d+ step \d+/.test(run.stderrSoFar())) {
      if (run.child.exitCode !== null || Date.now() - t0 > 120_000) throw new Error(`decode never reached the sampler:\n${run.stderrSoFar().slice(-2000)}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    const tSig = Date.now();
    run.child.kill('SIGINT');
    const r = await run.result;
    const stopS = (Date.now() - tSig) / 1000;
    expect(r.signal, r.stderr.slice(-2000)).toBeNull();
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/interrupted \(Ctrl-C\): no output written/);
    expect(stopS).toBeLessThan(20);
    expect(readdirSync(dir)).toEqual(['s.mcodes']);
  });
});
