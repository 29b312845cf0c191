/**
 * AudioLDM VAE building blocks (MuCodec tools/get_melvaehifigan48k.py: ResnetBlock, AttnBlock, Normalize,
 * nonlinearity) on host-resident images with row-banded convolutions (./tiled.ts), or on device images (the same
 * bands kept on the device). A block returns a new image; its input stays the caller's.
 */
import * as tf from '@tensorflow/tfjs-core';
import { Conv2d } from '../../layers/conv.js';
import type { Params } from '../params.js';
import { affineSwish } from '../simd/swish.js';
import {
  conv3x3, convValid, download, groupNormAffine, imageTensor, normSwish, rowsTensor, uninitF32, VaeConv2d, type TileOptions,
} from './tiled.js';
import { bindingLimit } from '../device.js';
import { disposeImage, onDevice, type AnyImage } from './device_image.js';
import { wasmBackend } from '../simd/heap.js';
import { channelStats, combineStats, type ChannelStats } from '../simd/stats.js';
import { gemm, gemmEnabled, packTensor, type PackedB } from '../simd/gemm.js';

/** GM:Normalize: GroupNorm(32 groups, eps 1e-6, affine) */
export const GN_GROUPS = 32;
export const GN_EPS = 1e-6;

export class GroupNormParams {
  readonly gamma: Float32Array;
  readonly beta: Float32Array;
  constructor(p: Params, name: string, readonly channels: number) {
    this.gamma = Float32Array.from(p.f32(`${name}.weight`, [channels]));
    this.beta = Float32Array.from(p.f32(`${name}.bias`, [channels]));
  }
  affine(x: AnyImage) {
    return groupNormAffine(x, GN_GROUPS, GN_EPS, this.gamma, this.beta);
  }
}

/** nn.Conv2d with its (out, in, k, k) shape checked by name */
export function conv2d(p: Params, name: string, cin: number, cout: number, k: number): Conv2d {
  p.get(`${name}.weight`, [cout, cin, k, k]);
  p.get(`${name}.bias`, [cout]);
  return new VaeConv2d(p, name);
}

/**
 * GM:ResnetBlock with temb_channels = 0 and conv_shortcut = False:
 * h = conv1(swish(norm1(x))); h = conv2(swish(norm2(h))) (dropout is identity); out = shortcut(x) + h,
 * shortcut = nin_shortcut (1×1) only when in ≠ out channels.
 */
export class ResnetBlock {
  readonly norm1: GroupNormParams;
  readonly conv1: Conv2d;
  readonly norm2: GroupNormParams;
  readonly conv2: Conv2d;
  readonly ninShortcut: Conv2d | null;

  constructor(p: Params, readonly inChannels: number, readonly outChannels: number) {
    this.norm1 = new GroupNormParams(p, 'norm1', inChannels);
    this.conv1 = conv2d(p, 'conv1', inChannels, outChannels, 3);
    this.norm2 = new GroupNormParams(p, 'norm2', outChannels);
    this.conv2 = conv2d(p, 'conv2', outChannels, outChannels, 3);
    if (p.has('temb_proj.weight')) throw new Error(`${p.prefix}temb_proj: the VAE blocks have no timestep embedding (temb_channels = 0)`);
    this.ninShortcut = inChannels !== outChannels ? conv2d(p, 'nin_shortcut', inChannels, outChannels, 1) : null;
  }

  apply<I extends AnyImage>(x: I, o: TileOptions = {}): I {
    if (x.c !== this.inChannels) throw new Error(`ResnetBlock: input has ${x.c} channels, expected ${this.inChannels}`);
    const a1 = this.norm1.affine(x);
    let h: I;
    try {
      h = conv3x3(x, this.conv1, { ...o, pre: (t) => normSwish(t, a1) });
    } finally { a1.dispose(); }
    const a2 = this.norm2.affine(h);
    try {
      const sc = this.ninShortcut;
      return conv3x3(h, this.conv2, {
        ...o,
        pre: (t) => normSwish(t, a2),
        residual: (r0, r1) => {
          const xr = rowsTensor(x, r0, r1);
          return sc ? convValid(xr, sc, 1) : xr;
        },
      });
    } finally { a2.dispose(); disposeImage(h); }
  }

  dispose(): void {
    this.conv1.dispose(); this.conv2.dispose(); this.ninShortcut?.dispose();
  }
}

/**
 * GM:AttnBlock: single-head self-attention over the H·W positions (index h·W + w), scores q·k · c^(−1/2)
 * (the scale applied to q before the product: one pass over n·c values instead of n²), softmax over keys,
 * out = P·v, proj_out, residual. Queries are processed in chunks so that only a (chunk × H·W) block of scores exists
 * at a time (the real decoder's 16384 positions would need a 1 GiB score matrix).
 */
export class AttnBlock {
  readonly norm: GroupNormParams;
  readonly q: Conv2d;
  readonly k: Conv2d;
  readonly v: Conv2d;
  readonly projOut: Conv2d;
  /** queries per chunk (default: as many as keep one score block ≤ 64 MiB and under the binding limit) */
  queryChunk?: number;

  constructor(p: Params, readonly channels: number) {
    this.norm = new GroupNormParams(p, 'norm', channels);
    this.q = conv2d(p, 'q', channels, channels, 1);
    this.k = conv2d(p, 'k', channels, channels, 1);
    this.v = conv2d(p, 'v', channels, channels, 1);
    this.projOut = conv2d(p, 'proj_out', channels, channels, 1);
  }

  apply<I extends AnyImage>(x: I, o: TileOptions = {}): I {
    const c = this.channels;
    if (x.c !== c) throw new Error(`AttnBlock: input has ${x.c} channels, expected ${c}`);
    const n = x.h * x.w;
    const a = this.norm.affine(x);
    // the 1×1 convs and both attention products on the packed GEMM on the wasm backend (src/simd/gemm.ts), else matMul
    const packedOf = (conv: Conv2d): PackedB | null => (conv instanceof VaeConv2d ? conv.packed() : null);
    const lin = (t: tf.Tensor2D, conv: Conv2d): tf.Tensor2D => {
      const pk = packedOf(conv);
      if (pk) return gemm(t, pk);
      return tf.add(tf.matMul(t, conv.filter.reshape([c, c]) as tf.Tensor2D), conv.bias!) as tf.Tensor2D;
    };
    const product = (a: tf.Tensor2D, b: tf.Tensor2D | PackedB): tf.Tensor2D => ('packed' in b ? gemm(a, b) : tf.matMul(a, b));
    let q: tf.Tensor2D, kT: tf.Tensor2D, v: tf.Tensor2D;
    try {
      [q, kT, v] = tf.tidy(() => {
        const xt = imageTensor(x);
        const hn = affineSwish(xt, a.scale, a.shift, false).reshape([n, c]) as tf.Tensor2D;
        return [lin(hn, this.q), tf.transpose(lin(hn, this.k)) as tf.Tensor2D, lin(hn, this.v)];
      });
    } finally { a.dispose(); }
    const scale = c ** -0.5; // int(c) ** (-0.5)
    const chunk = this.queryChunk ?? Math.max(1, Math.min(n, Math.floor(Math.min(64 * 1024 * 1024, bindingLimit()) / (4 * n))));
    const dev = onDevice(x);
    const out = dev ? null : uninitF32(n * c); // every query chunk is written (host path)
    const parts: tf.Tensor2D[] = []; // device path: the query chunks, joined into one band at the end
    let stats: ChannelStats | null = null;
    try {
      // the score scale is applied to q once (q·s)·k instead of to every score (q·k)·s: same up to float rounding
      const qs = tf.tidy(() => tf.mul(q, scale) as tf.Tensor2D);
      q.dispose();
      q = qs;
      const wp = this.projOut.filter.reshape([c, c]) as tf.Tensor2D;
      const onGemm = gemmEnabled() && !onDevice(x);
      const kOp: tf.Tensor2D | PackedB = onGemm ? packTensor(kT) : kT, vOp: tf.Tensor2D | PackedB = onGemm ? packTensor(v) : v;
      try {
        for (let i0 = 0; i0 < n; i0 += chunk) {
          const rows = Math.min(chunk, n - i0);
          // h_ = P·v, proj_out (1×1), residual x + h_ — per query chunk
          const y = tf.tidy(() => {
            const w = tf.softmax(product(tf.slice(q, [i0, 0], [rows, c]), kOp));
            const pv = product(w, vOp);
            const h = packedOf(this.projOut) ? lin(pv, this.projOut) : tf.add(tf.matMul(pv, wp), this.projOut.bias!);
            const xr = onDevice(x)
              ? tf.slice(tf.reshape(imageTensor(x), [n, c]), [i0, 0], [rows, c])
              : tf.tensor2d(x.data.subarray(i0 * c, (i0 + rows) * c), [rows, c]);
            return tf.add(xr, h) as tf.Tensor2D;
          });
          if (dev) { parts.push(y); continue; }
          if (c % 32 === 0 && wasmBackend()) stats = combineStats(stats, channelStats(y));
          download(y, out!, i0 * c);
          y.dispose();
        }
      } finally {
        wp.dispose();
        if ('packed' in kOp) kOp.packed.dispose();
        if ('packed' in vOp) vOp.packed.dispose();
      }
    } catch (e) {
      for (const p of parts) p.dispose();
      throw e;
    } finally { q.dispose(); kT.dispose(); v.dispose(); }
    if (dev) {
      const t = tf.tidy(() => tf.reshape(parts.length === 1 ? parts[0]! : tf.concat(parts, 0), [1, x.h, x.w, c]) as tf.Tensor4D);
      for (const p of parts) p.dispose();
      return { h: x.h, w: x.w, c, bands: [{ r0: 0, r1: x.h, t }] } as AnyImage as I;
    }
    return (stats ? { h: x.h, w: x.w, c, data: out!, stats } : { h: x.h, w: x.w, c, data: out! }) as AnyImage as I;
  }

  dispose(): void {
    this.q.dispose(); this.k.dispose(); this.v.dispose(); this.projOut.dispose();
  }
}
