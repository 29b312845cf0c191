/**
 * HiFi-GAN vocoder as AudioLDM-48k builds it (MuCodec tools/get_melvaehifigan48k.py: Generator_old, ResBlock,
 * vocoder_chunk_infer), with the weights as the checkpoint stores them (weight norm already removed).
 *
 * Tensors are channels-last (B, T, C) inside; the boundaries keep PyTorch's (B, num_mels, frames) NCL mel and
 * (B, 1, samples) waveform. Every step disposes its inputs as soon as it can: at the real width the last
 * stage holds 48 channels × ~491k samples per tensor for one 1024-frame chunk.
 */
import { drainSteps } from '../steps.js';
import * as tf from '@tensorflow/tfjs-core';
import { conv1dFilter } from '../../layers/host.js';
import { shapeStr, toFloat32, type HostTensor } from '../hosttensor.js';
import type { Params } from '../params.js';
import { bandGather, conv1dSmall, leakyRelu, simdAvailable, smallConvStrategy } from '../simd/conv1d.js';

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
 *   - otherwise tf.fused.conv2d (bias and leaky ReLU fused, padding given to the kernel, so no padded copy), over
 *     bands of at most `band` output samples per row when a row is longer: the wasm conv kernel caches, per weight
 *     tensor, an indirection buffer of k pointers per output sample of ONE row (the batch does not count), so the
 *     bands are folded into the batch dimension (one gather copy, one conv call).
 */
export class Conv1dCore {
  readonly filter: tf.Tensor3D;
  readonly filter4: tf.Tensor4D;
  readonly bias: tf.Tensor1D;
  readonly kernel: number;
  readonly inChannels: number;
  readonly outChannels: number;

  constructor(
    filter: Float32Array, shape: [number, number, number], bias: Float32Array,
    readonly padL: number, readonly padR: number, readonly dilation = 1, readonly band = 1 << 16,
  ) {
    [this.kernel, this.inChannels, this.outChannels] = shape;
    if (bias.length !== this.outChannels) throw new Error(`Conv1d: ${bias.length} bias values for ${this.outChannels} channels`);
    this.filter = tf.tensor3d(filter, shape);
    this.filter4 = this.filter.reshape([1, ...shape]) as tf.Tensor4D;
    this.bias = tf.tensor1d(bias);
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
    this.filter4.dispose();
    this.filter.dispose();
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
    this.conv = new Conv1dCore(f, [J, cin, u * cout], bias, J - 1, J - 1);
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
    const f = conv1dFilter(w); // (k, in, out)
    super(f.data, f.shape as [number, number, number], p.f32(`${name}.bias`, [cout]), padding, padding, dilation, band);
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

  /**
   * x is not disposed. `ax` = leaky_relu(x, 0.1) when the caller has it already (the four ResBlocks of a stage
   * share their input). Per pair: c1 with the next leaky ReLU fused, then c2 with the residual add fused.
   */
  apply(x: tf.Tensor3D, ax?: tf.Tensor3D): tf.Tensor3D {
    let cur = x;
    let a = ax ?? leakyRelu(x, LRELU_SLOPE);
    for (let i = 0; i < this.convs1.length; i++) {
      const h = this.convs1[i]!.apply(a, { slope: LRELU_SLOPE }); // leaky_relu(c1(xt))
      if (a !== ax) a.dispose();
      const next = this.convs2[i]!.apply(h, { res: cur }); // c2(xt) + x
      h.dispose();
      if (cur !== x) cur.dispose();
      cur = next;
      if (i + 1 < this.convs1.length) a = leakyRelu(cur, LRELU_SLOPE);
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

/** one vocoder input: NWC mel (frames × num_mels, row-major) */
export interface MelInput {
  data: Float32Array;
  frames: number;
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
   * Receptive field in mel frames (one side), rounded up: how far from an output sample an input frame can still
   * change it. conv_pre ±3 frames; per stage the transposed conv reaches ±ceil(k/u) input samples and the
   * ResBlocks ±max_k Σ_m (k−1)(d_m+1)/2 output samples; conv_post ±3 samples. 24 at the 48 kHz config.
   */
  receptiveFrames(): number {
    const { cfg } = this;
    let frames = 3; // conv_pre k 7
    let rate = 1; // samples per frame at the current stage input
    cfg.upsample_rates.forEach((u, i) => {
      const k = cfg.upsample_kernel_sizes[i]!;
      frames += Math.ceil(k / u) / rate;
      rate *= u;
      let rb = 0;
      cfg.resblock_kernel_sizes.forEach((kr, j) => {
        rb = Math.max(rb, cfg.resblock_dilation_sizes[j]!.reduce((s, d) => s + ((kr - 1) * (d + 1)) / 2, 0));
      });
      frames += rb / rate;
    });
    frames += 3 / rate; // conv_post k 7
    return Math.ceil(frames);
  }

  /** largest activation per mel frame of one row, in bytes (the widest stage: rate × channels × 4) */
  get bytesPerFrame(): number {
    const c0 = this.cfg.upsample_initial_channel;
    let best = c0, rate = 1;
    this.cfg.upsample_rates.forEach((u, i) => {
      rate *= u;
      best = Math.max(best, rate * Math.floor(c0 / 2 ** (i + 1)));
    });
    return 4 * best;
  }

  /**
   * forward on NWC mel (B, frames, num_mels) → (B, samples) waveform; `x` is not disposed.
   * `taps` receives (and must not keep) the intermediates named as the fixture does.
   */
  forwardNWC(mel: tf.Tensor3D, taps?: (name: string, t: tf.Tensor3D) => void): tf.Tensor2D {
    return drainSteps(this.forwardNWCSteps(mel, taps));
  }

  /** forwardNWC as a step generator: one yield after every ResBlock (src/steps.ts); closing it early frees its tensors */
  *forwardNWCSteps(mel: tf.Tensor3D, taps?: (name: string, t: tf.Tensor3D) => void): Generator<string, tf.Tensor2D, void> {
    const w = this.weights;
    const live = new Set<tf.Tensor>();
    const hold = <T extends tf.Tensor>(t: T): T => { live.add(t); return t; };
    const drop = (t: tf.Tensor): void => { live.delete(t); t.dispose(); };
    try {
      let x = hold(w.convPre.apply(mel));
      taps?.('conv_pre', x);
      for (let i = 0; i < w.ups.length; i++) {
        const a = hold(leakyRelu(x, LRELU_SLOPE));
        drop(x);
        const up = hold(w.ups[i]!.apply(a));
        drop(a);
        taps?.(`ups.${i}`, up);
        const au = hold(leakyRelu(up, LRELU_SLOPE)); // the four ResBlocks share leaky_relu(x)
        let xs: tf.Tensor3D | null = null;
        for (let j = 0; j < this.numKernels; j++) {
          const r = hold(w.resblocks[i * this.numKernels + j]!.apply(up, au));
          if (!xs) xs = r;
          else {
            const sum: tf.Tensor3D = hold(tf.add(xs, r) as tf.Tensor3D); // xs += resblock(x), in order
            drop(xs); drop(r);
            xs = sum;
          }
          yield `resblocks.${i * this.numKernels + j}`;
        }
        drop(up); drop(au);
        live.delete(xs!);
        x = hold(step(xs!, true, (t) => tf.div(t, this.numKernels)));
      }
      const a = hold(leakyRelu(x, LRELU_DEFAULT));
      drop(x);
      live.delete(a);
      const post = hold(step(a, true, (t) => w.convPost.apply(t as tf.Tensor3D)));
      taps?.('conv_post', post);
      live.delete(post);
      return step(post, true, (t) => tf.tanh(t).reshape([t.shape[0]!, t.shape[1]!])) as tf.Tensor2D;
    } finally {
      for (const t of live) t.dispose();
    }
  }

  /** forward on host NCL mel (B, num_mels, frames) → host (B, samples) */
  generate(mel: HostTensor, taps?: (name: string, t: tf.Tensor3D) => void): { data: Float32Array; shape: [number, number] } {
    const [B, nm, F] = mel.shape as [number, number, number];
    if (mel.shape.length !== 3 || nm !== this.cfg.num_mels) throw new Error(`hifigan: mel must be (B, ${this.cfg.num_mels}, frames), got ${shapeStr(mel.shape)}`);
    return this.generateNWC(nclToNwc(toFloat32(mel), B, nm, F, 0, F), B, F, taps);
  }

  /**
   * Time tiling (memory): an input longer than `tileFrames` frames is vocoded in tiles of `tileFrames` frames, each
   * computed with `haloFrames` extra frames of real context on both sides and cropped back. Every kept output sample
   * sees exactly the inputs it sees in the whole-length call (the receptive field is `receptiveFrames()` = ±24 mel
   * frames), so the result is the same; the activations shrink to tile size. 0 disables tiling; null (default)
   * tiles only what does not fit `maxBatchBytes`.
   */
  tileFrames: number | null = null;
  haloFrames = 32;
  /** bytes of the largest activation of one batched call (several inputs of equal length run as one batch) */
  maxBatchBytes = 64 * 1024 * 1024;

  /** samples per mel frame (the product of the upsample rates: 480) */
  get hop(): number {
    return this.cfg.upsample_rates.reduce((a, b) => a * b, 1);
  }

  /** frames (summed over a batch) that one call may hold */
  get batchFrames(): number {
    return Math.max(1, Math.floor(this.maxBatchBytes / this.bytesPerFrame));
  }

  /** forward on a host NWC mel (B, frames, num_mels) → host (B, samples) */
  generateNWC(nwc: Float32Array, B: number, frames: number, taps?: (name: string, t: tf.Tensor3D) => void): { data: Float32Array; shape: [number, number] } {
    if (taps) return drainSteps(this.forwardHostSteps(nwc, B, frames, taps));
    const nm = this.cfg.num_mels;
    const outs = this.generateMany(Array.from({ length: B }, (_, b) => ({ data: nwc.subarray(b * frames * nm, (b + 1) * frames * nm), frames })));
    const n = this.outLength(frames);
    const out = new Float32Array(B * n);
    outs.forEach((o, b) => out.set(o, b * n));
    return { data: out, shape: [B, n] };
  }

  /**
   * Vocode independent inputs (each NWC (frames, num_mels)) → one waveform each (outLength(frames) samples). Inputs
   * of equal length run as one batched call (up to `batchFrames` frames per call); inputs longer than a call may
   * hold (or than an explicit `tileFrames`) are split into halo tiles, which are batched the same way.
   */
  generateMany(inputs: MelInput[]): Float32Array[] {
    return drainSteps(this.generateManySteps(inputs));
  }

  /** generateMany as a step generator (a yield after every ResBlock of every call) */
  *generateManySteps(inputs: MelInput[]): Generator<string, Float32Array[], void> {
    const nm = this.cfg.num_mels, hop = this.hop, H = this.haloFrames;
    const budget = this.batchFrames;
    const results = inputs.map((x) => new Float32Array(this.outLength(x.frames)));
    // pieces: what one batch row computes, and where its kept samples go
    interface Piece { data: Float32Array; frames: number; dst: Float32Array; from: number; to: number; at: number }
    const pieces: Piece[] = [];
    inputs.forEach((x, i) => {
      const F = x.frames;
      if (x.data.length !== F * nm) throw new Error(`hifigan: input ${i} has ${x.data.length} values, expected ${F} × ${nm}`);
      const outLen = results[i]!.length;
      const T = this.tileFrames ?? (F > budget ? Math.max(H, budget - 2 * H) : 0);
      if (!T || F <= T) { pieces.push({ data: x.data, frames: F, dst: results[i]!, from: 0, to: outLen, at: 0 }); return; }
      for (let c0 = 0; c0 < F; c0 += T) {
        const c1 = Math.min(F, c0 + T);
        const a = Math.max(0, c0 - H), b = Math.min(F, c1 + H);
        // tile sample s ↔ global sample a·hop + s (every stage is shift-equivariant with its stride)
        const g0 = c0 * hop, g1 = c1 === F ? outLen : c1 * hop;
        pieces.push({ data: x.data.subarray(a * nm, b * nm), frames: b - a, dst: results[i]!, from: g0 - a * hop, to: g1 - a * hop, at: g0 });
      }
    });
    const byLen = new Map<number, Piece[]>();
    for (const p of pieces) {
      const g = byLen.get(p.frames);
      if (g) g.push(p); else byLen.set(p.frames, [p]);
    }
    for (const [frames, group] of byLen) {
      const per = Math.max(1, Math.floor(budget / frames));
      for (let g0 = 0; g0 < group.length; g0 += per) {
        const batch = group.slice(g0, g0 + per);
        const B = batch.length;
        const x = new Float32Array(B * frames * nm);
        batch.forEach((p, b) => x.set(p.data, b * frames * nm));
        const y = yield* this.forwardHostSteps(x, B, frames);
        const n = y.shape[1];
        batch.forEach((p, b) => p.dst.set(y.data.subarray(b * n + p.from, b * n + p.to), p.at));
      }
    }
    return results;
  }

  private *forwardHostSteps(nwc: Float32Array, B: number, frames: number, taps?: (name: string, t: tf.Tensor3D) => void): Generator<string, { data: Float32Array; shape: [number, number] }, void> {
    const x = tf.tensor3d(nwc, [B, frames, this.cfg.num_mels]);
    try {
      const y = yield* this.forwardNWCSteps(x, taps);
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
 * array). `chunkNWC(f0, f1)` supplies the mel frames [f0, f1) as NWC (B, f1 − f0, num_mels).
 *
 * Upstream vocodes every 1024-frame chunk (shift 256) separately, so each frame is vocoded ~4 times. A chunk's
 * output differs from the output of ONE call on the whole mel only within `receptiveFrames()` (24) frames of the
 * chunk's own ends, where its zero padding is seen instead of the neighbouring frames. So (`reuse`, default):
 *   - the whole mel is vocoded once per row (time-tiled with halos when large; exact, see generateMany);
 *   - for each chunk end that is not an end of the whole mel, a short call on the 2·H frames next to it
 *     (H = haloFrames ≥ receptiveFrames) gives the chunk's first/last H frames of output exactly;
 *   - each chunk's output = its edge samples from those calls + the whole-mel samples between them;
 * then the chunks are stitched exactly as upstream. Same values as calling the vocoder per chunk (every output
 * sample is computed from the same inputs by the same layers); ≈ 2.4× less work for a 4096-frame window.
 * All calls of equal length (the rows, the edges) run batched. `reuse: false` runs the chunks themselves.
 */
export function vocoderChunkInfer(
  gen: HifiGanGenerator, chunkNWC: (f0: number, f1: number) => Float32Array, B: number, frames: number,
  onCall?: (i: number, inFrames: number, outSamples: number) => void, opts: { reuse?: boolean } = {},
): { data: Float32Array; shape: [number, number] } {
  return drainSteps(vocoderChunkInferSteps(gen, chunkNWC, B, frames, onCall, opts));
}

/** vocoderChunkInfer as a step generator (a yield after every ResBlock of every vocoder call) */
export function* vocoderChunkInferSteps(
  gen: HifiGanGenerator, chunkNWC: (f0: number, f1: number) => Float32Array, B: number, frames: number,
  onCall?: (i: number, inFrames: number, outSamples: number) => void, opts: { reuse?: boolean } = {},
): Generator<string, { data: Float32Array; shape: [number, number] }, void> {
  const st = new ChunkStitcher(B);
  const chunks = vocoderChunks(frames);
  const nm = gen.cfg.num_mels, hop = gen.hop, H = gen.haloFrames, E = 2 * H;
  if (H < gen.receptiveFrames()) throw new Error(`vocoder: haloFrames ${H} is below the receptive field (${gen.receptiveFrames()} frames)`);
  const rowsOf = (f0: number, f1: number): MelInput[] => {
    const d = chunkNWC(f0, f1);
    const per = (f1 - f0) * nm;
    if (d.length !== B * per) throw new Error(`vocoder_chunk_infer: frames [${f0}, ${f1}) gave ${d.length} values, expected ${B} × ${f1 - f0} × ${nm}`);
    return Array.from({ length: B }, (_, b) => ({ data: d.subarray(b * per, (b + 1) * per), frames: f1 - f0 }));
  };
  const reuse = (opts.reuse ?? true) && chunks.length > 1;
  // a chunk is assembled from edges + the whole-mel output when it is long enough; otherwise computed directly
  const composed = (f0: number, f1: number): boolean => reuse && f1 - f0 >= 2 * E;
  const jobs: MelInput[] = [];
  const wholeAt = reuse ? jobs.push(...rowsOf(0, frames)) - B : -1;
  const plan = chunks.map(([f0, f1]) => {
    if (!composed(f0, f1)) return { direct: jobs.push(...rowsOf(f0, f1)) - B, left: -1, right: -1 };
    const left = f0 > 0 ? jobs.push(...rowsOf(f0, f0 + E)) - B : -1;
    const right = f1 < frames ? jobs.push(...rowsOf(f1 - E, f1)) - B : -1;
    return { direct: -1, left, right };
  });
  const outs = yield* gen.generateManySteps(jobs);
  jobs.length = 0;
  chunks.forEach(([f0, f1], i) => {
    const p = plan[i]!;
    const len = f1 - f0;
    const n = gen.outLength(len);
    const y = new Float32Array(B * n);
    for (let b = 0; b < B; b++) {
      const row = y.subarray(b * n, (b + 1) * n);
      if (p.direct >= 0) { row.set(outs[p.direct + b]!); continue; }
      // chunk sample s ↔ whole sample f0·hop + s; left edge call: s; right edge call (starts at f1 − E): s − (len − E)·hop
      const s0 = p.left >= 0 ? H * hop : 0;
      const s1 = p.right >= 0 ? (len - H) * hop : n;
      if (p.left >= 0) row.set(outs[p.left + b]!.subarray(0, s0), 0);
      row.set(outs[wholeAt + b]!.subarray(f0 * hop + s0, f0 * hop + s1), s0);
      if (p.right >= 0) row.set(outs[p.right + b]!.subarray(s1 - (len - E) * hop, n - (len - E) * hop), s1);
    }
    onCall?.(i, len, n);
    st.push(y, n);
  });
  return st.result();
}

/** vocoder_chunk_infer on a host NCL mel (B, num_mels, frames), as decode_to_waveform feeds it */
export function vocoderChunkInferNCL(gen: HifiGanGenerator, mel: HostTensor): { data: Float32Array; shape: [number, number] } {
  const [B, nm, F] = mel.shape as [number, number, number];
  const d = toFloat32(mel);
  return vocoderChunkInfer(gen, (f0, f1) => nclToNwc(d, B, nm, F, f0, f1), B, F);
}
