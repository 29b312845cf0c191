import * as tf from '@tensorflow/tfjs-core';

/** SiLU / swish: x · σ(x) */
export function silu(x: tf.Tensor): tf.Tensor {
  return tf.tidy(() => tf.mul(x, tf.sigmoid(x)));
}

/** GELU, tanh approximation (PyTorch approximate='tanh'): 0.5x(1 + tanh(√(2/π)(x + 0.044715x³))) */
export function geluTanh(x: tf.Tensor): tf.Tensor {
  return tf.tidy(() => {
    const inner = tf.mul(tf.add(x, tf.mul(tf.pow(x, 3), 0.044715)), Math.sqrt(2 / Math.PI));
    return tf.mul(tf.mul(x, 0.5), tf.add(tf.tanh(inner), 1));
  });
}

/** Exact GELU (PyTorch default): 0.5x(1 + erf(x/√2)) */
export function geluErf(x: tf.Tensor): tf.Tensor {
  return tf.tidy(() => tf.mul(tf.mul(x, 0.5), tf.add(tf.erf(tf.mul(x, Math.SQRT1_2)), 1)));
}

export function leakyRelu(x: tf.Tensor, slope: number): tf.Tensor {
  return tf.leakyRelu(x, slope);
}

/** GLU over `axis`: first half · σ(second half) */
export function glu(x: tf.Tensor, axis: number): tf.Tensor {
  return tf.tidy(() => {
    const [a, b] = tf.split(x, 2, axis);
    return tf.mul(a!, tf.sigmoid(b!));
  });
}
