/**
 * Scaled dot-product attention computed head by head with plain 2-D matMuls: tfjs-wasm runs batched or
 * transpose-flagged matMul ~10× slower than a 2-D matMul with an explicitly transposed operand. On the wasm backend
 * both products run on the packed GEMM of src/simd/gemm.ts (Kᵀ and V packed per head), faster than XNNPACK's matMul.
 */
import * as tf from '@tensorflow/tfjs-core';
import { gemm, gemmEnabled, packTensor } from '../src/simd/gemm.js';

export interface AttentionResult {
  /** (B, T, H·dh) heads concatenated */
  out: tf.Tensor3D;
  /** (B, H, Tq, Tk) softmax probabilities, when requested */
  probs?: tf.Tensor4D;
}

/**
 * q (B, Tq, H·dh), k/v (B, Tk, H·dh) → softmax(q kᵀ · scale) v per head.
 * Scaling is applied to the scores (PyTorch's `baddbmm(…, alpha=scale)` / `(q @ kᵀ) / √d` order of
 * operations differs only by rounding; callers that must match a specific order pass `scaleQuery`).
 */
export function multiHeadAttention(
  q: tf.Tensor3D, k: tf.Tensor3D, v: tf.Tensor3D, heads: number,
  opts: { scale?: number; scaleQuery?: boolean; returnProbs?: boolean; divideScores?: number } = {},
): AttentionResult {
  const [b, tq, d] = q.shape;
  const tk = k.shape[1];
  const dh = d / heads;
  const scale = opts.scale ?? 1 / Math.sqrt(dh);
  const probsAll: tf.Tensor2D[] = [];
  const packed = gemmEnabled();
  const mm = (x: tf.Tensor2D, y: tf.Tensor2D): tf.Tensor2D => (packed ? gemm(x, packTensor(y)) : tf.matMul(x, y));
  const out = tf.tidy(() => {
    // (B, T, H, dh) → (B, H, T, dh); K → (B, H, dh, Tk): materialised once, then every per-head slice is contiguous
    const qh = tf.transpose(q.reshape([b, tq, heads, dh]), [0, 2, 1, 3]);
    const kt = tf.transpose(k.reshape([b, tk, heads, dh]), [0, 2, 3, 1]);
    const vh = tf.transpose(v.reshape([b, tk, heads, dh]), [0, 2, 1, 3]);
    const rows: tf.Tensor[] = [];
    for (let bi = 0; bi < b; bi++) {
      const hs: tf.Tensor2D[] = [];
      for (let h = 0; h < heads; h++) {
        const r = tf.tidy((): tf.Tensor2D => {
          let qi = qh.slice([bi, h, 0, 0], [1, 1, tq, dh]).reshape([tq, dh]) as tf.Tensor2D;
          if (opts.scaleQuery) qi = tf.mul(qi, scale);
          const ki = kt.slice([bi, h, 0, 0], [1, 1, dh, tk]).reshape([dh, tk]) as tf.Tensor2D;
          const vi = vh.slice([bi, h, 0, 0], [1, 1, tk, dh]).reshape([tk, dh]) as tf.Tensor2D;
          let s: tf.Tensor2D = mm(qi, ki);
          if (opts.divideScores !== undefined) s = tf.div(s, opts.divideScores);
          else if (!opts.scaleQuery) s = tf.mul(s, scale);
          const p = tf.softmax(s) as tf.Tensor2D;
          if (opts.returnProbs) probsAll.push(tf.keep(p));
          return mm(p as tf.Tensor2D, vi);
        });
        hs.push(r);
      }
      rows.push(tf.concat(hs, 1)); // (Tq, H·dh)
    }
    return tf.stack(rows) as tf.Tensor3D;
  });
  if (!opts.returnProbs) return { out };
  const probs = tf.tidy(() => tf.stack(probsAll).reshape([b, heads, tq, tk]) as tf.Tensor4D);
  probsAll.forEach((p) => p.dispose());
  return { out, probs };
}
