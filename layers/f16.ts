/**
 * Half-precision rounding emulated with float32 tfjs ops, on any backend: `roundToHalf(x)` is x rounded to the
 * nearest IEEE-754 binary16 value, returned as float32 (tfjs 4.22 has no float16 dtype). It places the rounding points
 * of a half-precision computation in a float32 one, to MEASURE that computation's error; it is not faster.
 *
 *  - normal range (2^-14 ≤ |x| < 65520): Veltkamp's split c = x·(2^13 + 1), hi = c − (c − x) keeps the 11 leading
 *    significant bits of a float32 (24 − 13), rounded to nearest (Dekker 1971); exact ties may round away from even;
 *  - subnormal range (|x| < 2^-14): round(x · 2^24) · 2^-24, multiples of binary16's smallest step (tfjs rounds half
 *    to even);
 *  - |x| ≥ 65520 (halfway above the largest binary16, 65504): ±Infinity, as a cast to half overflows.
 * Each step is one float32 op per kernel, so no backend can fuse c − (c − x) away.
 */
import * as tf from '@tensorflow/tfjs-core';

const SPLIT = 2 ** 13 + 1;
const MIN_NORMAL = 2 ** -14;
const OVERFLOW = 65520;

export function roundToHalf(x: tf.Tensor): tf.Tensor {
  return tf.tidy(() => {
    const c = tf.mul(x, SPLIT);
    const hi = tf.sub(c, tf.sub(c, x));
    const ax = tf.abs(x);
    const sub = tf.mul(tf.round(tf.mul(x, 2 ** 24)), 2 ** -24);
    const r = tf.where(tf.less(ax, MIN_NORMAL), sub, hi);
    return tf.where(tf.greaterEqual(ax, OVERFLOW), tf.mul(tf.sign(x), Infinity), r);
  });
}
