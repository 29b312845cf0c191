import * as tf from '@tensorflow/tfjs-core';

/** LayerNorm over the last axis (biased variance, like PyTorch); gamma/beta optional (elementwise_affine). */
export function layerNorm(x: tf.Tensor, eps: number, gamma?: tf.Tensor | null, beta?: tf.Tensor | null): tf.Tensor {
  return tf.tidy(() => {
    const axis = x.rank - 1;
    const mean = tf.mean(x, axis, true);
    const xc = tf.sub(x, mean);
    const variance = tf.mean(tf.square(xc), axis, true);
    let y = tf.mul(xc, tf.rsqrt(tf.add(variance, eps)));
    if (gamma) y = tf.mul(y, gamma);
    if (beta) y = tf.add(y, beta);
    return y;
  });
}

/**
 * GroupNorm on a channels-LAST tensor (N, ..., C): statistics over every spatial position and the C/groups
 * channels of each group (biased variance), then per-channel affine.
 */
export function groupNormChannelsLast(x: tf.Tensor, groups: number, eps: number, gamma: tf.Tensor, beta: tf.Tensor): tf.Tensor {
  return tf.tidy(() => {
    const shape = x.shape;
    const n = shape[0]!;
    const c = shape[shape.length - 1]!;
    if (c % groups) throw new Error(`groupNorm: ${c} channels are not divisible into ${groups} groups`);
    const g = x.reshape([n, -1, groups, c / groups]);
    const mean = tf.mean(g, [1, 3], true);
    const xc = tf.sub(g, mean);
    const variance = tf.mean(tf.square(xc), [1, 3], true);
    const y = tf.mul(xc, tf.rsqrt(tf.add(variance, eps))).reshape(shape);
    return tf.add(tf.mul(y, gamma), beta);
  });
}

/**
 * BatchNorm in eval mode on a channels-LAST tensor: (x − running_mean) / √(running_var + eps) · weight + bias.
 * The per-channel scale/shift are folded once by `foldBatchNorm` (float64 on the host).
 */
export function foldBatchNorm(
  mean: Float32Array, variance: Float32Array, weight: Float32Array, bias: Float32Array, eps: number,
): { scale: Float32Array; shift: Float32Array } {
  const c = mean.length;
  const scale = new Float32Array(c), shift = new Float32Array(c);
  for (let i = 0; i < c; i++) {
    const s = weight[i]! / Math.sqrt(variance[i]! + eps);
    scale[i] = s;
    shift[i] = bias[i]! - mean[i]! * s;
  }
  return { scale, shift };
}
