/**
 * Weight upload for the DiT. Weights stay as host Float32Arrays in Params (outside the wasm heap); a module
 * turns them into tfjs tensors only while it runs. nn.Linear weights (out, in) are uploaded as they are and
 * transposed ON THE DEVICE to (in, out), so the product is a plain 2-D matMul (transpose-flagged matMul is
 * ~10× slower on tfjs-wasm) and no second host copy of the 2.9 GB model is ever made.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { Params } from '../params.js';
import { ditMatmulProgram, withMatmulProgram } from '../../layers/webgpu/matmul_program.js';
import { roundToHalf } from '../../layers/f16.js';
import { ditPrecision } from './precision.js';

export interface LinearW {
  /** (in, out) */
  wT: tf.Tensor2D;
  b: tf.Tensor1D | null;
}

export function uploadLinear(p: Params, name: string, inF: number, outF: number, bias = true): LinearW {
  const w = p.f32(`${name}.weight`, [outF, inF]);
  const wT = tf.tidy(() => tf.transpose(tf.tensor2d(w, [outF, inF])) as tf.Tensor2D);
  const b = bias ? (tf.tensor1d(p.f32(`${name}.bias`, [outF]))) : null;
  return { wT, b };
}

/** y = x Wᵀ + b over the last axis of x (any rank). */
export function linear(x: tf.Tensor, l: LinearW): tf.Tensor {
  return tf.tidy(() => {
    const [inF, outF] = l.wT.shape;
    const lead = x.shape.slice(0, -1);
    // src/dit/precision.ts: half-precision rounding points of fp16 autocast, when asked for (research)
    const half = ditPrecision() === 'f16-emulated';
    const r = half ? roundToHalf : (t: tf.Tensor) => t;
    // on webgpu, on the matMul program chosen for the DiT (layers/webgpu/matmul_program.ts; auto by default)
    let y: tf.Tensor = withMatmulProgram(ditMatmulProgram(), () => tf.matMul(r(x.reshape([-1, inF])) as tf.Tensor2D, r(l.wT) as tf.Tensor2D));
    if (l.b) y = tf.add(y, r(l.b));
    return r(y).reshape([...lead, outF]);
  });
}

export function disposeLinear(l: LinearW): void {
  l.wT.dispose();
  l.b?.dispose();
}
