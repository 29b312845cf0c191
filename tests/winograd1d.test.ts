/**
 * src/simd/winograd1d.ts: the vocoder's dilated conv1d by F(M,M) (M = 3, 4) on M-tap kernel chunks, transforms as wasm
 * SIMD kernels and the products on the packed GEMM, against a float64 direct conv (batch, dilations 1/3/5, kernels
 * 3…15, padding, fused leaky ReLU and residual), on both GEMM paths; the tensors it makes are all released.
 */
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../src/backend.js';
import { bestOuter, bestTile, Conv1dWinogradGemm, productsPerOutput, wino1dPlan } from '../src/simd/winograd1d.js';
import { fmaMode, setFmaMode } from '../src/simd/relaxed.js';
import { lcgRand } from './helpers/lcg.js';

const rand = lcgRand;

beforeAll(async () => { await initBackend('wasm'); });

describe('Conv1dWinogradGemm (F(M,M) chunks on the packed GEMM)', () => {
  it('takes the tile with the fewest products: F(3,3) for 3 and 5 taps, F(4,4) for 7, 11, 15', () => {
    expect([3, 5, 7, 11, 15].map(bestTile)).toEqual([3, 3, 4, 4, 4]);
    expect(productsPerOutput(15, 3)).toBeCloseTo(25 / 3, 12);
    expect(productsPerOutput(15, 4)).toBe(7);
    // the outer F(3, q) over the chunks: (2M − 1)(3 + q − 1)/(3M)
    expect([3, 7, 11, 15].map((k) => bestOuter(k))).toEqual([1, 3, 3, 3]);
    expect(productsPerOutput(15, 4, 3)).toBe(3.5);
    expect(productsPerOutput(7, 4, 2)).toBe(21 / 8);
    expect(productsPerOutput(3, 3, 3)).toBe(5 / 3); // one chunk: nothing to do outside
    // each plan is an exact F(m, r): Aᵀ[(G g) ⊙ (Bᵀ d)] = the correlation, for random g, d (float64)
    for (const [m, r] of [[3, 3], [4, 4], [2, 2], [2, 3], [2, 4], [3, 2], [3, 4]] as const) {
      const { M, A, T } = wino1dPlan(m, r);
      expect([M, A]).toEqual([m, m + r - 1]);
      const g = Array.from(rand(r, 40 + m + r), Number), dd = Array.from(rand(A, 50 + m + r), Number);
      const gg = T.G.map((row) => row.reduce((a, c, t) => a + c * g[t]!, 0));
      const bd = T.BT.map((row) => row.reduce((a, c, i) => a + c * dd[i]!, 0));
      expect(T.AT).toHaveLength(m);
      T.AT.forEach((row, u) => {
        const y = row.reduce((a, c, xi) => a + c * gg[xi]! * bd[xi]!, 0);
        expect(y).toBeCloseTo(g.reduce((a, w, t) => a + w * dd[u + t]!, 0), 10);
      });
    }
    expect(() => wino1dPlan(5, 4)).toThrow(/F\(5,4\) is not available/);
  });

  // [n, len, cin, cout, k, d, padL, padR, slope, res]
  const cases: Array<[number, number, number, number, number, number, number, number, number | null, boolean]> = [
    [1, 50, 8, 12, 3, 1, 1, 1, null, false], [2, 61, 16, 8, 7, 3, 9, 9, 0.1, false], [1, 200, 12, 16, 11, 5, 25, 25, null, true],
    [3, 40, 4, 20, 15, 1, 7, 7, 0.1, true], [1, 33, 260, 8, 7, 1, 0, 0, null, false], [1, 90, 8, 8, 5, 3, 2, 11, 0.2, false],
  ];
  // [tile, outer]: F(3,3) and F(4,4) alone, and F(4,4) with F(2, q) / F(3, q) over the chunk axis (what bestTile and
  // MUCODEC_VOCODER_OUTER can choose)
  const tilings = [[3, 1], [4, 1], [4, 2], [4, 3]] as const;
  for (const [fma, [tile, outer]] of (['auto', 'off'] as const).flatMap((f) => tilings.map((t) => [f, t] as const))) {
    it(`= float64 conv1d within the F(${tile},${tile}) × F(${outer}, q) rounding (${fma === 'auto' ? 'FMA' : 'SIMD128'} GEMM)`, () => {
      const mode = fmaMode();
      setFmaMode(fma);
      const before = tf.memory().numTensors;
      try {
        for (const [n, len, cin, cout, k, d, padL, padR, slope, withRes] of cases) {
          const x = rand(n * len * cin, 3 + len), w = rand(k * cin * cout, 4 + k), bias = rand(cout, 5 + cout);
          const L = len + padL + padR - (k - 1) * d;
          const rs = rand(n * L * cout, 6 + L);
          const conv = new Conv1dWinogradGemm(w, k, cin, cout, bias, padL, padR, d, undefined, 'kio', tile, outer);
          expect(conv.plan.M).toBe(tile);
          expect(conv.outer?.M ?? 1).toBe(conv.q > 1 ? outer : 1);
          // a later instance from the transformed filters gives the same bytes
          const again = new Conv1dWinogradGemm(null, k, cin, cout, bias, padL, padR, d, conv.hostU, 'kio', tile, outer);
          const X = tf.tensor3d(x, [n, len, cin]);
          const R = withRes ? tf.tensor3d(rs, [n, L, cout]) : undefined;
          const y = conv.apply(X, slope, R);
          expect(y.shape).toEqual([n, L, cout]);
          const got = y.dataSync();
          const y2 = again.apply(X, slope, R);
          expect(Buffer.from(y2.dataSync().buffer).equals(Buffer.from(got.buffer))).toBe(true);
          tf.dispose(y2); again.dispose();
          let err2 = 0, ref2 = 0, worst = 0;
          for (let b = 0; b < n; b++) {
            for (let t = 0; t < L; t++) {
              for (let o = 0; o < cout; o++) {
                let acc = bias[o]!, mag = Math.abs(bias[o]!);
                for (let j = 0; j < k; j++) {
                  const s = t + j * d - padL;
                  if (s < 0 || s >= len) continue;
                  for (let i = 0; i < cin; i++) { const v = x[(b * len + s) * cin + i]! * w[(j * cin + i) * cout + o]!; acc += v; mag += Math.abs(v); }
                }
                if (slope !== null && acc < 0) { acc *= slope; mag *= slope; }
                if (withRes) acc += rs[(b * L + t) * cout + o]!;
                const e = Math.abs(got[(b * L + t) * cout + o]! - acc);
                err2 += e * e; ref2 += acc * acc;
                // the transforms' entries (≤ 8/3) and the 5-point sums: a few ulps of the magnitude per tap
                worst = Math.max(worst, e / (mag * 2 ** -23 * (k * cin + 8) + 1e-30));
              }
            }
          }
          expect(Math.sqrt(err2 / ref2)).toBeLessThan(2e-6);
          expect(worst).toBeLessThan(1);
          tf.dispose([X, y]); if (R) R.dispose();
          conv.dispose();
        }
        expect(tf.memory().numTensors).toBe(before);
      } finally { setFmaMode(mode); }
    });
  }

  it('refuses a residual of another shape and a slope outside [0, 1]', () => {
    const conv = new Conv1dWinogradGemm(rand(3 * 4 * 4, 1), 3, 4, 4, rand(4, 2), 1, 1, 1);
    const X = tf.zeros([1, 10, 4]) as tf.Tensor3D, R = tf.zeros([1, 9, 4]) as tf.Tensor3D;
    expect(() => conv.apply(X, null, R)).toThrow(/residual \(1, 9, 4\) does not match the output \(1, 10, 4\)/);
    expect(() => conv.apply(X, 2)).toThrow(/slope 2 outside/);
    tf.dispose([X, R]); conv.dispose();
  });
});
