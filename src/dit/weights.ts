/**
 * Weight upload for the DiT. Weights stay as host Float32Arrays in Params (outside the wasm heap); a module
 * turns them into tfjs tensors only while it runs. nn.Linear weights (out, in) are uploaded as they are and
 * transposed ON THE DEVICE to (in, out), so the product is a plain 2-D matMul (transpose-flagged matMul is
 * ~10× slower on tfjs-wasm) and no second host copy of the 2.9 GB model is ever made. On the wasm backend the weights are
 * instead packed on the host (one linear at a time) for the FMA/SIMD128 GEMM of src/simd/gemm.ts.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { Params } from '../params.js';
import { gemm, gemmEnabled, packB, type PackedB } from '../simd/gemm.js';

export interface LinearW {
  /** (in, out); null when the weight is packed for src/simd/gemm.ts instead */
  wT: tf.Tensor2D | null;
  b: tf.Tensor1D | null;
  /** weight and bias packed for the wasm GEMM (src/simd/gemm.ts), packed on the host from the (out, in) weight */
  packed?: PackedB;
}

export function uploadLinear(p: Params, name: string, inF: number, outF: number, bias = true): LinearW {
  const w = p.f32(`${name}.weight`, [outF, inF]);
  if (gemmEnabled()) {
    const packed = packB(w, inF, outF, bias ? p.f32(`${name}.bias`, [outF]) : null, true);
    tf.keep(packed.packed);
    return { wT: null, b: null, packed };
  }
  const wT = tf.tidy(() => tf.transpose(tf.tensor2d(w, [outF, inF])) as tf.Tensor2D);
  const b = bias ? (tf.tensor1d(p.f32(`${name}.bias`, [outF]))) : null;
  return { wT, b };
}

/** y = x Wᵀ + b over the last axis of x (any rank). */
export function linear(x: tf.Tensor, l: LinearW): tf.Tensor {
  return tf.tidy(() => {
    if (l.packed) return gemm(x.reshape([-1, l.packed.k]) as tf.Tensor2D, l.packed).reshape([...x.shape.slice(0, -1), l.packed.n]);
    const [inF, outF] = l.wT!.shape;
    const lead = x.shape.slice(0, -1);
    let y: tf.Tensor = tf.matMul(x.reshape([-1, inF]) as tf.Tensor2D, l.wT!);
    if (l.b) y = tf.add(y, l.b);
    return y.reshape([...lead, outF]);
  });
}

export function disposeLinear(l: LinearW): void {
  l.wT?.dispose();
  l.b?.dispose();
  l.packed?.packed.dispose();
}
