/**
 * MuQ conv frontend: MUQ modules/conv.py `Conv2dSubsampling(1, conv_dim, encoder_dim, strides=[2, 2], n_bands)`.
 *
 * Upstream runs NCHW on (B, 1, n_mels, T) (H = mel, W = time): two `Res2dModule`s, each
 *   relu( bn2(conv2(relu(bn1(conv1(x))))) + bn3(conv3(x)) ),  conv1/conv3 3×3 stride (2, s) pad 1, conv2 3×3 pad 1,
 * then rearrange 'b c f t -> b t (c f)' and Linear(conv_dim · n_mels/4, encoder_dim).
 *
 * Here the whole frontend runs channels-last with TIME as the height axis: x (B, T, n_mels, 1) NHWC. The 3×3
 * kernels are transposed (kh ↔ kw) and the strides swapped accordingly, so the result is the same convolution;
 * the output (B, T/4, n_mels/4, C) reshapes for free to (B, T/4, F·C) and the Linear weight's input columns are
 * permuted once from upstream's c·F + f order to f·C + c. No activation transpose anywhere.
 * Eval BatchNorm is folded into the preceding conv (w·s, (b − mean)·s + beta, s = weight / √(var + eps),
 * folded in float64); conv + bias (+ ReLU) run as one tf.fused.conv2d with implicit zero padding, except the
 * 3×3 convs with Cin ≥ 4, which run as Winograd (Conv3x3Mode).
 */
import * as tf from '@tensorflow/tfjs-core';
import { Params } from '../params.js';
import { bindingLimit } from '../device.js';
import { toFloat32, type HostTensor } from '../hosttensor.js';
import { permute } from '../../layers/host.js';
import { Linear } from '../../layers/linear.js';
import { Conv3x3Stride2Winograd, Conv3x3Winograd, type WinogradVariant } from '../../layers/winograd.js';
import { Winograd3x3, Winograd3x3Stride2, winogradAvailable } from '../simd/winograd.js';

export interface ConvSubsamplingConfig {
  /** conv_dim (hdim) */
  convDim: number;
  /** encoder_dim (odim) */
  encoderDim: number;
  /** n_bands = n_mels */
  nMels: number;
  /** time strides of the two modules (MuQ: [2, 2] for label_rate 25); the mel stride is always 2 */
  strides: [number, number];
  batchNormEps: number;
  /** stride-1 3×3 conv algorithm (default DEFAULT_CONV3X3_MODE) */
  conv3x3?: Conv3x3Mode;
}

/**
 * How the stride-1 3×3 convs (conv2 of each Res2dModule: 773 of MuQ's 1443 GFLOP at the real size) run:
 *  - 'winograd-simd' (default on tfjs-wasm): F(4×4, 3×3) on the points 0, −1, 1, ½, −2 with the input/output
 *    transforms as wasm SIMD kernels on the heap (src/simd/winograd.ts; bias and the Res2d shortcut are added in the
 *    output transform): 2.25 multiply-adds per output instead of 9, and the transforms cost < 3 % of the GEMMs.
 *    On the muq.conv_subsampling fixture max error 2.3e-6 (tolerance 1.69e-5); codes of every sound2code case
 *    exact. Real width, 2 threads: the frontend of one window 26.8 s → 14.8 s (the tfjs-op F(3,3) below).
 *  - 'winograd-f3h' etc. (layers/winograd.ts, transforms from tfjs ops: depthwise conv + transposes; the fallback on
 *    backends without the SIMD heap kernels): F(3×3, 3×3) on the points 0, ±1, 1/2 gives max errors 5.7e-6 (mid.res0)
 *    / 2.4e-6 (out) (direct: 1.7e-6 / 1.3e-6); Lavin's F(4,3) on 0, ±1, ±2 uses 85 % of the tolerance on mid.res0.
 *  - 'direct': tf.conv2d.
 * The strided convs (conv1 + shortcut conv3, Cin ≥ 4) run as one pass sharing the input transform: in 'winograd-simd'
 * mode as a 2×2 conv of the space-to-depth image by F(4×4, 2×2) on the SIMD path (src/simd/winograd.ts
 * Winograd3x3Stride2; window frontend 14.8 s → 12.9 s, fixture max error 3.5e-6), otherwise as the polyphase Winograd
 * of layers/winograd.ts.
 */
export type Conv3x3Mode = 'direct' | 'winograd-f2' | 'winograd-f3' | 'winograd-f3h' | 'winograd-f4' | 'winograd-f4h' | 'winograd-simd';
export const DEFAULT_CONV3X3_MODE: Conv3x3Mode = 'winograd-simd';
/** what 'winograd-simd' falls back to where the SIMD heap kernels are not available (backends other than wasm) */
const SIMD_FALLBACK: Conv3x3Mode = 'winograd-f3h';

const WINOGRAD_VARIANT: Record<Exclude<Conv3x3Mode, 'direct' | 'winograd-simd'>, WinogradVariant> = {
  'winograd-f2': 'F2', 'winograd-f3': 'F3', 'winograd-f3h': 'F3h', 'winograd-f4': 'F4', 'winograd-f4h': 'F4h',
};

/** conv + eval BatchNorm folded (float64) into an HWIO (ktime, kmel, in, out) filter and a bias. */
function foldConvBn(p: Params, conv: string, bn: string, eps: number): { filter: Float32Array; bias: Float32Array; inC: number; out: number } {
  const w = p.get(`${conv}.weight`);
  if (w.shape.length !== 4 || w.shape[2] !== 3 || w.shape[3] !== 3) throw new Error(`${p.prefix}${conv}.weight: expected (out, in, 3, 3)`);
  const [out, inC] = w.shape as [number, number];
  const b = p.f32(`${conv}.bias`, [out]);
  const mean = p.f32(`${bn}.running_mean`, [out]);
  const vr = p.f32(`${bn}.running_var`, [out]);
  const g = p.f32(`${bn}.weight`, [out]);
  const beta = p.f32(`${bn}.bias`, [out]);
  const wv = toFloat32(w);
  const per = inC * 9;
  const folded = new Float32Array(wv.length);
  const fb = new Float32Array(out);
  for (let o = 0; o < out; o++) {
    const s = g[o]! / Math.sqrt(vr[o]! + eps);
    for (let i = 0; i < per; i++) folded[o * per + i] = wv[o * per + i]! * s;
    fb[o] = (b[o]! - mean[o]!) * s + beta[o]!;
  }
  // (out, in, kmel, ktime) → (ktime, kmel, in, out): height = time, width = mel
  return { filter: permute(folded, w.shape, [3, 2, 1, 0]).data, bias: fb, inC, out };
}

/** A 3×3 conv (pad 1) with its eval BatchNorm folded in, on (B, T, F, C) tensors. */
class FoldedConv {
  readonly filter: tf.Tensor4D | null = null;
  readonly bias: tf.Tensor1D | null = null;
  readonly wino: Conv3x3Winograd | null = null;
  readonly simd: Winograd3x3 | null = null;
  constructor(f: ReturnType<typeof foldConvBn>, readonly strides: [number, number], mode: Conv3x3Mode = 'direct') {
    const s1 = strides[0] === 1 && strides[1] === 1;
    if (mode === 'winograd-simd' && !winogradAvailable(f.inC, f.out)) mode = SIMD_FALLBACK;
    if (mode === 'winograd-simd' && s1) {
      this.filter = tf.tensor4d(f.filter, [3, 3, f.inC, f.out]);
      this.bias = tf.tensor1d(f.bias);
      // the transformed filter (36 · Cin · Cout floats: 38 MB at 512 → 512) is kept for every window
      this.simd = new Winograd3x3(this.filter, this.bias, { cacheBytes: Infinity });
    } else if (mode !== 'direct' && mode !== 'winograd-simd' && s1) {
      this.wino = new Conv3x3Winograd(f.filter, f.inC, f.out, f.bias, { variant: WINOGRAD_VARIANT[mode] });
    } else {
      this.filter = tf.tensor4d(f.filter, [3, 3, f.inC, f.out]);
      this.bias = tf.tensor1d(f.bias);
    }
  }

  /** conv + bias (+ `res`) (then ReLU): `res` is added before the activation */
  apply(x: tf.Tensor4D, relu: boolean, res?: tf.Tensor4D): tf.Tensor4D {
    if (this.simd) {
      const y = this.simd.conv(x, res);
      if (!relu) return y;
      const r = tf.relu(y) as tf.Tensor4D;
      y.dispose();
      return r;
    }
    if (res) {
      const y = this.apply(x, false);
      const sum = tf.add(y, res);
      y.dispose();
      if (!relu) return sum as tf.Tensor4D;
      const r = tf.relu(sum) as tf.Tensor4D;
      sum.dispose();
      return r;
    }
    if (this.wino) return this.wino.apply(x, relu ? 'relu' : 'linear');
    return tf.fused.conv2d({ x, filter: this.filter!, strides: this.strides, pad: 1, bias: this.bias!, activation: relu ? 'relu' : 'linear' });
  }

  dispose(): void {
    this.filter?.dispose();
    this.bias?.dispose();
    this.wino?.dispose();
    this.simd?.dispose();
  }
}

/** MUQ conv.py `Res2dModule` (the shortcut conv3/bn3 exists whenever stride > 1 or idim ≠ odim: always in MuQ). */
/** the Res2d outputs the parity stages compare, (B, T, F, C) */
type ConvMids = { res0?: tf.Tensor4D; res1?: tf.Tensor4D };

export class Res2dModule {
  readonly conv1: FoldedConv | null = null;
  readonly conv2: FoldedConv;
  readonly conv3: FoldedConv | null = null;
  /** conv1 (ReLU) and conv3 together as one polyphase-Winograd pass (stride (2, 2), in ≥ 4 channels, Winograd mode) */
  readonly conv13: Conv3x3Stride2Winograd | null = null;
  /** the same on the wasm-SIMD path: space-to-depth + F(4×4, 2×2) ('winograd-simd' mode) */
  readonly conv13s: Winograd3x3Stride2 | null = null;

  constructor(p: Params, eps: number, timeStride: number, mode: Conv3x3Mode = DEFAULT_CONV3X3_MODE) {
    const strides: [number, number] = [timeStride, 2];
    const f1 = foldConvBn(p, 'conv1', 'bn1', eps);
    const f3 = p.has('conv3.weight') ? foldConvBn(p, 'conv3', 'bn3', eps) : null;
    if (f3 && mode === 'winograd-simd' && timeStride === 2 && f1.inC >= 4 && winogradAvailable(4 * f1.inC, f1.out + f3.out)) {
      this.conv13s = new Winograd3x3Stride2([f1.filter, f3.filter], f1.inC, [f1.out, f3.out], [f1.bias, f3.bias]);
    } else if (f3 && mode !== 'direct' && timeStride === 2 && f1.inC >= 4) {
      this.conv13 = new Conv3x3Stride2Winograd([f1.filter, f3.filter], f1.inC, [f1.out, f3.out], [f1.bias, f3.bias]);
    } else {
      this.conv1 = new FoldedConv(f1, strides);
      this.conv3 = f3 ? new FoldedConv(f3, strides) : null;
    }
    this.conv2 = new FoldedConv(foldConvBn(p, 'conv2', 'bn2', eps), [1, 1], mode);
  }

  /** (B, T, F, Cin) → (B, ceil(T/s), ceil(F/2), C); intermediates are freed as soon as possible. */
  apply(x: tf.Tensor4D): tf.Tensor4D {
    let h: tf.Tensor4D;
    let sc: tf.Tensor4D;
    if (this.conv13s) {
      let h0: tf.Tensor4D;
      [h0, sc] = this.conv13s.apply(x) as [tf.Tensor4D, tf.Tensor4D];
      h = tf.relu(h0) as tf.Tensor4D;
      h0.dispose();
    } else if (this.conv13) {
      [h, sc] = this.conv13.apply(x, ['relu', 'linear']) as [tf.Tensor4D, tf.Tensor4D];
    } else {
      h = this.conv1!.apply(x, true);
      sc = this.conv3 ? this.conv3.apply(x, false) : x;
    }
    const y = this.conv2.apply(h, true, sc); // relu(bn2(conv2(h)) + shortcut)
    h.dispose();
    if (sc !== x) sc.dispose();
    return y;
  }

  dispose(): void {
    this.conv1?.dispose();
    this.conv2.dispose();
    this.conv3?.dispose();
    this.conv13?.dispose();
    this.conv13s?.dispose();
  }
}

export class Conv2dSubsampling {
  readonly res: [Res2dModule, Res2dModule];
  readonly linear: Linear;
  readonly bandsOut: number;

  /** `p` at the module (e.g. `model.conv.` of a MuQ state dict). */
  constructor(p: Params, readonly cfg: ConvSubsamplingConfig) {
    this.res = [
      new Res2dModule(p.sub('conv.0.'), cfg.batchNormEps, cfg.strides[0], cfg.conv3x3),
      new Res2dModule(p.sub('conv.1.'), cfg.batchNormEps, cfg.strides[1], cfg.conv3x3),
    ];
    this.bandsOut = Math.ceil(Math.ceil(cfg.nMels / 2) / 2);
    const inF = cfg.convDim * this.bandsOut;
    if (inF !== Math.floor((cfg.convDim * cfg.nMels) / 4)) throw new Error(`conv subsampling: n_mels ${cfg.nMels} must be a multiple of 4`);
    // Linear input columns: upstream c·F + f, ours f·C + c
    const w = p.get('linear.weight', [cfg.encoderDim, inF]);
    const wp = permute(toFloat32(w), [cfg.encoderDim, cfg.convDim, this.bandsOut], [0, 2, 1]);
    const lp = new Params(new Map<string, HostTensor>([
      ['linear.weight', { dtype: 'float32', shape: [cfg.encoderDim, inF], data: wp.data }],
      ['linear.bias', p.get('linear.bias', [cfg.encoderDim])],
    ]), '', `${p.source} (${p.prefix}linear, columns permuted)`);
    this.linear = new Linear(lp, 'linear', inF, cfg.encoderDim);
  }

  /** Output frames for T input mel frames. */
  outFrames(t: number): number {
    return Math.ceil(Math.ceil(t / this.cfg.strides[0]) / this.cfg.strides[1]);
  }

  /**
   * x: normalised mel, TIME-major (B, T, n_mels) → (B, T', encoder_dim).
   * `mids` (optional) receives the Res2d outputs in our (B, T, F, C) layout (kept tensors, caller disposes).
   */
  apply(x: tf.Tensor3D, mids?: ConvMids): tf.Tensor3D {
    const [b, t, f] = x.shape;
    if (f !== this.cfg.nMels) throw new Error(`conv subsampling: expected ${this.cfg.nMels} mel bands, got ${f}`);
    // split over the batch, then over time with a halo, when the activations would exceed the binding limit (src/device.ts;
    // the real width's res0 output alone is 256 MiB per window; ×4 for the Winograd transforms of the device path)
    const limit = bindingLimit();
    const perFrame = 4 * Math.ceil(f / 2) * this.cfg.convDim * 4 / 2; // bytes per input frame of the largest tensor
    if (!mids && b * t * perFrame > limit) {
      if (t * perFrame <= limit) return this.applySplit(x, Math.floor(limit / (t * perFrame)), t);
      const S = this.cfg.strides[0] * this.cfg.strides[1];
      const frames = Math.floor(limit / perFrame / S) * S - 2 * this.halo();
      if (frames < S) throw new Error(`conv subsampling: no chunk of mel frames fits the device's binding limit (${limit} bytes)`);
      return this.applySplit(x, 1, frames);
    }
    return this.applyWhole(x, mids);
  }

  /**
   * `apply` over batch rows of `rowsPerCall` and time chunks of `frames` input frames (a multiple of the time stride
   * product S), each computed with a halo of H real frames on both sides and cropped back: output frame j depends on
   * input frames [S·j − 3S − 3, S·j + 3S + 3] at most (each 3×3 conv reaches ±1 row of its input), so every kept frame
   * sees exactly the inputs of the whole-length call; the chunk starts stay aligned to S, so the strides match.
   */
  applySplit(x: tf.Tensor3D, rowsPerCall: number, frames: number): tf.Tensor3D {
    const [b, t, f] = x.shape;
    const S = this.cfg.strides[0] * this.cfg.strides[1];
    const halo = this.halo();
    const outT = this.outFrames(t);
    const parts: tf.Tensor3D[] = [];
    try {
      for (let r0 = 0; r0 < b; r0 += rowsPerCall) {
        const nb = Math.min(rowsPerCall, b - r0);
        const row: tf.Tensor3D[] = [];
        try {
          for (let a = 0; a < t; a += frames) {
            const e = Math.min(t, a + frames);
            const s0 = Math.max(0, a - halo), s1 = Math.min(t, e + halo);
            const o0 = a / S, o1 = e === t ? outT : e / S; // output frames kept, global
            row.push(tf.tidy(() => {
              const xc = x.slice([r0, s0, 0], [nb, s1 - s0, f]);
              const y = this.applyWhole(xc);
              return y.slice([0, o0 - s0 / S, 0], [nb, o1 - o0, y.shape[2]]);
            }));
          }
          parts.push(row.length === 1 ? tf.keep(row[0]!.clone()) : tf.concat(row, 1));
        } finally {
          for (const r of row) r.dispose();
        }
      }
      return parts.length === 1 ? parts[0]!.clone() : tf.concat(parts, 0);
    } finally {
      for (const p of parts) p.dispose();
    }
  }

  /** halo frames of a time chunk: a multiple of the stride product S covering the ±(3S + 3) frames an output sees */
  private halo(): number {
    const S = this.cfg.strides[0] * this.cfg.strides[1];
    return S * Math.ceil((3 * S + 3) / S);
  }

  /** the frontend on one call, unsplit; `mids` (parity) keeps the two residual blocks' outputs */
  private applyWhole(x: tf.Tensor3D, mids?: ConvMids): tf.Tensor3D {
    const [b, t, f] = x.shape;
    const x4 = x.reshape([b, t, f, 1]) as tf.Tensor4D;
    const r0 = this.res[0].apply(x4);
    x4.dispose();
    const r1 = this.res[1].apply(r0);
    if (mids) mids.res0 = r0; else r0.dispose();
    if (mids) mids.res1 = tf.keep(r1.clone());
    const [, t2, f2, c2] = r1.shape;
    const flat = r1.reshape([b, t2, f2 * c2]);
    r1.dispose();
    const y = this.linear.apply(flat) as tf.Tensor3D;
    flat.dispose();
    return y;
  }

  dispose(): void {
    this.res[0].dispose();
    this.res[1].dispose();
    this.linear.dispose();
  }
}
