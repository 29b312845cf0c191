/**
 * The fused attention kernel of src/simd/attention.ts against a float64 softmax attention computed here, on shapes
 * with ragged edges (Tq not a multiple of the 24-row item or the 6-row micro-tile, Tk not a multiple of the 8-key
 * panel, so padding keys are masked, Tk over the 256-key chunk), batches, both score scalings (× scale, ÷ divisor),
 * on both paths (FMA and SIMD128); the layer (layers/attention.ts multiHeadAttention) takes it on wasm, equals its plain
 * form to float32 rounding, keeps the plain form for MUCODEC_ATTENTION=plain and for head sizes that are no multiple
 * of 8, and releases every tensor. 1 vs 2 threads give the same bytes: tests/gemm.test.ts (tests/helpers/gemm_probe.ts).
 */
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../src/backend.js';
import { wasmAttention, wasmAttentionUnsupported } from '../src/simd/attention.js';
import { relaxedSimdSupported } from '../src/simd/relaxed.js';
import { attentionCalls, attentionImplFor, multiHeadAttention } from '../layers/attention.js';
import { lcgRand } from './helpers/lcg.js';

beforeAll(async () => { await initBackend('wasm'); });

/** float64 softmax(scale(q kᵀ)) v per head; `div`: scores divided by `by`, else multiplied */
function reference(q: Float32Array, k: Float32Array, v: Float32Array, b: number, tq: number, tk: number, heads: number, dh: number, div: boolean, by: number): { out: Float64Array; mag: Float64Array } {
  const D = heads * dh;
  const out = new Float64Array(b * tq * D), mag = new Float64Array(b * tq * D);
  const s = new Float64Array(tk);
  for (let bi = 0; bi < b; bi++) {
    for (let h = 0; h < heads; h++) {
      for (let i = 0; i < tq; i++) {
        let mx = -Infinity;
        for (let j = 0; j < tk; j++) {
          let acc = 0;
          for (let c = 0; c < dh; c++) acc += q[(bi * tq + i) * D + h * dh + c]! * k[(bi * tk + j) * D + h * dh + c]!;
          s[j] = div ? acc / by : acc * by;
          mx = Math.max(mx, s[j]!);
        }
        let sum = 0;
        for (let j = 0; j < tk; j++) { s[j] = Math.exp(s[j]! - mx); sum += s[j]!; }
        for (let c = 0; c < dh; c++) {
          let acc = 0, m = 0;
          for (let j = 0; j < tk; j++) { const t = (s[j]! / sum) * v[(bi * tk + j) * D + h * dh + c]!; acc += t; m += Math.abs(t); }
          out[(bi * tq + i) * D + h * dh + c] = acc;
          mag[(bi * tq + i) * D + h * dh + c] = m;
        }
      }
    }
  }
  return { out, mag };
}

describe('fused attention (wasm)', () => {
  // [batch, Tq, Tk, heads, head size]
  const shapes: Array<[number, number, number, number, number]> = [
    [1, 1, 1, 1, 8], [1, 7, 5, 2, 8], [2, 31, 64, 3, 16], [1, 50, 37, 2, 24], [1, 25, 300, 1, 72], [1, 61, 263, 2, 64],
  ];
  for (const fma of relaxedSimdSupported() ? [true, false] : [false]) {
    it(`${fma ? 'FMA' : 'SIMD128'} path = float64 attention, both scalings, ragged Tq and Tk`, () => {
      const start = tf.memory().numTensors;
      let n = 0;
      for (const [b, tq, tk, heads, dh] of shapes) {
        const D = heads * dh;
        const qa = lcgRand(b * tq * D, 1 + tq, 3), ka = lcgRand(b * tk * D, 2 + tk, 3), va = lcgRand(b * tk * D, 3 + tk, 2);
        const q = tf.tensor3d(qa, [b, tq, D]), k = tf.tensor3d(ka, [b, tk, D]), v = tf.tensor3d(va, [b, tk, D]);
        for (const div of [false, true]) {
          const by = div ? Math.sqrt(dh) : 1 / Math.sqrt(dh);
          const y = wasmAttention(q, k, v, heads, { mode: div ? 'div' : 'mul', by }, fma);
          expect(y.shape).toEqual([b, tq, D]);
          const got = y.dataSync();
          const ref = reference(qa, ka, va, b, tq, tk, heads, dh, div, by);
          for (let i = 0; i < got.length; i++) {
            // float32 scores (dh terms), exp to a few ulps, Tk-term sums: a relative bound on Σ|p·v| with room for them
            const bound = (dh + tk + 16) * 2 ** -23 * (ref.mag[i]! + 1e-3);
            const e = Math.abs(got[i]! - ref.out[i]!);
            if (!(e <= bound)) throw new Error(`(${b}, ${tq}, ${tk}, ${heads}, ${dh}) ${div ? '÷' : '×'} [${i}]: |${got[i]} − ${ref.out[i]}| = ${e} > ${bound}`);
            n++;
          }
          y.dispose();
        }
        tf.dispose([q, k, v]);
      }
      expect(n).toBeGreaterThan(10_000);
      expect(tf.memory().numTensors).toBe(start);
    });
  }

  it('multiHeadAttention takes it on wasm and equals the plain form to float32 rounding; plain where it cannot', () => {
    const start = tf.memory().numTensors;
    const [tq, tk, heads, dh] = [40, 33, 2, 16];
    const q = tf.tensor3d(lcgRand(tq * heads * dh, 5, 2), [1, tq, heads * dh]);
    const k = tf.tensor3d(lcgRand(tk * heads * dh, 6, 2), [1, tk, heads * dh]);
    const v = tf.tensor3d(lcgRand(tk * heads * dh, 7, 2), [1, tk, heads * dh]);
    expect(attentionImplFor(q, k, v, heads)).toBe('fused');
    for (const opts of [{}, { scaleQuery: true }, { divideScores: 4 }]) {
      const before = attentionCalls();
      const fused = multiHeadAttention(q, k, v, heads, opts).out;
      const plain = multiHeadAttention(q, k, v, heads, { ...opts, impl: 'plain' }).out;
      const after = attentionCalls();
      expect([after.fused - before.fused, after.plain - before.plain]).toEqual([1, 1]);
      const d = tf.tidy(() => tf.max(tf.abs(tf.sub(fused, plain))).dataSync()[0]!);
      expect(d).toBeLessThan(1e-5);
      expect(d).toBeGreaterThanOrEqual(0);
      tf.dispose([fused, plain]);
    }
    // the probabilities (parity stages) come from the plain form beside the fused output
    const r = multiHeadAttention(q, k, v, heads, { returnProbs: true });
    expect(r.probs!.shape).toEqual([1, heads, tq, tk]);
    tf.dispose([r.out, r.probs!]);
    // head size 12: no multiple of 8
    const q12 = tf.tensor3d(lcgRand(tq * 24, 8, 2), [1, tq, 24]);
    expect(wasmAttentionUnsupported(q12, q12, q12, 2)).toMatch(/multiple of 8/);
    expect(attentionImplFor(q12, q12, q12, 2)).toBe('plain');
    const prev = process.env.MUCODEC_ATTENTION;
    process.env.MUCODEC_ATTENTION = 'plain';
    try { expect(attentionImplFor(q, k, v, heads)).toBe('plain'); } finally {
      if (prev === undefined) delete process.env.MUCODEC_ATTENTION; else process.env.MUCODEC_ATTENTION = prev;
    }
    tf.dispose([q, k, v, q12]);
    expect(tf.memory().numTensors).toBe(start);
  });
});
