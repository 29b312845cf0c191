/**
 * Decoder family: every reference case (dit.*, cfm.solve_euler*, mucodec.inference_codes,
 * mucodec.code2sound_latents) through the parity runner, plus the decoder's own behaviour: the code2sound
 * window plan, seeded reproducibility, batch > 1, normfeat statistics updates, tensor hygiene.
 */
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { defineParityTests, fixtureDir } from './parity-helper.js';
import { initBackend } from '../src/backend.js';
import { loadCase, type FixtureCase } from '../src/fixtures.js';
import { toFloat32, toInt32, type HostTensor } from '../src/hosttensor.js';
import { ReplayNoise, SeededNoise } from '../src/noise.js';
import { Params } from '../src/params.js';
import { REAL_CONFIG } from '../convert/manifest.js';
import { Feature2DProcessor, MuCodecDecoder, REAL_DECODER_CONFIG, decoderConfigFromUpstream, planCode2Sound, tileCodes, type DecoderConfig } from '../src/decoder.js';

defineParityTests('decoder');

function decoderConfig(c: FixtureCase): DecoderConfig {
  return decoderConfigFromUpstream(c.json.config as Record<string, unknown>);
}

describe('code2sound window plan', () => {
  it('pads by tiling, 768k + 256 codes, one window per 768 (incl. the lengths upstream fails on)', () => {
    const cases: Array<[number, number, number]> = [
      // n, padded, windows
      [1, 1024, 1], [700, 1024, 1], [1024, 1024, 1], [1025, 1792, 2], [1606, 1792, 2], [1792, 1792, 2],
      [2000, 2560, 3], [4500, 4864, 6],
      // n ≡ 128 (mod 768), n ≥ 1024: upstream skips the padding and crashes; padded like every other length
      [1664, 1792, 2], [2432, 2560, 3], [3200, 3328, 4],
    ];
    for (const [n, padded, windows] of cases) {
      const p = planCode2Sound(n);
      expect([p.paddedLength, p.windowStarts.length], `n=${n}`).toEqual([padded, windows]);
      expect(p.windowStarts).toEqual(Array.from({ length: windows }, (_, i) => 768 * i));
      expect(p.windowStarts.at(-1)! + 1024).toBe(padded);
    }
    // upstream's float rounding of the target length: int(n / 100 * 4 * 48000)
    expect(planCode2Sound(29).targetLen).toBe(55679);
    expect(planCode2Sound(1606).targetLen).toBe(3083519);
    expect(planCode2Sound(1600).targetLen).toBe(3072000);
    expect(planCode2Sound(1606 + 200, 200).targetLen).toBe(planCode2Sound(1606).targetLen);
    expect(Array.from(tileCodes(Int32Array.from([1, 2, 3, 4, 5, 6]), 2, 3, 7))).toEqual([1, 2, 3, 1, 2, 3, 1, 4, 5, 6, 4, 5, 6, 4]);
  });

  it('decoderConfigFromUpstream maps the released model configuration (weights/config.json layout)', () => {
    expect(decoderConfigFromUpstream(REAL_CONFIG as unknown as Record<string, unknown>)).toEqual(REAL_DECODER_CONFIG);
    expect(decoderConfigFromUpstream({})).toEqual(REAL_DECODER_CONFIG);
  });

  it('the padded codes equal the reference mid.codes_padded', async () => {
    const c = await loadCase(fixtureDir('decoder', 'mucodec.code2sound_latents'));
    const codes = toInt32(c.t('in.codes'));
    const p = planCode2Sound(codes.length);
    expect(Array.from(tileCodes(codes, 1, codes.length, p.paddedLength))).toEqual(Array.from(toInt32(c.t('mid.codes_padded'))));
  });
});

describe('decoder', () => {
  let ic: FixtureCase;
  beforeAll(async () => {
    await initBackend();
    ic = await loadCase(fixtureDir('decoder', 'mucodec.inference_codes'));
  });

  it('normfeat: statistics are updated while counts < num_samples (as upstream), frozen above', () => {
    const f = Math.fround;
    const sumX = Float32Array.from({ length: 1024 }, (_, i) => Math.sin(i) * 3);
    const sumX2 = Float32Array.from(sumX, (v, i) => v * v / 3 + 2 + (i % 7));
    const mk = (counts: number) => new Params(new Map<string, HostTensor>([
      ['counts', { dtype: 'float32', shape: [1], data: Float32Array.of(counts) }],
      ['sum_x', { dtype: 'float32', shape: [32, 32], data: sumX }],
      ['sum_x2', { dtype: 'float32', shape: [32, 32], data: sumX2 }],
    ]));
    const xs = Float32Array.from({ length: 2 * 32 * 6 * 32 }, (_, i) => Math.cos(i * 0.37) * 2 + 0.5);
    const x = tf.tensor4d(xs, [2, 32, 6, 32]);
    const start = tf.memory().numTensors;
    // counts 3 < 100000: counts += B, sums += per-(c, w) frame means summed over the batch, then normalise
    const nf = new Feature2DProcessor(mk(3));
    const y = nf.project(x);
    expect(nf.counts).toBe(5);
    const idx = (b: number, ch: number, t: number, w: number) => ((b * 32 + ch) * 6 + t) * 32 + w;
    let worst = 0;
    const yd = y.dataSync();
    for (const [ch, w] of [[0, 0], [5, 17], [31, 31]] as const) {
      let s = 0, s2 = 0;
      for (let b = 0; b < 2; b++) for (let t = 0; t < 6; t++) { const v = xs[idx(b, ch, t, w)]!; s += v / 6; s2 += v * v / 6; }
      const mean = (sumX[ch * 32 + w]! + s) / 5;
      const std = Math.sqrt((sumX2[ch * 32 + w]! + s2) / 5 - mean * mean);
      for (let b = 0; b < 2; b++) for (let t = 0; t < 6; t++) {
        worst = Math.max(worst, Math.abs(yd[idx(b, ch, t, w)]! - (xs[idx(b, ch, t, w)]! - mean) / std));
      }
    }
    expect(worst).toBeLessThan(1e-4);
    // return_sample inverts project_sample (with the updated statistics)
    const back = nf.unproject(y);
    expect(Math.max(...Array.from(back.dataSync(), (v, i) => Math.abs(v - xs[i]!)))).toBeLessThan(1e-4);
    // counts ≥ num_samples: nothing changes
    const frozen = new Feature2DProcessor(mk(1e6));
    frozen.project(x).dispose();
    expect(frozen.counts).toBe(1e6);
    expect(Array.from(frozen.sumX)).toEqual(Array.from(sumX));
    expect(f(frozen.stats().mean[3]!)).toBe(f(sumX[3]! / 1e6));
    y.dispose(); back.dispose();
    expect(tf.memory().numTensors).toBe(start);
    x.dispose();
  });

  it('batch of 2 reproduces the single-item reference for each item (per-item t broadcast)', async () => {
    const dec = new MuCodecDecoder(await ic.weights(), decoderConfig(ic));
    const sc = ic.json.scalars as { latent_length: number; incontext_length: number; guidance_scale: number; num_steps: number };
    const dup = (h: HostTensor): HostTensor => {
      const d = toFloat32(h);
      const out = new Float32Array(2 * d.length);
      out.set(d); out.set(d, d.length);
      return { dtype: 'float32', shape: [2, ...h.shape.slice(1)], data: out };
    };
    const codes = toInt32(ic.t('in.codes'));
    const codes2 = new Int32Array(2 * codes.length); codes2.set(codes); codes2.set(codes, codes.length);
    const noise = new ReplayNoise([dup(ic.t('noise.0'))]);
    const out = dec.inferenceCodes({
      codes: { data: codes2, shape: [2, 1, codes.length] }, trueLatents: dup(ic.t('in.true_latents')),
      latentLength: sc.latent_length, incontextLength: sc.incontext_length, guidanceScale: sc.guidance_scale,
      numSteps: sc.num_steps, scenario: 'other_seg', noise,
    });
    const ref = toFloat32(ic.t('out.latents'));
    const d = out.dataSync();
    const tol = ic.json.tolerance as { max_abs: number; rel_l2: number };
    for (let b = 0; b < 2; b++) {
      const part = d.subarray(b * ref.length, (b + 1) * ref.length);
      let m = 0, n2 = 0, r2 = 0;
      for (let i = 0; i < ref.length; i++) { const e = Math.abs(part[i]! - ref[i]!); m = Math.max(m, e); n2 += e * e; r2 += ref[i]! ** 2; }
      expect(m).toBeLessThanOrEqual(tol.max_abs);
      expect(Math.sqrt(n2 / r2)).toBeLessThanOrEqual(tol.rel_l2);
    }
    out.dispose();
    dec.dispose();
  });

  it('seeded decoding is reproducible (same seed → identical latents, another seed → different); no leaks', async () => {
    const c = await loadCase(fixtureDir('decoder', 'mucodec.code2sound_latents'));
    const start = tf.memory().numTensors;
    const dec = new MuCodecDecoder(await c.weights(), decoderConfig(c));
    const codes = toInt32(c.t('in.codes')).slice(0, 100);
    const run = async (seed: number): Promise<Float32Array[]> => {
      const outs: Float32Array[] = [];
      const steps: number[] = [];
      for await (const w of dec.code2soundLatents({ data: codes, shape: [1, 1, codes.length] }, { seed, numSteps: 1, onStep: (s) => steps.push(s.step) })) {
        expect(w.latents.shape).toEqual([1, 32, 512, 32]);
        expect([w.index, w.count, w.codeStart, w.plan.targetLen]).toEqual([0, 1, 0, 192000]);
        outs.push(w.latents.data as Float32Array);
      }
      expect(steps).toEqual([0]);
      return outs;
    };
    const a = await run(1234);
    const held = tf.memory().numTensors; // the model's cached weights
    const b = await run(1234), other = await run(99);
    expect(tf.memory().numTensors).toBe(held);
    expect(a.length).toBe(1);
    expect(Array.from(a[0]!).every((v, i) => v === b[0]![i])).toBe(true);
    expect(Array.from(a[0]!).some((v, i) => v !== other[0]![i])).toBe(true);
    // the same draws through an explicit SeededNoise give the same result
    const c2: Float32Array[] = [];
    for await (const w of dec.code2soundLatents({ data: codes, shape: [1, 1, codes.length] }, { noise: new SeededNoise(1234), numSteps: 1 })) c2.push(w.latents.data as Float32Array);
    expect(Array.from(c2[0]!).every((v, i) => v === a[0]![i])).toBe(true);
    // prompt: its codes are prepended, its latent is window 0's in-context part and is cropped from the output
    const promptLatent = new Float32Array(32 * 100 * 32).map((_, i) => Math.sin(i * 0.01));
    const seenPrompt: Array<{ shape: number[]; plan: unknown }> = [];
    for await (const w of dec.code2soundLatents({ data: codes, shape: [1, 1, codes.length] }, {
      seed: 5, numSteps: 1,
      prompt: { latent: { dtype: 'float32', shape: [1, 32, 100, 32], data: promptLatent }, codes: { data: codes.slice(0, 60).map((v) => (v + 1) % 64), shape: [1, 1, 60] } },
    })) seenPrompt.push({ shape: w.latents.shape, plan: w.plan });
    expect(seenPrompt).toEqual([{ shape: [1, 32, 412, 32], plan: { codesLength: 160, paddedLength: 1024, windowStarts: [0], targetLen: 192000 } }]);
    dec.dispose();
    expect(tf.memory().numTensors).toBe(start);
  });
});
