/**
 * layers/winograd1d.ts: nn.Conv1d (zero padding, dilation, any k) by F(3,3) on 3-tap kernel chunks, against a
 * float64 direct sum and against the vocoder's direct conv (Conv1dCore); bands, bias / leaky ReLU / residual,
 * inputs shorter than a tile, clear errors, no leaked tensors.
 */
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../src/backend.js';
import { Conv1dWinograd } from '../layers/winograd1d.js';
import { Conv1dCore } from '../src/vocoder/hifigan.js';

function rnd(n: number, seed: number, scale = 1): Float32Array {
  const a = new Float32Array(n);
  let z = seed >>> 0;
  for (let i = 0; i < n; i++) { z = (Math.imul(z, 1103515245) + 12345) >>> 0; a[i] = (z / 2 ** 32 - 0.5) * scale; }
  return a;
}

/** float64 nn.Conv1d on NWC input, filter (k, Cin, Cout) */
function direct64(x: Float32Array, n: number, len: number, cin: number, w: Float32Array, k: number, cout: number, padL: number, padR: number, d: number): { y: Float64Array; L: number } {
  const L = len + padL + padR - (k - 1) * d;
  const y = new Float64Array(n * L * cout);
  for (let b = 0; b < n; b++) for (let o = 0; o < L; o++) for (let t = 0; t < k; t++) {
    const p = o - padL + t * d;
    if (p < 0 || p >= len) continue;
    for (let c = 0; c < cin; c++) {
      const xv = x[(b * len + p) * cin + c]!;
      for (let e = 0; e < cout; e++) y[(b * L + o) * cout + e] += xv * w[(t * cin + c) * cout + e]!;
    }
  }
  return { y, L };
}

function relL2(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let s = 0, t = 0;
  for (let i = 0; i < b.length; i++) { s += (a[i]! - b[i]!) ** 2; t += b[i]! ** 2; }
  return Math.sqrt(s / t);
}

describe('Conv1dWinograd (F(3,3) on kernel chunks)', () => {
  beforeAll(async () => { await initBackend(); });

  // [k, dilation, len, cin, cout, padL, padR, band]
  const cases: Array<[number, number, number, number, number, number, number, number]> = [
    [3, 1, 50, 8, 6, 1, 1, 1 << 20],     // one chunk, 'same'
    [7, 3, 61, 8, 8, 9, 9, 1000],        // 3 chunks (2 zero taps), dilation 3
    [11, 5, 97, 6, 5, 25, 25, 30],       // 4 chunks, dilation 5, many bands (30 → 30 = 2·3·5)
    [15, 1, 40, 5, 7, 7, 7, 9],          // 5 chunks, bands of 9
    [11, 3, 10, 4, 4, 15, 15, 9],        // input much shorter than the kernel span
    [5, 2, 33, 3, 4, 0, 0, 1 << 20],     // 'valid', odd length
    [4, 1, 20, 4, 3, 3, 0, 6],           // asymmetric padding
  ];
  it.each(cases)('k %i, dilation %i, length %i (%i → %i channels, pad %i/%i, band %i) = float64 direct sum', (k, d, len, cin, cout, padL, padR, band) => {
    const before = tf.memory().numTensors;
    const x = rnd(2 * len * cin, 1 + k), w = rnd(k * cin * cout, 2 + d, 0.5);
    const ref = direct64(x, 2, len, cin, w, k, cout, padL, padR, d);
    const conv = new Conv1dWinograd(w, k, cin, cout, null, padL, padR, d, { band });
    expect(conv.outLength(len)).toBe(ref.L);
    const xt = tf.tensor3d(x, [2, len, cin]);
    const y = conv.apply(xt);
    expect(y.shape).toEqual([2, ref.L, cout]);
    // float32 direct convolution is ~1e-7 here; the F(3,3) transforms (points 0, ±1, ½) add little
    expect(relL2(y.dataSync(), ref.y)).toBeLessThan(1e-6);
    y.dispose(); xt.dispose(); conv.dispose();
    expect(tf.memory().numTensors).toBe(before);
  });

  it('bias, leaky ReLU and residual as Conv1dCore applies them (the vocoder\'s direct conv)', () => {
    const before = tf.memory().numTensors;
    const k = 11, d = 3, len = 200, c = 16, pad = 15;
    const w = rnd(k * c * c, 3, 0.3), b = rnd(c, 4);
    const x = tf.tensor3d(rnd(len * c, 5), [1, len, c]);
    const res = tf.tensor3d(rnd(len * c, 6), [1, len, c]);
    const core = new Conv1dCore(w, [k, c, c], b, pad, pad, d);
    const wg = new Conv1dWinograd(w, k, c, c, b, pad, pad, d, { band: 48 });
    for (const [slope, r] of [[null, null], [0.1, null], [null, res], [0.1, res]] as const) {
      const a = core.apply(x, { slope, res: r });
      const g = wg.apply(x, slope, r);
      expect(relL2(g.dataSync(), a.dataSync())).toBeLessThan(2e-6);
      a.dispose(); g.dispose();
    }
    const wide = tf.zeros([1, len, c + 1]) as tf.Tensor3D, short = tf.zeros([1, len - 1, c]) as tf.Tensor3D;
    expect(() => wg.apply(wide)).toThrow(/17 channels, expected 16/);
    expect(() => wg.apply(x, null, short)).toThrow(/residual/);
    expect(() => new Conv1dWinograd(w, k, c, c + 1, null, pad, pad, d)).toThrow(/filter has/);
    for (const t of [x, res, wide, short]) t.dispose();
    core.dispose(); wg.dispose();
    expect(tf.memory().numTensors).toBe(before);
  });
});
