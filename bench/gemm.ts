/**
 * Ceiling rows for the packed GEMM of src/simd/gemm.ts (FMA and SIMD128 paths) beside XNNPACK's tf.matMul on the
 * same shapes (bench/common.ts matMulCeiling): the DiT linears (4096 tokens × 1584 → 6336 / 1584) and the conformer
 * FFN (1024 × 1024 → 4096); and the same GEMM as the vocoder's conv1d (conv1dGemm, 'same' padding) on its resblock
 * shapes. Weights packed once, outside the timed region, as the model packs them at load.
 *
 *   part of `npm run bench -- dit` (DiT shapes), `-- encode` (conformer shape) and `-- vocoder` (conv1d shapes)
 */
import * as tf from '@tensorflow/tfjs-core';
import { conv1dGemm, gemm, packB } from '../src/simd/gemm.js';
import { relaxedSimdSupported } from '../src/simd/relaxed.js';
import { filler, type CeilingSpec } from './common.js';

export function gemmCeiling(m: number, k: number, n: number, fma: boolean, seed = 7): CeilingSpec {
  return {
    label: `gemm ${fma ? 'FMA' : 'SIMD128'} ${m}×${k} @ ${k}×${n}`,
    gflop: (2 * m * k * n) / 1e9,
    make: () => {
      const f = filler(seed);
      const a = tf.tensor2d(f(m * k, 1), [m, k]);
      const p = packB(f(k * n, 1 / Math.sqrt(k)), k, n, null);
      return { run: () => gemm(a, p, fma), dispose: () => { a.dispose(); p.packed.dispose(); } };
    },
  };
}

/** both paths where relaxed SIMD exists, SIMD128 only elsewhere */
export function gemmCeilings(m: number, k: number, n: number): CeilingSpec[] {
  return (relaxedSimdSupported() ? [true, false] : [false]).map((fma) => gemmCeiling(m, k, n, fma));
}

/** conv1dGemm k taps cin → cout on (1, len, cin), 'same' zero padding, FMA where relaxed SIMD exists */
export function convGemmCeiling(len: number, cin: number, cout: number, k: number, seed = 11): CeilingSpec {
  const fma = relaxedSimdSupported();
  return {
    label: `conv1dGemm ${fma ? 'FMA' : 'SIMD128'} k${k} ${cin}→${cout} on (1, ${len}, ${cin})`,
    gflop: (2 * len * cin * cout * k) / 1e9,
    make: () => {
      const f = filler(seed);
      const x = tf.tensor3d(f(len * cin, 1), [1, len, cin]);
      const p = packB(f(k * cin * cout, 1 / Math.sqrt(k * cin)), k * cin, cout, null);
      const pad = (k - 1) >> 1;
      return { run: () => conv1dGemm(x, p, k, 1, pad, k - 1 - pad, fma), dispose: () => { x.dispose(); p.packed.dispose(); } };
    },
  };
}
