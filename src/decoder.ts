/**
 * Codes → latents: MuCodec's decoder half up to the VAE.
 *
 *  - `MuCodecDecoder.inferenceCodes` = model.py PromptCondAudioDiffusion.inference_codes (+ prepare_latents,
 *    BASECFM.solve_euler, Feature2DProcessor): condition from codes, latent masks, zero condition, in-context
 *    latents, the flow ODE, normfeat project / return.
 *  - `MuCodecDecoder.code2soundLatents` = generate.py MuCodec.code2sound up to the latents handed to the VAE:
 *    code padding, 1024-code windows at hop 768, in-context hand-off of 128 latent frames. An async generator
 *    that yields each window's latents as soon as it is solved, so the caller can decode audio window by window.
 *
 * Every random draw goes through a NoiseSource (replayed `noise.*` in parity, seeded for users), in
 * upstream's order.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { Params } from './params.js';
import { releaseDevicePool } from './webgpu.js';
import { assertFinite, shapeStr, tensorToHost, toFloat32, toInt32, type HostTensor } from './hosttensor.js';
import { makeNoise, type NoiseSource } from './noise.js';
import { RVQ, MUCODEC_RVQ_CONFIG, type RVQConfig } from './rvq/index.js';
import { REAL_DIT_CONFIG, ditConfigFromUpstream, type DiTConfig } from './dit/config.js';
import { Transformer2DModel, type DiTOptions } from './dit/transformer.js';
import { solveCfm, solveCfmAsync, type CfmInputs } from './sampler/cfm.js';
import type { OdeOptions } from './sampler/ode.js';
import { uniformSchedule, checkSchedule } from './sampler/schedule.js';
import type { Solver } from './sampler/solvers.js';
import { disposeLinear, linear, uploadLinear, type LinearW } from './dit/weights.js';

// ---------------------------------------------------------------------------------------------------------
// normfeat

/**
 * model.py Feature2DProcessor (normfeat): per-(channel, width) running mean/std over latent frames.
 * project_sample: (x − mean)·(1/std.clamp(1e-12))^power_std; return_sample: x·std^power_std + mean, with
 * mean = sum_x/counts, std = sqrt(clamp(sum_x2/counts − mean², 0)), shapes (dim, 32) seen as (1, dim, 1, 32).
 *
 * Upstream's project_sample also UPDATES the statistics while counts < num_samples (100000): counts += B,
 * sum_x += x.mean(frames).sum(batch), sum_x2 likewise with x², before normalising. This is reproduced (the
 * state lives in this object and persists across calls, as in the torch module); with the released
 * checkpoint's counts ≥ num_samples nothing is updated. Statistics are evaluated in float32 in upstream's
 * operation order.
 */
export class Feature2DProcessor {
  counts: number;
  readonly sumX: Float32Array;
  readonly sumX2: Float32Array;

  constructor(p: Params, readonly dim = 32, readonly numSamples = 100_000, readonly powerStd = 1) {
    this.counts = p.scalar('counts');
    this.sumX = Float32Array.from(p.f32('sum_x', [dim, 32]));
    this.sumX2 = Float32Array.from(p.f32('sum_x2', [dim, 32]));
  }

  /** true when the next project() will update the statistics (counts < num_samples) */
  get updating(): boolean {
    return this.counts < this.numSamples;
  }

  /** mean and std (dim·32, float32) */
  stats(): { mean: Float32Array; std: Float32Array } {
    const f = Math.fround;
    const n = this.dim * 32;
    const mean = new Float32Array(n), std = new Float32Array(n);
    const c = f(this.counts);
    for (let i = 0; i < n; i++) {
      const m = f(this.sumX[i]! / c);
      mean[i] = m;
      const v = f(f(this.sumX2[i]! / c) - f(m * m));
      std[i] = Math.sqrt(Math.max(v, 0));
    }
    return { mean, std };
  }

  private update(x: tf.Tensor4D): void {
    const f = Math.fround;
    const [sx, sx2] = tf.tidy(() => [tf.sum(tf.mean(x, 2), 0), tf.sum(tf.mean(tf.square(x), 2), 0)]);
    const a = sx!.dataSync(), b = sx2!.dataSync();
    sx!.dispose(); sx2!.dispose();
    this.counts = f(this.counts + x.shape[0]);
    for (let i = 0; i < a.length; i++) {
      this.sumX[i] = f(this.sumX[i]! + a[i]!);
      this.sumX2[i] = f(this.sumX2[i]! + b[i]!);
    }
  }

  /** Feature2DProcessor.project_sample: x (B, dim, T, 32) → normalised (new tensor). */
  project(x: tf.Tensor4D): tf.Tensor4D {
    if (x.shape[1] !== this.dim || x.shape[3] !== 32) throw new Error(`normfeat: input ${shapeStr(x.shape)} is not (B, ${this.dim}, T, 32)`);
    if (this.updating) this.update(x);
    const f = Math.fround;
    const { mean, std } = this.stats();
    const eps = f(1e-12);
    const rescale = new Float32Array(std.length);
    for (let i = 0; i < std.length; i++) {
      const r = f(1 / Math.max(std[i]!, eps));
      rescale[i] = this.powerStd === 1 ? r : r ** this.powerStd;
    }
    return tf.tidy(() => tf.mul(tf.sub(x, tf.tensor4d(mean, [1, this.dim, 1, 32])), tf.tensor4d(rescale, [1, this.dim, 1, 32])) as tf.Tensor4D);
  }

  /** Feature2DProcessor.return_sample: the inverse of project (new tensor). */
  unproject(x: tf.Tensor4D): tf.Tensor4D {
    const { mean, std } = this.stats();
    const rescale = this.powerStd === 1 ? std : std.map((s) => s ** this.powerStd);
    return tf.tidy(() => tf.add(tf.mul(x, tf.tensor4d(rescale, [1, this.dim, 1, 32])), tf.tensor4d(mean, [1, this.dim, 1, 32])) as tf.Tensor4D);
  }
}

// ---------------------------------------------------------------------------------------------------------
// configuration

export interface DecoderConfig {
  dit: DiTConfig;
  /** rvq_muencoder_emb */
  rvq: RVQConfig;
  /** num_channels (latent channels) */
  numChannels: number;
  /** normfeat num_samples / power_std */
  normfeatNumSamples: number;
  normfeatPowerStd: number;
}

export const REAL_DECODER_CONFIG: DecoderConfig = {
  dit: REAL_DIT_CONFIG,
  rvq: MUCODEC_RVQ_CONFIG,
  numChannels: 32,
  normfeatNumSamples: 100_000,
  normfeatPowerStd: 1,
};

/**
 * DecoderConfig from the upstream-named model configuration (the layout of convert/manifest.ts ModelConfig,
 * of weights/config.json and of the fixtures' case.json "config": estimator, rvq_muencoder_emb, normfeat,
 * num_channels). Missing parts fall back to the released configuration.
 */
export function decoderConfigFromUpstream(j: Record<string, unknown>): DecoderConfig {
  const r = j.rvq_muencoder_emb as Partial<RVQConfig> | undefined;
  const nf = j.normfeat as { num_samples?: number; power_std?: number } | undefined;
  const est = j.estimator as Record<string, unknown> | undefined;
  const d = REAL_DECODER_CONFIG;
  return {
    dit: est ? ditConfigFromUpstream(est) : d.dit,
    rvq: r ? {
      input_dim: r.input_dim ?? d.rvq.input_dim, n_codebooks: r.n_codebooks ?? d.rvq.n_codebooks,
      codebook_size: r.codebook_size ?? d.rvq.codebook_size, codebook_dim: r.codebook_dim ?? d.rvq.codebook_dim,
    } : d.rvq,
    numChannels: typeof j.num_channels === 'number' ? j.num_channels : d.numChannels,
    normfeatNumSamples: nf?.num_samples ?? d.normfeatNumSamples,
    normfeatPowerStd: nf?.power_std ?? d.normfeatPowerStd,
  };
}

/** Sampling options shared by inferenceCodes and code2soundLatents. */
export interface SamplingOptions {
  /** Euler steps of linspace(0, 1, steps + 1) (ignored when tSpan is given) */
  numSteps?: number;
  /** explicit time schedule from 0 to 1 (research; upstream uses linspace) */
  tSpan?: ArrayLike<number>;
  /** 'euler' (upstream), 'heun', 'midpoint', 'rk4', a registered name or a Solver */
  solver?: string | Solver;
  /** progress after each solver step */
  onStep?: (info: { step: number; steps: number; t: number }) => void;
  /** the async forms (code2soundLatents, inferenceCodesAsync) stop at the next DiT block once it is aborted */
  signal?: AbortSignal;
}

export interface InferenceCodesArgs extends SamplingOptions {
  /** (B, 1, Tc) codes at 25 Hz; Tc even (two code frames per latent frame) */
  codes: HostTensor | { data: Int32Array; shape: [number, number, number] };
  /** (B, 32, F, 32) latents whose frames [0, incontextLength) are the in-context prompt (others unused) */
  trueLatents: HostTensor | tf.Tensor4D;
  /** frames [0, latentLength) get the code condition, the rest the zero condition */
  latentLength: number;
  incontextLength: number;
  /** upstream default 2 (code2sound passes 1.5) */
  guidanceScale?: number;
  /** 'other_seg' uses the in-context frames; 'start_seg' (upstream default) ignores them */
  scenario?: 'start_seg' | 'other_seg';
  noise: NoiseSource;
}

// ---------------------------------------------------------------------------------------------------------
// code2sound window plan

/** generate.py code2sound constants (codes at 25 Hz, latent frames at 12.5 Hz) */
export const WINDOW_CODES = 1024;
export const HOP_CODES = 768;
export const OVERLAP_CODES = WINDOW_CODES - HOP_CODES; // 256
export const WINDOW_FRAMES = 512;
export const OVERLAP_FRAMES = OVERLAP_CODES / 2; // 128

export interface WindowPlan {
  /** codes as code2sound receives them (prompt codes included) */
  codesLength: number;
  /** after the repeat / pad steps */
  paddedLength: number;
  /** code offset of every window (each WINDOW_CODES long) */
  windowStarts: number[];
  /** samples at 48 kHz code2sound returns: int((n − prompt codes)/100·4·48000), upstream's float rounding */
  targetLen: number;
}

/**
 * The padding and windowing of code2sound for n codes (the prompt's `promptCodes` included in n).
 * Short inputs are tiled to 1024; then the length is tiled up to 768k + 256. Upstream tests
 * `(L − 128) % 768 > 0` (ovlp_frames instead of ovlp_samples), which skips the padding when L ≡ 128 mod 768
 * and then fails on a short last window; here those lengths are padded like every other (1664 → 1792).
 */
export function planCode2Sound(n: number, promptCodes = 0, sampleRate = 48000): WindowPlan {
  if (!(Number.isInteger(n) && n > 0)) throw new Error(`code2sound: need at least one code, got ${n}`);
  const targetLen = Math.trunc((n - promptCodes) / 100 * 4 * sampleRate);
  let L = Math.max(n, WINDOW_CODES);
  if ((L - OVERLAP_CODES) % HOP_CODES > 0) L = Math.ceil((L - OVERLAP_CODES) / HOP_CODES) * HOP_CODES + OVERLAP_CODES;
  const windowStarts: number[] = [];
  for (let s = 0; s < L - HOP_CODES; s += HOP_CODES) windowStarts.push(s);
  return { codesLength: n, paddedLength: L, windowStarts, targetLen };
}

/** Periodic tiling (upstream's repeated doubling then cut): out[b, j] = codes[b, j mod n]. (B, 1, n) → (B, 1, L). */
export function tileCodes(codes: Int32Array, batch: number, n: number, L: number): Int32Array {
  const out = new Int32Array(batch * L);
  for (let b = 0; b < batch; b++) for (let j = 0; j < L; j++) out[b * L + j] = codes[b * n + (j % n)]!;
  return out;
}

/** A prompt after its VAE encoding: latent (B, 32, Lp, 32) and its own codes (B, 1, ≤ 2·Lp). */
export interface PromptLatent {
  latent: HostTensor;
  codes: HostTensor | { data: Int32Array; shape: [number, number, number] };
}

export interface Code2SoundOptions extends SamplingOptions {
  /** Euler steps (code2sound default 20; sound2sound uses 50) */
  numSteps?: number;
  /** classifier-free guidance (upstream hard-codes 1.5 in the loop, whatever code2sound is passed) */
  guidanceScale?: number;
  /** random source; default: seeded with `seed` (random seed when both are absent) */
  noise?: NoiseSource;
  seed?: number;
  /**
   * Optional prompt (code2sound's `prompt` after its VAE encoding and sound2code, done by the caller):
   * latent (B, 32, Lp, 32) with Lp ≤ 512 and its codes (B, 1, ≤ 2·Lp). The prompt codes are prepended, window
   * 0 takes the prompt latent as in-context frames [0, Lp), and the first Lp frames are cropped from window 0.
   */
  prompt?: PromptLatent | (() => Promise<PromptLatent>);
  /** per-window progress */
  onWindow?: (info: { window: number; windows: number }) => void;
}

export interface LatentWindow {
  /** 0-based window index and the number of windows */
  index: number;
  count: number;
  /** code offset of this window in the padded codes */
  codeStart: number;
  /** (B, 32, F, 32) latents as code2sound hands them to the VAE (window 0 cropped by the prompt length) */
  latents: HostTensor;
  plan: WindowPlan;
}

// ---------------------------------------------------------------------------------------------------------

function hostCodes(c: HostTensor | { data: Int32Array; shape: [number, number, number] }): { data: Int32Array; shape: [number, number, number] } {
  if ('dtype' in c) {
    if (c.shape.length !== 3) throw new Error(`codes must be (B, 1, T), got ${shapeStr(c.shape)}`);
    return { data: toInt32(c), shape: c.shape as [number, number, number] };
  }
  return c;
}

/** The decoder half of PromptCondAudioDiffusion: RVQ from_codes, cond_muencoder_emb, zero_cond_embedding1, normfeat, the DiT. */
export class MuCodecDecoder {
  readonly rvq: RVQ;
  readonly estimator: Transformer2DModel;
  readonly normfeat: Feature2DProcessor;
  private readonly condEmb: LinearW;
  private readonly zeroCond: tf.Tensor4D;

  /** `p` = the mucodec.pt state dict root (keys rvq_muencoder_emb.*, cond_muencoder_emb.*, zero_cond_embedding1, normfeat.*, cfm_wrapper.estimator.*). */
  constructor(readonly p: Params, readonly config: DecoderConfig = REAL_DECODER_CONFIG, ditOptions: DiTOptions = {}) {
    const C = config.numChannels;
    if (C !== 32) throw new Error(`num_channels ${C}: the condition reshape assumes 32 latent channels`);
    this.estimator = new Transformer2DModel(p.sub('cfm_wrapper.estimator.'), config.dit, ditOptions);
    this.normfeat = new Feature2DProcessor(p.sub('normfeat.'), C, config.normfeatNumSamples, config.normfeatPowerStd);
    this.rvq = RVQ.fromParams(p.sub('rvq_muencoder_emb.'), config.rvq, 'decode');
    try {
      this.condEmb = uploadLinear(p, 'cond_muencoder_emb', config.rvq.input_dim, 16 * 32);
      this.zeroCond = tf.tensor4d(p.f32('zero_cond_embedding1', [32 * 32]), [1, 32, 1, 32]);
    } catch (e) {
      this.rvq.dispose();
      throw e;
    }
  }

  /** (B, 1, Tc) codes → the condition mu (B, 32, Tc/2, 32) before masking. */
  condition(codes: { data: Int32Array; shape: [number, number, number] }): tf.Tensor4D {
    const [b, n, tc] = codes.shape;
    if (n !== 1) throw new Error(`codes ${shapeStr(codes.shape)}: MuCodec uses one codebook (B, 1, T)`);
    if (tc % 2) throw new Error(`codes: ${tc} code frames is odd (two code frames make one latent frame)`);
    const { zQ, zP } = this.rvq.fromCodes(codes);
    zP.dispose();
    return tf.tidy(() => {
      const e = linear(tf.transpose(zQ, [0, 2, 1]), this.condEmb); // (B, Tc, 512)
      zQ.dispose();
      // (B, Tc/2, 2, 16, 32) → (B, Tc/2, 32, 32) → (B, 32, Tc/2, 32): frame pair (2f, 2f+1) → channels (0..15, 16..31)
      return tf.transpose(e.reshape([b, tc / 2, 32, 32]), [0, 2, 1, 3]) as tf.Tensor4D;
    });
  }

  /**
   * PromptCondAudioDiffusion.inference_codes → latents (B, 32, F, 32), F = Tc/2 (de-normalised).
   * One random draw: prepare_latents (B, 32, F, 32).
   */
  inferenceCodes(a: InferenceCodesArgs): tf.Tensor4D {
    const p = this.prepareInference(a);
    try {
      return p.finish(solveCfm(this.estimator, p.cfm, p.ode));
    } finally {
      p.dispose();
    }
  }

  /**
   * `inferenceCodes` without holding the event loop: a turn after every sampler step and between the DiT's blocks
   * (a real-size step on CPU is minutes). Same draws, same operations, same bytes.
   */
  async inferenceCodesAsync(a: InferenceCodesArgs): Promise<tf.Tensor4D> {
    const p = this.prepareInference(a);
    try {
      return p.finish(await solveCfmAsync(this.estimator, p.cfm, { ...p.ode, signal: a.signal }));
    } finally {
      p.dispose();
    }
  }

  /** inference_codes before and after the ODE solve: the draw, condition, masks and in-context latents; the re-imposed, de-normalised result */
  private prepareInference(a: InferenceCodesArgs): { cfm: CfmInputs; ode: OdeOptions; finish: (sol: tf.Tensor4D) => tf.Tensor4D; dispose: () => void } {
    const codes = hostCodes(a.codes);
    const [b, , tc] = codes.shape;
    const C = this.config.numChannels;
    const frames = tc / 2;
    const guidance = a.guidanceScale ?? 2;
    const scenario = a.scenario ?? 'start_seg';
    // prepare_latents: upstream rounds F to a multiple of 4 (round half-even) and then fails on any F it changed;
    // any even F works here, drawn at its own size
    const latentShape = [b, C, frames, 32];
    const trueShape = a.trueLatents instanceof tf.Tensor ? a.trueLatents.shape : a.trueLatents.shape;
    if (trueShape.length !== 4 || trueShape[0] !== b || trueShape[1] !== C || trueShape[2] !== frames || trueShape[3] !== 32) {
      throw new Error(`inference_codes: true_latents ${shapeStr(trueShape)} do not match the codes' (${b}, ${C}, ${frames}, 32)`);
    }
    const tSpan = a.tSpan !== undefined ? checkSchedule(a.tSpan) : uniformSchedule(a.numSteps ?? 20);
    const noise = a.noise.randn(latentShape, 'prepare_latents');
    // latent_masks: 2 on [0, latent_length), 1 on [0, incontext_length) for other_seg
    const mask = new Int32Array(frames);
    for (let i = 0; i < Math.min(a.latentLength, frames); i++) mask[i] = 2;
    if (scenario === 'other_seg') for (let i = 0; i < Math.min(a.incontextLength, frames); i++) mask[i] = 1;
    let L = 0;
    for (const m of mask) if (m === 1) L++;
    const owned: tf.Tensor[] = [];
    const own = <T extends tf.Tensor>(t: T): T => { owned.push(t); return t; };
    const dispose = (): void => { for (const t of owned) t.dispose(); owned.length = 0; };
    try {
      const mu = own(this.condition(codes));
      const x = own(tf.tensor4d(noise, latentShape as [number, number, number, number]));
      const condMask = own(tf.tensor4d(Float32Array.from(mask, (m) => (m > 0.5 ? 1 : 0)), [1, 1, frames, 1]));
      const incMask = own(tf.tensor4d(Float32Array.from(mask, (m) => (m === 1 ? 1 : 0)), [1, 1, frames, 1]));
      const trueT = a.trueLatents instanceof tf.Tensor ? a.trueLatents : own(tf.tensor4d(toFloat32(a.trueLatents), trueShape as [number, number, number, number]));
      const muM = own(tf.tidy(() => tf.where(tf.cast(condMask, 'bool').broadcastTo(mu.shape), mu, tf.broadcastTo(this.zeroCond, mu.shape)) as tf.Tensor4D));
      const projected = own(this.normfeat.project(trueT));
      const incontext = own(tf.tidy(() => tf.mul(projected, incMask) as tf.Tensor4D));
      const finish = (sol: tf.Tensor4D): tf.Tensor4D => tf.tidy(() => {
        let y: tf.Tensor4D = sol;
        if (L > 0) {
          const head = incontext.slice([0, 0, 0, 0], [b, C, L, 32]);
          y = L === frames ? head : tf.concat([head, sol.slice([0, 0, L, 0], [b, C, frames - L, 32])], 2);
        }
        const out = this.normfeat.unproject(y);
        sol.dispose();
        return out;
      });
      return {
        cfm: { x, incontextX: incontext, incontextLength: L, mu: muM, guidanceScale: guidance },
        ode: { tSpan, solver: a.solver ?? 'euler', onStep: a.onStep ? (s) => a.onStep!({ step: s.step, steps: s.steps, t: s.t }) : undefined },
        finish, dispose,
      };
    } catch (e) {
      dispose();
      throw e;
    }
  }

  /**
   * generate.py MuCodec.code2sound up to the latents: pad the codes, run inference_codes on every 1024-code
   * window (hop 768, guidance 1.5, scenario other_seg) with the in-context hand-off of the previous window's last
   * 128 output frames, and yield each window's latents (B, 32, 512, 32) as soon as it is done.
   *
   * Random draws, in upstream's order: first_latent (B, 32, 512, 32); window 0: its prepare_latents draw;
   * each later window: the fill (B, 32, 384, 32) then its prepare_latents draw.
   */
  async *code2soundLatents(
    codesIn: HostTensor | { data: Int32Array; shape: [number, number, number] },
    opts: Code2SoundOptions = {},
  ): AsyncGenerator<LatentWindow, void, void> {
    const noise = opts.noise ?? makeNoise(opts.seed);
    let codes = hostCodes(codesIn);
    const [b, nc] = [codes.shape[0], codes.shape[1]];
    if (nc !== 1) throw new Error(`code2sound: codes ${shapeStr(codes.shape)} must be (B, 1, T)`);
    const C = this.config.numChannels;
    // first_latent = randn(B, 32, 512, 32), always drawn
    const firstLatent = noise.randn([b, C, WINDOW_FRAMES, 32], 'first_latent');
    let firstLen = 0, promptCodes = 0;
    // a prompt given as a function is encoded here, after first_latent, so its VAE posterior draws come in
    // upstream's order (first_latent, prompt channel 0, channel 1, then the windows)
    const prompt = typeof opts.prompt === 'function' ? await opts.prompt() : opts.prompt;
    if (prompt) {
      const pl = prompt.latent;
      if (pl.shape.length !== 4 || pl.shape[0] !== b || pl.shape[1] !== C || pl.shape[3] !== 32 || pl.shape[2]! > WINDOW_FRAMES) {
        throw new Error(`code2sound: prompt latent ${shapeStr(pl.shape)} must be (${b}, ${C}, ≤ ${WINDOW_FRAMES}, 32)`);
      }
      firstLen = pl.shape[2]!;
      const src = toFloat32(pl);
      for (let bi = 0; bi < b; bi++) for (let c = 0; c < C; c++) {
        const o = (bi * C + c) * WINDOW_FRAMES * 32, io = (bi * C + c) * firstLen * 32;
        firstLatent.set(src.subarray(io, io + firstLen * 32), o);
      }
      const pc = hostCodes(prompt.codes);
      if (pc.shape[0] !== b || pc.shape[1] !== 1) throw new Error(`code2sound: prompt codes ${shapeStr(pc.shape)} must be (${b}, 1, T)`);
      promptCodes = Math.min(pc.shape[2], 2 * firstLen);
      const n0 = codes.shape[2];
      const cat = new Int32Array(b * (promptCodes + n0));
      for (let bi = 0; bi < b; bi++) {
        cat.set(pc.data.subarray(bi * pc.shape[2], bi * pc.shape[2] + promptCodes), bi * (promptCodes + n0));
        cat.set(codes.data.subarray(bi * n0, (bi + 1) * n0), bi * (promptCodes + n0) + promptCodes);
      }
      codes = { data: cat, shape: [b, 1, promptCodes + n0] };
    }
    const n = codes.shape[2];
    const plan = planCode2Sound(n, promptCodes);
    const L = plan.paddedLength;
    const padded = tileCodes(codes.data, b, n, L);
    const guidance = opts.guidanceScale ?? 1.5;
    let prevTail: Float32Array | null = null; // (B, 32, 128, 32) of the previous window's output
    const count = plan.windowStarts.length;
    for (let w = 0; w < count; w++) {
      opts.onWindow?.({ window: w, windows: count });
      const s = plan.windowStarts[w]!;
      const wc = new Int32Array(b * WINDOW_CODES);
      for (let bi = 0; bi < b; bi++) wc.set(padded.subarray(bi * L + s, bi * L + s + WINDOW_CODES), bi * WINDOW_CODES);
      let trueLatents: Float32Array;
      let incontextLength: number;
      if (w === 0) {
        trueLatents = firstLatent;
        incontextLength = firstLen;
      } else {
        const fill = noise.randn([b, C, WINDOW_FRAMES - OVERLAP_FRAMES, 32], 'in-context fill');
        trueLatents = new Float32Array(b * C * WINDOW_FRAMES * 32);
        for (let bc = 0; bc < b * C; bc++) {
          const o = bc * WINDOW_FRAMES * 32;
          trueLatents.set(prevTail!.subarray(bc * OVERLAP_FRAMES * 32, (bc + 1) * OVERLAP_FRAMES * 32), o);
          trueLatents.set(fill.subarray(bc * (WINDOW_FRAMES - OVERLAP_FRAMES) * 32, (bc + 1) * (WINDOW_FRAMES - OVERLAP_FRAMES) * 32), o + OVERLAP_FRAMES * 32);
        }
        incontextLength = OVERLAP_FRAMES;
      }
      // one event-loop turn per sampler step: at the real size a window is minutes of work, and a blocked loop
      // would hold back the caller's timers, abort signals and I/O for all of it
      const lat = await this.inferenceCodesAsync({
        codes: { data: wc, shape: [b, 1, WINDOW_CODES] },
        trueLatents: { dtype: 'float32', shape: [b, C, WINDOW_FRAMES, 32], data: trueLatents },
        latentLength: WINDOW_FRAMES, incontextLength, guidanceScale: guidance, scenario: 'other_seg', noise,
        numSteps: opts.numSteps ?? 20, tSpan: opts.tSpan, solver: opts.solver, onStep: opts.onStep, signal: opts.signal,
      });
      let full: HostTensor;
      try {
        full = await tensorToHost(lat);
      } finally {
        lat.dispose();
      }
      releaseDevicePool(); // the window's temporaries are freed (src/webgpu.ts; a no-op off webgpu)
      const data = full.data as Float32Array;
      assertFinite(data, `the DiT sampler produced non-finite latents in window ${w + 1} of ${count}`);
      prevTail = new Float32Array(b * C * OVERLAP_FRAMES * 32);
      for (let bc = 0; bc < b * C; bc++) {
        const o = bc * WINDOW_FRAMES * 32 + (WINDOW_FRAMES - OVERLAP_FRAMES) * 32;
        prevTail.set(data.subarray(o, o + OVERLAP_FRAMES * 32), bc * OVERLAP_FRAMES * 32);
      }
      let latents = full;
      if (w === 0 && firstLen > 0) {
        const keep = WINDOW_FRAMES - firstLen;
        const cropped = new Float32Array(b * C * keep * 32);
        for (let bc = 0; bc < b * C; bc++) cropped.set(data.subarray(bc * WINDOW_FRAMES * 32 + firstLen * 32, (bc + 1) * WINDOW_FRAMES * 32), bc * keep * 32);
        latents = { dtype: 'float32', shape: [b, C, keep, 32], data: cropped };
      }
      yield { index: w, count, codeStart: s, latents, plan };
    }
  }

  dispose(): void {
    this.estimator.dispose();
    this.rvq.dispose();
    disposeLinear(this.condEmb);
    this.zeroCond.dispose();
  }
}
