/**
 * VAE images on the device path (src/device.ts): one sample as row bands kept on the device (each band a tensor
 * under the adapter's binding limit), made and consumed by the same band loops as host images (./tiled.ts), and
 * GroupNorm's statistics reduced on the device. A device image is read back only where host code needs its values
 * (hostImageSteps: one read, through the step driver).
 */
import * as tf from '@tensorflow/tfjs-core';
import { bindingLimit } from '../device.js';
import { HostRead, type Step } from '../steps.js';
import type { ChannelAffine, Image } from './tiled.js';

/** rows [r0, r1) of a device image as one (1, r1 − r0, W, C) tensor */
export interface DeviceBand { r0: number; r1: number; t: tf.Tensor4D }

/** One sample on the device (H, W, C), as consecutive row bands covering [0, H); the bands are the image's to dispose. */
export interface DeviceImage {
  h: number;
  w: number;
  c: number;
  bands: DeviceBand[];
}

export type AnyImage = Image | DeviceImage;

export function onDevice(x: AnyImage): x is DeviceImage {
  return 'bands' in x;
}

/** free a device image's tensors (host images need nothing) */
export function disposeImage(x: AnyImage): void {
  if (onDevice(x)) for (const b of x.bands) b.t.dispose();
}

/** a host image uploaded as row bands of at most `tileBytes` (default 32 MiB, at most a quarter of the binding limit) */
export function deviceImage(x: Image, tileBytes = 32 * 1024 * 1024): DeviceImage {
  const rowBytes = x.w * x.c * 4;
  const rows = Math.max(1, Math.min(x.h, Math.floor(Math.min(tileBytes, bindingLimit() / 4) / rowBytes)));
  const bands: DeviceBand[] = [];
  for (let r0 = 0; r0 < x.h; r0 += rows) {
    const r1 = Math.min(x.h, r0 + rows);
    bands.push({ r0, r1, t: tf.tensor4d(x.data.subarray(r0 * rowBytes / 4, r1 * rowBytes / 4), [1, r1 - r0, x.w, x.c]) });
  }
  return { h: x.h, w: x.w, c: x.c, bands };
}

/** an image's values on the host: a host image as it is; a device image read back once (a HostRead for the step driver) */
export function* hostImageSteps(x: AnyImage, what = 'VAE image'): Generator<Step, Image, void> {
  if (!onDevice(x)) return x;
  const whole = x.bands.length === 1 ? x.bands[0]!.t : tf.concat(x.bands.map((b) => b.t), 1);
  try {
    const r = new HostRead(whole, what);
    yield r;
    return { h: x.h, w: x.w, c: x.c, data: r.value };
  } finally {
    if (whole !== x.bands[0]!.t) whole.dispose();
  }
}

/** a device image whose bands share the values of `x` but are disposed on their own (tf.clone) */
export function cloneImage(x: DeviceImage): DeviceImage {
  return { ...x, bands: x.bands.map((b) => ({ ...b, t: tf.clone(b.t) })) };
}

/**
 * groupNormAffine on the device: the same two passes (group means, then the centred sum of squares) reduced per band
 * in float32 on the device, folded into scale/shift there; nothing is read back.
 */
export function groupNormAffineDevice(x: DeviceImage, groups: number, eps: number, gamma: Float32Array, beta: Float32Array): ChannelAffine {
  const c = x.c, cg = c / groups, count = x.h * x.w * cg;
  const [scale, shift] = tf.tidy(() => {
    const perChannel = (f: (t: tf.Tensor4D) => tf.Tensor): tf.Tensor1D =>
      // summed band by band (one addN of every band would bind more storage buffers than a shader stage may have)
      x.bands.map((b) => tf.sum(f(b.t), [0, 1, 2]) as tf.Tensor1D).reduce((acc, v) => tf.add(acc, v));
    const toGroups = (v: tf.Tensor1D): tf.Tensor1D => tf.div(tf.sum(tf.reshape(v, [groups, cg]), 1), count);
    const byChannel = (g: tf.Tensor1D): tf.Tensor1D => tf.reshape(tf.tile(tf.reshape(g, [groups, 1]), [1, cg]), [c]);
    const meanC = byChannel(toGroups(perChannel((t) => t)));
    const varC = byChannel(toGroups(perChannel((t) => tf.square(tf.sub(t, meanC)))));
    const s = tf.mul(tf.tensor1d(gamma), tf.rsqrt(tf.add(varC, eps)));
    return [s, tf.sub(tf.tensor1d(beta), tf.mul(meanC, s))];
  }) as [tf.Tensor1D, tf.Tensor1D];
  return { scale, shift, dispose: () => { scale.dispose(); shift.dispose(); } };
}

