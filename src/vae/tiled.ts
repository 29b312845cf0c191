/**
 * Host-resident images and row-tiled convolutions for the AudioLDM VAE.
 *
 * The real decoder's activations reach 4096 × 256 positions × 256 channels (1 GiB float32 per tensor), so
 * whole-tensor tfjs ops would exhaust the wasm backend's 4 GiB heap. Activations therefore live in JS memory
 * (`Image`: one sample, NHWC, H = time rows) and every convolution runs over bands of output rows: the rows a
 * band needs (with its 1-row halo) are uploaded, normalised, convolved and downloaded, then disposed. The
 * result is the same computation as the whole-tensor one up to float rounding.
 *
 * On the wasm backend (src/simd):
 *  - 3×3 stride-1 convs run as Winograd F(4×4, 3×3) (4× fewer multiply-adds; tiles aligned to image rows, so the
 *    values do not depend on the banding), on images of at least 64 tiles;
 *  - GroupNorm statistics are gathered per band while the band is still in the heap (float64, Chan's combination)
 *    and travel with the image (`Image.stats`), so GroupNorm needs no host pass;
 *  - GroupNorm's affine + swish is one SIMD pass over the band;
 *  - bands are downloaded straight from the heap into the host image (one copy).
 *
 * On the device path (src/device.ts: webgpu) the same band loops run on a `DeviceImage`: the bands stay on the
 * device as tensors (each under the adapter's binding limit), GroupNorm's statistics are reduced on the device, and
 * nothing is read back inside the VAE.
 */
import * as tf from '@tensorflow/tfjs-core';
import { Conv2d } from '../../layers/conv.js';
import type { Params } from '../params.js';
import { offsetOf, wasmBackend } from '../simd/heap.js';
import { Winograd3x3, releaseU, winogradAvailable } from '../simd/winograd.js';
import { conv2dValidGemm, gemmEnabled, packB, type PackedB } from '../simd/gemm.js';
import { channelStats, combineStats, type ChannelStats } from '../simd/stats.js';
import { affineSwish } from '../simd/swish.js';
import { bindingLimit } from '../device.js';
import { groupNormAffineDevice, onDevice, type AnyImage, type DeviceBand } from './device_image.js';

/** One sample, channels-last (H, W, C) row-major. */
export interface Image {
  h: number;
  w: number;
  c: number;
  data: Float32Array;
  /** per-channel float64 statistics of `data` when they were gathered while it was made (GroupNorm uses them) */
  stats?: ChannelStats;
}

export function image(h: number, w: number, c: number, data?: Float32Array): Image {
  const d = data ?? new Float32Array(h * w * c);
  if (d.length !== h * w * c) throw new Error(`image: ${d.length} values do not fill (${h}, ${w}, ${c})`);
  return { h, w, c, data: d };
}

/** Sample `b` of an NCHW batch → Image (host transpose). */
export function imageFromNCHW(data: Float32Array, shape: readonly number[], b: number): Image {
  const [, c, h, w] = shape as [number, number, number, number];
  const out = new Float32Array(h * w * c);
  const base = b * c * h * w;
  if (c === 1) {
    out.set(data.subarray(base, base + h * w));
  } else {
    for (let ci = 0; ci < c; ci++) {
      const src = base + ci * h * w;
      for (let p = 0; p < h * w; p++) out[p * c + ci] = data[src + p]!;
    }
  }
  return { h, w, c, data: out };
}

/** Images of equal shape → one NCHW batch (B, C, H, W). */
export function imagesToNCHW(imgs: Image[]): { data: Float32Array; shape: [number, number, number, number] } {
  const { h, w, c } = imgs[0]!;
  const out = new Float32Array(imgs.length * c * h * w);
  imgs.forEach((im, b) => {
    if (im.h !== h || im.w !== w || im.c !== c) throw new Error('imagesToNCHW: images differ in shape');
    const base = b * c * h * w;
    if (c === 1) { out.set(im.data, base); return; }
    for (let p = 0; p < h * w; p++) for (let ci = 0; ci < c; ci++) out[base + ci * h * w + p] = im.data[p * c + ci]!;
  });
  return { data: out, shape: [imgs.length, c, h, w] };
}

/** rows [r0, r1) of an image as a (1, r1−r0, W, C) tensor (a copy into the backend) */
export function rowsTensor(x: AnyImage, r0: number, r1: number): tf.Tensor4D {
  if (onDevice(x)) {
    // slices of the bands that overlap [r0, r1), joined (a band seam inside the range: two slices)
    const parts = x.bands.filter((b) => b.r1 > r0 && b.r0 < r1).map((b) => {
      const a = Math.max(r0, b.r0), e = Math.min(r1, b.r1);
      return tf.slice(b.t, [0, a - b.r0, 0, 0], [1, e - a, x.w, x.c]);
    });
    if (!parts.length) throw new Error(`image rows [${r0}, ${r1}) are outside its ${x.h} rows`);
    return parts.length === 1 ? parts[0]! : tf.concat(parts, 1);
  }
  const stride = x.w * x.c;
  return tf.tensor4d(x.data.subarray(r0 * stride, r1 * stride), [1, r1 - r0, x.w, x.c]);
}

export function imageTensor(x: AnyImage): tf.Tensor4D {
  return rowsTensor(x, 0, x.h);
}

export interface TileOptions {
  /** upper bound on the bytes of one band's input (default 32 MiB; 64 MiB for Winograd convs) */
  tileBytes?: number;
  /** fixed band height in output rows (overrides tileBytes; tests use it to exercise the band seams) */
  tileRows?: number;
  /** 3×3 stride-1 convs by Winograd F(4×4, 3×3) where available (default true) */
  winograd?: boolean;
}

const DEFAULT_TILE_BYTES = 32 * 1024 * 1024;

function bandRows(hOut: number, bytesPerOutRow: number, o: TileOptions & { align?: number; wide?: boolean }): number {
  if (o.tileRows) return Math.max(1, Math.min(hOut, o.tileRows));
  const budget = Math.min(o.tileBytes ?? (o.wide ? WINOGRAD_TILE_BYTES : DEFAULT_TILE_BYTES), bindingLimit() / 4);
  const rows = Math.max(1, Math.min(hOut, Math.floor(budget / Math.max(1, bytesPerOutRow))));
  const al = o.align ?? 1; // a multiple of the Winograd tile height, so bands do not split tiles
  return rows < hOut && rows >= al ? rows - (rows % al) : rows;
}

/** a (1, r1−r0, wOut, cOut) band result checked against what it should be */
function checkBand(t: tf.Tensor4D, r0: number, r1: number, wOut: number, cOut: number): void {
  if (t.shape[1] !== r1 - r0 || t.shape[2] !== wOut || t.shape[3] !== cOut) {
    throw new Error(`band [${r0}, ${r1}) produced shape (${t.shape.join(', ')}), expected (1, ${r1 - r0}, ${wOut}, ${cOut})`);
  }
}

/**
 * Run `band(r0, r1)` (returning a (1, r1−r0, wOut, cOut) tensor, created inside a tidy by this runner) over
 * bands of output rows and assemble the host result (`device`: keep the bands on the device as a DeviceImage).
 */
export function runBands(
  hOut: number, wOut: number, cOut: number, bytesPerOutRow: number, o: TileOptions & { align?: number; wide?: boolean },
  band: (r0: number, r1: number) => tf.Tensor4D, device = false,
): AnyImage {
  const rows = bandRows(hOut, bytesPerOutRow, o);
  if (device) {
    const bands: DeviceBand[] = [];
    try {
      for (let r0 = 0; r0 < hOut; r0 += rows) {
        const r1 = Math.min(hOut, r0 + rows);
        const t = tf.tidy(() => band(r0, r1));
        bands.push({ r0, r1, t });
        checkBand(t, r0, r1, wOut, cOut);
      }
    } catch (e) {
      for (const b of bands) b.t.dispose();
      throw e;
    }
    return { h: hOut, w: wOut, c: cOut, bands };
  }
  const out = uninitF32(hOut * wOut * cOut); // every band is written
  const stride = wOut * cOut;
  // GroupNorm statistics of the result, gathered per band while it is in the backend (≥ 32 channels: normalisable)
  const wantStats = cOut % 32 === 0 && wasmBackend() !== null;
  let stats: ChannelStats | null = null;
  for (let r0 = 0; r0 < hOut; r0 += rows) {
    const r1 = Math.min(hOut, r0 + rows);
    const t = tf.tidy(() => band(r0, r1));
    try {
      checkBand(t, r0, r1, wOut, cOut);
      if (wantStats) stats = combineStats(stats, channelStats(t));
      download(t, out, r0 * stride);
    } finally {
      t.dispose();
    }
  }
  return stats ? { h: hOut, w: wOut, c: cOut, data: out, stats } : { h: hOut, w: wOut, c: cOut, data: out };
}

/**
 * A Float32Array whose contents the caller overwrites completely: Node's Buffer.allocUnsafeSlow skips the zero fill
 * (a whole extra pass over 128–512 MB activations); plain zeroed memory elsewhere.
 */
export function uninitF32(n: number): Float32Array {
  const B = (globalThis as { Buffer?: { allocUnsafeSlow(size: number): Uint8Array } }).Buffer;
  if (!B || n < 1 << 16) return new Float32Array(n);
  const b = B.allocUnsafeSlow(4 * n);
  return new Float32Array(b.buffer, b.byteOffset, n);
}

/** copy a float32 tensor's values into `out` at `at` (straight from the wasm heap when possible: one copy) */
export function download(t: tf.Tensor, out: Float32Array, at: number): void {
  const be = wasmBackend();
  if (be && t.dtype === 'float32') {
    const n = t.size;
    out.set(new Float32Array(be.wasm.HEAPU8.buffer, offsetOf(be, t), n), at);
    return;
  }
  out.set(t.dataSync() as Float32Array, at);
}

/** Per-channel affine y = x·scale + shift (GroupNorm folded as torch's CPU kernel applies it). */
export interface ChannelAffine {
  scale: tf.Tensor1D;
  shift: tf.Tensor1D;
  dispose(): void;
}

/**
 * torch.nn.GroupNorm statistics of one sample (biased variance over H·W·C/G, float64), folded with the
 * affine parameters into y = x·scale_c + shift_c, scale_c = γ_c·rstd_g, shift_c = β_c − mean_g·scale_c
 * (ATen group_norm_kernel's ApplyScaleBias form).
 */
export function groupNormAffine(x: AnyImage, groups: number, eps: number, gamma: Float32Array, beta: Float32Array): ChannelAffine {
  const c = x.c;
  if (c % groups) throw new Error(`GroupNorm: ${c} channels are not divisible into ${groups} groups`);
  if (gamma.length !== c || beta.length !== c) throw new Error(`GroupNorm: affine parameters have ${gamma.length} values for ${c} channels`);
  if (onDevice(x)) return groupNormAffineDevice(x, groups, eps, gamma, beta);
  const cg = c / groups;
  const n = x.h * x.w;
  const count = n * cg;
  const mean = new Float64Array(groups);
  const varG = new Float64Array(groups);
  if (x.stats && x.stats.n === n && x.stats.mean.length === c) {
    // from per-channel statistics: group mean = mean of the channel means (equal counts), group M2 =
    // Σ_c [M2_c + n·(mean_c − mean_g)²]
    const { mean: mc, m2 } = x.stats;
    for (let ch = 0; ch < c; ch++) mean[Math.floor(ch / cg)] += mc[ch]!;
    for (let g = 0; g < groups; g++) mean[g] /= cg;
    for (let ch = 0; ch < c; ch++) { const g = Math.floor(ch / cg), dm = mc[ch]! - mean[g]!; varG[g] += m2[ch]! + n * dm * dm; }
  } else {
    const d = x.data;
    // per-channel sums, then per-group mean; second pass for the centred sum of squares
    const sum = new Float64Array(c);
    for (let p = 0; p < n; p++) {
      const o = p * c;
      for (let ch = 0; ch < c; ch++) sum[ch] += d[o + ch]!;
    }
    for (let ch = 0; ch < c; ch++) mean[Math.floor(ch / cg)] += sum[ch]!;
    for (let g = 0; g < groups; g++) mean[g] /= count;
    const meanC = new Float64Array(c);
    for (let ch = 0; ch < c; ch++) meanC[ch] = mean[Math.floor(ch / cg)]!;
    const ss = new Float64Array(c);
    for (let p = 0; p < n; p++) {
      const o = p * c;
      for (let ch = 0; ch < c; ch++) { const v = d[o + ch]! - meanC[ch]!; ss[ch] += v * v; }
    }
    for (let ch = 0; ch < c; ch++) varG[Math.floor(ch / cg)] += ss[ch]!;
  }
  const scale = new Float32Array(c), shift = new Float32Array(c);
  for (let ch = 0; ch < c; ch++) {
    const g = Math.floor(ch / cg);
    const rstd = 1 / Math.sqrt(varG[g]! / count + eps);
    const s = gamma[ch]! * rstd;
    scale[ch] = s;
    shift[ch] = beta[ch]! - mean[g]! * s;
  }
  const st = tf.tensor1d(scale), sh = tf.tensor1d(shift);
  return { scale: st, shift: sh, dispose: () => { st.dispose(); sh.dispose(); } };
}

/** x·scale + shift, then swish x·σ(x) (Normalize → nonlinearity); one SIMD pass on the wasm backend (src/simd/swish.ts) */
export function normSwish(t: tf.Tensor4D, a: ChannelAffine): tf.Tensor4D {
  return affineSwish(t, a.scale, a.shift, true);
}

/** a 'valid' conv of a band (bias added): the packed-GEMM conv on the wasm backend for stride 1, else tf.conv2d */
export function convValid(x: tf.Tensor4D, conv: Conv2d, stride: number): tf.Tensor4D {
  const packed = stride === 1 && conv instanceof VaeConv2d ? conv.packed() : null;
  if (packed) return conv2dValidGemm(x, packed, conv.filter.shape[0], conv.filter.shape[1]);
  let y: tf.Tensor4D = tf.conv2d(x, conv.filter, [stride, stride], 'valid');
  if (conv.bias) y = tf.add(y, conv.bias);
  return y;
}

/**
 * 3×3 conv, stride 1, zero padding 1 (nn.Conv2d(k=3, p=1)), over row bands. `pre` transforms the input
 * rows before the zero padding (GroupNorm + swish in ResnetBlock), `residual(r0, r1)` is added to the band.
 */
export function conv3x3<I extends AnyImage>(
  x: I, conv: Conv2d,
  opts: TileOptions & { pre?: (t: tf.Tensor4D) => tf.Tensor4D; residual?: (r0: number, r1: number) => tf.Tensor4D } = {},
): I {
  const cOut = conv.outChannels;
  checkConv(conv, x.c, 3, 'conv3x3');
  const wino = winogradOf(conv, opts, x.h, x.w);
  const U = wino?.transformed();
  try {
    return runBands(x.h, x.w, cOut, x.w * Math.max(x.c, cOut) * 4, { ...opts, align: wino ? 4 : 1, wide: !!wino }, (r0, r1) => {
      if (wino) {
        const g = Winograd3x3.bandRows(r0, r1, x.h);
        let t = rowsTensor(x, g.a, g.b);
        if (opts.pre) t = opts.pre(t);
        return wino.apply(t, g.t0 - 1 - g.a, r1 - r0, g.skip, opts.residual?.(r0, r1), U!.U);
      }
      const a = Math.max(0, r0 - 1), b = Math.min(x.h, r1 + 1);
      let t = rowsTensor(x, a, b);
      if (opts.pre) t = opts.pre(t);
      t = tf.pad(t, [[0, 0], [r0 === 0 ? 1 : 0, r1 === x.h ? 1 : 0], [1, 1], [0, 0]]);
      let y = convValid(t, conv, 1);
      if (opts.residual) y = tf.add(y, opts.residual(r0, r1));
      return y;
    }, onDevice(x)) as I;
  } finally {
    if (U?.fresh) releaseU(U.U);
  }
}

/** 1×1 conv over row bands (q/k/v/proj_out, nin_shortcut, quant convs) */
export function conv1x1<I extends AnyImage>(x: I, conv: Conv2d, opts: TileOptions = {}): I {
  checkConv(conv, x.c, 1, 'conv1x1');
  return runBands(x.h, x.w, conv.outChannels, x.w * Math.max(x.c, conv.outChannels) * 4, opts,
    (r0, r1) => convValid(rowsTensor(x, r0, r1), conv, 1), onDevice(x)) as I;
}

/**
 * GM:Downsample: F.pad(x, (0, 1, 0, 1)) (one zero column right, one zero row bottom), then 3×3 conv
 * stride 2 padding 0 → floor(H/2) × floor(W/2).
 */
export function downsample<I extends AnyImage>(x: I, conv: Conv2d, opts: TileOptions = {}): I {
  checkConv(conv, x.c, 3, 'downsample');
  const hOut = Math.floor((x.h + 1 - 3) / 2) + 1;
  const wOut = Math.floor((x.w + 1 - 3) / 2) + 1;
  return runBands(hOut, wOut, conv.outChannels, 2 * x.w * x.c * 4, opts, (r0, r1) => {
    const a = 2 * r0, want = 2 * r1 + 1; // input rows [2·r0, 2·r1 + 1) of the padded image
    const b = Math.min(x.h, want);
    const t = tf.pad(rowsTensor(x, a, b), [[0, 0], [0, want - b], [0, 1], [0, 0]]);
    return convValid(t, conv, 2);
  }, onDevice(x)) as I;
}

/**
 * GM:Upsample: F.interpolate(scale_factor=2, mode='nearest') (out[i] = in[floor(i/2)] on both axes), then
 * 3×3 conv padding 1, over bands of output rows (the ×2 image is never materialised whole).
 */
export function upsample<I extends AnyImage>(x: I, conv: Conv2d, opts: TileOptions = {}): I {
  checkConv(conv, x.c, 3, 'upsample');
  const H = 2 * x.h, W = 2 * x.w;
  const wino = winogradOf(conv, opts, H, W);
  const U = wino?.transformed();
  try {
    return runBands(H, W, conv.outChannels, W * Math.max(x.c, conv.outChannels) * 4, { ...opts, align: wino ? 4 : 1, wide: !!wino }, (r0, r1) => {
      const g = wino ? Winograd3x3.bandRows(r0, r1, H) : null;
      // upsampled rows needed [ua, ub)
      const ua = g ? g.a : Math.max(0, r0 - 1), ub = g ? g.b : Math.min(H, r1 + 1);
      const sa = Math.floor(ua / 2), sb = Math.floor((ub - 1) / 2) + 1; // source rows [sa, sb)
      const src = rowsTensor(x, sa, sb);
      const up = tf.image.resizeNearestNeighbor(src, [2 * (sb - sa), W]) as tf.Tensor4D; // rows 2·sa …
      if (wino) return wino.apply(up, g!.t0 - 1 - 2 * sa, r1 - r0, g!.skip, null, U!.U);
      let t = tf.slice(up, [0, ua - 2 * sa, 0, 0], [1, ub - ua, W, x.c]);
      t = tf.pad(t, [[0, 0], [r0 === 0 ? 1 : 0, r1 === H ? 1 : 0], [1, 1], [0, 0]]);
      return convValid(t, conv, 1);
    }, onDevice(x)) as I;
  } finally {
    if (U?.fresh) releaseU(U.U);
  }
}

/**
 * nn.Conv2d of the VAE: the layers/conv.ts module plus, for 3×3 stride-1 convs on the wasm backend, a Winograd
 * F(4×4, 3×3) form of it (src/simd/winograd.ts: 4× fewer multiply-adds), made on first use and freed with the conv.
 */
export class VaeConv2d extends Conv2d {
  private wino: Winograd3x3 | null = null;
  private gemmFilter: PackedB | null = null;

  constructor(p: Params, name: string) {
    super(p, name);
  }

  winograd(): Winograd3x3 | null {
    const [kh, kw, cin, cout] = this.filter.shape;
    if (kh !== 3 || kw !== 3 || !this.bias || !winogradAvailable(cin, cout)) return null;
    this.wino ??= new Winograd3x3(this.filter, this.bias);
    return this.wino;
  }

  /**
   * The filter packed for src/simd/gemm.ts conv2dValidGemm (the direct convs: small images, 1×1 convs), made on first
   * use and kept (XNNPACK's conv2d runs these at 17–35 GFLOP/s, the packed GEMM at ~100); null off the wasm backend,
   * with MUCODEC_GEMM=0, or without a bias.
   */
  packed(): PackedB | null {
    if (!this.bias || !gemmEnabled()) return null;
    if (!this.gemmFilter) {
      const [kh, kw, cin, cout] = this.filter.shape;
      this.gemmFilter = packB(this.filter.dataSync() as Float32Array, kh * kw * cin, cout, this.bias.dataSync() as Float32Array);
      tf.keep(this.gemmFilter.packed); // often made inside a band's tidy
    }
    return this.gemmFilter;
  }

  override dispose(): void {
    this.gemmFilter?.packed.dispose();
    this.gemmFilter = null;
    this.wino?.dispose();
    this.wino = null;
    super.dispose();
  }
}

/** whether the Winograd path is on (default: on wherever it runs; `winograd: false` or MUCODEC_VAE_WINOGRAD=0 turn it off) */
function winogradOf(conv: Conv2d, o: TileOptions, hOut: number, wOut: number): Winograd3x3 | null {
  if (o.winograd === false || process.env.MUCODEC_VAE_WINOGRAD === '0') return null;
  // small images: 36 GEMM calls per band cost more than one direct conv (decided per conv, never per band, so the
  // result does not depend on the banding)
  if (Math.ceil(hOut / 4) * Math.ceil(wOut / 4) < WINOGRAD_MIN_TILES) return null;
  return conv instanceof VaeConv2d ? conv.winograd() : null;
}

/** images with fewer 4×4 output tiles take the direct conv */
const WINOGRAD_MIN_TILES = 64;
/** band input budget of the Winograd path (larger than the direct path's: fewer bands, fewer GEMM calls) */
const WINOGRAD_TILE_BYTES = 64 * 1024 * 1024;

function checkConv(conv: Conv2d, cin: number, k: number, what: string): void {
  const [kh, kw, ci] = conv.filter.shape;
  if (kh !== k || kw !== k || ci !== cin) {
    throw new Error(`${what}: filter (${conv.filter.shape.join(', ')}) does not fit a ${k}×${k} conv on ${cin} channels`);
  }
}
