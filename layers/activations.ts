import * as tf from '@tensorflow/tfjs-core';

/** SiLU / swish: x · σ(x) */
export function silu(x: tf.Tensor): tf.Tensor {
  return tf.tidy(() => tf.mul(x, tf.sigmoid(x)));
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
