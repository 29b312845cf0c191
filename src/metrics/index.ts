/**
 * Quality metrics between a reference and a test recording (src/metrics/*): `compareAudio` aligns the two as
 * upstream's reconstruct does (the test resampled to the reference's rate, both cut to the shorter length, a mono
 * side duplicated to match a stereo one) and computes every metric.
 */
import { resample } from '../audio/resample.js';
import type { Audio } from '../audio/wav.js';
import { integratedLoudness } from './loudness.js';
import { logSpectralDistance, multiResolutionStftDistance, multiScaleMelDistance } from './spectral.js';
import { siSdr } from './sisdr.js';

export { multiScaleMelDistance, multiResolutionStftDistance, logSpectralDistance, DAC_MEL_SCALES } from './spectral.js';
export { siSdr } from './sisdr.js';
export { integratedLoudness, kWeighting } from './loudness.js';

export interface Metrics {
  /** DAC multi-scale mel distance (lower is better; 0 = identical) */
  mel_distance: number;
  /** DAC multi-resolution STFT distance (lower is better) */
  stft_distance: number;
  /** scale-invariant SDR in dB (higher is better) */
  si_sdr_db: number;
  /** log-spectral distance (log10 power; lower is better) */
  lsd: number;
  /** integrated loudness (BS.1770-4) of the test minus the reference, in LU (null when either is silent) */
  loudness_diff_lu: number | null;
  ref_loudness_lkfs: number | null;
  test_loudness_lkfs: number | null;
}

export interface Aligned { sampleRate: number; ref: Float32Array[]; test: Float32Array[]; seconds: number }

/** Bring two recordings onto one rate, channel count and length (see the module comment). */
export function alignPair(ref: Audio, test: Audio): Aligned {
  for (const [what, a] of [['reference', ref], ['test', test]] as const) {
    if (a.channels.length < 1 || a.channels.length > 2) throw new Error(`compare: the ${what} has ${a.channels.length} channels (mono or stereo only)`);
    if (!(a.sampleRate > 0)) throw new Error(`compare: the ${what} has an invalid sample rate ${a.sampleRate}`);
  }
  const sr = ref.sampleRate;
  let t = test.channels;
  if (test.sampleRate !== sr) t = t.map((c) => resample(c, test.sampleRate, sr));
  let r = ref.channels;
  if (r.length !== t.length) {
    if (r.length === 1) r = [r[0]!, r[0]!];
    else t = [t[0]!, t[0]!];
  }
  const n = Math.min(r[0]!.length, t[0]!.length);
  if (n === 0) throw new Error('compare: one of the recordings is empty');
  return { sampleRate: sr, ref: r.map((c) => c.subarray(0, n)), test: t.map((c) => c.subarray(0, n)), seconds: n / sr };
}

const finiteOrNull = (x: number): number | null => (Number.isFinite(x) ? x : null);

export function computeMetrics(a: Aligned): Metrics {
  for (const [what, rows] of [['reference', a.ref], ['test', a.test]] as const) {
    for (const c of rows) for (let i = 0; i < c.length; i++) {
      if (!Number.isFinite(c[i]!)) throw new Error(`compare: the ${what} has a non-finite sample at ${i} (${c[i]})`);
    }
  }
  const refL = integratedLoudness(a.ref, a.sampleRate);
  const testL = integratedLoudness(a.test, a.sampleRate);
  return {
    mel_distance: multiScaleMelDistance(a.ref, a.test, a.sampleRate),
    stft_distance: multiResolutionStftDistance(a.ref, a.test),
    si_sdr_db: siSdr(a.ref, a.test),
    lsd: logSpectralDistance(a.ref, a.test),
    loudness_diff_lu: finiteOrNull(testL - refL),
    ref_loudness_lkfs: finiteOrNull(refL),
    test_loudness_lkfs: finiteOrNull(testL),
  };
}

/** align, then every metric */
export function compareAudio(ref: Audio, test: Audio): { metrics: Metrics; aligned: Aligned } {
  const aligned = alignPair(ref, test);
  return { metrics: computeMetrics(aligned), aligned };
}
