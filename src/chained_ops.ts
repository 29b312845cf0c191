/**
 * Chained tensor methods (`x.reshape(…)`, `x.slice(…)`) for every runtime.
 *
 * tfjs-core registers them through ESM-only files without extensions, which Node's own ESM loader cannot
 * import (vitest's loader can). This module defines each chained method as a call of the functional op when
 * it is missing, so compiled code (`npx mucodec …`) and tests behave the same. The types come from tfjs-core's
 * own declarations (type-only import below).
 */
import * as tf from '@tensorflow/tfjs-core';
import type {} from '@tensorflow/tfjs-core/dist/public/chained_ops/register_all_chained_ops.js';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type AnyFn = (...a: any[]) => unknown;
const ops = tf as unknown as Record<string, AnyFn>;
const proto = tf.Tensor.prototype as unknown as Record<string, AnyFn>;

const SAME_NAME = [
  'abs', 'acos', 'acosh', 'add', 'all', 'any', 'argMax', 'argMin', 'asin', 'asinh', 'atan', 'atan2', 'atanh',
  'avgPool', 'batchToSpaceND', 'batchNorm', 'broadcastTo', 'cast', 'ceil', 'clipByValue', 'conv1d', 'conv2d',
  'conv2dTranspose', 'cos', 'cosh', 'cumprod', 'cumsum', 'depthToSpace', 'depthwiseConv2d', 'dilation2d', 'div',
  'divNoNan', 'dot', 'elu', 'equal', 'erf', 'euclideanNorm', 'exp', 'expandDims', 'expm1', 'fft', 'floor',
  'floorDiv', 'gather', 'greater', 'greaterEqual', 'ifft', 'irfft', 'isFinite', 'isInf', 'isNaN', 'leakyRelu',
  'less', 'lessEqual', 'localResponseNormalization', 'log', 'log1p', 'logSigmoid', 'logSoftmax', 'logSumExp',
  'logicalAnd', 'logicalNot', 'logicalOr', 'logicalXor', 'matMul', 'max', 'maxPool', 'maximum', 'mean', 'min',
  'minimum', 'mirrorPad', 'mod', 'mul', 'neg', 'norm', 'notEqual', 'oneHot', 'onesLike', 'pad', 'pool', 'pow',
  'prelu', 'prod', 'reciprocal', 'relu', 'relu6', 'reshape', 'resizeBilinear', 'resizeNearestNeighbor', 'reverse',
  'rfft', 'round', 'rsqrt', 'selu', 'separableConv2d', 'sigmoid', 'sign', 'sin', 'sinh', 'slice', 'softmax',
  'softplus', 'spaceToBatchND', 'split', 'sqrt', 'square', 'squaredDifference', 'squeeze', 'step', 'stridedSlice',
  'sub', 'sum', 'tan', 'tanh', 'tile', 'topk', 'transpose', 'unique', 'unsortedSegmentSum', 'unstack', 'zerosLike',
];

function define(name: string, fn: AnyFn): void {
  if (typeof proto[name] !== 'function') {
    Object.defineProperty(proto, name, { value: fn, writable: true, configurable: true });
  }
}

for (const name of SAME_NAME) {
  const op = ops[name];
  if (typeof op === 'function') define(name, function (this: tf.Tensor, ...a: unknown[]) { return op(this, ...a); });
}
define('as1D', function (this: tf.Tensor) { return tf.reshape(this, [this.size]); });
define('as2D', function (this: tf.Tensor, r: number, c: number) { return tf.reshape(this, [r, c]); });
define('as3D', function (this: tf.Tensor, r: number, c: number, d: number) { return tf.reshape(this, [r, c, d]); });
define('as4D', function (this: tf.Tensor, r: number, c: number, d: number, d2: number) { return tf.reshape(this, [r, c, d, d2]); });
define('as5D', function (this: tf.Tensor, r: number, c: number, d: number, d2: number, d3: number) { return tf.reshape(this, [r, c, d, d2, d3]); });
define('asScalar', function (this: tf.Tensor) { return tf.reshape(this, []); });
define('asType', function (this: tf.Tensor, dtype: tf.DataType) { return tf.cast(this, dtype); });
define('toFloat', function (this: tf.Tensor) { return tf.cast(this, 'float32'); });
define('toInt', function (this: tf.Tensor) { return tf.cast(this, 'int32'); });
define('toBool', function (this: tf.Tensor) { return tf.cast(this, 'bool'); });
define('flatten', function (this: tf.Tensor) { return tf.reshape(this, [this.size]); });
define('reshapeAs', function (this: tf.Tensor, x: tf.Tensor) { return tf.reshape(this, x.shape); });
define('concat', function (this: tf.Tensor, x: tf.Tensor | tf.Tensor[], axis?: number) {
  return tf.concat([this, ...(Array.isArray(x) ? x : [x])], axis);
});
define('stack', function (this: tf.Tensor, x: tf.Tensor | tf.Tensor[], axis?: number) {
  return tf.stack([this, ...(Array.isArray(x) ? x : [x])], axis);
});
define('where', function (this: tf.Tensor, cond: tf.Tensor, x: tf.Tensor) { return tf.where(cond, this, x); });
