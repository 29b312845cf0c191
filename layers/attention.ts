/**
 * Scaled dot-product attention. The plain form (the reference, and the only one on wasm/cpu/tfjs-node) is computed
 * head by head with plain 2-D matMuls: tfjs-wasm runs batched or transpose-flagged matMul ~10× slower than a 2-D
 * matMul with an explicitly transposed operand. On webgpu the fused WGSL kernel (layers/webgpu/attention_kernel.ts:
 * online softmax over key tiles, no (Tq, Tk) scores) runs instead unless MUCODEC_ATTENTION=plain or the shapes do
 * not suit it (the probabilities, asked for only by the parity stages, are then computed by the plain form beside it).
 * On the wasm backend the fused form is src/simd/attention.ts (per head and block of query rows: scores in a scratch
 * that stays in cache, a SIMD exp, the product with V on the packed GEMM's micro-kernel); the plain form's two
 * products run on the packed GEMM of src/simd/gemm.ts (Kᵀ and V packed per head), faster than XNNPACK's matMul.
 */
import * as tf from '@tensorflow/tfjs-core';
import { gemm, gemmEnabled, packTensor } from '../src/simd/gemm.js';
import { wasmAttention, wasmAttentionUnsupported } from '../src/simd/attention.js';
import { fusedAttention, fusedAttentionUnsupported, type ScaleMode } from './webgpu/attention_kernel.js';

export type AttentionImpl = 'fused' | 'plain';

/** MUCODEC_ATTENTION = fused (default: the fused kernel where the backend has one: webgpu, wasm) | plain (the reference form) */
export function requestedAttention(): AttentionImpl {
  const v = (process.env.MUCODEC_ATTENTION ?? 'fused').trim().toLowerCase() || 'fused';
  if (v !== 'fused' && v !== 'plain') throw new Error(`MUCODEC_ATTENTION="${v}" is not one of: fused, plain`);
  return v;
}

const counts: Record<AttentionImpl, number> = { fused: 0, plain: 0 };

/** multiHeadAttention calls since start, by the form that computed the output (for the tests) */
export function attentionCalls(): Record<AttentionImpl, number> {
  return { ...counts };
}

/** which form multiHeadAttention takes for these inputs on the current backend (without the probabilities) */
export function attentionImplFor(q: tf.Tensor3D, k: tf.Tensor3D, v: tf.Tensor3D, heads: number): AttentionImpl {
  if (requestedAttention() === 'plain') return 'plain';
  const backend = tf.getBackend();
  if (backend === 'wasm') return wasmAttentionUnsupported(q, k, v, heads) === null ? 'fused' : 'plain';
  if (backend !== 'webgpu') return 'plain';
  return fusedAttentionUnsupported(q, k, v, heads) === null ? 'fused' : 'plain';
}

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
  opts: {
    scale?: number; scaleQuery?: boolean; returnProbs?: boolean; divideScores?: number; impl?: AttentionImpl;
    /** rounding applied to the scores, the probabilities and the output (layers/f16.ts; the plain form only) */
    round?: (t: tf.Tensor) => tf.Tensor;
  } = {},
): AttentionResult {
  const [b, tq, d] = q.shape;
  const tk = k.shape[1];
  const dh = d / heads;
  const scale = opts.scale ?? 1 / Math.sqrt(dh);
  const impl = opts.round ? 'plain' : opts.impl ?? attentionImplFor(q, k, v, heads);
  counts[impl]++;
  if (impl === 'plain') return plainAttention(q, k, v, heads, scale, opts);
  const scaleMode: ScaleMode = opts.divideScores !== undefined ? 'divide' : opts.scaleQuery ? 'query' : 'scores';
  const out = tf.getBackend() === 'wasm' ? wasmFused(q, k, v, heads, scaleMode, opts.divideScores ?? scale)
    : fusedAttention(q, k, v, { heads, scaleMode, scale: opts.divideScores ?? scale });
  if (!opts.returnProbs) return { out };
  // the probabilities (parity intermediates only) come from the plain form; the output stays the fused kernel's
  const ref = plainAttention(q, k, v, heads, scale, opts);
  ref.out.dispose();
  return { out, probs: ref.probs };
}

/** the wasm fused kernel (src/simd/attention.ts) with the scaling the caller asked for */
function wasmFused(q: tf.Tensor3D, k: tf.Tensor3D, v: tf.Tensor3D, heads: number, mode: ScaleMode, scale: number): tf.Tensor3D {
  if (mode === 'divide') return wasmAttention(q, k, v, heads, { mode: 'div', by: scale });
  if (mode === 'scores') return wasmAttention(q, k, v, heads, { mode: 'mul', by: scale });
  return tf.tidy(() => wasmAttention(tf.mul(q, scale) as tf.Tensor3D, k, v, heads, { mode: 'mul', by: 1 }));
}

/** the reference form: per head, scores = q kᵀ (scaled as asked), softmax, times v */
function plainAttention(
  q: tf.Tensor3D, k: tf.Tensor3D, v: tf.Tensor3D, heads: number, scale: number,
  opts: { scaleQuery?: boolean; returnProbs?: boolean; divideScores?: number; round?: (t: tf.Tensor) => tf.Tensor },
): AttentionResult {
  const rnd = opts.round ?? ((t: tf.Tensor) => t);
  const [b, tq, d] = q.shape;
  const tk = k.shape[1];
  const dh = d / heads;
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
          const p = rnd(tf.softmax(rnd(s))) as tf.Tensor2D;
          if (opts.returnProbs) probsAll.push(tf.keep(p));
          return rnd(mm(p as tf.Tensor2D, vi)) as tf.Tensor2D;
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
