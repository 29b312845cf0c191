/**
 * Which of tfjs-backend-webgpu's matMul programs the DiT linears run on. tfjs 4.22 picks one per call
 * (kernels/BatchMatMul_impl: MatMulReduceProgram for tiny outputs, MatMulSplitKProgram for few workgroups with a long
 * inner dimension, MatMulSmallOutputSizeProgram, else MatMulPackedProgram), or the one its flag
 * WEBGPU_MATMUL_PROGRAM_TYPE forces for every matMul. Here the choice is per call site: `withMatmulProgram` sets the
 * flag only while the wrapped ops are created (tfjs reads it synchronously when the kernel runs) and restores it.
 * MUCODEC_WEBGPU_MATMUL = auto (tfjs's own choice, the default) | packed | splitk | small | reduce chooses for the
 * DiT; bench/webgpu_kernels.ts measures each on the DiT's linear shapes.
 */
import * as tf from '@tensorflow/tfjs-core';

export const MATMUL_PROGRAMS = ['auto', 'packed', 'splitk', 'small', 'reduce'] as const;
export type MatmulProgram = (typeof MATMUL_PROGRAMS)[number];

/** tfjs-backend-webgpu's MatMulProgramType (webgpu_util.ts); -1 lets it choose */
const TYPE: Record<MatmulProgram, number> = { auto: -1, reduce: 0, splitk: 1, small: 2, packed: 3 };
const FLAG = 'WEBGPU_MATMUL_PROGRAM_TYPE';

export function parseMatmulProgram(v: string, what: string): MatmulProgram {
  const s = v.trim().toLowerCase() || 'auto';
  if (!(MATMUL_PROGRAMS as readonly string[]).includes(s)) throw new Error(`${what}="${v}" is not one of: ${MATMUL_PROGRAMS.join(', ')}`);
  return s as MatmulProgram;
}

let ditChoice: MatmulProgram | null = null;

/** the program the DiT linears use on webgpu: setDitMatmulProgram's, else MUCODEC_WEBGPU_MATMUL, else auto */
export function ditMatmulProgram(): MatmulProgram {
  return ditChoice ?? parseMatmulProgram(process.env.MUCODEC_WEBGPU_MATMUL ?? 'auto', 'MUCODEC_WEBGPU_MATMUL');
}

/** choose the DiT's matMul program in-process (null: back to MUCODEC_WEBGPU_MATMUL / auto); for the benchmarks */
export function setDitMatmulProgram(p: MatmulProgram | null): void {
  ditChoice = p;
}

/** run `fn` with tfjs-webgpu's matMul program forced to `p` (no-op off webgpu or for 'auto') */
export function withMatmulProgram<T>(p: MatmulProgram, fn: () => T): T {
  if (p === 'auto' || tf.getBackend() !== 'webgpu') return fn();
  const env = tf.env();
  const before = env.getNumber(FLAG);
  env.set(FLAG, TYPE[p]);
  try {
    return fn();
  } finally {
    env.set(FLAG, before);
  }
}
