/**
 * Issue 12 B6: model output that stops being finite is refused, naming the stage (DiT sampler, VAE decoder,
 * vocoder), instead of being returned (and written: zeros in 16-bit PCM, NaN in float). Weights that give NaN/Inf
 * are made from the tiny model by changing one tensor (or the noise is NaN); the CLI then writes nothing.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readSafetensors, writeSafetensors } from '../convert/safetensors.js';
import { initBackend } from '../src/backend.js';
import { MuCodec, type MuCodecConfig } from '../src/codec.js';
import { writeCodesFile } from '../src/codesfile.js';
import { decodeCommand } from '../src/commands/decode.js';
import { toFloat32, type HostTensor } from '../src/hosttensor.js';
import { SeededNoise, type NoiseSource } from '../src/noise.js';
import { LatentsToAudio } from '../src/synthesis.js';
import type { AutoencoderKL } from '../src/vae/autoencoder.js';
import type { HifiGanGenerator } from '../src/vocoder/hifigan.js';
import { TINY } from './helpers/tiny_codec.js';

const tmp = mkdtempSync(join(tmpdir(), 'mucodec-nonfinite-'));
afterAll(() => { rmSync(tmp, { recursive: true, force: true }); });

const CODES = Int32Array.from({ length: 60 }, (_, i) => (i * 5) % 64);
const CONFIG = (JSON.parse(readFileSync(join(TINY, 'config.json'), 'utf8')) as { model: MuCodecConfig }).model;
let weights: Map<string, HostTensor>;

beforeAll(async () => {
  await initBackend();
  weights = new Map();
  for (const f of ['encoder', 'decoder', 'vae']) for (const [k, v] of await readSafetensors(join(TINY, `${f}.safetensors`))) weights.set(k, v);
});

/** the tiny model with one tensor's values replaced */
function edited(name: string, f: (v: number) => number): Map<string, HostTensor> {
  const t = weights.get(name);
  if (!t) throw new Error(`no tensor ${name} in the tiny model`);
  const m = new Map(weights);
  m.set(name, { dtype: 'float32', shape: [...t.shape], data: toFloat32(t).map(f) });
  return m;
}

async function decodeWith(w: Map<string, HostTensor>, opts: { noise?: NoiseSource } = {}): Promise<unknown> {
  const before = tf.memory().numTensors;
  const c = await MuCodec.load({ weights: w, config: CONFIG });
  try {
    return await c.decode(CODES, { steps: 1, ...(opts.noise ? opts : { seed: 1 }) });
  } finally {
    c.dispose();
    expect(tf.memory().numTensors).toBe(before);
  }
}

describe('non-finite model output is refused, naming the stage', () => {
  it('NaN in the sampler\'s noise → "the DiT sampler produced non-finite latents in window 1 of 1"', async () => {
    const nanNoise: NoiseSource = { randn: (shape) => new Float32Array(shape.reduce((a, b) => a * b, 1)).fill(Number.NaN) };
    await expect(decodeWith(weights, { noise: nanNoise })).rejects.toThrow(/^decode: the DiT sampler produced non-finite latents in window 1 of 1 \(value 0 of \d+ is NaN\)/);
  });

  it('huge DiT output weights (overflow to ±Inf) → the DiT sampler', async () => {
    await expect(decodeWith(edited('cfm_wrapper.estimator.proj_out.weight', (v) => v * 3e38))).rejects.toThrow(/decode: the DiT sampler produced non-finite latents in window 1 of 1 \(value \d+ of \d+ is (-?Infinity|NaN)\)/);
  });

  // the VAE and vocoder checks on a short latent window (16 frames, not decode's 512: the same code path, seconds
  // instead of a whole window's synthesis), through the codec's own VAE and vocoder built from the edited weights
  const synthesiseWith = async (w: Map<string, HostTensor>): Promise<void> => {
    const before = tf.memory().numTensors;
    const c = await MuCodec.load({ weights: w, config: CONFIG });
    try {
      await (c as unknown as { ensure: (p: string) => Promise<void> }).ensure('decoder');
      const { vae, vocoder } = (c as unknown as { dec: { vae: AutoencoderKL; vocoder: HifiGanGenerator } }).dec;
      const latent = new SeededNoise(3).randn([1, 32, 16, 32]);
      new LatentsToAudio(vae, vocoder, { residency: 'both' }).push({ dtype: 'float32', shape: [1, 32, 16, 32], data: latent });
    } finally {
      c.dispose();
      expect(tf.memory().numTensors).toBe(before);
    }
  };

  it('unchanged weights synthesise finite audio from that window (the checks below see only the edited tensor)', async () => {
    await expect(synthesiseWith(weights)).resolves.toBeUndefined();
  });

  it('a NaN weight in the VAE decoder → "the VAE decoder produced non-finite mel in window 1"', async () => {
    await expect(synthesiseWith(edited('first_stage_model.decoder.conv_out.bias', () => Number.NaN))).rejects.toThrow(/^the VAE decoder produced non-finite mel in window 1 \(left channel\) \(value 0 of \d+ is NaN\)/);
  });

  it('a NaN weight in the vocoder → "the vocoder produced non-finite audio in window 1"', async () => {
    await expect(synthesiseWith(edited('first_stage_model.vocoder.conv_post.bias', () => Number.NaN))).rejects.toThrow(/^the vocoder produced non-finite audio in window 1 \(value 0 of \d+ is NaN\)/);
  });

  it('the CLI decode (--float, where NaN would have been written) fails with the message and writes nothing', async () => {
    const dir = join(tmp, 'nan-weights');
    mkdirSync(dir);
    for (const f of ['config.json', 'encoder.safetensors', 'vae.safetensors']) copyFileSync(join(TINY, f), join(dir, f));
    const dec = await readSafetensors(join(TINY, 'decoder.safetensors'));
    const bad = 'cfm_wrapper.estimator.proj_out.bias';
    await writeSafetensors(join(dir, 'decoder.safetensors'), [...dec].map(([name, t]) => ({
      name, dtype: t.dtype, shape: t.shape, load: () => (name === bad ? new Float32Array(t.data.length).fill(Number.NaN) : t.data),
    })));
    const mc = join(tmp, 'c.mcodes');
    await writeCodesFile(mc, { sampleRate: 48000, originalLength: 115200, channels: 2, frameRate: 25, codebookSize: 64, muqLayer: 7, nCodebooks: 1, codes: CODES });
    const out = join(tmp, 'out.wav');
    const quiet = { log: () => undefined, stderr: { write: () => true, isTTY: false } as unknown as NodeJS.WriteStream };
    await expect(decodeCommand([mc, '-o', out, '--steps', '1', '--seed', '1', '--float', '--weights', dir, '--quiet'], quiet))
      .rejects.toThrow(/decode: the DiT sampler produced non-finite latents in window 1 of 1/);
    expect(existsSync(out)).toBe(false);
    expect(readdirSync(tmp).filter((f) => f.includes('.tmp-'))).toEqual([]);
  });
});
