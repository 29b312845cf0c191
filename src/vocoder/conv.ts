/**
 * The convolution cores of the HiFi-GAN vocoder (MuCodec tools/get_melvaehifigan48k.py: the nn.Conv1d and
 * nn.ConvTranspose1d layers of Generator_old and ResBlock), channels-last (B, T, C), from the checkpoint's
 * weights (weight norm already removed).
 */
import * as tf from '@tensorflow/tfjs-core';
import { conv1dFilter } from '../../layers/host.js';
import { shapeStr, toFloat32 } from '../hosttensor.js';
import type { Params } from '../params.js';
import { bandGather, conv1dSmall, leakyRelu, simdAvailable, smallConvStrategy } from '../simd/conv1d.js';
import { conv1dGemm, gemmEnabled, packHost, uploadPacked, type PackedB } from '../simd/gemm.js';
import { bestOuter, bestTile, Conv1dWinogradGemm, winograd1dAvailable } from '../simd/winograd1d.js';

/** host forms of a conv's filter for the GEMM paths, per checkpoint weight (Conv1dCore cacheKey) */
interface HostForms { packed?: Float32Array; wino?: { tiles: string; U: Float32Array[] } }
const hostForms = new WeakMap<object, HostForms>();

let winograd = process.env.MUCODEC_VOCODER_WINOGRAD !== '0';
/**
 * Whether the vocoder's wide convs (k ≥ 3, channels a multiple of 4, wasm backend with the packed GEMM on) run by
 * Winograd on kernel chunks (src/simd/winograd1d.ts: F(3,3) for k = 3; F(4,4) on the chunks and F(3, q) across them
 * for k = 7, 11, 15: 1.8–4.3× fewer products). Default on; off (MUCODEC_VOCODER_WINOGRAD=0) gives the direct conv, whose every output sums only its
 * receptive field in a fixed order, so time tiles and reused chunks give the whole-length bytes exactly; with
 * Winograd they agree to float32 rounding (a tile's outputs are combined from transforms whose phase follows the
 * call's first sample).
 */
export function setVocoderWinograd(on: boolean): void { winograd = on; }
const winogradOn = (): boolean => winograd;

/**
 * The outer tile over the kernel chunks (src/simd/winograd1d.ts bestOuter): MUCODEC_VOCODER_OUTER = 1 (none), 2 or
 * 3 (the default where a kernel has several chunks).
 */
function outerTile(kernel: number): number {
  const v = process.env.MUCODEC_VOCODER_OUTER;
  if (v === undefined || v === '') return bestOuter(kernel);
  if (!['1', '2', '3'].includes(v)) throw new Error(`MUCODEC_VOCODER_OUTER must be 1, 2 or 3, got "${v}"`);
  return Number(v);
}

/** get_padding(k, d) = int((k·d − d)/2) */
export const getPadding = (k: number, d: number): number => Math.floor((k * d - d) / 2);

/** y = tidy(fn(x)), disposing x (when owned) afterwards */
export function step<T extends tf.Tensor>(x: tf.Tensor, owned: boolean, fn: (x: tf.Tensor) => T): T {
  const y = tf.tidy(() => fn(x));
  if (owned) x.dispose();
  return y;
}

/**
 * Convolutions with at most this many output channels run on the SIMD kernels of src/simd/conv1d.ts (wasm backend):
 * XNNPACK vectorises over output channels in tiles of 8, so 1–4 channels waste most of every vector.
 */
export const SIMD_MAX_CHANNELS = 4;

export interface ConvApplyOptions {
  /** leaky ReLU slope applied to the conv output (conv → + bias → leaky ReLU) */
  slope?: number | null;
  /** added last (conv → + bias → [leaky ReLU] → + res) */
  res?: tf.Tensor3D | null;
}

/**
 * nn.Conv1d (stride 1, zero padding, dilation) on NWC input, from a tfjs conv1d filter (k, Cin, Cout) and bias.
 *   - narrow outputs (≤ SIMD_MAX_CHANNELS) on the wasm backend: the SIMD kernels (implicit zero padding, bias,
 *     activation and residual in the same pass);
 *   - wider convs on the wasm backend with the packed GEMM on: k ≥ 3 with channels a multiple of 4 by F(M,M) on M-tap
 *     kernel chunks (src/simd/winograd1d.ts; leaky ReLU and residual in its output transform), the others by
 *     src/simd/gemm.ts conv1dGemm (one K chunk per tap over the padded input), then leaky ReLU and the residual; the
 *     filter transformed or packed on first use and kept; XNNPACK's conv (below) runs these at 45–80 GFLOP/s, the
 *     GEMM at 100–120;
 *   - otherwise tf.fused.conv2d (bias and leaky ReLU fused, padding given to the kernel, so no padded copy), over
 *     bands of at most `band` output samples per row when a row is longer: the wasm conv kernel caches, per weight
 *     tensor, an indirection buffer of k pointers per output sample of ONE row (the batch does not count), so the
 *     bands are folded into the batch dimension (one gather copy, one conv call).
 */
export class Conv1dCore {
  readonly bias: tf.Tensor1D;
  readonly kernel: number;
  readonly inChannels: number;
  readonly outChannels: number;
  private filterData: Float32Array | null;
  private readonly makeFilter: (() => Float32Array) | null;
  private filterT: tf.Tensor3D | null = null;
  private filter4T: tf.Tensor4D | null = null;
  private packed: PackedB | null = null;
  private wino: Conv1dWinogradGemm | null = null;

  /**
   * `filter`: (k, Cin, Cout) row-major (tfjs conv1d layout), or a function making it when first needed. `cacheKey`: an
   * object that outlives this conv (the checkpoint's weight tensor): the host forms the GEMM paths build from the
   * filter (packed, or Winograd-transformed and packed) are kept under it, so the next conv made from the same weight
   * (after the generator's release()) uploads them instead of building them again (≈ 5–10 s for the real vocoder;
   * host memory ≈ 1.2 GB).
   */
  constructor(
    filter: Float32Array | (() => Float32Array), readonly shape: [number, number, number], private readonly biasHost: Float32Array,
    readonly padL: number, readonly padR: number, readonly dilation = 1, readonly band = 1 << 16, private readonly cacheKey?: object,
    /** the same filter as the checkpoint stores it, (Cout, Cin, k): the Winograd transform reads it without a re-layout */
    private readonly torchFilter?: () => Float32Array,
  ) {
    [this.kernel, this.inChannels, this.outChannels] = shape;
    if (biasHost.length !== this.outChannels) throw new Error(`Conv1d: ${biasHost.length} bias values for ${this.outChannels} channels`);
    this.filterData = typeof filter === 'function' ? null : filter;
    this.makeFilter = typeof filter === 'function' ? filter : null;
    if (this.filterData) this.checkFilter(this.filterData);
    this.bias = tf.tensor1d(biasHost);
  }

  private checkFilter(f: Float32Array): void {
    const [k, ci, co] = this.shape;
    if (f.length !== k * ci * co) throw new Error(`Conv1d: filter of ${f.length} values for (${this.shape.join(', ')})`);
  }

  /** the (k, Cin, Cout) filter on the host (a thunk's result is made once, when first needed) */
  private get filterHost(): Float32Array {
    if (!this.filterData) { this.filterData = this.makeFilter!(); this.checkFilter(this.filterData); }
    return this.filterData;
  }

  /** the filter as a tfjs tensor (k, Cin, Cout): made on first use (the GEMM paths never need it on the heap) */
  get filter(): tf.Tensor3D {
    this.filterT ??= tf.keep(tf.tensor3d(this.filterHost, this.shape));
    return this.filterT;
  }

  private get filter4(): tf.Tensor4D {
    this.filter4T ??= tf.keep(this.filter.reshape([1, ...this.shape]) as tf.Tensor4D);
    return this.filter4T;
  }

  private get hostForms(): HostForms {
    if (!this.cacheKey) return {};
    let f = hostForms.get(this.cacheKey);
    if (!f) { f = {}; hostForms.set(this.cacheKey, f); }
    return f;
  }

  outLength(len: number): number {
    return len + this.padL + this.padR - (this.kernel - 1) * this.dilation;
  }

  get simd(): boolean {
    return this.outChannels <= SIMD_MAX_CHANNELS && smallConvStrategy(this.inChannels, this.outChannels) !== null && simdAvailable();
  }

  apply(x: tf.Tensor3D, o: ConvApplyOptions = {}): tf.Tensor3D {
    const [n, len, cin] = x.shape;
    if (cin !== this.inChannels) throw new Error(`Conv1d: input has ${cin} channels, expected ${this.inChannels}`);
    const d = this.dilation, span = (this.kernel - 1) * d, cout = this.outChannels;
    const L = this.outLength(len);
    if (L <= 0) throw new Error(`Conv1d: input of ${len} samples is shorter than the kernel span`);
    const slope = o.slope ?? null;
    if (this.simd) return conv1dSmall(x, this.filter, this.bias, { dilation: d, padL: this.padL, padR: this.padR, slope, res: o.res });
    if (gemmEnabled() && winogradOn() && winograd1dAvailable(this.kernel, cin, cout)) {
      // the filter transformed and packed on first use (often inside a caller's tidy: its tensors are kept until
      // dispose)
      if (!this.wino) {
        const hf = this.hostForms, tile = bestTile(this.kernel), outer = outerTile(this.kernel), tiles = `${tile}:${outer}`;
        const cached = hf.wino?.tiles === tiles ? hf.wino.U : undefined;
        const oik = !cached && !this.filterData && this.torchFilter ? this.torchFilter() : null; // no re-layout needed
        const wino = new Conv1dWinogradGemm(cached ? null : oik ?? this.filterHost, this.kernel, cin, cout, this.biasHost,
          this.padL, this.padR, d, cached, oik ? 'oik' : 'kio', tile, outer);
        if (this.cacheKey) hf.wino = { tiles, U: wino.hostU };
        this.wino = wino;
        wino.keep();
      }
      return this.wino.apply(x, slope, o.res ?? undefined);
    }
    if (gemmEnabled()) {
      if (!this.packed) { // packed on first use (often inside a caller's tidy: kept until dispose)
        const hf = this.hostForms;
        const host = hf.packed ?? packHost(this.filterHost, this.kernel * cin, cout, this.biasHost);
        if (this.cacheKey) hf.packed = host;
        this.packed = uploadPacked(host, this.kernel * cin, cout);
        tf.keep(this.packed.packed);
      }
      const y = conv1dGemm(x, this.packed, this.kernel, d, this.padL, this.padR);
      if (slope === null && !o.res) return y;
      return step(y, true, (t) => {
        const a = slope !== null ? leakyRelu(t, slope) : t;
        return (o.res ? tf.add(a, o.res) : a) as tf.Tensor3D;
      });
    }
    return tf.tidy(() => {
      const act = slope !== null ? { activation: 'leakyrelu' as const, leakyreluAlpha: slope } : {};
      let y: tf.Tensor3D;
      if (L <= this.band) {
        y = tf.fused.conv2d({
          x: x.reshape([n, 1, len, cin]) as tf.Tensor4D, filter: this.filter4, strides: 1,
          pad: [[0, 0], [0, 0], [this.padL, this.padR], [0, 0]], dilations: [1, d], bias: this.bias, ...act,
        }).reshape([n, L, cout]);
      } else {
        const nb = Math.ceil(L / this.band), m = Math.ceil(L / nb);
        const bands = bandGather(x, m, span, this.padL, nb);
        y = tf.fused.conv2d({
          x: bands.reshape([n * nb, 1, m + span, cin]) as tf.Tensor4D, filter: this.filter4, strides: 1, pad: 'valid',
          dilations: [1, d], bias: this.bias, ...act,
        }).reshape([n, nb * m, cout]);
        if (nb * m > L) y = tf.slice(y, [0, 0, 0], [n, L, cout]);
      }
      if (o.res) y = tf.add(y, o.res);
      return y;
    });
  }

  dispose(): void {
    this.packed?.packed.dispose();
    this.packed = null;
    this.wino?.dispose();
    this.wino = null;
    this.filter4T?.dispose();
    this.filterT?.dispose();
    this.filter4T = this.filterT = null;
    this.bias.dispose();
  }
}

/**
 * nn.ConvTranspose1d(cin, cout, k, stride u, padding p) on NWC input, computed polyphase as ONE ordinary
 * convolution (tfjs-wasm's transposed conv kernel is ~10× slower than its conv):
 * full output y[q·u + r] = Σ_j x[q − j] · W[:, :, j·u + r] (j = 0 … J−1, J = ceil(k/u)), i.e. a J-tap conv over
 * x zero-padded by J−1 on both sides with u·cout output channels (phase-major, bias repeated per phase),
 * interleaved to (q·u + r), then cropped to [p, p + (L−1)·u − 2p + k) as PyTorch's padding does.
 */
export class ConvTranspose1dPolyphase {
  readonly conv: Conv1dCore;
  readonly inChannels: number;
  readonly outChannels: number;
  readonly kernel: number;
  private readonly taps: number;

  constructor(p: Params, name: string, readonly stride: number, readonly padding: number) {
    const w = p.get(`${name}.weight`);
    if (w.shape.length !== 3) throw new Error(`${name}.weight: expected (in, out, k), got ${shapeStr(w.shape)}`);
    const [cin, cout, k] = w.shape as [number, number, number];
    this.inChannels = cin; this.outChannels = cout; this.kernel = k;
    const u = stride;
    const J = Math.ceil(k / u);
    this.taps = J;
    const wd = toFloat32(w);
    // filter (J, cin, u·cout): tap m, phase r ← W[ci, co, (J−1−m)·u + r]
    const f = new Float32Array(J * cin * u * cout);
    for (let m = 0; m < J; m++) {
      for (let r = 0; r < u; r++) {
        const kk = (J - 1 - m) * u + r;
        if (kk >= k) continue;
        for (let ci = 0; ci < cin; ci++) {
          const dst = (m * cin + ci) * u * cout + r * cout;
          const src = ci * cout * k + kk;
          for (let co = 0; co < cout; co++) f[dst + co] = wd[src + co * k]!;
        }
      }
    }
    const b = p.f32(`${name}.bias`, [cout]);
    const bias = new Float32Array(u * cout);
    for (let r = 0; r < u; r++) bias.set(b, r * cout);
    this.conv = new Conv1dCore(f, [J, cin, u * cout], bias, J - 1, J - 1, 1, 1 << 16, w);
  }

  outLength(len: number): number {
    return (len - 1) * this.stride - 2 * this.padding + this.kernel;
  }

  apply(x: tf.Tensor3D): tf.Tensor3D {
    const [n, len, cin] = x.shape;
    if (cin !== this.inChannels) throw new Error(`ConvTranspose1d: input has ${cin} channels, expected ${this.inChannels}`);
    const y = this.conv.apply(x); // (n, len + J − 1, u·cout)
    const q = len + this.taps - 1;
    return step(y, true, (t) => tf.slice(t.reshape([n, q * this.stride, this.outChannels]) as tf.Tensor3D, [0, this.padding, 0], [n, this.outLength(len), this.outChannels]));
  }

  dispose(): void {
    this.conv.dispose();
  }
}

/**
 * nn.Conv1d as the checkpoint stores it ((out, in, k) weight, bias), symmetric zero padding, dilation; see
 * Conv1dCore for how it runs. `band`: the longest output per row of one wasm conv call (XNNPACK path).
 */
export class BandedConv1d extends Conv1dCore {
  constructor(p: Params, name: string, readonly padding: number, dilation = 1, band = 1 << 16) {
    const w = p.get(`${name}.weight`);
    if (w.shape.length !== 3) throw new Error(`${name}.weight: expected (out, in, k), got ${shapeStr(w.shape)}`);
    const [cout] = w.shape as [number, number, number];
    const [, cin, k] = w.shape as [number, number, number];
    // (k, in, out), re-laid out only when a path needs it (not when the host forms under `w` exist already)
    super(() => conv1dFilter(w).data, [k, cin, cout], p.f32(`${name}.bias`, [cout]), padding, padding, dilation, band, w, () => toFloat32(w));
  }
}
