/**
 * Spectral distances between a reference and a test signal, as codec papers report them.
 *
 * - `multiScaleMelDistance`: DAC's mel loss (descript-audio-codec dac/nn/loss.py MelSpectrogramLoss with the
 *   settings of conf/base.yml: n_mels 5…320 on windows 32…2048, hop = window / 4, periodic Hann, centred reflect
 *   padding, librosa Slaney mel filters on |X|, pow 1, clamp 1e-5, log weight 1, magnitude weight 0):
 *   Σ_scales mean |log10(max(M_test, ε)) − log10(max(M_ref, ε))| (+ magnitude L1 when magWeight > 0).
 * - `multiResolutionStftDistance`: DAC's MultiScaleSTFTLoss (windows 2048 and 512, pow 2, clamp 1e-5, log and
 *   magnitude weight 1): Σ_scales mean |log10(max(|X|, ε)²) − log10(max(|Y|, ε)²)| + mean ||X| − |Y||.
 * - `logSpectralDistance`: mean over frames of sqrt(mean over bins of (log10((|X|² + ε) / (|Y|² + ε)))²), STFT 2048 / 512,
 *   ε = 1e-10 (the log10-power form used by the speech super-resolution literature, e.g. NU-Wave, AudioSR).
 *
 * Signals are planar channels of equal length; every mean runs over channels × bands × frames. float64 throughout.
 */
import { forEachStftFrame } from '../audio/stft.js';
import { librosaMelFilterbank } from '../audio/mel.js';

export interface MelScale { window: number; nMels: number; fmin?: number; fmax?: number }

export interface SpectralWeights {
  /** clamp below this before the log (DAC: 1e-5) */
  clampEps: number;
  /** power applied after the clamp, before log10 */
  pow: number;
  logWeight: number;
  magWeight: number;
}

/** conf/base.yml MelSpectrogramLoss of DAC */
export const DAC_MEL_SCALES: MelScale[] = [32, 64, 128, 256, 512, 1024, 2048].map((window, i) => ({ window, nMels: 5 * 2 ** i }));
export const DAC_MEL_WEIGHTS: SpectralWeights = { clampEps: 1e-5, pow: 1, logWeight: 1, magWeight: 0 };
/** DAC MultiScaleSTFTLoss defaults */
export const DAC_STFT_WINDOWS = [2048, 512];
export const DAC_STFT_WEIGHTS: SpectralWeights = { clampEps: 1e-5, pow: 2, logWeight: 1, magWeight: 1 };

/** Sparse rows of a mel filterbank: for band m, weights w[m] over bins [start[m], start[m] + w[m].length). */
interface SparseFilters { start: Int32Array; weights: Float64Array[] }

function sparseMel(sr: number, nFft: number, nMels: number, fmin: number, fmax: number): SparseFilters {
  const dense = librosaMelFilterbank({ sr, nFft, nMels, fmin, fmax });
  const bins = Math.floor(nFft / 2) + 1;
  const start = new Int32Array(nMels);
  const weights: Float64Array[] = [];
  for (let m = 0; m < nMels; m++) {
    let a = bins, b = -1;
    for (let k = 0; k < bins; k++) if (dense[m * bins + k]! !== 0) { if (a === bins) a = k; b = k; }
    if (b < 0) { start[m] = 0; weights.push(new Float64Array(0)); continue; }
    start[m] = a;
    weights.push(Float64Array.from(dense.subarray(m * bins + a, m * bins + b + 1)));
  }
  return { start, weights };
}

/**
 * Feature frames of one channel: calls `each(t, features)` with |X| (project = null) or the mel projection of |X|.
 */
function features(x: Float32Array, window: number, project: SparseFilters | null, each: (f: Float64Array) => void): void {
  const bins = Math.floor(window / 2) + 1;
  const mag = new Float64Array(bins);
  const out = project ? new Float64Array(project.weights.length) : mag;
  if (x.length <= window / 2) throw new Error(`metrics: ${x.length} samples are too short for a ${window}-sample STFT (reflect padding)`);
  forEachStftFrame(x, { nFft: window, hop: window / 4 }, (_t, re, im) => {
    for (let k = 0; k < bins; k++) mag[k] = Math.sqrt(re[k]! * re[k]! + im[k]! * im[k]!);
    if (project) {
      for (let m = 0; m < out.length; m++) {
        const w = project.weights[m]!, s = project.start[m]!;
        let acc = 0;
        for (let j = 0; j < w.length; j++) acc += w[j]! * mag[s + j]!;
        out[m] = acc;
      }
    }
    each(out);
  });
}

/** mean over channels × bands × frames of the log and magnitude L1 terms at one scale */
function scaleDistance(
  ref: Float32Array[], test: Float32Array[], window: number, project: SparseFilters | null, w: SpectralWeights,
): number {
  let logSum = 0, magSum = 0, count = 0;
  const logOf = (v: number): number => w.pow * Math.log10(Math.max(v, w.clampEps)); // log10(max(v, ε)^pow)
  for (let c = 0; c < ref.length; c++) {
    // the reference's features (and their logs) in two flat buffers, then one pass over the test's frames
    let dim = 0, off = 0;
    let mags = new Float64Array(0), logs = new Float64Array(0);
    features(ref[c]!, window, project, (f) => {
      if (!dim) { dim = f.length; const total = (1 + Math.floor(ref[c]!.length / (window / 4))) * dim; mags = new Float64Array(total); logs = new Float64Array(total); }
      for (let i = 0; i < dim; i++) { mags[off + i] = f[i]!; logs[off + i] = logOf(f[i]!); }
      off += dim;
    });
    off = 0;
    features(test[c]!, window, project, (f) => {
      for (let i = 0; i < dim; i++) {
        logSum += Math.abs(logOf(f[i]!) - logs[off + i]!);
        magSum += Math.abs(f[i]! - mags[off + i]!);
      }
      off += dim;
      count += dim;
    });
  }
  return w.logWeight * (logSum / count) + w.magWeight * (magSum / count);
}

function checkPair(ref: Float32Array[], test: Float32Array[]): void {
  if (!ref.length || ref.length !== test.length) throw new Error(`metrics: ${ref.length} reference channel(s) vs ${test.length} test channel(s)`);
  const n = ref[0]!.length;
  for (const ch of [...ref, ...test]) if (ch.length !== n) throw new Error('metrics: every channel of both signals must have the same length');
}

export function multiScaleMelDistance(
  ref: Float32Array[], test: Float32Array[], sampleRate: number,
  scales: MelScale[] = DAC_MEL_SCALES, weights: SpectralWeights = DAC_MEL_WEIGHTS,
): number {
  checkPair(ref, test);
  let total = 0;
  for (const s of scales) {
    const proj = sparseMel(sampleRate, s.window, s.nMels, s.fmin ?? 0, s.fmax ?? sampleRate / 2);
    total += scaleDistance(ref, test, s.window, proj, weights);
  }
  return total;
}

export function multiResolutionStftDistance(
  ref: Float32Array[], test: Float32Array[], windows: number[] = DAC_STFT_WINDOWS, weights: SpectralWeights = DAC_STFT_WEIGHTS,
): number {
  checkPair(ref, test);
  let total = 0;
  for (const w of windows) total += scaleDistance(ref, test, w, null, weights);
  return total;
}

export const LSD_EPS = 1e-10;

export function logSpectralDistance(ref: Float32Array[], test: Float32Array[], nFft = 2048, hop = 512): number {
  checkPair(ref, test);
  const bins = nFft / 2 + 1;
  let sum = 0, frames = 0;
  for (let c = 0; c < ref.length; c++) {
    const rp: Float64Array[] = [];
    forEachStftFrame(ref[c]!, { nFft, hop }, (_t, re, im) => {
      const p = new Float64Array(bins);
      for (let k = 0; k < bins; k++) p[k] = re[k]! * re[k]! + im[k]! * im[k]!;
      rp.push(p);
    });
    forEachStftFrame(test[c]!, { nFft, hop }, (t, re, im) => {
      const r = rp[t]!;
      let acc = 0;
      for (let k = 0; k < bins; k++) {
        const d = Math.log10((re[k]! * re[k]! + im[k]! * im[k]! + LSD_EPS) / (r[k]! + LSD_EPS));
        acc += d * d;
      }
      sum += Math.sqrt(acc / bins);
      frames++;
    });
  }
  return sum / frames;
}
