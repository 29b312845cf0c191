/**
 * MuCodec's encode path: audio → codes, exactly as upstream generate.py `MuCodec.sound2code` (GEN) with
 * model.py `PromptCondAudioDiffusion.fetch_codes_batch` (MODEL).
 *
 *   sound2code(orig (2, L) 48 kHz):
 *     GEN preprocess_audio: one peak over both channels; if peak > 0.8: x / (peak / 0.8)        (float32)
 *     output_len = int(L / 48000 · 25) + 1                               (double arithmetic: not L // 1920 + 1)
 *     loop padding to whole windows of 1966560 samples: window w, channel c, sample j = pre[c, (w·1966560 + j) mod L]
 *     per window (fetch_codes_batch): per-row preprocess_audio(0.9) → mono (ch0 + ch1) / 2 → 48 k → 24 k
 *       (transforms.Resample kernel) → MuQ layer_results[layer_num − 1] → RVQ codes (1024 per window)
 *     codes of the windows in order, cut to output_len.
 *   Windows are independent (eval BatchNorm, no masks), so windows whose codes all fall beyond output_len are
 *   skipped, and the batch size only changes memory use, not the codes.
 *
 * GEN file2code (prepareStereo48k): a file not at 48 kHz is first resampled with torchaudio
 * `functional.resample` (kernel built in float32), a mono file duplicated to two channels.
 * The same from a file read in chunks (never whole): src/encode_source.ts, through sound2codeWindows.
 */
import { throwIfAborted, yieldToEventLoop } from './steps.js';
import * as tf from '@tensorflow/tfjs-core';
import { resample, resample48kTo24k, sincKernelEntries, sincResampleKernel } from './audio/resample.js';
import type { Params } from './params.js';
import { checkSampleRate } from './audio/source.js';
import type { Audio } from './audio/wav.js';
import type { MuQEncoder } from './muq/muq.js';
import type { RVQ } from './rvq/rvq.js';

/** MuCodec.sample_rate */
export const SAMPLE_RATE = 48000;
/** GEN sound2code min_samples = int(40.96 · 48000) */
export const MIN_SAMPLES = 1966080;
/** window length: min_samples + 480 (40.97 s) */
export const WINDOW_SAMPLES = MIN_SAMPLES + 480;
/** codes per second */
export const FRAME_RATE = 25;
/** GEN preprocess_audio threshold (whole item) */
export const ITEM_PEAK_THRESHOLD = 0.8;
/** MODEL preprocess_audio threshold (per channel row of a window) */
export const ROW_PEAK_THRESHOLD = 0.9;

const f32 = Math.fround;

/**
 * Peak normalisation of upstream's preprocess_audio, in float32: peak = max |x| over all `rows` together;
 * if peak > fl32(threshold): x / fl32(peak / fl32(threshold)), else x unchanged (a copy is returned only when
 * scaling happens). GEN uses one peak over both channels (threshold 0.8), MODEL one per row (0.9).
 */
export function peakNormalize(rows: Float32Array[], threshold: number): Float32Array[] {
  const norm = peakDivisor(peakOf(rows), threshold);
  if (norm === null) return rows;
  return rows.map((r) => {
    const y = new Float32Array(r.length);
    for (let i = 0; i < r.length; i++) y[i] = r[i]! / norm; // Float32Array store rounds once: fl32(x / norm)
    return y;
  });
}

/** max |x| over all rows together (the running maximum can be carried from chunk to chunk). */
export function peakOf(rows: Float32Array[], peak = 0): number {
  for (const r of rows) for (let i = 0; i < r.length; i++) { const a = Math.abs(r[i]!); if (a > peak) peak = a; }
  return peak;
}

/** preprocess_audio's divisor fl32(peak / fl32(threshold)) when peak > fl32(threshold), else null (unchanged). */
export function peakDivisor(peak: number, threshold: number): number | null {
  const thr = f32(threshold);
  return peak > thr ? f32(peak / thr) : null;
}

/** GEN sound2code output_len = int(L / 48000.0 · 25) + 1 (double arithmetic, truncation). */
export function outputLength(L: number): number {
  return Math.trunc((L / SAMPLE_RATE) * FRAME_RATE) + 1;
}

/** Windows sound2code builds for L samples: double until ≥ window, then len // min_samples + 1. */
export function windowCount(L: number): number {
  if (!(Number.isInteger(L) && L > 0)) throw new Error(`sound2code: input length must be a positive integer (got ${L})`);
  let len = L;
  while (len < WINDOW_SAMPLES) len *= 2;
  return Math.floor(len / MIN_SAMPLES) + 1;
}

/** Window `w` of a channel under upstream's loop padding: out[j] = x[(w·WINDOW + j) mod L]. */
export function loopWindow(x: Float32Array, w: number, windowSamples = WINDOW_SAMPLES): Float32Array {
  const L = x.length;
  const out = new Float32Array(windowSamples);
  let src = (w * windowSamples) % L;
  let j = 0;
  while (j < windowSamples) {
    const take = Math.min(L - src, windowSamples - j);
    out.set(x.subarray(src, src + take), j);
    j += take;
    src = 0;
  }
  return out;
}

/**
 * The sample rates encode accepts: [MIN_SAMPLE_RATE, MAX_SAMPLE_RATE], and — when not 48 kHz — a resampling
 * kernel of at most MAX_KERNEL_ENTRIES (a rate with a small gcd with 48000, e.g. 47999 Hz, would need a
 * 48000-phase kernel of 9 GB).
 */
export function checkEncodableRate(rate: number, name: string): void {
  checkSampleRate(rate, name);
  if (rate !== SAMPLE_RATE && sincKernelEntries(rate, SAMPLE_RATE) > MAX_KERNEL_ENTRIES) {
    const mb = Math.round((sincKernelEntries(rate, SAMPLE_RATE) * 12) / 2 ** 20);
    throw new Error(`${name}: sample rate ${rate} Hz is not supported: resampling it to 48000 Hz needs a ${mb} MB filter (resample the file to a common rate such as 44100 or 48000 Hz first)`);
  }
}

/** Largest resampling kernel (entries) encode builds: 2^24 (≈ 200 MB with its float64 copy). */
export const MAX_KERNEL_ENTRIES = 1 << 24;

/** The stereo 48 kHz input of file2code: functional.resample (float32 kernel) when not at 48 kHz; mono → 2 channels. */
export function prepareStereo48k(audio: Audio): [Float32Array, Float32Array] {
  const { sampleRate, channels } = audio;
  if (channels.length < 1 || channels.length > 2) {
    throw new Error(`encode: only mono or stereo audio is supported (got ${channels.length} channels)`);
  }
  checkEncodableRate(sampleRate, 'encode');
  const n = channels[0]!.length;
  if (channels.some((c) => c.length !== n)) throw new Error('encode: channels have different lengths');
  if (n === 0) throw new Error('encode: the audio is empty');
  for (const c of channels) {
    for (let i = 0; i < n; i++) if (!Number.isFinite(c[i]!)) throw new Error(`encode: sample ${i} is not a finite number (${c[i]})`);
  }
  let rows = channels;
  if (sampleRate !== SAMPLE_RATE) rows = rows.map((c) => resample(c, sampleRate, SAMPLE_RATE, { kernelPrecision: 'float32' }));
  return rows.length === 1 ? [rows[0]!, rows[0]!] : [rows[0]!, rows[1]!];
}

export interface EncodeProgress {
  /** windows finished */
  window: number;
  /** windows to encode (those holding codes below output_len) */
  windows: number;
  /** codes ready so far */
  frames: number;
  /** total codes (output_len) */
  totalFrames: number;
}

export interface Sound2CodeOptions {
  /** windows per MuQ batch (default 1; upstream uses 3 — the codes do not depend on it) */
  batchSize?: number;
  onProgress?: (p: EncodeProgress) => void;
  signal?: AbortSignal;
}

export interface FetchCodesResult {
  /** (B, n_codebooks, T) row-major */
  codes: Int32Array;
  batch: number;
  frames: number;
  /** MuQ hidden state (B, T, D) when asked for (caller disposes) */
  emb?: tf.Tensor3D;
  /** 24 kHz mono MuQ input rows, when asked for */
  muqInput?: Float32Array[];
}

/** Encoder of codes: MuQ (built up to the needed layer) + RVQ in_proj/codebook + the 48 k → 24 k kernel. */
export class MuCodecEncoder {
  /** hidden-state index = layer_num − 1 */
  readonly layerIndex: number;

  constructor(
    readonly muq: MuQEncoder,
    readonly rvq: RVQ,
    /** MuCodec constructor layer_num (7) */
    readonly layerNum: number,
  ) {
    this.layerIndex = layerNum - 1;
    if (this.layerIndex < 0 || this.layerIndex > muq.maxLayerIndex) {
      throw new Error(`MuCodec layer_num ${layerNum} needs MuQ hidden state ${this.layerIndex}, the encoder was built up to ${muq.maxLayerIndex}`);
    }
  }

  /** codes per window (1024 for 40.97 s windows) */
  get framesPerWindow(): number {
    return this.muq.tokensFor(Math.ceil(WINDOW_SAMPLES / 2));
  }

  /** MODEL per-row normalisation, mono mix and rsq48tomuencoder for one stereo item. */
  muqInput(ch0: Float32Array, ch1: Float32Array): Float32Array {
    const [a] = peakNormalize([ch0], ROW_PEAK_THRESHOLD);
    const [b] = peakNormalize([ch1], ROW_PEAK_THRESHOLD);
    const mono = new Float32Array(a!.length);
    for (let i = 0; i < mono.length; i++) mono[i] = f32(a![i]! + b![i]!) / 2;
    return resample48kTo24k(mono);
  }

  /**
   * MODEL fetch_codes_batch(input_audios (B, 2, n) at 48 kHz, layer = layer_num − 1) → codes (B, 1, T).
   * `items[b] = [ch0, ch1]`.
   */
  fetchCodes(items: Array<[Float32Array, Float32Array]>, opts: { withEmb?: boolean; withMuqInput?: boolean; signal?: AbortSignal } = {}): Promise<FetchCodesResult> {
    if (!items.length) throw new Error('fetch_codes: empty batch');
    const rows = items.map(([a, b]) => {
      if (a.length !== b.length) throw new Error('fetch_codes: channels of an item have different lengths');
      return this.muqInput(a, b);
    });
    return this.codesOf(rows, opts.withEmb ?? false, opts.signal).then((r) => (opts.withMuqInput ? { ...r, muqInput: rows } : r));
  }

  private async codesOf(rows24k: Float32Array[], withEmb: boolean, signal?: AbortSignal): Promise<FetchCodesResult> {
    // MuQ hands the event loop back after its frontend and every conformer layer (≈ 12 s and 1.6 s at the real size)
    const emb = await this.muq.forwardAsync(rows24k, this.layerIndex, signal);
    try {
      const r = this.rvq.quantizeChannelsLast(emb, { withZq: false });
      r.latents.dispose();
      const codes = (await r.codes.data()) as Int32Array;
      r.codes.dispose();
      return { codes, batch: emb.shape[0], frames: emb.shape[1], emb: withEmb ? emb : undefined };
    } finally {
      if (!withEmb) emb.dispose();
    }
  }

  /**
   * GEN sound2code on a stereo 48 kHz signal [ch0, ch1] → codes (n_codebooks, output_len) row-major
   * (MuCodec: output_len codes).
   */
  async sound2code(orig: [Float32Array, Float32Array], opts: Sound2CodeOptions = {}): Promise<Int32Array> {
    const L = orig[0].length;
    if (orig[1].length !== L) throw new Error('sound2code: channels have different lengths');
    windowCount(L); // validates L
    const [c0, c1] = peakNormalize([orig[0], orig[1]], ITEM_PEAK_THRESHOLD) as [Float32Array, Float32Array];
    return this.sound2codeWindows(L, (w) => [loopWindow(c0, w), loopWindow(c1, w)], opts);
  }

  /**
   * The window loop of sound2code for an item of L samples at 48 kHz whose loop-padded, 0.8-normalised window
   * w (WINDOW_SAMPLES per channel) `windowAt(w)` gives — built on demand, so only a batch of windows is ever held
   * (the streaming encode builds them from a file). Codes (n_codebooks, output_len) row-major.
   */
  async sound2codeWindows(
    L: number,
    windowAt: (w: number) => [Float32Array, Float32Array] | Promise<[Float32Array, Float32Array]>,
    opts: Sound2CodeOptions = {},
  ): Promise<Int32Array> {
    const nWin = windowCount(L);
    const outLen = outputLength(L);
    const per = this.framesPerWindow;
    const needed = Math.min(nWin, Math.ceil(outLen / per));
    const nCb = this.rvq.config.n_codebooks;
    const all = new Int32Array(nCb * needed * per);
    const batch = Math.max(1, Math.floor(opts.batchSize ?? 1));
    const report = (w: number) => opts.onProgress?.({ window: w, windows: needed, frames: Math.min(outLen, w * per), totalFrames: outLen });
    report(0);
    for (let w0 = 0; w0 < needed; w0 += batch) {
      throwIfAborted(opts.signal, 'encode aborted');
      const ws = Array.from({ length: Math.min(batch, needed - w0) }, (_, i) => w0 + i);
      const items: Array<[Float32Array, Float32Array]> = [];
      for (const w of ws) items.push(await windowAt(w));
      throwIfAborted(opts.signal, 'encode aborted');
      const r = await this.fetchCodes(items, { signal: opts.signal });
      if (r.frames !== per) throw new Error(`sound2code: a window gave ${r.frames} codes, expected ${per}`);
      // r.codes is (b, nCb, per); output is (nCb, windows·per)
      for (let i = 0; i < ws.length; i++) {
        for (let q = 0; q < nCb; q++) {
          all.set(r.codes.subarray((i * nCb + q) * per, (i * nCb + q + 1) * per), q * needed * per + ws[i]! * per);
        }
      }
      report(w0 + ws.length);
      await yieldToEventLoop(); // let a TTY progress line / abort signal through
    }
    if (nCb === 1) return all.slice(0, outLen);
    const out = new Int32Array(nCb * outLen);
    for (let q = 0; q < nCb; q++) out.set(all.subarray(q * needed * per, q * needed * per + outLen), q * outLen);
    return out;
  }

  dispose(): void {
    this.muq.dispose();
    this.rvq.dispose();
  }
}

/** Samples per channel of the audio after file2code's conversion to 48 kHz. */
export function prepareLength48k(audio: Audio): number {
  const n = audio.channels[0]?.length ?? 0;
  if (audio.sampleRate === 48000) return n;
  return prepareStereo48k({ sampleRate: audio.sampleRate, channels: [audio.channels[0]!.subarray(0, n)] })[0].length;
}

/**
 * rsq48tomuencoder.kernel (1, 1, 28), when the weights hold it, must equal the transforms.Resample(48000, 24000)
 * kernel the encoder builds (NOTES: it is a fresh torchaudio kernel); a different one is refused rather than
 * silently ignored.
 */
export function checkResampleKernel(p: Params): void {
  if (!p.has('rsq48tomuencoder.kernel')) return;
  const k = p.f32('rsq48tomuencoder.kernel', [1, 1, 28]);
  const ref = sincResampleKernel(48000, 24000, { kernelPrecision: 'float64' }).kernel;
  for (let i = 0; i < 28; i++) {
    if (k[i] !== ref[i]) throw new Error(`${p.source}: rsq48tomuencoder.kernel[${i}] = ${k[i]} differs from torchaudio's Resample(48000, 24000) kernel (${ref[i]})`);
  }
}
