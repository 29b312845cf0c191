/**
 * HiFi-GAN vocoder as AudioLDM-48k builds it (MuCodec tools/get_melvaehifigan48k.py: Generator_old, ResBlock,
 * vocoder_chunk_infer), with the weights as the checkpoint stores them (weight norm already removed).
 *
 * Tensors are channels-last (B, T, C) inside; the boundaries keep PyTorch's (B, num_mels, frames) NCL mel and
 * (B, 1, samples) waveform. Every step disposes its inputs as soon as it can: at the real width the last
 * stage holds 48 channels × ~491k samples per tensor for one 1024-frame chunk.
 */
import * as tf from '@tensorflow/tfjs-core';
import { conv1dFilter } from '../../layers/host.js';
import { shapeStr, toFloat32, type HostTensor } from '../hosttensor.js';
import type { Params } from '../params.js';

/** get_vocoder_config_48k (the fields the generator uses) */
export interface HifiganConfig {
  resblock: string;
  upsample_rates: number[];
  upsample_kernel_sizes: number[];
  upsample_initial_channel: number;
  resblock_kernel_sizes: number[];
  resblock_dilation_sizes: number[][];
  num_mels: number;
}

export const HIFIGAN_48K: HifiganConfig = {
  resblock: '1',
  upsample_rates: [6, 5, 4, 2, 2],
  upsample_kernel_sizes: [12, 10, 8, 4, 4],
  upsample_initial_channel: 1536,
  resblock_kernel_sizes: [3, 7, 11, 15],
  resblock_dilation_sizes: [[1, 3, 5], [1, 3, 5], [1, 3, 5], [1, 3, 5]],
  num_mels: 256,
};

/** LRELU_SLOPE inside the generator; the last leaky_relu uses PyTorch's default 0.01 */
const LRELU_SLOPE = 0.1;
const LRELU_DEFAULT = 0.01;

/** get_padding(k, d) = int((k·d − d)/2) */
const getPadding = (k: number, d: number): number => Math.floor((k * d - d) / 2);

/** y = tidy(fn(x)), disposing x (when owned) afterwards */
function step<T extends tf.Tensor>(x: tf.Tensor, owned: boolean, fn: (x: tf.Tensor) => T): T {
  const y = tf.tidy(() => fn(x));
  if (owned) x.dispose();
  return y;
}

/**
 * nn.ConvTranspose1d(cin, cout, k, stride u, padding p) on NWC input, computed polyphase as ONE ordinary
 * convolution (tfjs-wasm's transposed conv kernel is ~10× slower than its conv):
 * full output y[q·u + r] = Σ_j x[q − j] · W[:, :, j·u + r] (j = 0 … J−1, J = ceil(k/u)), i.e. a J-tap conv over
 * x zero-padded by J−1 on both sides with u·cout output channels (phase-major), interleaved to (q·u + r),
 * then cropped to [p, p + (L−1)·u − 2p + k) as PyTorch's padding does.
 */
export class ConvTranspose1dPolyphase {
  readonly filter: tf.Tensor3D;
  readonly bias: tf.Tensor1D;
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
    this.filter = tf.tensor3d(f, [J, cin, u * cout]);
    this.bias = p.tensor(`${name}.bias`, [cout]) as tf.Tensor1D;
  }

  outLength(len: number): number {
    return (len - 1) * this.stride - 2 * this.padding + this.kernel;
  }

  apply(x: tf.Tensor3D): tf.Tensor3D {
    return tf.tidy(() => {
      const [n, len, cin] = x.shape;
      if (cin !== this.inChannels) throw new Error(`ConvTranspose1d: input has ${cin} channels, expected ${this.inChannels}`);
      const J = this.taps, u = this.stride, cout = this.outChannels;
      const xp = J > 1 ? tf.pad(x, [[0, 0], [J - 1, J - 1], [0, 0]]) : x;
      const y = tf.conv1d(xp as tf.Tensor3D, this.filter, 1, 'valid'); // (n, len + J − 1, u·cout)
      const q = len + J - 1;
      const full = y.reshape([n, q * u, cout]);
      const outLen = this.outLength(len);
      return tf.add(tf.slice(full, [0, this.padding, 0], [n, outLen, cout]), this.bias) as tf.Tensor3D;
    });
  }

  dispose(): void {
    this.filter.dispose();
    this.bias.dispose();
  }
}

/**
 * nn.Conv1d (stride 1, zero padding, dilation) on NWC input, computed over bands of at most `band` output
 * samples. Same dot products as one whole-length conv; the point is memory: the wasm conv kernel caches, per
 * weight tensor, an indirection buffer proportional to the output length (k pointers per output sample), so
 * 24 whole-length convs of one vocoder stage at 480k samples would pin ~0.4 GB of heap for good.
 */
export class BandedConv1d {
  readonly filter: tf.Tensor3D;
  readonly bias: tf.Tensor1D;
  readonly kernel: number;
  readonly inChannels: number;
  readonly outChannels: number;

  constructor(p: Params, name: string, readonly padding: number, readonly dilation = 1, readonly band = 1 << 16) {
    const w = p.get(`${name}.weight`);
    if (w.shape.length !== 3) throw new Error(`${name}.weight: expected (out, in, k), got ${shapeStr(w.shape)}`);
    [this.outChannels, this.inChannels, this.kernel] = w.shape as [number, number, number];
    const f = conv1dFilter(w); // (k, in, out)
    this.filter = tf.tensor3d(f.data, f.shape as [number, number, number]);
    this.bias = p.tensor(`${name}.bias`, [this.outChannels]) as tf.Tensor1D;
  }

  apply(x: tf.Tensor3D): tf.Tensor3D {
    return tf.tidy(() => {
      const [n, len, cin] = x.shape;
      if (cin !== this.inChannels) throw new Error(`Conv1d: input has ${cin} channels, expected ${this.inChannels}`);
      const span = (this.kernel - 1) * this.dilation;
      const xp = this.padding ? tf.pad(x, [[0, 0], [this.padding, this.padding], [0, 0]]) : x;
      const outLen = len + 2 * this.padding - span;
      if (outLen <= this.band) return tf.add(tf.conv1d(xp as tf.Tensor3D, this.filter, 1, 'valid', 'NWC', this.dilation), this.bias);
      const parts: tf.Tensor3D[] = [];
      for (let t0 = 0; t0 < outLen; t0 += this.band) {
        const m = Math.min(this.band, outLen - t0);
        const xi = tf.slice(xp, [0, t0, 0], [n, m + span, cin]) as tf.Tensor3D;
        parts.push(tf.conv1d(xi, this.filter, 1, 'valid', 'NWC', this.dilation));
      }
      return tf.add(tf.concat(parts, 1), this.bias);
    });
  }

  dispose(): void {
    this.filter.dispose();
    this.bias.dispose();
  }
}

/** GM:ResBlock (type "1"): three (c1 dilated, c2) pairs, x = c2(lrelu(c1(lrelu(x)))) + x */
export class ResBlock1 {
  readonly convs1: BandedConv1d[];
  readonly convs2: BandedConv1d[];

  constructor(p: Params, readonly channels: number, readonly kernel: number, readonly dilation: number[]) {
    this.convs1 = dilation.map((d, i) => {
      p.get(`convs1.${i}.weight`, [channels, channels, kernel]);
      return new BandedConv1d(p, `convs1.${i}`, getPadding(kernel, d), d);
    });
    this.convs2 = dilation.map((_, i) => {
      p.get(`convs2.${i}.weight`, [channels, channels, kernel]);
      return new BandedConv1d(p, `convs2.${i}`, getPadding(kernel, 1), 1);
    });
  }

  /** x is not disposed */
  apply(x: tf.Tensor3D): tf.Tensor3D {
    let cur = x;
    for (let i = 0; i < this.convs1.length; i++) {
      const c1 = this.convs1[i]!, c2 = this.convs2[i]!;
      const xt = tf.tidy(() => {
        const a = tf.tidy(() => c1.apply(tf.leakyRelu(cur, LRELU_SLOPE)));
        const b = tf.tidy(() => c2.apply(tf.leakyRelu(a, LRELU_SLOPE)));
        a.dispose();
        return b;
      });
      const next = tf.add(xt, cur) as tf.Tensor3D; // xt + x
      xt.dispose();
      if (cur !== x) cur.dispose();
      cur = next;
    }
    return cur;
  }

  dispose(): void {
    for (const c of [...this.convs1, ...this.convs2]) c.dispose();
  }
}

interface GeneratorWeights {
  convPre: BandedConv1d;
  ups: ConvTranspose1dPolyphase[];
  resblocks: ResBlock1[];
  convPost: BandedConv1d;
}

/**
 * GM:Generator_old after remove_weight_norm(). Names and shapes are checked when it is constructed; the
 * backend tensors are created on first use and freed by `release()` (the generator can run again after it:
 * the weights are re-uploaded). At width 1536 the resident vocoder costs ~0.76 GB of weights plus the
 * packed copies the wasm conv kernels cache (≈ 2.2 GB of wasm heap in all), so a caller that also needs
 * the VAE decoder in the same heap releases one before using the other.
 */
export class HifiGanGenerator {
  readonly numKernels: number;
  private w: GeneratorWeights | null = null;

  /** `p`: the vocoder subtree (names conv_pre.*, ups.i.*, resblocks.j.*, conv_post.*) */
  constructor(readonly p: Params, readonly cfg: HifiganConfig = HIFIGAN_48K) {
    if (cfg.resblock !== '1') throw new Error(`HiFi-GAN: only resblock "1" is implemented (Generator_old), got "${cfg.resblock}"`);
    if (p.has('conv_pre.weight_g') || p.has('conv_pre.weight_v')) {
      throw new Error('HiFi-GAN: weights still carry weight norm (weight_g/weight_v); fold them first (upstream loads the vocoder after remove_weight_norm)');
    }
    this.numKernels = cfg.resblock_kernel_sizes.length;
    // check every name and shape now, so a bad checkpoint fails at load time
    const c0 = cfg.upsample_initial_channel;
    p.get('conv_pre.weight', [c0, cfg.num_mels, 7]); p.get('conv_pre.bias', [c0]);
    let ch = c0;
    cfg.upsample_rates.forEach((_, i) => {
      const cin = Math.floor(c0 / 2 ** i);
      ch = Math.floor(c0 / 2 ** (i + 1));
      p.get(`ups.${i}.weight`, [cin, ch, cfg.upsample_kernel_sizes[i]!]); p.get(`ups.${i}.bias`, [ch]);
      cfg.resblock_kernel_sizes.forEach((k, j) => {
        const r = `resblocks.${i * this.numKernels + j}.`;
        cfg.resblock_dilation_sizes[j]!.forEach((_d, m) => {
          for (const s of ['convs1', 'convs2']) { p.get(`${r}${s}.${m}.weight`, [ch, ch, k]); p.get(`${r}${s}.${m}.bias`, [ch]); }
        });
      });
    });
    p.get('conv_post.weight', [1, ch, 7]); p.get('conv_post.bias', [1]);
  }

  private get weights(): GeneratorWeights {
    if (this.w) return this.w;
    const { p, cfg } = this;
    const convPre = new BandedConv1d(p, 'conv_pre', 3);
    const ups = cfg.upsample_rates.map((u, i) => {
      const k = cfg.upsample_kernel_sizes[i]!;
      return new ConvTranspose1dPolyphase(p, `ups.${i}`, u, Math.floor((k - u) / 2));
    });
    const resblocks: ResBlock1[] = [];
    for (let i = 0; i < ups.length; i++) {
      const ch = Math.floor(cfg.upsample_initial_channel / 2 ** (i + 1));
      cfg.resblock_kernel_sizes.forEach((k, j) => {
        resblocks.push(new ResBlock1(p.sub(`resblocks.${i * this.numKernels + j}.`), ch, k, cfg.resblock_dilation_sizes[j]!));
      });
    }
    const convPost = new BandedConv1d(p, 'conv_post', 3);
    this.w = { convPre, ups, resblocks, convPost };
    return this.w;
  }

  /** whether the backend tensors are currently uploaded */
  get resident(): boolean { return this.w !== null; }

  /** samples produced for `frames` mel frames (frames·480 + 16 at the real config) */
  outLength(frames: number): number {
    let len = frames;
    this.cfg.upsample_rates.forEach((u, i) => {
      const k = this.cfg.upsample_kernel_sizes[i]!;
      len = (len - 1) * u - 2 * Math.floor((k - u) / 2) + k;
    });
    return len;
  }

  /**
   * forward on NWC mel (B, frames, num_mels) → (B, samples) waveform; `x` is not disposed.
   * `taps` receives (and must not keep) the intermediates named as the fixture does.
   */
  forwardNWC(mel: tf.Tensor3D, taps?: (name: string, t: tf.Tensor3D) => void): tf.Tensor2D {
    const w = this.weights;
    let x = step(mel, false, (m) => w.convPre.apply(m as tf.Tensor3D));
    taps?.('conv_pre', x);
    for (let i = 0; i < w.ups.length; i++) {
      x = step(x, true, (t) => w.ups[i]!.apply(tf.leakyRelu(t as tf.Tensor3D, LRELU_SLOPE)));
      taps?.(`ups.${i}`, x);
      let xs: tf.Tensor3D | null = null;
      for (let j = 0; j < this.numKernels; j++) {
        const r = w.resblocks[i * this.numKernels + j]!.apply(x);
        if (!xs) { xs = r; continue; }
        const s = tf.add(xs, r) as tf.Tensor3D; // xs += resblock(x), in order
        xs.dispose(); r.dispose();
        xs = s;
      }
      x.dispose();
      x = step(xs!, true, (t) => tf.div(t, this.numKernels));
    }
    const post = step(x, true, (t) => w.convPost.apply(tf.leakyRelu(t as tf.Tensor3D, LRELU_DEFAULT)));
    taps?.('conv_post', post);
    return step(post, true, (t) => tf.tanh(t).reshape([t.shape[0]!, t.shape[1]!])) as tf.Tensor2D;
  }

  /** forward on host NCL mel (B, num_mels, frames) → host (B, samples) */
  generate(mel: HostTensor, taps?: (name: string, t: tf.Tensor3D) => void): { data: Float32Array; shape: [number, number] } {
    const [B, nm, F] = mel.shape as [number, number, number];
    if (mel.shape.length !== 3 || nm !== this.cfg.num_mels) throw new Error(`hifigan: mel must be (B, ${this.cfg.num_mels}, frames), got ${shapeStr(mel.shape)}`);
    return this.generateNWC(nclToNwc(toFloat32(mel), B, nm, F, 0, F), B, F, taps);
  }

  /**
   * Time tiling of a call (memory): frames are vocoded in tiles of `tileFrames` frames, each computed with
   * `haloFrames` extra frames of real context on both sides and cropped back. Every kept output sample sees
   * exactly the inputs it sees in the whole-length call (the generator's receptive field is ±24 mel frames:
   * conv_pre ±3, then per stage the ResBlocks' ±6(k−1) = ±84 samples and the transposed conv's ±2 inputs), so
   * the result is the same; the activations shrink to tile size (at width 1536 a 1024-frame call otherwise
   * holds ~92 MB tensors in every stage). 0 disables tiling.
   */
  tileFrames = 512;
  haloFrames = 32;

  /** samples per mel frame (the product of the upsample rates: 480) */
  get hop(): number {
    return this.cfg.upsample_rates.reduce((a, b) => a * b, 1);
  }

  /** forward on a host NWC mel (B, frames, num_mels) → host (B, samples) */
  generateNWC(nwc: Float32Array, B: number, frames: number, taps?: (name: string, t: tf.Tensor3D) => void): { data: Float32Array; shape: [number, number] } {
    const nm = this.cfg.num_mels;
    const T = this.tileFrames, H = this.haloFrames;
    if (taps || !T || frames <= T) return this.forwardHost(nwc, B, frames, taps);
    const hop = this.hop;
    const outLen = this.outLength(frames);
    const out = new Float32Array(B * outLen);
    for (let c0 = 0; c0 < frames; c0 += T) {
      const c1 = Math.min(frames, c0 + T);
      const a = Math.max(0, c0 - H), b = Math.min(frames, c1 + H);
      const tile = new Float32Array(B * (b - a) * nm);
      for (let n = 0; n < B; n++) tile.set(nwc.subarray((n * frames + a) * nm, (n * frames + b) * nm), n * (b - a) * nm);
      const y = this.forwardHost(tile, B, b - a);
      // tile sample s ↔ global sample a·hop + s (every stage is shift-equivariant with its stride)
      const g0 = c0 * hop, g1 = c1 === frames ? outLen : c1 * hop;
      const s0 = g0 - a * hop;
      for (let n = 0; n < B; n++) out.set(y.data.subarray(n * y.shape[1] + s0, n * y.shape[1] + s0 + (g1 - g0)), n * outLen + g0);
    }
    return { data: out, shape: [B, outLen] };
  }

  private forwardHost(nwc: Float32Array, B: number, frames: number, taps?: (name: string, t: tf.Tensor3D) => void): { data: Float32Array; shape: [number, number] } {
    const x = tf.tensor3d(nwc, [B, frames, this.cfg.num_mels]);
    try {
      const y = this.forwardNWC(x, taps);
      const out = y.dataSync() as Float32Array;
      const shape = y.shape as [number, number];
      y.dispose();
      return { data: out, shape };
    } finally {
      x.dispose();
    }
  }

  /** free the backend tensors (the next forward uploads them again) */
  release(): void {
    const w = this.w;
    if (!w) return;
    this.w = null;
    w.convPre.dispose(); w.convPost.dispose();
    for (const u of w.ups) u.dispose();
    for (const r of w.resblocks) r.dispose();
  }

  dispose(): void {
    this.release();
  }
}

/** GM:vocoder_chunk_infer constants */
export const VOCODER_CHUNK = 256 * 4;
export const VOCODER_SHIFT = 256;

/**
 * The vocoder calls GM:vocoder_chunk_infer makes for `frames` mel frames: [start, end) frame ranges for
 * c = 0, 256, 512, … stopping after the first c with c + 1024 ≥ frames.
 */
export function vocoderChunks(frames: number, chunk = VOCODER_CHUNK, shift = VOCODER_SHIFT): Array<[number, number]> {
  const out: Array<[number, number]> = [];
  for (let c = 0; c < frames; c += shift) {
    out.push([c, Math.min(frames, c + chunk)]);
    if (c + chunk >= frames) break;
  }
  return out;
}

/**
 * Streaming form of vocoder_chunk_infer's stitching on host arrays (one row per batch item):
 * first call: cut to num_samples = int(len/1024)·1024, ov_sample = int(num_samples·768/1024), ramp =
 * np.linspace(0, 1, ov_sample) (float64); later calls: cur[:, :num_samples], running[−ov:] = running[−ov:]·(1 − ramp)
 * + cur[:ov]·ramp (float64 arithmetic, stored as float32), then cur[ov:] appended.
 */
export class ChunkStitcher {
  private parts: Float32Array[][] = [];
  private numSamples = -1;
  private ovSample = 0;
  private ramp: Float64Array | null = null;

  constructor(readonly rows: number, readonly chunk = VOCODER_CHUNK, readonly shift = VOCODER_SHIFT) {}

  /** add one vocoder call's output (rows × samples, row-major) */
  push(wav: Float32Array, samples: number): void {
    const R = this.rows;
    if (wav.length !== R * samples) throw new Error(`ChunkStitcher: ${wav.length} values are not ${R} rows × ${samples}`);
    if (this.numSamples < 0) {
      const ns = Math.floor(samples / this.chunk) * this.chunk;
      this.numSamples = ns;
      const ov = Math.floor((ns * (this.chunk - this.shift)) / this.chunk);
      this.ovSample = ov;
      this.ramp = linspace01(ov);
      const rows: Float32Array[] = [];
      for (let r = 0; r < R; r++) rows.push(wav.slice(r * samples, r * samples + ns));
      this.parts.push(rows);
      return;
    }
    const ov = this.ovSample;
    const n = Math.min(samples, this.numSamples);
    if (n < ov) throw new Error(`vocoder_chunk_infer: a later chunk gave ${n} samples, fewer than the ${ov}-sample overlap`);
    const tails = this.takeTail(ov);
    const ramp = this.ramp!;
    const rows: Float32Array[] = [];
    for (let r = 0; r < R; r++) {
      const cur = wav.subarray(r * samples, r * samples + n);
      const t = tails[r]!;
      for (let i = 0; i < ov; i++) t[i] = t[i]! * (1 - ramp[i]!) + cur[i]! * ramp[i]!; // float64, stored float32
      rows.push(cur.slice(ov));
    }
    this.parts.push(tails, rows);
  }

  /** detach the last `ov` samples of the running output (per row) as separate arrays */
  private takeTail(ov: number): Float32Array[] {
    const total = this.length;
    if (total < ov) throw new Error(`vocoder_chunk_infer: running output (${total}) shorter than the overlap (${ov})`);
    const tails: Float32Array[] = Array.from({ length: this.rows }, () => new Float32Array(ov));
    let need = ov;
    while (need > 0) {
      const last = this.parts[this.parts.length - 1]!;
      const len = last[0]!.length;
      const take = Math.min(need, len);
      for (let r = 0; r < this.rows; r++) tails[r]!.set(last[r]!.subarray(len - take), need - take);
      if (take === len) this.parts.pop();
      else this.parts[this.parts.length - 1] = last.map((a) => a.subarray(0, len - take));
      need -= take;
    }
    return tails;
  }

  get length(): number {
    let n = 0;
    for (const p of this.parts) n += p[0]!.length;
    return n;
  }

  /** (rows, samples) row-major */
  result(): { data: Float32Array; shape: [number, number] } {
    const n = this.length;
    const out = new Float32Array(this.rows * n);
    let off = 0;
    for (const p of this.parts) {
      for (let r = 0; r < this.rows; r++) out.set(p[r]!, r * n + off);
      off += p[0]!.length;
    }
    return { data: out, shape: [this.rows, n] };
  }
}

/** np.linspace(0, 1, n) (float64): i·(1/(n−1)), last exactly 1 */
export function linspace01(n: number): Float64Array {
  const y = new Float64Array(n);
  if (n === 1) { y[0] = 0; return y; }
  const step = 1 / (n - 1);
  for (let i = 0; i < n; i++) y[i] = i * step;
  y[n - 1] = 1;
  return y;
}

/** frames [f0, f1) of a host NCL mel (B, nm, F) as NWC (B, f1 − f0, nm) */
export function nclToNwc(mel: Float32Array, B: number, nm: number, F: number, f0: number, f1: number): Float32Array {
  const len = f1 - f0;
  const out = new Float32Array(B * len * nm);
  for (let b = 0; b < B; b++) {
    for (let c = 0; c < nm; c++) {
      const src = (b * nm + c) * F + f0;
      for (let t = 0; t < len; t++) out[(b * len + t) * nm + c] = mel[src + t]!;
    }
  }
  return out;
}

/**
 * GM:vocoder_chunk_infer: `frames` mel frames of B rows → (B, samples) float32 (upstream returns a numpy
 * array). `chunkNWC(f0, f1)` supplies the mel frames [f0, f1) as NWC (B, f1 − f0, num_mels); one 1024-frame
 * vocoder call runs at a time.
 */
export function vocoderChunkInfer(
  gen: HifiGanGenerator, chunkNWC: (f0: number, f1: number) => Float32Array, B: number, frames: number,
  onCall?: (i: number, inFrames: number, outSamples: number) => void,
): { data: Float32Array; shape: [number, number] } {
  const st = new ChunkStitcher(B);
  vocoderChunks(frames).forEach(([f0, f1], i) => {
    const y = gen.generateNWC(chunkNWC(f0, f1), B, f1 - f0);
    onCall?.(i, f1 - f0, y.shape[1]);
    st.push(y.data, y.shape[1]);
  });
  return st.result();
}

/** vocoder_chunk_infer on a host NCL mel (B, num_mels, frames), as decode_to_waveform feeds it */
export function vocoderChunkInferNCL(gen: HifiGanGenerator, mel: HostTensor): { data: Float32Array; shape: [number, number] } {
  const [B, nm, F] = mel.shape as [number, number, number];
  const d = toFloat32(mel);
  return vocoderChunkInfer(gen, (f0, f1) => nclToNwc(d, B, nm, F, f0, f1), B, F);
}
