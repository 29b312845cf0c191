/**
 * MuQ encoder as MuCodec uses it (MUQ muq_model.py `MuQModel.forward(x, features_only=True)` → model/muq.py
 * `MuQ.get_predictions` → `MuQ.encoder`), returning one hidden state of the conformer stack.
 *
 * API (other modules call these):
 *   const enc = new MuQEncoder(params, config?, { maxLayerIndex? })
 *       params: a Params whose prefix points at the MuQ module: 'model.' inside muq.pt (fairseq state dict
 *       root 'model.'), 'muencoder.model.' inside mucodec.pt. config: Partial<MuQConfig> (defaults = the real
 *       MuQ: 1024 wide, 12 layers, 16 heads, conv_dim 512, FFN 4096, kernel 31, rotary base 10000).
 *       maxLayerIndex: the highest hidden-state index that will be asked for; only layers 0 .. maxLayerIndex−1
 *       are built (MuCodec: layer_results[6] → 6 layers; index = depth also builds conformer.layer_norm).
 *   enc.forward(wave24k, layerIndex) → tf.Tensor3D (B, T, encoder_dim), T = (n // 960)·960 / 960 tokens.
 *       wave24k: (B, n) 24 kHz mono as a tf.Tensor2D or an array of Float32Array rows (same length).
 *       layerIndex: 0 = frontend output, i = output of conformer layer i−1, depth = + final LayerNorm.
 *       Layers past layerIndex are never run. Rows are run one at a time (they are independent), which
 *       bounds peak memory. Caller disposes the result. (MuCodec: forward(rows, MUCODEC_MUQ_LAYER), then
 *       the RVQ wants (B, D, T): transpose, or feed the (T, D) rows to a channels-last RVQ entry point.)
 *   enc.hiddenStates(wave24k, upTo) → tf.Tensor3D[] of indices 0..upTo (caller disposes).
 *   enc.features(row) → { data (T_mel, n_mels) time-major normalised mel, frames } (host, after the 960 crop).
 *   enc.dispose()
 *
 * Pipeline per row: crop to a multiple of 24000 / label_rate samples; MelSTFT + dB, last frame dropped,
 * (x − mean) / std (src/muq/features.ts); Conv2dSubsampling (src/muq/conv_subsampling.ts, time-major NHWC);
 * W2V2C Wav2Vec2ConformerEncoder layers (src/muq/conformer.ts) with rotary tables from the checkpoint buffer
 * `conformer.embed_positions.inv_freq`. Hidden states are (B, T, D) as upstream's `layer_results`; MuCodec
 * permutes them to (B, D, T) before its RVQ.
 */
import { abortCheck, drainSteps, drainStepsAsync } from '../steps.js';
import * as tf from '@tensorflow/tfjs-core';
import type { Params } from '../params.js';
import { MelFeatures, MUQ_MEL_CONFIG } from './features.js';
import { Conv2dSubsampling } from './conv_subsampling.js';
import { ConformerLayer, RotaryTensors, rotaryInvFreq, rotaryTables, type ConformerConfig } from './conformer.js';
import { layerNorm } from '../../layers/norm.js';

export interface MuQConfig {
  encoderDim: number;
  encoderDepth: number;
  convDim: number;
  nMels: number;
  hopLength: number;
  labelRate: number;
  sampleRate: number;
  nFft: number;
  numHeads: number;
  intermediateSize: number;
  convKernel: number;
  rotaryBase: number;
  /** conformer layer LayerNorms and the encoder's final one (both 1e-5 in MuQ) */
  layerNormEps: number;
  batchNormEps: number;
  /** MuQ.stat melspec_2048_mean / _std */
  featureMean: number;
  featureStd: number;
}

export const MUQ_DEFAULT_CONFIG: MuQConfig = {
  encoderDim: 1024, encoderDepth: 12, convDim: 512, nMels: 128, hopLength: 240, labelRate: 25,
  sampleRate: 24000, nFft: 2048, numHeads: 16, intermediateSize: 4096, convKernel: 31, rotaryBase: 10000,
  layerNormEps: 1e-5, batchNormEps: 1e-5, featureMean: MUQ_MEL_CONFIG.mean, featureStd: MUQ_MEL_CONFIG.std,
};

/** MuCodec(layer_num=7) stores layer_num − 1: it encodes with layer_results[6]. */
export const MUCODEC_MUQ_LAYER = 6;

export interface MuQEncoderOptions {
  /** highest hidden-state index that will be requested (default: encoderDepth) */
  maxLayerIndex?: number;
}

export class MuQEncoder {
  readonly cfg: MuQConfig;
  readonly mel: MelFeatures;
  readonly frontend: Conv2dSubsampling;
  readonly layers: ConformerLayer[];
  readonly finalNorm: { g: tf.Tensor1D; b: tf.Tensor1D } | null;
  readonly maxLayerIndex: number;
  private readonly invFreq: Float32Array;
  private rotary: RotaryTensors | null = null;

  constructor(p: Params, config: Partial<MuQConfig> = {}, opts: MuQEncoderOptions = {}) {
    const cfg = { ...MUQ_DEFAULT_CONFIG, ...config };
    this.cfg = cfg;
    const maxIdx = opts.maxLayerIndex ?? cfg.encoderDepth;
    if (!Number.isInteger(maxIdx) || maxIdx < 0 || maxIdx > cfg.encoderDepth) {
      throw new Error(`MuQ: maxLayerIndex ${maxIdx} outside 0..${cfg.encoderDepth}`);
    }
    this.maxLayerIndex = maxIdx;
    const nFold = Math.floor(100 / cfg.labelRate);
    const strides = ({ 4: [2, 2], 2: [2, 1] } as Record<number, [number, number]>)[nFold];
    if (!strides) throw new Error(`MuQ: label_rate ${cfg.labelRate} gives n_fold ${nFold}; only 4 and 2 are supported`);
    const mp = 'preprocessor_melspec_2048.mel_stft.';
    this.mel = new MelFeatures({
      config: { sampleRate: cfg.sampleRate, nFft: cfg.nFft, hopLength: cfg.hopLength, nMels: cfg.nMels, mean: cfg.featureMean, std: cfg.featureStd },
      window: p.has(`${mp}spectrogram.window`) ? p.f32(`${mp}spectrogram.window`, [cfg.nFft]) : undefined,
      filterbank: p.has(`${mp}mel_scale.fb`) ? p.f32(`${mp}mel_scale.fb`, [cfg.nFft / 2 + 1, cfg.nMels]) : undefined,
    });
    const headSize = cfg.encoderDim / cfg.numHeads;
    this.invFreq = p.has('conformer.embed_positions.inv_freq')
      ? p.f32('conformer.embed_positions.inv_freq', [headSize / 2])
      : rotaryInvFreq(headSize, cfg.rotaryBase);
    const ccfg: ConformerConfig = {
      hiddenSize: cfg.encoderDim, numHeads: cfg.numHeads, intermediateSize: cfg.intermediateSize,
      convKernel: cfg.convKernel, rotaryBase: cfg.rotaryBase, layerNormEps: cfg.layerNormEps, batchNormEps: cfg.batchNormEps,
    };
    this.frontend = new Conv2dSubsampling(p.sub('conv.'), {
      convDim: cfg.convDim, encoderDim: cfg.encoderDim, nMels: cfg.nMels, strides, batchNormEps: cfg.batchNormEps,
    });
    this.layers = [];
    for (let i = 0; i < Math.min(maxIdx, cfg.encoderDepth); i++) this.layers.push(new ConformerLayer(p.sub(`conformer.layers.${i}.`), ccfg));
    this.finalNorm = maxIdx === cfg.encoderDepth
      ? { g: p.tensor('conformer.layer_norm.weight', [cfg.encoderDim]) as tf.Tensor1D, b: p.tensor('conformer.layer_norm.bias', [cfg.encoderDim]) as tf.Tensor1D }
      : null;
  }

  /** waveform crop unit: 24000 // label_rate samples (960 = 4 mel hops = 1 token) */
  get cropUnit(): number {
    return Math.floor(this.cfg.sampleRate / this.cfg.labelRate);
  }

  /** tokens produced for n input samples at 24 kHz */
  tokensFor(n: number): number {
    const melFrames = Math.floor(n / this.cropUnit) * this.cropUnit / this.cfg.hopLength;
    return this.frontend.outFrames(melFrames);
  }

  /** Normalised features of one row after the crop, time-major (T_mel, n_mels). */
  features(row: Float32Array): { data: Float32Array; frames: number } {
    const n = Math.floor(row.length / this.cropUnit) * this.cropUnit;
    if (n === 0) throw new Error(`MuQ: input of ${row.length} samples is shorter than one token (${this.cropUnit} samples)`);
    return this.mel.features(row.subarray(0, n));
  }

  private rotaryFor(t: number): RotaryTensors {
    if (!this.rotary || this.rotary.tables.length < t) {
      this.rotary?.dispose();
      this.rotary = new RotaryTensors(rotaryTables(t, this.invFreq));
    }
    return this.rotary;
  }

  private rows(wave: tf.Tensor2D | Float32Array[]): Float32Array[] {
    if (Array.isArray(wave)) return wave;
    const [b, n] = wave.shape;
    const d = wave.dataSync() as Float32Array;
    return Array.from({ length: b }, (_, i) => d.subarray(i * n, (i + 1) * n));
  }

  /** Normalised mel of every row, (B, T_mel, n_mels) time-major, as a tensor. */
  featureTensor(wave: tf.Tensor2D | Float32Array[]): tf.Tensor3D {
    const rows = this.rows(wave);
    if (!rows.length) throw new Error('MuQ: empty batch');
    const feats = rows.map((r) => this.features(r));
    const t = feats[0]!.frames;
    if (feats.some((x) => x.frames !== t)) throw new Error('MuQ: rows of a batch must have the same length');
    const all = new Float32Array(rows.length * t * this.cfg.nMels);
    feats.forEach((x, i) => all.set(x.data, i * t * this.cfg.nMels));
    return tf.tensor3d(all, [rows.length, t, this.cfg.nMels]);
  }

  /**
   * Run one row (1, n) up to hidden-state index `upTo`, calling `emit(i, h)` for every index in `keep`
   * (emit takes ownership of h). Rows are independent (eval BatchNorm, no mask), so a batch is run row by
   * row: this bounds the frontend's peak memory (one (1, T/2, 64, 512) activation is 268 MB at 40.96 s).
   */
  private runRow(row: Float32Array, upTo: number, keep: (i: number) => boolean, emit: (i: number, h: tf.Tensor3D) => void): void {
    drainSteps(this.runRowSteps(row, upTo, keep, emit));
  }

  /** one row as a step generator: a yield after the conv frontend and after each conformer layer (src/steps.ts) */
  private *runRowSteps(row: Float32Array, upTo: number, keep: (i: number) => boolean, emit: (i: number, h: tf.Tensor3D) => void): Generator<string, void, void> {
    const f = this.features(row);
    const feats = tf.tensor3d(f.data, [1, f.frames, this.cfg.nMels]);
    let h: tf.Tensor3D | null;
    try {
      h = this.frontend.apply(feats);
    } finally {
      feats.dispose();
    }
    try {
      yield 'frontend';
      const depth = this.cfg.encoderDepth;
      const rot = upTo > 0 ? this.rotaryFor(h.shape[1]) : null;
      for (let i = 0; ; i++) {
        if (i === upTo) {
          if (i === depth && depth > 0) {
            const x: tf.Tensor3D = h;
            const y = tf.tidy(() => layerNorm(x, this.cfg.layerNormEps, this.finalNorm!.g, this.finalNorm!.b) as tf.Tensor3D);
            x.dispose();
            h = y;
          }
          const out: tf.Tensor3D = h;
          h = null;
          emit(i, out);
          return;
        }
        const { out } = this.layers[i]!.apply(h, rot!);
        const prev: tf.Tensor3D = h;
        h = out;
        if (keep(i)) emit(i, prev); else prev.dispose();
        yield `layers.${i}`;
      }
    } finally {
      h?.dispose(); // only when closed early: a finished row has handed its last state to emit
    }
  }

  private stackRows(parts: tf.Tensor3D[]): tf.Tensor3D {
    if (parts.length === 1) return parts[0]!;
    const y = tf.concat(parts, 0);
    for (const p of parts) p.dispose();
    return y;
  }

  /** Hidden states 0..upTo (each (B, T, D)); caller disposes them. */
  hiddenStates(wave: tf.Tensor2D | Float32Array[], upTo: number): tf.Tensor3D[] {
    this.checkIndex(upTo);
    const rows = this.rows(wave);
    if (!rows.length) throw new Error('MuQ: empty batch');
    const per: tf.Tensor3D[][] = Array.from({ length: upTo + 1 }, () => []);
    for (const r of rows) this.runRow(r, upTo, () => true, (i, h) => per[i]!.push(h));
    return per.map((parts) => this.stackRows(parts));
  }

  /** layer_results[layerIndex] (B, T, D); runs only what that index needs. Caller disposes. */
  forward(wave: tf.Tensor2D | Float32Array[], layerIndex: number): tf.Tensor3D {
    return drainSteps(this.forwardSteps(wave, layerIndex));
  }

  /**
   * `forward` giving the event loop a turn after the frontend and after every conformer layer; same bytes. An
   * aborted `signal` stops it at the next of those with its reason (nothing left allocated).
   */
  forwardAsync(wave: tf.Tensor2D | Float32Array[], layerIndex: number, signal?: AbortSignal): Promise<tf.Tensor3D> {
    return drainStepsAsync(this.forwardSteps(wave, layerIndex), abortCheck(signal));
  }

  /** forward as a step generator */
  *forwardSteps(wave: tf.Tensor2D | Float32Array[], layerIndex: number): Generator<string, tf.Tensor3D, void> {
    this.checkIndex(layerIndex);
    const rows = this.rows(wave);
    if (!rows.length) throw new Error('MuQ: empty batch');
    const parts: tf.Tensor3D[] = [];
    let finished = false;
    try {
      for (const r of rows) yield* this.runRowSteps(r, layerIndex, () => false, (_, h) => parts.push(h));
      finished = true;
    } finally {
      if (!finished) for (const p of parts) p.dispose();
    }
    return this.stackRows(parts);
  }

  private checkIndex(i: number): void {
    if (!Number.isInteger(i) || i < 0 || i > this.maxLayerIndex) {
      throw new Error(`MuQ: hidden-state index ${i} outside 0..${this.maxLayerIndex} (built with maxLayerIndex ${this.maxLayerIndex})`);
    }
  }

  dispose(): void {
    this.frontend.dispose();
    for (const l of this.layers) l.dispose();
    this.finalNorm?.g.dispose();
    this.finalNorm?.b.dispose();
    this.rotary?.dispose();
    this.rotary = null;
  }
}

/** MuQConfig from a fixture/upstream config dict: MuQ kwargs (`encoder_dim`, …) + W2V2C config (`hidden_size`, …). */
export function muqConfigFromDicts(muq: Record<string, unknown>, conformer: Record<string, unknown> = {}): Partial<MuQConfig> {
  const n = (o: Record<string, unknown>, k: string): number | undefined => (typeof o[k] === 'number' ? (o[k] as number) : undefined);
  const c: Partial<MuQConfig> = {
    encoderDim: n(muq, 'encoder_dim') ?? n(conformer, 'hidden_size'),
    encoderDepth: n(muq, 'encoder_depth') ?? n(conformer, 'num_hidden_layers'),
    convDim: n(muq, 'conv_dim'),
    nMels: n(muq, 'n_mels'),
    hopLength: n(muq, 'hop_length'),
    labelRate: n(muq, 'label_rate'),
    numHeads: n(conformer, 'num_attention_heads'),
    intermediateSize: n(conformer, 'intermediate_size'),
    convKernel: n(conformer, 'conv_depthwise_kernel_size'),
    rotaryBase: n(conformer, 'rotary_embedding_base'),
    layerNormEps: n(conformer, 'layer_norm_eps'),
    batchNormEps: n(conformer, 'batch_norm_eps'),
  };
  for (const k of Object.keys(c) as (keyof MuQConfig)[]) if (c[k] === undefined) delete c[k];
  return c;
}
