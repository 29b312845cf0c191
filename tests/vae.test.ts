import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../src/backend.js';
import { loadCase } from '../src/fixtures.js';
import { toFloat32, type HostTensor } from '../src/hosttensor.js';
import { ReplayNoise, SeededNoise } from '../src/noise.js';
import { AutoencoderKL, type VaeConfig } from '../src/vae/autoencoder.js';
import { fixtureDir } from './parity-helper.js';

beforeAll(async () => { await initBackend(); });

function cfgOf(json: { config?: Record<string, unknown> }): VaeConfig {
  const c = json.config as unknown as VaeConfig;
  return { ddconfig: c.ddconfig, embed_dim: c.embed_dim };
}

function maxDiff(a: HostTensor, b: HostTensor): number {
  const x = toFloat32(a), y = toFloat32(b);
  expect(a.shape).toEqual(b.shape);
  let m = 0;
  for (let i = 0; i < x.length; i++) m = Math.max(m, Math.abs(x[i]! - y[i]!));
  return m;
}

describe('AutoencoderKL decode', () => {
  it('row bands and attention query chunks do not change the result; no tensors leak', async () => {
    const c = await loadCase(fixtureDir('audio', 'vae.decode'));
    const z = c.t('in.z');
    const before = tf.memory().numTensors;
    const vae = new AutoencoderKL(await c.weights(), cfgOf(c.json));
    vae.tile = { tileRows: 100000 };
    const whole = vae.decode(z);
    expect(whole.shape).toEqual([2, 1, 104, 256]);
    vae.tile = { tileRows: 3 };
    vae.decoder.midAttn.queryChunk = 37; // 13·32 = 416 positions → 12 chunks, the last one partial
    const banded = vae.decode(z);
    expect(maxDiff(whole, banded)).toBeLessThan(2e-6);
    vae.tile = { tileBytes: 64 * 1024 };
    expect(maxDiff(whole, vae.decode(z))).toBeLessThan(2e-6);
    // the reference output, through the band/chunk path
    const ref = c.t('out.mel');
    expect(maxDiff(banded, ref)).toBeLessThan((c.json.tolerance as { max_abs: number }).max_abs);
    vae.dispose();
    expect(tf.memory().numTensors).toBe(before);
  });

  it('scale factor comes from the container scalar (reciprocal multiply)', async () => {
    const c = await loadCase(fixtureDir('audio', 'vae.decode'));
    const vae = new AutoencoderKL(await c.weights(), cfgOf(c.json));
    expect(vae.scaleFactor).toBe(Math.fround(0.618));
    vae.dispose();
  });
});

describe('AutoencoderKL encode', () => {
  it('floor(n/2) per downsample, posterior sample with replayed ε, mode without noise', async () => {
    const c = await loadCase(fixtureDir('audio', 'vae.encode'));
    const before = tf.memory().numTensors;
    const vae = new AutoencoderKL(await c.weights(), cfgOf(c.json));
    vae.tile = { tileRows: 4 };
    const noise = new ReplayNoise(c.noise());
    const r = vae.encode(c.t('in.mel'), noise);
    expect(noise.remaining).toBe(0);
    expect(r.z.shape).toEqual([2, 16, 8, 32]); // 65 frames → 32 → 16 → 8; 256 bins → 32
    expect(maxDiff(r.z, c.t('out.z'))).toBeLessThan(4.06e-5);
    expect(maxDiff(r.mean, c.t('mid.mean'))).toBeLessThan(4.06e-5);
    // use_mode: z = scale_factor · mean
    const m = vae.encode(c.t('in.mel'), null);
    const mean = toFloat32(r.mean), zm = toFloat32(m.z);
    for (const i of [0, 100, 4000]) expect(zm[i]).toBe(Math.fround(Math.fround(0.618) * mean[i]!));
    // a seeded source is accepted too (user path)
    expect(vae.encode(c.t('in.mel'), new SeededNoise(3)).z.shape).toEqual([2, 16, 8, 32]);
    // a replay source with the wrong draw count fails loudly
    expect(() => vae.encode(c.t('in.mel'), new ReplayNoise(c.noise().slice(0, 1)))).toThrow(/draw #2/);
    vae.dispose();
    expect(tf.memory().numTensors).toBe(before);
  });
});

describe('prompt latent (code2sound prompt branch)', () => {
  it('wav → fbank → per-row encode → (rows/2, 32, frames//8, 32), the same as the stages composed', async () => {
    const { encodePromptLatent } = await import('../src/synthesis.js');
    const { TacotronSTFT, wavToFbank2 } = await import('../src/audio/mel.js');
    const c = await loadCase(fixtureDir('audio', 'vae.encode'));
    const vae = new AutoencoderKL(await c.weights(), cfgOf(c.json));
    const stft = new TacotronSTFT();
    const N = 480 * 64; // 65 frames → 8 latent frames
    const wav = new Float32Array(2 * N).map((_, i) => 0.5 * Math.sin(i * 0.013) * Math.cos(i * 0.0007));
    const before = tf.memory().numTensors;
    const lat = encodePromptLatent(vae, stft, wav, 2, new SeededNoise(7));
    expect(lat.shape).toEqual([1, 32, 8, 32]);
    const fb = wavToFbank2(wav, 2, stft);
    expect(fb.frames).toBe(65);
    const z = vae.encode({ dtype: 'float32', shape: [2, 1, 65, 256], data: fb.fbank }, new SeededNoise(7)).z;
    expect(Array.from(toFloat32(lat))).toEqual(Array.from(toFloat32(z)));
    vae.dispose();
    expect(tf.memory().numTensors).toBe(before);
  });
});
