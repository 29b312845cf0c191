/**
 * MuQ pieces against the reference intermediates (the stage outputs are checked by tests/parity.muq.test.ts):
 * window / HTK filterbank / rotary tables vs the checkpoint buffers and fixture tensors, mel power and dB,
 * frontend and conformer sub-block intermediates, the encoder's early stop and layer-index API, no leaks.
 */
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it, vi } from 'vitest';
import { initBackend } from '../src/backend.js';
import { compareTensor, loadCase, type FixtureCase, type Tolerance } from '../src/fixtures.js';
import { toFloat32, type HostTensor } from '../src/hosttensor.js';
import { MelFeatures, hannWindow, melFilterbankHTK, transpose2d } from '../src/muq/features.js';
import { Conv2dSubsampling } from '../src/muq/conv_subsampling.js';
import { ConformerLayer, RotaryTensors, rotaryFromStacked, rotaryInvFreq, rotaryTables, type ConformerLayerMids } from '../src/muq/conformer.js';
import { MUQ_DEFAULT_CONFIG, MuQEncoder, muqConfigFromDicts } from '../src/muq/muq.js';
import { fixtureDir } from './parity-helper.js';

const host = (t: tf.Tensor): HostTensor => ({ dtype: 'float32', shape: [...t.shape], data: t.dataSync() as Float32Array });

function expectClose(name: string, out: HostTensor, ref: HostTensor, tol: Tolerance): void {
  const r = compareTensor(name, out, ref, tol);
  expect(r.pass, `${name}: ${r.detail ?? ''} max_abs=${r.maxAbs} rel_l2=${r.relL2} (tol ${tol.max_abs} / ${tol.rel_l2})`).toBe(true);
}

function maxDiff(a: ArrayLike<number>, b: ArrayLike<number>): { max: number; n: number } {
  let max = 0, n = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i]! - b[i]!);
    if (d) n++;
    max = Math.max(max, d);
  }
  return { max, n };
}

const caseTol = (c: FixtureCase): Tolerance => c.json.tolerance as Tolerance;

let encCase: FixtureCase;
beforeAll(async () => {
  await initBackend();
  encCase = await loadCase(fixtureDir('encoder', 'muq.encoder'));
});

describe('MuQ features', () => {
  it('computed Hann window and HTK filterbank = the checkpoint buffers (to float32 libm rounding)', async () => {
    const p = (await encCase.weights()).sub('model.preprocessor_melspec_2048.mel_stft.');
    const w = maxDiff(hannWindow(2048), p.f32('spectrogram.window', [2048]));
    expect(w.max).toBeLessThanOrEqual(6e-8); // 1 ulp of values < 1 (torch's vectorised cosf)
    const fb = maxDiff(melFilterbankHTK(1025, 0, 12000, 128, 24000), p.f32('mel_scale.fb', [1025, 128]));
    // torch.linspace's AVX2 kernel is emulated; a few powf results differ by an ulp
    expect(fb.max).toBeLessThan(3e-6);
    expect(fb.n).toBeLessThanOrEqual(30);
  });

  it('mel power and dB (before the crop) match mid.mel_power / mid.mel_db', async () => {
    const c = await loadCase(fixtureDir('encoder', 'muq.features'));
    const x = c.t('in.audio_24k');
    const [b, len] = x.shape as [number, number];
    const xs = toFloat32(x);
    const mel = new MelFeatures();
    const power: Float32Array[] = [], db: Float32Array[] = [];
    let frames = 0;
    for (let i = 0; i < b; i++) {
      const p = mel.melPower(xs.subarray(i * len, (i + 1) * len));
      frames = p.length / 128;
      power.push(transpose2d(p, frames, 128));
      db.push(transpose2d(mel.toDb(p), frames, 128));
    }
    expect(frames).toBe((c.json.config as Record<string, number>).stft_frames);
    const cat = (parts: Float32Array[]): HostTensor => {
      const d = new Float32Array(parts.length * parts[0]!.length);
      parts.forEach((q, i) => d.set(q, i * q.length));
      return { dtype: 'float32', shape: [b, 128, frames], data: d };
    };
    // mel power tolerance: 20 × its float32-vs-float64 deviation recorded in case.json tolerance_basis
    const basis = (c.json.tolerance_basis as Record<string, { f32_vs_f64: { max_abs: number; rel_l2: number } }>)['mid.mel_power']!.f32_vs_f64;
    expectClose('mid.mel_power', cat(power), c.t('mid.mel_power'), { max_abs: 20 * basis.max_abs, rel_l2: 20 * basis.rel_l2 });
    expectClose('mid.mel_db', cat(db), c.t('mid.mel_db'), caseTol(c));
  });

  it('MuQEncoder.features (960-sample crop, checkpoint buffers) = muq.encoder mid.features', async () => {
    const p = await encCase.weights();
    const cfg = encCase.json.config as Record<string, Record<string, unknown>>;
    const before = tf.memory().numTensors;
    const enc = new MuQEncoder(p.sub('model.'), muqConfigFromDicts(cfg.muq!, cfg.conformer!), { maxLayerIndex: 0 });
    const x = encCase.t('in.source');
    const [b, len] = x.shape as [number, number];
    const ref = encCase.t('mid.features');
    const [, nm, t] = ref.shape as [number, number, number];
    const d = new Float32Array(b * nm * t);
    for (let i = 0; i < b; i++) {
      const f = enc.features(toFloat32(x).subarray(i * len, (i + 1) * len));
      expect(f.frames).toBe(t);
      d.set(transpose2d(f.data, f.frames, nm), i * nm * t);
    }
    expectClose('mid.features', { dtype: 'float32', shape: [b, nm, t], data: d }, ref, caseTol(encCase));
    expect(enc.tokensFor(len)).toBe((cfg as unknown as Record<string, number>).output_frames);
    enc.dispose();
    expect(tf.memory().numTensors).toBe(before);
  });
});

describe('MuQ rotary tables', () => {
  it('inv_freq computed = buffer; tables from the buffer = mid.rotary (muq.encoder)', async () => {
    const p = await encCase.weights();
    const inv = p.f32('model.conformer.embed_positions.inv_freq');
    expect(maxDiff(rotaryInvFreq(16, 10000), inv).max).toBeLessThanOrEqual(6e-8);
    const ref = rotaryFromStacked(encCase.t('mid.rotary'));
    const ours = rotaryTables(ref.length, inv);
    // float32 t·inv_freq, then cos/sin: within 1-2 ulp of torch (NOTES pitfall 5)
    expect(maxDiff(ours.cos, ref.cos).max).toBeLessThanOrEqual(1.2e-7);
    expect(maxDiff(ours.sin, ref.sin).max).toBeLessThanOrEqual(1.2e-7);
  });

  it('tables computed without a buffer = in.rotary (muq.conformer_layer, head size 12)', async () => {
    const c = await loadCase(fixtureDir('encoder', 'muq.conformer_layer'));
    const ref = rotaryFromStacked(c.t('in.rotary'));
    const ours = rotaryTables(ref.length, rotaryInvFreq(12, 10000));
    expect(maxDiff(ours.cos, ref.cos).max).toBeLessThanOrEqual(1.2e-7);
    expect(maxDiff(ours.sin, ref.sin).max).toBeLessThanOrEqual(1.2e-7);
  });
});

describe('MuQ conv frontend', () => {
  // the default (SIMD Winograd on wasm), the tfjs-op Winograd used off wasm, and tf.conv2d
  for (const mode of ['winograd-simd', 'winograd-f3h', 'direct'] as const) it(`Res2d outputs = mid.res0 / mid.res1 (${mode})`, async () => {
    const c = await loadCase(fixtureDir('encoder', 'muq.conv_subsampling'));
    const p = await c.weights();
    const before = tf.memory().numTensors;
    const fe = new Conv2dSubsampling(p, { convDim: 8, encoderDim: 24, nMels: 128, strides: [2, 2], batchNormEps: 1e-5, conv3x3: mode });
    const x = c.t('in.x');
    const xt = tf.tidy(() => tf.tensor3d(toFloat32(x), x.shape as [number, number, number]).transpose([0, 2, 1]) as tf.Tensor3D);
    const mids: { res0?: tf.Tensor4D; res1?: tf.Tensor4D } = {};
    const y = fe.apply(xt, mids);
    expect(y.shape).toEqual([2, fe.outFrames(42), 24]);
    // ours (B, T, F, C) → upstream (B, C, F, T)
    for (const k of ['res0', 'res1'] as const) {
      const t = tf.transpose(mids[k]!, [0, 3, 2, 1]);
      expectClose(`mid.${k}`, host(t), c.t(`mid.${k}`), caseTol(c));
      t.dispose();
      mids[k]!.dispose();
    }
    expectClose('out.y', host(y), c.t('out.y'), caseTol(c));
    for (const t of [xt, y]) t.dispose();
    fe.dispose();
    expect(tf.memory().numTensors).toBe(before);
  });
});

describe('MuQ conformer layer', () => {
  it('sub-block outputs = mid.ffn1 / self_attn / conv_module / ffn2', async () => {
    const c = await loadCase(fixtureDir('encoder', 'muq.conformer_layer'));
    const p = await c.weights();
    const before = tf.memory().numTensors;
    const layer = new ConformerLayer(p, {
      hiddenSize: 60, numHeads: 5, intermediateSize: 84, convKernel: 31, rotaryBase: 10000, layerNormEps: 1e-5, batchNormEps: 1e-5,
    });
    // rotary computed here (not the fixture's in.rotary)
    const rot = new RotaryTensors(rotaryTables(37, rotaryInvFreq(12, 10000)));
    const x = c.t('in.hidden_states');
    const xt = tf.tensor3d(toFloat32(x), x.shape as [number, number, number]);
    const mids: ConformerLayerMids = {};
    const { out, probs } = layer.apply(xt, rot, { mids });
    expect(probs).toBeUndefined();
    for (const k of ['ffn1', 'self_attn', 'conv_module', 'ffn2'] as const) {
      expectClose(`mid.${k}`, host(mids[k]!), c.t(`mid.${k}`), caseTol(c));
      mids[k]!.dispose();
    }
    expectClose('out.hidden_states', host(out), c.t('out.hidden_states'), caseTol(c));
    for (const t of [xt, out]) t.dispose();
    layer.dispose();
    rot.dispose();
    expect(tf.memory().numTensors).toBe(before);
  });
});

describe('MuQEncoder', () => {
  it('default config is the real MuQ', () => {
    expect(MUQ_DEFAULT_CONFIG).toMatchObject({ encoderDim: 1024, encoderDepth: 12, convDim: 512, numHeads: 16, intermediateSize: 4096, convKernel: 31, nMels: 128, hopLength: 240, labelRate: 25 });
  });

  it('forward(i) = layer_results[i]; early stop builds and runs only layers < i; index 0 = mid.conv_out', async () => {
    const p = await encCase.weights();
    const cfg = encCase.json.config as Record<string, Record<string, unknown>>;
    const mcfg = muqConfigFromDicts(cfg.muq!, cfg.conformer!);
    const x = encCase.t('in.source');
    const [b, len] = x.shape as [number, number];
    const xs = toFloat32(x);
    const rows = Array.from({ length: b }, (_, i) => xs.subarray(i * len, (i + 1) * len));
    const before = tf.memory().numTensors;
    const enc = new MuQEncoder(p.sub('model.'), mcfg, { maxLayerIndex: 2 });
    expect(enc.layers.length).toBe(2);
    expect(enc.finalNorm).toBeNull();
    expect(() => enc.forward(rows, 3)).toThrow(/outside 0\.\.2/);
    const h0 = enc.forward(rows, 0);
    expectClose('mid.conv_out', host(h0), encCase.t('mid.conv_out'), caseTol(encCase));
    const xt = tf.tensor2d(xs, [b, len]);
    const h2 = enc.forward(xt, 2);
    expectClose('out.layer_02', host(h2), encCase.t('out.layer_02'), caseTol(encCase));
    // the same input as Float32Array rows gives the same bits
    const h2b = enc.forward(rows, 2);
    expect(maxDiff(h2.dataSync(), h2b.dataSync()).max).toBe(0);
    for (const t of [xt, h0, h2, h2b]) t.dispose();
    enc.dispose();
    expect(tf.memory().numTensors).toBe(before);
  });

  it('layers past the requested index are never run', async () => {
    const p = await encCase.weights();
    const cfg = encCase.json.config as Record<string, Record<string, unknown>>;
    const before = tf.memory().numTensors;
    const enc = new MuQEncoder(p.sub('model.'), muqConfigFromDicts(cfg.muq!, cfg.conformer!));
    expect(enc.layers.length).toBe(3);
    const spies = enc.layers.map((l) => vi.spyOn(l, 'apply'));
    const rows = [toFloat32(encCase.t('in.source')).slice(0, 30517)];
    const h1 = enc.forward(rows, 1);
    expect(h1.shape).toEqual([1, 31, 48]);
    expect(spies.map((s) => s.mock.calls.length)).toEqual([1, 0, 0]);
    h1.dispose();
    enc.dispose();
    expect(tf.memory().numTensors).toBe(before);
  });

  it('the last index applies conformer.layer_norm (out.layer_03); hiddenStates = every index', async () => {
    const p = await encCase.weights();
    const cfg = encCase.json.config as Record<string, Record<string, unknown>>;
    const before = tf.memory().numTensors;
    const enc = new MuQEncoder(p.sub('model.'), muqConfigFromDicts(cfg.muq!, cfg.conformer!));
    const x = encCase.t('in.source');
    const [b, len] = x.shape as [number, number];
    const xt = tf.tensor2d(toFloat32(x), [b, len]);
    const h3 = enc.forward(xt, 3);
    expectClose('out.layer_03', host(h3), encCase.t('out.layer_03'), caseTol(encCase));
    const hs = enc.hiddenStates(xt, 3);
    expect(hs.length).toBe(4);
    expect(maxDiff(hs[3]!.dataSync(), h3.dataSync()).max).toBe(0);
    for (const t of [xt, h3, ...hs]) t.dispose();
    enc.dispose();
    expect(tf.memory().numTensors).toBe(before);
  });
});
