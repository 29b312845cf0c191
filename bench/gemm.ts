/**
 * Ceiling rows for the packed GEMM of src/simd/gemm.ts (FMA and SIMD128 paths) beside XNNPACK's tf.matMul on the
 * same shapes (bench/common.ts matMulCeiling): the DiT linears (4096 tokens × 1584 → 6336 / 1584) and the conformer
 * FFN (1024 × 1024 → 4096). Weights packed once, outside the timed region, as the model packs them at load.
 *
 *   part of `npm run bench -- dit` (DiT shapes) and `npm run bench -- encode` (conformer shape)
 */
import * as tf from '@tensorflow/tfjs-core';
import { gemm, packB } from '../src/simd/gemm.js';
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
