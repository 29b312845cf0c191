/**
 * Convolutions with PyTorch semantics (zero padding given per side, stride, dilation, groups) on
 * channels-LAST tensors — tfjs kernels are NHWC / NWC. Modules keep PyTorch's NCHW / NCT at their
 * boundaries and transpose once inside; filters are re-laid out once on the host (layers/host.ts).
 */
import * as tf from '@tensorflow/tfjs-core';
import type { Params } from '../src/params.js';
import { conv1dFilter, conv2dFilter, convTranspose1dFilter } from './host.js';
import { shapeStr } from '../src/hosttensor.js';

export type Pad2d = [top: number, bottom: number, left: number, right: number];

/** nn.Conv2d on NHWC input. */
export class Conv2d {
  readonly filter: tf.Tensor4D;
  readonly bias: tf.Tensor1D | null;
  readonly outChannels: number;
  readonly inChannels: number;

  constructor(
    p: Params, name: string,
    readonly opts: { stride?: number | [number, number]; padding?: number | Pad2d; bias?: boolean } = {},
  ) {
    const w = p.get(`${name}.weight`);
    if (w.shape.length !== 4) throw new Error(`${name}.weight: expected (out, in, kh, kw), got ${shapeStr(w.shape)}`);
    const f = conv2dFilter(w);
    this.filter = tf.tensor4d(f.data, f.shape as [number, number, number, number]);
    this.outChannels = w.shape[0]!;
    this.inChannels = w.shape[1]!;
    this.bias = opts.bias === false ? null : (p.tensor(`${name}.bias`, [this.outChannels]) as tf.Tensor1D);
  }

  apply(x: tf.Tensor4D): tf.Tensor4D {
    return tf.tidy(() => {
      const s = this.opts.stride ?? 1;
      const strides: [number, number] = typeof s === 'number' ? [s, s] : s;
      const pd = this.opts.padding ?? 0;
      const [t, b, l, r] = typeof pd === 'number' ? [pd, pd, pd, pd] : pd;
      const pad: tf.Tensor4D = t || b || l || r ? tf.pad(x, [[0, 0], [t, b], [l, r], [0, 0]]) : x;
      let y: tf.Tensor4D = tf.conv2d(pad, this.filter, strides, 'valid');
      if (this.bias) y = tf.add(y, this.bias);
      return y;
    });
  }

  dispose(): void {
    this.filter.dispose();
    this.bias?.dispose();
  }
}

/** nn.Conv1d on NWC input (N, T, C). groups = in = out (depthwise) is supported. */
export class Conv1d {
  readonly filter: tf.Tensor;
  readonly bias: tf.Tensor1D | null;
  readonly outChannels: number;
  readonly depthwise: boolean;

  constructor(
    p: Params, name: string,
    readonly opts: { stride?: number; padding?: number | [number, number]; dilation?: number; groups?: number; bias?: boolean } = {},
  ) {
    const w = p.get(`${name}.weight`);
    if (w.shape.length !== 3) throw new Error(`${name}.weight: expected (out, in/groups, k), got ${shapeStr(w.shape)}`);
    this.outChannels = w.shape[0]!;
    const groups = opts.groups ?? 1;
    this.depthwise = groups > 1;
    if (this.depthwise) {
      if (w.shape[1] !== 1 || groups !== this.outChannels) throw new Error(`${name}: only depthwise grouped convs are supported`);
      // depthwiseConv2d filter (1, k, C, 1)
      const f = conv1dFilter(w); // (k, 1, C)
      this.filter = tf.tensor4d(f.data, [1, w.shape[2]!, this.outChannels, 1]);
    } else {
      const f = conv1dFilter(w);
      this.filter = tf.tensor3d(f.data, f.shape as [number, number, number]);
    }
    this.bias = opts.bias === false ? null : (p.tensor(`${name}.bias`, [this.outChannels]) as tf.Tensor1D);
  }

  apply(x: tf.Tensor3D): tf.Tensor3D {
    return tf.tidy(() => {
      const pd = this.opts.padding ?? 0;
      const [l, r] = typeof pd === 'number' ? [pd, pd] : pd;
      const pad: tf.Tensor3D = l || r ? tf.pad(x, [[0, 0], [l, r], [0, 0]]) : x;
      const stride = this.opts.stride ?? 1;
      const dil = this.opts.dilation ?? 1;
      let y: tf.Tensor3D;
      if (this.depthwise) {
        const x4 = pad.expandDims(1) as tf.Tensor4D;
        y = tf.depthwiseConv2d(x4, this.filter as tf.Tensor4D, [1, stride], 'valid', 'NHWC', [1, dil]).squeeze([1]) as tf.Tensor3D;
      } else {
        y = tf.conv1d(pad, this.filter as tf.Tensor3D, stride, 'valid', 'NWC', dil);
      }
      if (this.bias) y = tf.add(y, this.bias);
      return y;
    });
  }

  dispose(): void {
    this.filter.dispose();
    this.bias?.dispose();
  }
}

/**
 * nn.ConvTranspose1d on NWC input: output length (L − 1)·stride − 2·padding + k. Computed as a full
 * ('valid') transposed conv of length (L − 1)·stride + k, then `padding` samples cropped from each end.
 */
export class ConvTranspose1d {
  readonly filter: tf.Tensor4D;
  readonly bias: tf.Tensor1D | null;
  readonly inChannels: number;
  readonly outChannels: number;
  readonly kernel: number;

  constructor(p: Params, name: string, readonly opts: { stride: number; padding?: number; bias?: boolean }) {
    const w = p.get(`${name}.weight`);
    if (w.shape.length !== 3) throw new Error(`${name}.weight: expected (in, out, k), got ${shapeStr(w.shape)}`);
    [this.inChannels, this.outChannels, this.kernel] = w.shape as [number, number, number];
    const f = convTranspose1dFilter(w);
    this.filter = tf.tensor4d(f.data, f.shape as [number, number, number, number]);
    this.bias = opts.bias === false ? null : (p.tensor(`${name}.bias`, [this.outChannels]) as tf.Tensor1D);
  }

  apply(x: tf.Tensor3D): tf.Tensor3D {
    return tf.tidy(() => {
      const [n, len] = x.shape;
      const s = this.opts.stride;
      const full = (len - 1) * s + this.kernel;
      const x4 = x.expandDims(1) as tf.Tensor4D;
      let y = tf.conv2dTranspose(x4, this.filter, [n, 1, full, this.outChannels], [1, s], 'valid').squeeze([1]) as tf.Tensor3D;
      const p = this.opts.padding ?? 0;
      if (p) y = y.slice([0, p, 0], [n, full - 2 * p, this.outChannels]);
      if (this.bias) y = tf.add(y, this.bias);
      return y;
    });
  }

  dispose(): void {
    this.filter.dispose();
    this.bias?.dispose();
  }
}
