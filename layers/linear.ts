import * as tf from '@tensorflow/tfjs-core';
import type { Params } from '../src/params.js';
import { linearWeightT } from './host.js';
import { gemm, gemmEnabled, packB, type PackedB } from '../src/simd/gemm.js';
import { toFloat32 } from '../src/hosttensor.js';

/**
 * nn.Linear: y = x Wᵀ + b over the last axis. The weight is transposed once on the host to (in, out) so the
 * product is a plain 2-D matMul (transpose-flagged matMul is ~10× slower on tfjs-wasm). On the wasm backend the
 * weight and bias are packed instead for the FMA/SIMD128 GEMM of src/simd/gemm.ts (faster than XNNPACK's matMul).
 */
export class Linear {
  readonly wT: tf.Tensor2D | null = null;
  readonly b: tf.Tensor1D | null = null;
  readonly packed: PackedB | null = null;
  readonly inFeatures: number;
  readonly outFeatures: number;

  constructor(p: Params, name: string, inFeatures: number, outFeatures: number, bias = true) {
    if (gemmEnabled()) {
      const w = p.get(`${name}.weight`, [outFeatures, inFeatures]);
      const b = bias ? p.get(`${name}.bias`, [outFeatures]) : null;
      this.packed = packB(toFloat32(w), inFeatures, outFeatures, b ? toFloat32(b) : null, true);
      tf.keep(this.packed.packed);
    } else {
      const w = linearWeightT(p.get(`${name}.weight`, [outFeatures, inFeatures]));
      this.wT = tf.tensor2d(w.data, [inFeatures, outFeatures]);
      this.b = bias ? (p.tensor(`${name}.bias`, [outFeatures]) as tf.Tensor1D) : null;
    }
    this.inFeatures = inFeatures;
    this.outFeatures = outFeatures;
  }

  apply(x: tf.Tensor): tf.Tensor {
    return tf.tidy(() => {
      const lead = x.shape.slice(0, -1);
      const x2 = x.reshape([-1, this.inFeatures]) as tf.Tensor2D;
      if (this.packed) return gemm(x2, this.packed).reshape([...lead, this.outFeatures]);
      let y: tf.Tensor = tf.matMul(x2, this.wT!);
      if (this.b) y = tf.add(y, this.b);
      return y.reshape([...lead, this.outFeatures]);
    });
  }

  dispose(): void {
    this.wT?.dispose();
    this.b?.dispose();
    this.packed?.packed.dispose();
  }
}
