/**
 * sound2code from a streaming AudioSource (a WAV file of any length): the same codes, byte for byte, as
 * prepareStereo48k + MuCodecEncoder.sound2code on the whole signal, with memory bounded by a batch of windows.
 *
 *   pass 1: the 48 kHz stereo signal of file2code (functional.resample with its float32 kernel when the file is
 *           not at 48 kHz, chunk by chunk: src/audio/resample.ts applySincKernelRange gives each output sample
 *           the same sum as the whole-signal resample) → one peak over both channels (GEN preprocess_audio 0.8),
 *           and every input sample checked finite;
 *   pass 2: per window w, its loop-padded samples (w·WINDOW + j) mod L of that signal, read and resampled again
 *           in chunks, divided by the peak's divisor → MuQ + RVQ (MuCodecEncoder.sound2codeWindows).
 * An item shorter than one window (≤ 40.97 s) is held whole after pass 1 (no more than one window).
 */
import { applySincKernelRange, cachedKernel, resampledLength, sincInputRange, type SincKernel } from './audio/resample.js';
import type { AudioSource } from './audio/source.js';
import {
  ITEM_PEAK_THRESHOLD, SAMPLE_RATE, WINDOW_SAMPLES, checkEncodableRate, loopWindow, peakDivisor, peakOf,
  type MuCodecEncoder, type Sound2CodeOptions,
} from './encoder.js';
import { throwIfAborted, yieldToEventLoop } from './steps.js';

/** 48 kHz samples per channel produced per source read (the source is asked for this much plus the filter halo). */
export const STREAM_CHUNK_SAMPLES = 1 << 18;

/** The 48 kHz stereo signal file2code builds from a source (mono duplicated), read by ranges. */
export class Stereo48kReader {
  /** samples per channel at 48 kHz */
  readonly length: number;
  private readonly kernel: SincKernel | null;

  constructor(readonly source: AudioSource) {
    const { name, channels, frames, sampleRate } = source;
    if (channels < 1 || channels > 2) throw new Error(`${name}: only mono or stereo audio is supported (got ${channels} channels)`);
    checkEncodableRate(sampleRate, name);
    if (frames === 0) throw new Error(`${name}: the audio is empty`);
    this.kernel = sampleRate === SAMPLE_RATE ? null : cachedKernel(sampleRate, SAMPLE_RATE, { kernelPrecision: 'float32' });
    this.length = this.kernel ? resampledLength(frames, sampleRate, SAMPLE_RATE) : frames;
  }

  /** Samples [a, b) of both channels (one array twice for a mono source); `checkFinite` checks the input read. */
  async read(a: number, b: number, checkFinite = false): Promise<[Float32Array, Float32Array]> {
    const src = this.source;
    const k = this.kernel;
    const [ia, ib] = k ? sincInputRange(k, src.frames, a, b) : [a, b];
    const x = await src.read(ia, ib - ia);
    if (checkFinite) {
      x.forEach((c, ch) => {
        for (let i = 0; i < c.length; i++) {
          if (!Number.isFinite(c[i]!)) throw new Error(`${src.name}: sample ${ia + i} of channel ${ch} is not a finite number (${c[i]})`);
        }
      });
    }
    const rows = k ? x.map((c) => applySincKernelRange(c, ia, src.frames, k, a, b)) : x;
    return rows.length === 1 ? [rows[0]!, rows[0]!] : [rows[0]!, rows[1]!];
  }

  /** Pass 1: max |x| over both channels of the 48 kHz signal (every input sample checked finite on the way). */
  async peak(signal?: AbortSignal): Promise<number> {
    let peak = 0;
    for (let a = 0; a < this.length; a += STREAM_CHUNK_SAMPLES) {
      throwIfAborted(signal, 'encode aborted');
      const [c0, c1] = await this.read(a, Math.min(this.length, a + STREAM_CHUNK_SAMPLES), true);
      peak = peakOf(c0 === c1 ? [c0] : [c0, c1], peak);
      await yieldToEventLoop(); // a progress redraw / Ctrl-C gets through during a long pass
    }
    return peak;
  }

  /** Samples [a, b) divided by `norm` (float32 quotient, as peakNormalize) into out[·][at …]. */
  async copyNormalized(a: number, b: number, norm: number | null, out: [Float32Array, Float32Array], at: number): Promise<void> {
    for (let s = a; s < b; s += STREAM_CHUNK_SAMPLES) {
      const e = Math.min(b, s + STREAM_CHUNK_SAMPLES);
      const rows = await this.read(s, e);
      for (let c = 0; c < (out[0] === out[1] ? 1 : 2); c++) {
        const x = rows[c]!, y = out[c]!, o = at + s - a;
        if (norm === null) y.set(x, o);
        else for (let i = 0; i < x.length; i++) y[o + i] = x[i]! / norm;
      }
    }
  }
}

/**
 * GEN file2code + sound2code of a source → codes (n_codebooks, output_len) row-major, equal to
 * `enc.sound2code(prepareStereo48k(whole audio))`. The source is read twice (pass 1, pass 2), never whole.
 */
export async function sound2codeFromSource(
  enc: MuCodecEncoder, input: AudioSource | Stereo48kReader, opts: Sound2CodeOptions = {},
): Promise<Int32Array> {
  const reader = input instanceof Stereo48kReader ? input : new Stereo48kReader(input);
  const L = reader.length;
  const mono = reader.source.channels === 1;
  const norm = peakDivisor(await reader.peak(opts.signal), ITEM_PEAK_THRESHOLD);
  const W = WINDOW_SAMPLES;
  const alloc = (n: number): [Float32Array, Float32Array] => {
    const a = new Float32Array(n);
    return [a, mono ? a : new Float32Array(n)];
  };
  let whole: [Float32Array, Float32Array] | null = null;
  if (L < W) { // shorter than a window: loop padding repeats it; hold it (< one window)
    whole = alloc(L);
    await reader.copyNormalized(0, L, norm, whole, 0);
  }
  return enc.sound2codeWindows(L, async (w) => {
    if (whole) {
      const c0 = loopWindow(whole[0], w);
      return [c0, mono ? c0 : loopWindow(whole[1], w)];
    }
    // L ≥ W: the window is [s, s + W) of the signal, wrapping at most once to its start
    const out = alloc(W);
    const s = (w * W) % L;
    const first = Math.min(L - s, W);
    await reader.copyNormalized(s, s + first, norm, out, 0);
    if (first < W) await reader.copyNormalized(0, W - first, norm, out, first);
    return out;
  }, opts);
}
