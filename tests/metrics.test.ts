/**
 * Metrics against direct float64 computations written out here independently (naive DFT, explicit Slaney mel
 * triangles, explicit gating loops), and against published BS.1770 values.
 */
import { describe, expect, it } from 'vitest';
import {
  alignPair, compareAudio, integratedLoudness, kWeighting, logSpectralDistance, multiResolutionStftDistance,
  multiScaleMelDistance, siSdr,
} from '../src/metrics/index.js';

function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => { s = (s * 1664525 + 1013904223) >>> 0; return s / 2 ** 32 - 0.5; };
}
function noise(n: number, seed: number, amp = 0.3): Float32Array {
  const r = rng(seed);
  return Float32Array.from({ length: n }, () => amp * r());
}
function sine(n: number, f: number, sr: number, amp: number, phase = 0): Float32Array {
  return Float32Array.from({ length: n }, (_, i) => amp * Math.sin((2 * Math.PI * f * i) / sr + phase));
}

// ---- independent float64 references ------------------------------------------------------------------------
/** |DFT| of centred, reflect-padded, periodic-Hann frames (hop = w/4), naive O(n²) sums: frames × (w/2+1) */
function naiveMagnitudes(x: Float32Array, w: number): number[][] {
  const h = w / 2, hop = w / 4, n = x.length;
  const pad = (i: number): number => (i < 0 ? x[-i]! : i >= n ? x[2 * n - 2 - i]! : x[i]!);
  const frames = 1 + Math.floor(n / hop);
  const out: number[][] = [];
  for (let t = 0; t < frames; t++) {
    const row: number[] = [];
    for (let k = 0; k <= h; k++) {
      let re = 0, im = 0;
      for (let j = 0; j < w; j++) {
        const v = pad(t * hop + j - h) * (0.5 - 0.5 * Math.cos((2 * Math.PI * j) / w));
        re += v * Math.cos((2 * Math.PI * k * j) / w);
        im -= v * Math.sin((2 * Math.PI * k * j) / w);
      }
      row.push(Math.hypot(re, im));
    }
    out.push(row);
  }
  return out;
}
/** Slaney mel scale (linear below 1 kHz, logarithmic above) and area-normalised triangles, float64 */
function slaneyFilters(sr: number, w: number, nMels: number): number[][] {
  const toMel = (f: number): number => (f < 1000 ? f / (200 / 3) : 15 + Math.log(f / 1000) / (Math.log(6.4) / 27));
  const toHz = (m: number): number => (m < 15 ? m * (200 / 3) : 1000 * Math.exp((Math.log(6.4) / 27) * (m - 15)));
  const edges = Array.from({ length: nMels + 2 }, (_, i) => toHz((toMel(sr / 2) * i) / (nMels + 1)));
  return Array.from({ length: nMels }, (_, m) => Array.from({ length: w / 2 + 1 }, (_, k) => {
    const f = (k * sr) / w;
    const tri = Math.max(0, Math.min((f - edges[m]!) / (edges[m + 1]! - edges[m]!), (edges[m + 2]! - f) / (edges[m + 2]! - edges[m + 1]!)));
    return (tri * 2) / (edges[m + 2]! - edges[m]!);
  }));
}
function meanAbs(a: number[][], b: number[][], f: (v: number) => number): number {
  let s = 0, c = 0;
  a.forEach((row, t) => row.forEach((v, i) => { s += Math.abs(f(v) - f(b[t]![i]!)); c++; }));
  return s / c;
}
const project = (mags: number[][], fb: number[][]): number[][] => mags.map((row) => fb.map((tri) => tri.reduce((s, wk, k) => s + wk * row[k]!, 0)));

describe('spectral distances against naive float64 sums', () => {
  const sr = 16000, n = 700;
  const ref = [noise(n, 1), noise(n, 2)];
  const test = [Float32Array.from(ref[0]!, (v, i) => v * 0.8 + 0.05 * Math.sin(i / 3)), noise(n, 3)];

  it('multi-scale mel distance (DAC MelSpectrogramLoss: log10 of clamped mel magnitudes, L1 mean)', () => {
    const scales = [{ window: 64, nMels: 10 }, { window: 128, nMels: 20 }];
    let expected = 0;
    for (const s of scales) {
      const fb = slaneyFilters(sr, s.window, s.nMels);
      let sum = 0;
      for (let c = 0; c < 2; c++) sum += meanAbs(project(naiveMagnitudes(test[c]!, s.window), fb), project(naiveMagnitudes(ref[c]!, s.window), fb), (v) => Math.log10(Math.max(v, 1e-5)));
      expected += sum / 2;
    }
    const got = multiScaleMelDistance(ref, test, sr, scales);
    expect(Math.abs(got - expected) / expected).toBeLessThan(1e-5);
    expect(multiScaleMelDistance(ref, ref, sr, scales)).toBe(0);
  });

  it('multi-resolution STFT distance (DAC MultiScaleSTFTLoss: log10 of clamped power + magnitude L1)', () => {
    const windows = [64, 32];
    let expected = 0;
    for (const w of windows) {
      let sum = 0;
      for (let c = 0; c < 2; c++) {
        const a = naiveMagnitudes(test[c]!, w), b = naiveMagnitudes(ref[c]!, w);
        sum += meanAbs(a, b, (v) => Math.log10(Math.max(v, 1e-5) ** 2)) + meanAbs(a, b, (v) => v);
      }
      expected += sum / 2;
    }
    const got = multiResolutionStftDistance(ref, test, windows);
    expect(Math.abs(got - expected) / expected).toBeLessThan(1e-9);
  });

  it('log-spectral distance: mean over frames of the RMS over bins of log10 power ratios', () => {
    const w = 64;
    let sum = 0, frames = 0;
    for (let c = 0; c < 2; c++) {
      const a = naiveMagnitudes(test[c]!, w), b = naiveMagnitudes(ref[c]!, w);
      a.forEach((row, t) => {
        const sq = row.reduce((s, v, k) => s + Math.log10((v * v + 1e-10) / (b[t]![k]! ** 2 + 1e-10)) ** 2, 0);
        sum += Math.sqrt(sq / row.length); frames++;
      });
    }
    const got = logSpectralDistance(ref, test, w, w / 4);
    expect(Math.abs(got - sum / frames) / (sum / frames)).toBeLessThan(1e-9);
    expect(logSpectralDistance(ref, ref, w, w / 4)).toBe(0);
  });
});

describe('SI-SDR', () => {
  it('equals 10·log10(‖s‖² / ‖e‖²) for an error orthogonal to the reference, whatever the scale of the estimate', () => {
    const sr = 8000, n = 8000; // whole periods: sin and cos of one frequency are orthogonal and zero-mean
    const s = sine(n, 100, sr, 0.5);
    const e = sine(n, 100, sr, 0.05, Math.PI / 2);
    const expected = 10 * Math.log10((0.5 * 0.5) / (0.05 * 0.05));
    expect(siSdr([s], [Float32Array.from(s, (v, i) => v + e[i]!)])).toBeCloseTo(expected, 4);
    expect(siSdr([s], [Float32Array.from(s, (v, i) => 3 * (v + e[i]!))])).toBeCloseTo(expected, 4);
    expect(siSdr([s], [Float32Array.from(s, (v, i) => v + e[i]! + 0.2)])).toBeCloseTo(expected, 4); // mean removed
  });

  it('matches a direct float64 computation on noise, averaged over channels', () => {
    const ref = [noise(500, 4), noise(500, 5)], test = [noise(500, 6), Float32Array.from(noise(500, 5), (v, i) => v + 0.1 * Math.cos(i))];
    const direct = ref.map((s, c) => {
      const e = test[c]!, m = (x: Float32Array): number => x.reduce((a, b) => a + b, 0) / x.length;
      const ms = m(s), me = m(e);
      const dot = s.reduce((a, v, i) => a + (v - ms) * (e[i]! - me), 0), ss = s.reduce((a, v) => a + (v - ms) ** 2, 0);
      const t = Array.from(s, (v) => (dot / (ss + 1e-8)) * (v - ms)); // ε = 1e-8 as documented
      const num = t.reduce((a, v) => a + v * v, 0), den = t.reduce((a, v, i) => a + (e[i]! - me - v) ** 2, 0);
      return 10 * Math.log10((num + 1e-8) / (den + 1e-8));
    });
    expect(siSdr(ref, test)).toBeCloseTo((direct[0]! + direct[1]!) / 2, 6);
  });
});

describe('BS.1770-4 integrated loudness', () => {
  it('derives the 48 kHz K-weighting coefficients of the BS.1770 table', () => {
    const [s1, s2] = kWeighting(48000);
    const table1 = { b: [1.53512485958697, -2.69169618940638, 1.19839281085285], a: [1, -1.69065929318241, 0.73248077421585] };
    const table2 = { b: [1, -2, 1], a: [1, -1.99004745483398, 0.99007225036621] };
    for (let i = 0; i < 3; i++) {
      expect(s1.b[i]).toBeCloseTo(table1.b[i]!, 9); expect(s1.a[i]).toBeCloseTo(table1.a[i]!, 9);
      expect(s2.b[i]).toBeCloseTo(table2.b[i]!, 9); expect(s2.a[i]).toBeCloseTo(table2.a[i]!, 9);
    }
  });

  it('a 0 dBFS 1 kHz sine in one channel reads −3.01 LKFS (BS.1770-4, §2.1), at 48 and 44.1 kHz', () => {
    for (const sr of [48000, 44100]) {
      const l = sine(sr * 5, 1000, sr, 1);
      expect(integratedLoudness([l, new Float32Array(l.length)], sr)).toBeCloseTo(-3.01, 1);
    }
  });

  it('a −23 dBFS 997 Hz stereo sine reads −23.0 LKFS (BS.2217 test signal)', () => {
    const sr = 48000, a = 10 ** (-23 / 20);
    const l = sine(sr * 20, 997, sr, a);
    expect(Math.abs(integratedLoudness([l, l], sr) + 23)).toBeLessThan(0.1);
  });

  it('matches direct gating loops with the tabulated 48 kHz filters (relative gate active)', () => {
    const sr = 48000;
    const x = Float32Array.from(noise(sr * 3, 7, 0.4), (v, i) => (i < sr ? v * 0.01 : v)); // a quiet first second
    const f = (sig: ArrayLike<number>, b: number[], a: number[]): number[] => {
      const y: number[] = [];
      for (let i = 0; i < sig.length; i++) {
        const g = (k: number, arr: ArrayLike<number>): number => (i - k >= 0 ? arr[i - k]! : 0);
        y.push(b[0]! * g(0, sig) + b[1]! * g(1, sig) + b[2]! * g(2, sig) - a[1]! * g(1, y) - a[2]! * g(2, y));
      }
      return y;
    };
    const y = f(f(x, [1.53512485958697, -2.69169618940638, 1.19839281085285], [1, -1.69065929318241, 0.73248077421585]), [1, -2, 1], [1, -1.99004745483398, 0.99007225036621]);
    const z: number[] = [];
    for (let j = 0; j * 4800 + 19200 <= y.length; j++) {
      let s = 0;
      for (let i = j * 4800; i < j * 4800 + 19200; i++) s += y[i]! ** 2;
      z.push(s / 19200);
    }
    const L = (v: number): number => -0.691 + 10 * Math.log10(v);
    const abs = z.filter((v) => L(v) > -70);
    const rel = L(abs.reduce((s, v) => s + v, 0) / abs.length) - 10;
    const kept = abs.filter((v) => L(v) > rel);
    expect(kept.length).toBeLessThan(abs.length); // the quiet second is gated out
    expect(integratedLoudness([x], sr)).toBeCloseTo(L(kept.reduce((s, v) => s + v, 0) / kept.length), 6);
  });

  it('silence is −Infinity; shorter than one block is an error', () => {
    expect(integratedLoudness([new Float32Array(48000)], 48000)).toBe(-Infinity);
    expect(() => integratedLoudness([new Float32Array(1000)], 48000)).toThrow(/shorter than one 400 ms/);
  });
});

describe('compareAudio', () => {
  it('aligns rate, channels and length as reconstruct crops, then scores (identical → zero distances)', () => {
    const sr = 48000;
    const ref = { sampleRate: sr, channels: [sine(sr, 440, sr, 0.3), sine(sr, 660, sr, 0.3)] };
    const same = compareAudio(ref, { sampleRate: sr, channels: [...ref.channels.map((c) => Float32Array.from(c)), ] });
    expect(same.metrics.mel_distance).toBe(0);
    expect(same.metrics.stft_distance).toBe(0);
    expect(same.metrics.lsd).toBe(0);
    expect(same.metrics.loudness_diff_lu).toBe(0);
    expect(same.metrics.si_sdr_db).toBeGreaterThan(80);
    const mono = { sampleRate: 24000, channels: [sine(30000, 440, 24000, 0.3)] }; // 1.25 s at 24 kHz → 60000 at 48 kHz
    const a = alignPair(ref, mono);
    expect(a.ref.length).toBe(2); expect(a.test.length).toBe(2);
    expect(a.ref[0]!.length).toBe(sr); // the shorter one: the 1 s reference
    const r = compareAudio(ref, mono).metrics;
    for (const v of Object.values(r)) expect(Number.isFinite(v)).toBe(true);
    expect(r.mel_distance).toBeGreaterThan(0);
    expect(() => compareAudio(ref, { sampleRate: sr, channels: [] })).toThrow(/test has 0 channels/);
  });
});
