/**
 * Device-resident execution, checked on the test backend (wasm) where it can be (tests/webgpu_resident.test.ts runs
 * the same on webgpu's software adapter):
 *  - the splits planned from the binding limit (src/device.ts bindingLimit, lowered with setBindingLimitForTests):
 *    the DiT split over the batch, its attention over query rows and its feed-forward over rows; MuQ's conv frontend
 *    over time chunks with a halo; the VAE's bands and attention chunks; the vocoder's calls — each within the fixture's tolerance and equal to the unsplit run;
 *  - the CFG pair as one DiT batch equals the two separate calls;
 *  - decodeBatch: one at a time on the host path (the bytes of decode); its batched DiT windows (batchLatentWindows)
 *    within float32 rounding of code2soundLatents of each sequence alone.
 */
import * as tf from '@tensorflow/tfjs-core';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { readSafetensors } from '../convert/safetensors.js';
import { initBackend } from '../src/backend.js';
import { batchLatentWindows } from '../src/batch_decode.js';
import { MuCodecDecoder, decoderConfigFromUpstream } from '../src/decoder.js';
import { makeNoise, SeededNoise } from '../src/noise.js';
import { Params } from '../src/params.js';
import { forceDevicePath, setBindingLimitForTests } from '../src/device.js';
import { compareTensor, loadCase, toleranceFor } from '../src/fixtures.js';
import { toFloat32, type HostTensor } from '../src/hosttensor.js';
import { Transformer2DModel } from '../src/dit/transformer.js';
import { Conv2dSubsampling } from '../src/muq/conv_subsampling.js';
import { ditConfigFromUpstream } from '../src/dit/config.js';
import { cfmVelocity } from '../src/sampler/cfm.js';
import { drainStepsAsync } from '../src/steps.js';
import { AutoencoderKL, type VaeConfig } from '../src/vae/autoencoder.js';
import { HifiGanGenerator, type HifiganConfig } from '../src/vocoder/hifigan.js';
import { fixtureDir } from './parity-helper.js';
import { useTinyCodec } from './helpers/tiny_codec.js';

beforeAll(async () => { await initBackend(); });
afterEach(() => { setBindingLimitForTests(null); forceDevicePath(null); });

function maxDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

async function hostOf(t: tf.Tensor): Promise<Float32Array> {
  try { return (await t.data()) as Float32Array; } finally { t.dispose(); }
}

describe('splits planned from the binding limit (lowered for the test)', () => {
  it('dit.transformer: split over the batch, attention over query rows, feed-forward over rows — the fixture and the unsplit values', async () => {
    const c = await loadCase(fixtureDir('decoder', 'dit.transformer'));
    const model = new Transformer2DModel(await c.weights(), ditConfigFromUpstream(c.config));
    const before = tf.memory().numTensors;
    const x0 = c.input('hidden_states_T130');
    const t = toFloat32(c.input('timestep_T130'));
    // three copies of the batch, so the split makes groups of more than one row and a tail
    const x = tf.tidy(() => { const a = tf.tensor4d(toFloat32(x0), x0.shape as [number, number, number, number]); return tf.concat([a, a, a], 0) as tf.Tensor4D; });
    const tt = [...t, ...t, ...t];
    const b = x.shape[0], tokens = (x.shape[2] / 2) * (x.shape[3] / 2), d = model.dim;
    const whole = await hostOf(model.forward(x, tt));
    // a limit that holds two rows' tokens (and patches: 96·2·2 wide) but not one head's (tokens × tokens) scores
    const limit = 2 * tokens * Math.max(d, 96 * 4) * 4;
    setBindingLimitForTests(limit);
    expect(limit).toBeLessThan(tokens * tokens * 4);
    const split = await hostOf(model.forward(x, tt));
    console.log(`dit split (batch ${b} in groups of 2, tokens ${tokens}): max |split − whole| ${maxDiff(split, whole).toExponential(2)}`);
    expect(maxDiff(split, whole)).toBeLessThanOrEqual(1e-6);
    const ref = c.t('out.sample_T130');
    const n = ref.data.length;
    for (let r = 0; r < 3; r++) {
      const got: HostTensor = { dtype: 'float32', shape: ref.shape, data: split.slice(r * n, (r + 1) * n) };
      const cmp = compareTensor('out.sample_T130', got, ref, toleranceFor(c.json, 'out.sample_T130'));
      expect(cmp.pass, `copy ${r}: max_abs ${cmp.maxAbs}`).toBe(true);
    }
    // the CFG pair as one batch (what cfmVelocity does) equals the two separate calls
    setBindingLimitForTests(null);
    const one = x.slice([0, 0, 0, 0], [1, ...x.shape.slice(1)]) as tf.Tensor4D;
    const u = tf.tidy(() => tf.concat([one.slice([0, 0, 0, 0], [1, 32, x.shape[2], x.shape[3]]), tf.zerosLike(one.slice([0, 32, 0, 0], [1, 64, x.shape[2], x.shape[3]]))], 1)) as tf.Tensor4D;
    const pair = tf.concat([u, one], 0) as tf.Tensor4D;
    const both = await hostOf(model.forward(pair, [t[0]!, t[0]!]));
    const alone = [...await hostOf(model.forward(u, [t[0]!])), ...await hostOf(model.forward(one, [t[0]!]))];
    console.log(`CFG pair as one batch vs two calls: max diff ${maxDiff(both, alone).toExponential(2)}`);
    expect(maxDiff(both, alone)).toBeLessThanOrEqual(1e-6);
    for (const v of [x, one, u, pair]) v.dispose();
    model.dispose();
    expect(tf.memory().numTensors).toBe(before);
  });

  it('muq conv frontend: time chunks with a halo planned from the limit — the fixture, and (direct convs) the unsplit values exactly', async () => {
    const c = await loadCase(fixtureDir('encoder', 'muq.conv_subsampling'));
    const cfg = c.config;
    const x = c.input('x'); // (B, mel, T)
    const xt = tf.tidy(() => tf.tensor3d(toFloat32(x), x.shape as [number, number, number]).transpose([0, 2, 1]) as tf.Tensor3D);
    const ref = c.t('out.y');
    // 'direct': exactly the unsplit values; the default (Winograd) rounds by tile phase, so within the fixture tolerance
    for (const conv3x3 of ['direct', undefined] as const) {
      const fe = new Conv2dSubsampling(await c.weights(), {
        convDim: Number(cfg['hdim (conv_dim)']), encoderDim: Number(cfg['odim (encoder_dim)']), nMels: Number(cfg['n_bands (n_mels)']),
        strides: cfg.strides as [number, number], batchNormEps: Number(cfg.batch_norm_eps), conv3x3,
      });
      setBindingLimitForTests(null);
      const whole = await hostOf(fe.apply(xt));
      setBindingLimitForTests(10 * 16384); // 4096 bytes per frame: 8-frame chunks (+ 16-frame halos) over the 42 frames
      const split = await hostOf(fe.apply(xt));
      console.log(`muq frontend (${conv3x3 ?? 'default'}) in 8-frame chunks vs whole: max diff ${maxDiff(split, whole).toExponential(2)}`);
      if (conv3x3 === 'direct') expect(maxDiff(split, whole)).toBe(0);
      const r = compareTensor('out.y', { dtype: 'float32', shape: ref.shape, data: split }, ref, toleranceFor(c.json, 'out.y'));
      expect(r.pass, `max_abs ${r.maxAbs}`).toBe(true);
      fe.dispose();
    }
    xt.dispose();
  });

  it('cfmVelocity: the guided field of one batched call equals u + g·(c − u) of two separate estimator calls', async () => {
    const calls: number[] = [];
    const est = { forward: (h: tf.Tensor4D, _t: ArrayLike<number>) => { calls.push(h.shape[0]); return tf.tidy(() => tf.mul(tf.sin(h.slice([0, 0, 0, 0], [h.shape[0], 2, 3, 4])), tf.add(h.slice([0, 4, 0, 0], [h.shape[0], 2, 3, 4]), 1)) as tf.Tensor4D); } };
    const x = tf.randomNormal([2, 2, 3, 4], 0, 1, 'float32', 1) as tf.Tensor4D;
    const mu = tf.randomNormal([2, 2, 3, 4], 0, 1, 'float32', 2) as tf.Tensor4D;
    const inc = tf.randomNormal([2, 2, 3, 4], 0, 1, 'float32', 3) as tf.Tensor4D;
    const v = cfmVelocity(est, { x, incontextX: inc, incontextLength: 0, mu, guidanceScale: 1.5 });
    const got = await hostOf(v(x, 0.3));
    expect(calls).toEqual([4]); // one call of batch 2·B
    const sep = (m: tf.Tensor4D) => est.forward(tf.concat([x, inc, m], 1) as tf.Tensor4D, [0.3, 0.3]);
    const want = await hostOf(tf.tidy(() => { const uu = sep(tf.zerosLike(mu)); const cc = sep(mu); return tf.add(uu, tf.mul(1.5, tf.sub(cc, uu))); }));
    expect(maxDiff(got, want)).toBeLessThanOrEqual(1e-6);
    v.dispose();
    for (const t of [x, mu, inc]) t.dispose();
  });

  it('vae.decode on the (forced) device path and hifigan.generate with 256 KiB / 16 KiB limits: within the fixture tolerance', async () => {
    const c = await loadCase(fixtureDir('audio', 'vae.decode'));
    const cfg = c.json.config as unknown as VaeConfig;
    const vae = new AutoencoderKL(await c.weights(), { ddconfig: cfg.ddconfig, embed_dim: cfg.embed_dim });
    forceDevicePath(true);
    setBindingLimitForTests(256 * 1024);
    const mel = (await drainStepsAsync(vae.decodeSteps(c.t('in.z'))))!;
    const r = compareTensor('out.mel', mel, c.t('out.mel'), toleranceFor(c.json, 'out.mel'));
    expect(r.pass, `vae mel max_abs ${r.maxAbs}`).toBe(true);
    vae.dispose();
    const h = await loadCase(fixtureDir('audio', 'hifigan.generate'));
    const voc = new HifiGanGenerator(await h.weights(), h.json.config as unknown as HifiganConfig);
    setBindingLimitForTests(16 * 1024); // 8 frames per call: the fixture's 2 × 17 frames run as halo tiles
    expect(voc.batchFrames).toBe(Math.floor(16 * 1024 / voc.bytesPerFrame));
    expect(voc.batchFrames).toBeLessThan(17);
    const key = Object.keys(h.json.inputs ?? {})[0]!;
    const wav = (await drainStepsAsync(voc.generateSteps(h.input(key))))!;
    const outKey = Object.values(h.json.outputs)[0] as string;
    const ref = h.t(outKey); // (B, 1, S)
    const rv = compareTensor(outKey, { dtype: 'float32', shape: ref.shape, data: wav.data }, ref, toleranceFor(h.json, outKey));
    expect(rv.pass, `hifigan max_abs ${rv.maxAbs}`).toBe(true);
    voc.dispose();
  });
});

describe('decodeBatch (tiny model)', () => {
  const tiny = useTinyCodec();
  const seqA = Int32Array.from({ length: 60 }, (_, i) => (i * 7) % 64);
  const seqB = Int32Array.from({ length: 1100 }, (_, i) => (i * 13 + 5) % 64); // two windows

  it('refuses a prompt, a noise source and a bad batchSize before any work', async () => {
    await expect(tiny.codec.decodeBatch([seqA], { prompt: { sampleRate: 48000, channels: [new Float32Array(10)] } } as never)).rejects.toThrow(/option prompt is not supported/);
    await expect(tiny.codec.decodeBatch([seqA], { noise: new SeededNoise(1) } as never)).rejects.toThrow(/option noise is not supported/);
    await expect(tiny.codec.decodeBatch([seqA], { batchSize: 0 })).rejects.toThrow(/batchSize is 0, not a positive integer/);
    await expect(tiny.codec.decodeBatch([seqA, [1.5]])).rejects.toThrow(/decodeBatch: sequence 1/);
  });

  it('the batched DiT windows equal code2soundLatents of each sequence alone (own seeded draws) within float32 rounding', async () => {
    const dir = join(import.meta.dirname, '..', 'weights', 'tiny');
    const cfg = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8')) as { model: Record<string, unknown> };
    const path = join(dir, 'decoder.safetensors');
    const before = tf.memory().numTensors;
    const dec = new MuCodecDecoder(new Params(await readSafetensors(path), '', path), decoderConfigFromUpstream(cfg.model));
    const alone: Float32Array[][] = [];
    for (const c of [seqA, seqB]) {
      const ws: Float32Array[] = [];
      for await (const w of dec.code2soundLatents({ data: c, shape: [1, 1, c.length] }, { numSteps: 2, seed: 5 })) ws.push(w.latents.data as Float32Array);
      alone.push(ws);
    }
    expect(alone.map((a) => a.length)).toEqual([1, 2]);
    const got: Float32Array[][] = [[], []];
    const order: string[] = [];
    for await (const w of batchLatentWindows(dec, [seqA, seqB], [makeNoise(5), makeNoise(5)], { steps: 2 })) {
      got[w.item]!.push(w.latents.data as Float32Array);
      order.push(`${w.item}:${w.window}/${w.windows}`);
    }
    expect(order).toEqual(['0:0/1', '1:0/2', '1:1/2']);
    for (let i = 0; i < 2; i++) {
      for (let w = 0; w < alone[i]!.length; w++) {
        const d = maxDiff(got[i]![w]!, alone[i]![w]!);
        console.log(`batched DiT window ${w} of sequence ${i} vs alone: max_abs ${d.toExponential(2)}`);
        expect(d).toBeLessThanOrEqual(1e-5);
      }
    }
    dec.dispose();
    expect(tf.memory().numTensors).toBe(before);
  });

  it('host path: decodeBatch decodes one at a time, the bytes of decode', async () => {
    const opts = { steps: 2, seed: 7 };
    const single = await tiny.codec.decode(seqA, opts);
    const [host] = await tiny.codec.decodeBatch([seqA], { ...opts, batchSize: 2 });
    for (let r = 0; r < 2; r++) expect(Buffer.from(host!.channels[r]!.buffer).equals(Buffer.from(single.channels[r]!.buffer))).toBe(true);
  });
});
