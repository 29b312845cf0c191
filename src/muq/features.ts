/**
 * MuQ input features (MUQ model/muq.py `MuQ.preprocessing` + `MuQ.normalize`, modules/features.py `MelSTFT`):
 * torchaudio MelSpectrogram(24000, n_fft 2048, hop 240, 128 mels, HTK, f_min 0, f_max sr/2, power 2,
 * center=True with reflect padding, periodic Hann window) → AmplitudeToDB (10·log10(clamp(x, 1e-10))) →
 * drop the last STFT frame → (x − mean) / std.
 *
 * Computed on the host (tfjs-wasm has no FFT kernel): real FFT by fft.js in float64, |X|² and the mel
 * projection in float64 (the filterbank is sparse: each mel filter touches a few FFT bins), rounded to float32
 * once; dB and normalisation then in float32 exactly in PyTorch's operation order (NOTES pitfall 4:
 * subtract, then *divide*, constants rounded to float32).
 *
 * The window and filterbank are the checkpoint buffers `preprocessor_melspec_2048.mel_stft.spectrogram.window`
 * and `…mel_stft.mel_scale.fb` when given; otherwise they are computed here in float32 as torch does
 * (`hannWindow`, `melFilterbankHTK`).
 */
import FFT from 'fft.js';

const f = Math.fround;

export interface MelConfig {
  sampleRate: number;
  nFft: number;
  hopLength: number;
  nMels: number;
  fMin: number;
  /** default sampleRate / 2 */
  fMax?: number;
  /** AmplitudeToDB amin */
  amin: number;
  /** MuQ.stat melspec_2048_mean / _std */
  mean: number;
  std: number;
}

export const MUQ_MEL_CONFIG: MelConfig = {
  sampleRate: 24000, nFft: 2048, hopLength: 240, nMels: 128, fMin: 0, amin: 1e-10,
  mean: 6.768444971712967, std: 18.417922652295623,
};

/** torch.hann_window(n, periodic=True) in float32: arange · (2π/n) → cos → ·(−0.5) → +0.5 (TensorFactories hamming_window). */
export function hannWindow(n: number): Float32Array {
  const w = new Float32Array(n);
  const step = f((Math.PI * 2) / n);
  for (let i = 0; i < n; i++) w[i] = f(f(f(Math.cos(f(i * step))) * -0.5) + 0.5);
  return w;
}

/**
 * torch.linspace(start, end, steps) for float32 as the CPU kernel (ATen RangeFactoriesKernel.cpp, AVX2 build)
 * computes it: blocks of 8 start at `start + step·idx` (or `end − step·(steps − idx − 1)` past the halfway
 * point), evaluated as one fused multiply-add, then `base + j·step` within the block; the tail is scalar.
 * This reproduces torchaudio's m_pts so that the computed HTK filterbank matches the checkpoint buffer except
 * for a few 1-ulp powf differences (≤ 3e-6).
 */
function linspaceF32(start: number, end: number, steps: number): Float32Array {
  const out = new Float32Array(steps);
  const s = f(start), e = f(end);
  if (steps === 1) { out[0] = s; return out; }
  const step = f(f(e - s) / (steps - 1));
  const half = Math.floor(steps / 2);
  // fused a·b + c of float32 values: the product is exact in float64, so one rounding
  const at = (i: number): number => (i < half ? f(step * i + s) : f(-step * (steps - i - 1) + e));
  const W = 8;
  let i = 0;
  for (; i + W <= steps; i += W) {
    const base = at(i);
    for (let j = 0; j < W; j++) out[i + j] = f(base + f(j * step));
  }
  for (; i < steps; i++) out[i] = at(i);
  return out;
}

/**
 * torchaudio functional.melscale_fbanks(n_freqs, f_min, f_max, n_mels, sample_rate, norm=None, mel_scale='htk'),
 * float32 arithmetic as torch runs it; returns (n_freqs, n_mels) row-major.
 */
export function melFilterbankHTK(nFreqs: number, fMin: number, fMax: number, nMels: number, sampleRate: number): Float32Array {
  const allFreqs = linspaceF32(0, Math.floor(sampleRate / 2), nFreqs);
  const hzToMel = (hz: number): number => 2595.0 * Math.log10(1.0 + hz / 700.0); // python floats
  const mPts = linspaceF32(hzToMel(fMin), hzToMel(fMax), nMels + 2);
  // _mel_to_hz (htk): 700 * (10 ** (mels / 2595) - 1), tensor ops in float32
  const fPts = mPts.map((m) => f(700 * f(f(Math.pow(10, f(m / 2595))) - 1)));
  const fb = new Float32Array(nFreqs * nMels);
  const fDiff = new Float32Array(nMels + 1);
  for (let i = 0; i <= nMels; i++) fDiff[i] = f(fPts[i + 1]! - fPts[i]!);
  for (let k = 0; k < nFreqs; k++) {
    for (let m = 0; m < nMels; m++) {
      // slopes = f_pts − all_freqs; down = (−1·slopes[:, m]) / f_diff[m]; up = slopes[:, m+2] / f_diff[m+1]
      const down = f(-f(fPts[m]! - allFreqs[k]!) / fDiff[m]!);
      const up = f(f(fPts[m + 2]! - allFreqs[k]!) / fDiff[m + 1]!);
      fb[k * nMels + m] = Math.max(0, Math.min(down, up));
    }
  }
  return fb;
}

/** A (n_freqs, n_mels) filterbank as per-mel sparse bands: weights of the bins [lo, hi) with nonzero value. */
interface SparseBand { lo: number; w: Float64Array }

function sparseBands(fb: Float32Array, nFreqs: number, nMels: number): SparseBand[] {
  const bands: SparseBand[] = [];
  for (let m = 0; m < nMels; m++) {
    let lo = -1, hi = -1;
    for (let k = 0; k < nFreqs; k++) {
      if (fb[k * nMels + m] !== 0) { if (lo < 0) lo = k; hi = k + 1; }
    }
    if (lo < 0) { bands.push({ lo: 0, w: new Float64Array(0) }); continue; }
    const w = new Float64Array(hi - lo);
    for (let k = lo; k < hi; k++) w[k - lo] = fb[k * nMels + m]!;
    bands.push({ lo, w });
  }
  return bands;
}

export interface MelOptions {
  config?: Partial<MelConfig>;
  /** checkpoint buffer …mel_stft.spectrogram.window (n_fft) */
  window?: Float32Array;
  /** checkpoint buffer …mel_stft.mel_scale.fb (n_fft/2+1, n_mels) row-major */
  filterbank?: Float32Array;
}

/** Number of centred STFT frames for n samples: 1 + n // hop. */
export function stftFrames(n: number, hop: number): number {
  return 1 + Math.floor(n / hop);
}

export class MelFeatures {
  readonly cfg: MelConfig;
  readonly nFreqs: number;
  readonly window: Float32Array;
  readonly filterbank: Float32Array;
  private readonly bands: SparseBand[];
  private readonly fft: FFT;

  constructor(opts: MelOptions = {}) {
    this.cfg = { ...MUQ_MEL_CONFIG, ...opts.config };
    const { nFft, nMels, sampleRate, fMin } = this.cfg;
    const fMax = this.cfg.fMax ?? sampleRate / 2;
    this.nFreqs = nFft / 2 + 1;
    this.window = opts.window ?? hannWindow(nFft);
    if (this.window.length !== nFft) throw new Error(`mel: window has ${this.window.length} values, expected ${nFft}`);
    this.filterbank = opts.filterbank ?? melFilterbankHTK(this.nFreqs, fMin, fMax, nMels, sampleRate);
    if (this.filterbank.length !== this.nFreqs * nMels) {
      throw new Error(`mel: filterbank has ${this.filterbank.length} values, expected ${this.nFreqs}×${nMels}`);
    }
    this.bands = sparseBands(this.filterbank, this.nFreqs, nMels);
    this.fft = new FFT(nFft);
  }

  /**
   * MelSpectrogram power (before dB), all 1 + n // hop frames, time-major: (frames, n_mels) float32.
   * torch.stft(center=True, pad_mode='reflect') → |X|² → fb projection.
   */
  melPower(x: Float32Array): Float32Array {
    const { nFft, hopLength, nMels } = this.cfg;
    const n = x.length;
    const pad = nFft / 2;
    if (n <= pad) throw new Error(`mel: reflect padding of ${pad} needs more than ${pad} samples (got ${n})`);
    const frames = stftFrames(n, hopLength);
    const out = new Float32Array(frames * nMels);
    const frame = new Float64Array(nFft);
    const spec = this.fft.createComplexArray() as number[];
    const power = new Float64Array(this.nFreqs);
    const win = this.window;
    for (let t = 0; t < frames; t++) {
      const s0 = t * hopLength - pad;
      if (s0 >= 0 && s0 + nFft <= n) {
        for (let m = 0; m < nFft; m++) frame[m] = x[s0 + m]! * win[m]!;
      } else {
        for (let m = 0; m < nFft; m++) {
          let i = s0 + m;
          if (i < 0) i = -i; else if (i >= n) i = 2 * (n - 1) - i; // reflect (no edge repeat)
          frame[m] = x[i]! * win[m]!;
        }
      }
      this.fft.realTransform(spec, frame);
      for (let k = 0; k < this.nFreqs; k++) {
        const re = spec[2 * k]!, im = spec[2 * k + 1]!;
        power[k] = re * re + im * im;
      }
      const row = t * nMels;
      for (let m = 0; m < nMels; m++) {
        const { lo, w } = this.bands[m]!;
        let acc = 0;
        for (let j = 0; j < w.length; j++) acc += power[lo + j]! * w[j]!;
        out[row + m] = acc;
      }
    }
    return out;
  }

  /** AmplitudeToDB (power, ref 1, no top_db), float32: 10 · log10(clamp(x, amin)). In place. */
  toDb(p: Float32Array): Float32Array {
    const amin = f(this.cfg.amin);
    for (let i = 0; i < p.length; i++) p[i] = f(10 * f(Math.log10(Math.max(p[i]!, amin))));
    return p;
  }

  /**
   * Normalised MuQ features, time-major (T, n_mels) with T = n // hop (the last STFT frame dropped).
   * In place on the dB array's first T rows.
   */
  features(x: Float32Array): { data: Float32Array; frames: number } {
    const { nMels } = this.cfg;
    const db = this.toDb(this.melPower(x));
    const frames = db.length / nMels - 1;
    const out = db.subarray(0, frames * nMels);
    const mean = f(this.cfg.mean), std = f(this.cfg.std);
    for (let i = 0; i < out.length; i++) out[i] = f(f(out[i]! - mean) / std);
    return { data: out, frames };
  }
}

/** (T, C) row-major → (C, T) row-major (PyTorch's (n_mels, frames) layout at the module boundary). */
export function transpose2d(x: Float32Array, rows: number, cols: number): Float32Array {
  const y = new Float32Array(rows * cols);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) y[c * rows + r] = x[r * cols + c]!;
  return y;
}
