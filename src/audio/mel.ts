/**
 * Mel filterbanks computed in code (never loaded) and the AudioLDM/HiFi-GAN TacotronSTFT mel front end.
 *
 * - `librosaMelFilterbank` = librosa 0.9.2 `filters.mel` (Slaney mel scale by default, norm 'slaney', float32),
 *   including its two float32 roundings (triangles stored into a float32 array, then scaled in place by the
 *   float64 Slaney factor and stored again), so it reproduces librosa's output bit for bit.
 * - `TacotronSTFT` = MuCodec tools/get_melvaehifigan48k.py:TacotronSTFT.mel_spectrogram (STFT.transform:
 *   reflect pad n_fft/2, periodic Hann, |X|, mel_basis @ |X|, natural log of clamp(·, 1e-5)).
 * - `wavToFbank2` = tools/torch_tools.py:wav_to_fbank2 with target_length −1 (get_mel_from_wav clips to
 *   [−1, 1] and maps NaN to 0 first; output transposed to (B, frames, n_mels)).
 */
import { forEachStftFrame, hannWindow, stftFrames } from './stft.js';

// ---- librosa core/convert.py: hz_to_mel / mel_to_hz -------------------------------------------------------
const F_SP = 200.0 / 3;
const MIN_LOG_HZ = 1000.0;
const MIN_LOG_MEL = MIN_LOG_HZ / F_SP; // (min_log_hz - f_min) / f_sp with f_min = 0
const LOGSTEP = Math.log(6.4) / 27.0;

/** librosa.hz_to_mel (htk=false: Slaney's linear-below-1 kHz / log-above scale) */
export function hzToMel(f: number, htk = false): number {
  if (htk) return 2595.0 * Math.log10(1.0 + f / 700.0);
  if (f >= MIN_LOG_HZ) return MIN_LOG_MEL + Math.log(f / MIN_LOG_HZ) / LOGSTEP;
  return (f - 0.0) / F_SP;
}

/** librosa.mel_to_hz */
export function melToHz(m: number, htk = false): number {
  if (htk) return 700.0 * (10.0 ** (m / 2595.0) - 1.0);
  if (m >= MIN_LOG_MEL) return MIN_LOG_HZ * Math.exp(LOGSTEP * (m - MIN_LOG_MEL));
  return 0.0 + F_SP * m;
}

/** numpy.linspace(start, stop, num) with endpoint=True: start + i·step, the last value set to stop exactly. */
export function linspace(start: number, stop: number, num: number): Float64Array {
  const y = new Float64Array(num);
  if (num === 1) { y[0] = start; return y; }
  const step = (stop - start) / (num - 1);
  for (let i = 0; i < num; i++) y[i] = i * step + start;
  y[num - 1] = stop;
  return y;
}

/** librosa.mel_frequencies(n_mels, fmin, fmax, htk): n points evenly spaced on the mel scale, in Hz */
export function melFrequencies(nMels: number, fmin: number, fmax: number, htk = false): Float64Array {
  const mels = linspace(hzToMel(fmin, htk), hzToMel(fmax, htk), nMels);
  return mels.map((m) => melToHz(m, htk));
}

/** librosa.fft_frequencies = np.fft.rfftfreq(n_fft, 1/sr): k · (1 / (n_fft · (1/sr))) */
export function fftFrequencies(sr: number, nFft: number): Float64Array {
  const d = 1.0 / sr;
  const val = 1.0 / (nFft * d);
  const n = Math.floor(nFft / 2) + 1;
  const out = new Float64Array(n);
  for (let k = 0; k < n; k++) out[k] = k * val;
  return out;
}

export interface MelFilterbankOptions {
  sr: number;
  nFft: number;
  nMels?: number;
  fmin?: number;
  /** default sr / 2 */
  fmax?: number;
  /** false (default): Slaney mel scale; true: HTK */
  htk?: boolean;
  /** 'slaney' (default, area normalisation) or null (peak 1) */
  norm?: 'slaney' | null;
}

/**
 * librosa 0.9.2 filters.mel → (n_mels, 1 + n_fft/2) float32, row-major.
 * Triangle i: max(0, min(−(f_i − f)/(f_{i+1} − f_i), (f_{i+2} − f)/(f_{i+2} − f_{i+1}))) in float64, stored as
 * float32; Slaney norm multiplies that float32 value by the float64 2/(f_{i+2} − f_i) and stores float32 again.
 */
export function librosaMelFilterbank(o: MelFilterbankOptions): Float32Array {
  const nMels = o.nMels ?? 128;
  const fmin = o.fmin ?? 0;
  const fmax = o.fmax ?? o.sr / 2;
  const norm = o.norm === undefined ? 'slaney' : o.norm;
  const fft = fftFrequencies(o.sr, o.nFft);
  const bins = fft.length;
  const melF = melFrequencies(nMels + 2, fmin, fmax, o.htk ?? false);
  const w = new Float32Array(nMels * bins);
  for (let i = 0; i < nMels; i++) {
    const fd0 = melF[i + 1]! - melF[i]!;
    const fd1 = melF[i + 2]! - melF[i + 1]!;
    const enorm = 2.0 / (melF[i + 2]! - melF[i]!);
    for (let k = 0; k < bins; k++) {
      const lower = -(melF[i]! - fft[k]!) / fd0;
      const upper = (melF[i + 2]! - fft[k]!) / fd1;
      let v = Math.fround(Math.max(0, Math.min(lower, upper)));
      if (norm === 'slaney') v = Math.fround(v * enorm);
      w[i * bins + k] = v;
    }
  }
  return w;
}

// ---- TacotronSTFT ------------------------------------------------------------------------------------------
export interface TacotronStftConfig {
  filter_length: number;
  hop_length: number;
  win_length: number;
  n_mel_channels: number;
  sampling_rate: number;
  mel_fmin: number;
  mel_fmax: number;
}

/** GM:build_pretrained_models' configuration (48 kHz, 2048/480/2048, 256 mels, 20 Hz – 24 kHz). */
export const TACOTRON_STFT_48K: TacotronStftConfig = {
  filter_length: 2048, hop_length: 480, win_length: 2048,
  n_mel_channels: 256, sampling_rate: 48000, mel_fmin: 20, mel_fmax: 24000,
};

export interface MelSpectrogramResult {
  frames: number;
  /** (B, n_mels, frames) log mel */
  mel: Float32Array;
  /** (B, bins, frames) log(clamp(|X|, 1e-5)); only when requested */
  logMagnitudes?: Float32Array;
  /** (B, frames) ‖|X|‖₂ over frequency; only when requested */
  energy?: Float32Array;
}

const CLAMP_MIN = Math.fround(1e-5); // torch.clamp(x, min=1e-5) on a float32 tensor

function logClamp(v: number): number {
  return Math.fround(Math.log(v > CLAMP_MIN ? v : CLAMP_MIN));
}

export class TacotronSTFT {
  readonly cfg: TacotronStftConfig;
  /** (n_mels, bins) float32: the `mel_basis` buffer */
  readonly melBasis: Float32Array;
  readonly bins: number;
  private readonly window: Float64Array;
  /** per mel row, the [lo, hi) range of non-zero bins */
  private readonly ranges: Array<[number, number]>;

  constructor(cfg: Partial<TacotronStftConfig> = {}) {
    this.cfg = { ...TACOTRON_STFT_48K, ...cfg };
    const c = this.cfg;
    this.bins = Math.floor(c.filter_length / 2) + 1;
    this.melBasis = librosaMelFilterbank({
      sr: c.sampling_rate, nFft: c.filter_length, nMels: c.n_mel_channels, fmin: c.mel_fmin, fmax: c.mel_fmax,
    });
    // scipy.signal.get_window('hann', win_length, fftbins=True), zero-padded to filter_length by forEachStftFrame
    this.window = hannWindow(c.win_length, true);
    this.ranges = [];
    for (let i = 0; i < c.n_mel_channels; i++) {
      let lo = this.bins, hi = 0;
      for (let k = 0; k < this.bins; k++) if (this.melBasis[i * this.bins + k] !== 0) { lo = Math.min(lo, k); hi = k + 1; }
      this.ranges.push(lo < hi ? [lo, hi] : [0, 0]);
    }
  }

  frames(samples: number): number {
    return stftFrames(samples, this.cfg.filter_length, this.cfg.hop_length, true);
  }

  /**
   * TacotronSTFT.mel_spectrogram on (B, N) audio in [−1, 1] (throws outside, as upstream asserts).
   * Spectra and the mel product are computed in float64 and rounded to float32 once.
   */
  melSpectrogram(wav: Float32Array, batch: number, want: { logMagnitudes?: boolean; energy?: boolean } = {}): MelSpectrogramResult {
    const c = this.cfg;
    if (wav.length % batch) throw new Error(`mel_spectrogram: ${wav.length} samples do not split into ${batch} rows`);
    const n = wav.length / batch;
    for (let i = 0; i < wav.length; i++) {
      const v = wav[i]!;
      if (!(v >= -1 && v <= 1)) throw new Error(`mel_spectrogram: input must lie in [-1, 1] (sample ${i} is ${v})`);
    }
    const frames = this.frames(n);
    const nm = c.n_mel_channels, bins = this.bins;
    const mel = new Float32Array(batch * nm * frames);
    const logMag = want.logMagnitudes ? new Float32Array(batch * bins * frames) : undefined;
    const energy = want.energy ? new Float32Array(batch * frames) : undefined;
    const mag = new Float64Array(bins);
    for (let b = 0; b < batch; b++) {
      const row = wav.subarray(b * n, (b + 1) * n);
      forEachStftFrame(row, { nFft: c.filter_length, hop: c.hop_length, window: this.window, padMode: 'reflect' }, (t, re, im) => {
        let e = 0;
        for (let k = 0; k < bins; k++) {
          const m = Math.sqrt(re[k]! * re[k]! + im[k]! * im[k]!);
          mag[k] = m;
          e += m * m;
          if (logMag) logMag[(b * bins + k) * frames + t] = logClamp(m);
        }
        if (energy) energy[b * frames + t] = Math.sqrt(e);
        for (let i = 0; i < nm; i++) {
          const [lo, hi] = this.ranges[i]!;
          let s = 0;
          const base = i * bins;
          for (let k = lo; k < hi; k++) s += this.melBasis[base + k]! * mag[k]!;
          mel[(b * nm + i) * frames + t] = logClamp(s);
        }
      });
    }
    return { frames, mel, logMagnitudes: logMag, energy };
  }
}

/** get_mel_from_wav's input cleaning: nan_to_num(clip(x, −1, 1)) */
export function clipAudio(wav: Float32Array): Float32Array {
  const out = new Float32Array(wav.length);
  for (let i = 0; i < wav.length; i++) {
    const v = wav[i]!;
    out[i] = Number.isNaN(v) ? 0 : v < -1 ? -1 : v > 1 ? 1 : v;
  }
  return out;
}

/** (B, n_mels, frames) → (B, frames, n_mels) */
export function transposeMel(mel: Float32Array, batch: number, nMels: number, frames: number): Float32Array {
  const out = new Float32Array(mel.length);
  for (let b = 0; b < batch; b++) {
    for (let i = 0; i < nMels; i++) {
      const src = (b * nMels + i) * frames;
      for (let t = 0; t < frames; t++) out[(b * frames + t) * nMels + i] = mel[src + t]!;
    }
  }
  return out;
}

/**
 * torch_tools.wav_to_fbank2(wav, target_length=−1, stft): (B, N) audio → fbank (B, frames, n_mels)
 * (plus the (B, n_mels, frames) log mel it came from).
 */
export function wavToFbank2(wav: Float32Array, batch: number, stft: TacotronSTFT): { fbank: Float32Array; mel: Float32Array; frames: number } {
  const r = stft.melSpectrogram(clipAudio(wav), batch);
  return { fbank: transposeMel(r.mel, batch, stft.cfg.n_mel_channels, r.frames), mel: r.mel, frames: r.frames };
}
