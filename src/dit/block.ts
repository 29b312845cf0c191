/**
 * models/attention.py BasicTransformerBlock, as MuCodec builds it: norm_type ada_norm_single, self-attention
 * only (no attn2), attention_bias, LayerNorm without affine (eps norm_eps), FeedForward GELU(tanh) ×4.
 *
 *   shift_msa, scale_msa, gate_msa, shift_mlp, scale_mlp, gate_mlp = scale_shift_table[None] + t.reshape(B, 6, D)
 *   x = x + gate_msa · attn1(norm1(x)·(1 + scale_msa) + shift_msa)
 *   x = x + gate_mlp · ff(norm2(x)·(1 + scale_mlp) + shift_mlp)
 *
 * attn1 = diffusers Attention with the classic AttnProcessor (torch 1.13): softmax(q kᵀ · d^-0.5) v, computed
 * head by head with plain 2-D matMuls (layers/attention.ts).
 */
import * as tf from '@tensorflow/tfjs-core';
import type { Params } from '../params.js';
import { attentionImplFor, multiHeadAttention } from '../../layers/attention.js';

type AttentionOpts = NonNullable<Parameters<typeof multiHeadAttention>[4]>;
import { layerNorm } from '../../layers/norm.js';
import { bindingLimit } from '../device.js';
import { disposeLinear, linear, uploadLinear, type LinearW } from './weights.js';
import { ditPrecision } from './precision.js';
import { roundToHalf } from '../../layers/f16.js';

export interface BlockWeights {
  /** (6, D) */
  scaleShiftTable: tf.Tensor2D;
  toQ: LinearW; toK: LinearW; toV: LinearW; toOut: LinearW;
  ff0: LinearW; ff2: LinearW;
}

/**
 * GELU, tanh approximation (diffusers GELU(approximate="tanh")), evaluated as x·σ(2u) with
 * u = √(2/π)(x + 0.044715x³): identical to 0.5x(1 + tanh u) mathematically, within float32 rounding
 * numerically, and ~5× faster on tfjs-wasm (its sigmoid is vectorised, its tanh and pow are not).
 */
export function geluTanhFast(x: tf.Tensor): tf.Tensor {
  const k = 2 * Math.sqrt(2 / Math.PI);
  return tf.tidy(() => tf.mul(x, tf.sigmoid(tf.mul(x, tf.add(tf.mul(tf.square(x), k * 0.044715), k)))));
}

/** Rows of the feed-forward processed at once: bounds the (rows, 4D) GELU temporaries (identical math). */
const FF_CHUNK_ROWS = 2048;

/**
 * multiHeadAttention with the queries split into row chunks when one head's (Tq, Tk) score block would exceed the
 * binding limit (src/device.ts; unbounded on wasm, so one call there): each query row's softmax sees every key in
 * every chunk, so the result is the same rows.
 */
function attentionChunked(q: tf.Tensor3D, k: tf.Tensor3D, v: tf.Tensor3D, heads: number, opts: AttentionOpts): tf.Tensor3D {
  const [b, tq, d] = q.shape;
  // the fused kernel never materialises the scores: nothing to split (it binds only tensors of q's, k's, v's size)
  const fused = !opts.round && attentionImplFor(q, k, v, heads) === 'fused';
  const rows = fused ? tq : Math.max(1, Math.floor(bindingLimit() / (4 * k.shape[1])));
  if (rows >= tq) return multiHeadAttention(q, k, v, heads, opts).out;
  const parts: tf.Tensor3D[] = [];
  for (let r0 = 0; r0 < tq; r0 += rows) {
    parts.push(tf.tidy(() => multiHeadAttention(q.slice([0, r0, 0], [b, Math.min(rows, tq - r0), d]), k, v, heads, opts).out));
  }
  try {
    return tf.concat(parts, 1);
  } finally {
    for (const p of parts) p.dispose();
  }
}

export class BasicTransformerBlock {
  readonly ffDim: number;

  constructor(
    readonly p: Params,
    readonly dim: number,
    readonly heads: number,
    readonly headDim: number,
    readonly eps = 1e-6,
  ) {
    if (heads * headDim !== dim) throw new Error(`BasicTransformerBlock: ${heads} heads × ${headDim} != dim ${dim}`);
    this.ffDim = 4 * dim;
    p.get('scale_shift_table', [6, dim]);
    for (const n of ['to_q', 'to_k', 'to_v', 'to_out.0']) p.get(`attn1.${n}.weight`, [dim, dim]);
    p.get('ff.net.0.proj.weight', [this.ffDim, dim]);
    p.get('ff.net.2.weight', [dim, this.ffDim]);
  }

  /** Upload this block's weights (≈ 12·D² floats; 120 MB at D = 1584). Dispose with BasicTransformerBlock.dispose. */
  upload(): BlockWeights {
    const d = this.dim, p = this.p;
    return {
      scaleShiftTable: tf.tensor2d(p.f32('scale_shift_table', [6, d]), [6, d]),
      toQ: uploadLinear(p, 'attn1.to_q', d, d),
      toK: uploadLinear(p, 'attn1.to_k', d, d),
      toV: uploadLinear(p, 'attn1.to_v', d, d),
      toOut: uploadLinear(p, 'attn1.to_out.0', d, d),
      ff0: uploadLinear(p, 'ff.net.0.proj', d, this.ffDim),
      ff2: uploadLinear(p, 'ff.net.2', this.ffDim, d),
    };
  }

  static dispose(w: BlockWeights): void {
    w.scaleShiftTable.dispose();
    for (const l of [w.toQ, w.toK, w.toV, w.toOut, w.ff0, w.ff2]) disposeLinear(l);
  }

  /**
   * hidden (B, N, D), timestep = the adaLN-single modulation (B, 6D) → (B, N, D).
   * Without `w`, the weights are uploaded for this call and disposed after it.
   */
  apply(hidden: tf.Tensor3D, timestep: tf.Tensor2D, w?: BlockWeights): tf.Tensor3D {
    const own = w ?? this.upload();
    try {
      const [b, n, d] = hidden.shape;
      if (d !== this.dim) throw new Error(`BasicTransformerBlock: input width ${d} != dim ${this.dim}`);
      if (timestep.shape[0] !== b || timestep.shape[1] !== 6 * d) {
        throw new Error(`BasicTransformerBlock: timestep ${JSON.stringify(timestep.shape)} does not match batch ${b} × 6·${d}`);
      }
      // (B, 6, D) → six (B, 1, D)
      const mods = tf.tidy(() => tf.split(tf.add(own.scaleShiftTable.expandDims(0), timestep.reshape([b, 6, d])), 6, 1));
      const [shiftMsa, scaleMsa, gateMsa, shiftMlp, scaleMlp, gateMlp] = mods as [tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor];
      try {
        // 1. self-attention
        const h1 = tf.tidy(() => {
          const nh = tf.add(tf.mul(layerNorm(hidden, this.eps), tf.add(scaleMsa, 1)), shiftMsa);
          const q = linear(nh, own.toQ) as tf.Tensor3D;
          const k = linear(nh, own.toK) as tf.Tensor3D;
          const v = linear(nh, own.toV) as tf.Tensor3D;
          nh.dispose();
          // scaling q (T·d values) instead of the scores (T² per head): same math, one pass less over T²
          const out = attentionChunked(q, k, v, this.heads, ditPrecision() === 'f16-emulated'
            // fp16 autocast: baddbmm(q, kᵀ, alpha = scale) in half, then softmax in float32 cast back (src/dit/precision.ts)
            ? { scale: this.headDim ** -0.5, round: roundToHalf }
            : { scale: this.headDim ** -0.5, scaleQuery: true });
          q.dispose(); k.dispose(); v.dispose();
          const a = linear(out, own.toOut);
          out.dispose();
          return tf.add(tf.mul(gateMsa, a), hidden) as tf.Tensor3D;
        });
        // 2. feed-forward, row chunks
        const out = tf.tidy(() => {
          const nh = tf.add(tf.mul(layerNorm(h1, this.eps), tf.add(scaleMlp, 1)), shiftMlp).reshape([b * n, d]) as tf.Tensor2D;
          const rows = b * n;
          // row chunks of at most FF_CHUNK_ROWS, and with the (rows, 4D) hidden under the binding limit
          const chunk = Math.max(1, Math.min(FF_CHUNK_ROWS, Math.floor(bindingLimit() / (4 * this.ffDim))));
          const parts: tf.Tensor[] = [];
          for (let r0 = 0; r0 < rows; r0 += chunk) {
            const r = Math.min(chunk, rows - r0);
            parts.push(tf.tidy(() => {
              const x = rows <= chunk ? nh : nh.slice([r0, 0], [r, d]);
              const hid = linear(x, own.ff0);
              const g = ditPrecision() === 'f16-emulated' ? roundToHalf(geluTanhFast(hid)) : geluTanhFast(hid);
              hid.dispose();
              return linear(g, own.ff2);
            }));
          }
          const ff = (parts.length === 1 ? parts[0]! : tf.concat(parts, 0)).reshape([b, n, d]);
          return tf.add(tf.mul(gateMlp, ff), h1) as tf.Tensor3D;
        });
        h1.dispose();
        return out;
      } finally {
        for (const m of mods) m.dispose();
      }
    } finally {
      if (!w) BasicTransformerBlock.dispose(own);
    }
  }
}
