/**
 * adaLN-single time conditioning: models/transformer_2d_flow.py AdaLayerNormSingleFlow +
 * PixArtAlphaCombinedFlowEmbeddings (use_additional_conditions False, so resolution / aspect ratio are unused).
 */
import * as tf from '@tensorflow/tfjs-core';
import type { Params } from '../params.js';
import { silu } from '../../layers/activations.js';
import { disposeLinear, linear, uploadLinear, type LinearW } from './weights.js';

/**
 * PixArtAlphaCombinedFlowEmbeddings.timestep_embedding: t is the raw fractional flow time (no ×1000 by the
 * caller); freqs_k = exp(−ln(10000)·k/half), args = t·freqs·1000, embedding = [cos(args), sin(args)] (cos
 * FIRST). Evaluated in float32 in upstream's operation order. Returns (N, size) row-major.
 */
export function flowTimestepSinusoid(t: ArrayLike<number>, size = 512, maxPeriod = 10000, scale = 1000): Float32Array {
  const f = Math.fround;
  const half = Math.floor(size / 2);
  const c = f(-Math.log(maxPeriod));
  const freqs = new Float32Array(half);
  for (let k = 0; k < half; k++) freqs[k] = f(Math.exp(f(f(c * k) / half)));
  const out = new Float32Array(t.length * size);
  for (let n = 0; n < t.length; n++) {
    const tn = f(t[n]!);
    for (let k = 0; k < half; k++) {
      const a = f(f(tn * freqs[k]!) * scale);
      out[n * size + k] = Math.cos(a);
      out[n * size + half + k] = Math.sin(a);
    }
    // size odd → a zero column (never for flow_t_size 512); Float32Array is already zero there
  }
  return out;
}

export interface AdaLNSingleWeights {
  linear1: LinearW;
  linear2: LinearW;
  linear: LinearW;
}

/** AdaLayerNormSingleFlow: t (N,) → modulation (N, 6D) = Linear(SiLU(emb)), embedded_timestep emb (N, D). */
export class AdaLayerNormSingleFlow {
  constructor(readonly p: Params, readonly dim: number, readonly flowTSize = 512) {
    // validate names/shapes at construction so a bad checkpoint fails before any compute
    p.get('emb.timestep_embedder.linear_1.weight', [dim, flowTSize]);
    p.get('emb.timestep_embedder.linear_2.weight', [dim, dim]);
    p.get('linear.weight', [6 * dim, dim]);
  }

  upload(): AdaLNSingleWeights {
    const d = this.dim;
    return {
      linear1: uploadLinear(this.p, 'emb.timestep_embedder.linear_1', this.flowTSize, d),
      linear2: uploadLinear(this.p, 'emb.timestep_embedder.linear_2', d, d),
      linear: uploadLinear(this.p, 'linear', d, 6 * d),
    };
  }

  static dispose(w: AdaLNSingleWeights): void {
    disposeLinear(w.linear1); disposeLinear(w.linear2); disposeLinear(w.linear);
  }

  apply(t: ArrayLike<number>, w?: AdaLNSingleWeights): { modulation: tf.Tensor2D; embedded: tf.Tensor2D } {
    const own = w ?? this.upload();
    try {
      const sin = tf.tensor2d(flowTimestepSinusoid(t, this.flowTSize), [t.length, this.flowTSize]);
      const embedded = tf.tidy(() => linear(silu(linear(sin, own.linear1)), own.linear2) as tf.Tensor2D);
      sin.dispose();
      const modulation = tf.tidy(() => linear(silu(embedded), own.linear) as tf.Tensor2D);
      return { modulation, embedded };
    } finally {
      if (!w) AdaLayerNormSingleFlow.dispose(own);
    }
  }
}
