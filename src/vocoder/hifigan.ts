/**
 * HiFi-GAN vocoder as AudioLDM-48k builds it (MuCodec tools/get_melvaehifigan48k.py: Generator_old, ResBlock),
 * with the weights as the checkpoint stores them (weight norm already removed). Convolution cores: ./conv.ts;
 * vocoder_chunk_infer: ./chunk_infer.ts.
 *
 * Tensors are channels-last (B, T, C) inside; the boundaries keep PyTorch's (B, num_mels, frames) NCL mel and
 * (B, 1, samples) waveform. Every step disposes its inputs as soon as it can: at the real width the last
 * stage holds 48 channels × ~491k samples per tensor for one 1024-frame chunk.
 */
import { bindingLimit, devicePath } from '../device.js';
import { drainSteps, HostRead, type Step } from '../steps.js';
import { generateManySteps } from './batch.js';
import * as tf from '@tensorflow/tfjs-core';
import { shapeStr, toFloat32, type HostTensor } from '../hosttensor.js';
import type { Params } from '../params.js';
import { leakyRelu } from '../simd/conv1d.js';
import { BandedConv1d, ConvTranspose1dPolyphase, getPadding, step } from './conv.js';
import { nclToNwc } from './chunk_infer.js';

// names importers outside src/vocoder (bench, the parity stages) take from this file
export { Conv1dCore, ConvTranspose1dPolyphase } from './conv.js';
export { vocoderChunkInferNCL } from './chunk_infer.js';

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

/** one vocoder input: NWC mel (frames × num_mels, row-major) on the host, or as a (frames, num_mels) device tensor */
export type MelInput = { data: Float32Array; frames: number } | { tensor: tf.Tensor2D; frames: number };

/**
 * GM:Generator_old after remove_weight_norm(). Names and shapes are checked when it is constructed; the
 * backend tensors are created on first use and freed by `release()` (the generator can run again after it:
 * the weights are re-uploaded). At width 1536 on the wasm backend the resident vocoder holds its resblock convs as
 * Winograd-transformed packed filters (≈ 2 GB of wasm heap; 2.19 GiB measured with the upsampling convs and activations of
 * 1 s; the raw filters are not uploaded), so a caller that also needs the VAE decoder in the same heap releases one
 * before using the other. The transformed filters stay in JS memory across release() (src/vocoder/conv.ts).
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
    return drainSteps(this.generateSteps(mel, taps));
  }

  /** generate as a step generator (drainStepsAsync reads a device backend asynchronously) */
  *generateSteps(mel: HostTensor, taps?: (name: string, t: tf.Tensor3D) => void): Generator<Step, { data: Float32Array; shape: [number, number] }, void> {
    const [B, nm, F] = mel.shape as [number, number, number];
    if (mel.shape.length !== 3 || nm !== this.cfg.num_mels) throw new Error(`hifigan: mel must be (B, ${this.cfg.num_mels}, frames), got ${shapeStr(mel.shape)}`);
    return yield* this.generateNWCSteps(nclToNwc(toFloat32(mel), B, nm, F, 0, F), B, F, taps);
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

  /** frames (summed over a batch) that one call may hold (its largest activation also under the binding limit) */
  get batchFrames(): number {
    return Math.max(1, Math.floor(Math.min(this.maxBatchBytes, bindingLimit()) / this.bytesPerFrame));
  }

  /** forward on a host NWC mel (B, frames, num_mels) → host (B, samples) */
  generateNWC(nwc: Float32Array, B: number, frames: number, taps?: (name: string, t: tf.Tensor3D) => void): { data: Float32Array; shape: [number, number] } {
    return drainSteps(this.generateNWCSteps(nwc, B, frames, taps));
  }

  *generateNWCSteps(nwc: Float32Array, B: number, frames: number, taps?: (name: string, t: tf.Tensor3D) => void): Generator<Step, { data: Float32Array; shape: [number, number] }, void> {
    if (taps) return yield* this.forwardHostSteps(nwc, B, frames, taps);
    const nm = this.cfg.num_mels;
    const outs = yield* this.generateManySteps(Array.from({ length: B }, (_, b) => ({ data: nwc.subarray(b * frames * nm, (b + 1) * frames * nm), frames })));
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

  /** generateMany as a step generator (./batch.ts) */
  generateManySteps(inputs: MelInput[]): Generator<Step, Float32Array[], void> {
    return generateManySteps(this, inputs);
  }

  /** one call on host input (B, frames, num_mels) → its host output (read right away: the host path) */
  *forwardHostSteps(nwc: Float32Array, B: number, frames: number, taps?: (name: string, t: tf.Tensor3D) => void): Generator<Step, { data: Float32Array; shape: [number, number] }, void> {
    const x = tf.tensor3d(nwc, [B, frames, this.cfg.num_mels]);
    try {
      const y = yield* this.forwardNWCSteps(x, taps);
      try {
        const shape = y.shape as [number, number];
        if (!devicePath()) return { data: y.dataSync() as Float32Array, shape };
        const read = new HostRead(y, 'vocoder output');
        yield read;
        return { data: read.value, shape };
      } finally { y.dispose(); }
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
