import { describe, expect, it } from 'vitest';
import { hannWindow, padSignal, RealDft, stft, stftFrames } from '../src/audio/stft.js';

function naiveDft(x: ArrayLike<number>): { re: Float64Array; im: Float64Array } {
  const n = x.length, bins = Math.floor(n / 2) + 1;
  const re = new Float64Array(bins), im = new Float64Array(bins);
  for (let k = 0; k < bins; k++) {
    let r = 0, i = 0;
    for (let t = 0; t < n; t++) { const a = (-2 * Math.PI * ((k * t) % n)) / n; r += x[t]! * Math.cos(a); i += x[t]! * Math.sin(a); }
    re[k] = r; im[k] = i;
  }
  return { re, im };
}

function rand(n: number, seed = 1): Float64Array {
  let s = seed >>> 0;
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) { s = (Math.imul(s, 1664525) + 1013904223) >>> 0; out[i] = s / 2 ** 32 - 0.5; }
  return out;
}

describe('RealDft', () => {
  for (const n of [8, 64, 2048, 12, 400, 1000]) {
    it(`matches a naive DFT at size ${n}${(n & (n - 1)) ? ' (Bluestein)' : ''}`, () => {
      const x = rand(n, n);
      const d = new RealDft(n);
      const re = new Float64Array(d.bins), im = new Float64Array(d.bins);
      d.transform(x, re, im);
      const ref = naiveDft(x);
      let err = 0, mag = 0;
      for (let k = 0; k < d.bins; k++) {
        err = Math.max(err, Math.abs(re[k]! - ref.re[k]!), Math.abs(im[k]! - ref.im[k]!));
        mag = Math.max(mag, Math.abs(ref.re[k]!));
      }
      expect(err / mag).toBeLessThan(1e-11);
    });
  }
});

describe('stft framing', () => {
  it('reflect padding does not repeat the edge sample (numpy/torch "reflect")', () => {
    expect(Array.from(padSignal([1, 2, 3, 4, 5], 3, 2, 'reflect'))).toEqual([4, 3, 2, 1, 2, 3, 4, 5, 4, 3]);
    expect(Array.from(padSignal([1, 2, 3], 1, 1, 'constant'))).toEqual([0, 1, 2, 3, 0]);
    expect(Array.from(padSignal([1, 2, 3], 2, 1, 'replicate'))).toEqual([1, 1, 1, 2, 3, 3]);
    expect(() => padSignal([1, 2], 2, 0, 'reflect')).toThrow();
  });

  it('frames = N // hop + 1 with centre padding', () => {
    expect(stftFrames(19999, 2048, 480)).toBe(42);
    expect(stftFrames(480000, 2048, 480)).toBe(1001);
    expect(stftFrames(3008, 2048, 480, false)).toBe(3);
  });

  it('periodic Hann', () => {
    const w = hannWindow(8);
    expect(w[0]).toBe(0);
    expect(w[4]).toBeCloseTo(1, 15);
    expect(w[2]).toBeCloseTo(0.5, 15);
    const s = hannWindow(5, false);
    expect(s[4]).toBeCloseTo(0, 15);
  });

  it('magnitude and power agree with a direct windowed DFT of each frame', () => {
    const n = 700, nFft = 256, hop = 100;
    const x = Float32Array.from(rand(2 * n, 7));
    const win = hannWindow(200); // shorter window: centred in n_fft
    const mag = stft(x, { nFft, hop, batch: 2, window: win });
    const pow = stft([x.subarray(0, n), x.subarray(n)], { nFft, hop, window: win, power: 2, float64: true });
    const frames = stftFrames(n, nFft, hop);
    expect(mag.shape).toEqual([2, 129, frames]);
    const padded = padSignal(x.subarray(n), 128, 128, 'reflect');
    for (const t of [0, 3, frames - 1]) {
      const fr = new Float64Array(nFft);
      for (let i = 0; i < 200; i++) fr[28 + i] = padded[t * hop + 28 + i]! * win[i]!;
      const ref = naiveDft(fr);
      for (const k of [0, 5, 64, 128]) {
        const m = Math.hypot(ref.re[k]!, ref.im[k]!);
        expect(mag.data[(1 * 129 + k) * frames + t]).toBeCloseTo(m, 5);
        expect(pow.data[(1 * 129 + k) * frames + t]! / (m * m)).toBeCloseTo(1, 9);
      }
    }
  });
});

describe('librosa Slaney mel filterbank (computed in code)', () => {
  it('equals librosa 0.9.2 filters.mel (mid.mel_basis of the stft.mel fixture)', async () => {
    const { loadCase } = await import('../src/fixtures.js');
    const { librosaMelFilterbank, TacotronSTFT } = await import('../src/audio/mel.js');
    const { toFloat32 } = await import('../src/hosttensor.js');
    const c = await loadCase(new URL('./fixtures/audio/stft.mel', import.meta.url).pathname);
    const ref = toFloat32(c.t('mid.mel_basis'));
    const ours = librosaMelFilterbank({ sr: 48000, nFft: 2048, nMels: 256, fmin: 20, fmax: 24000 });
    expect(ours.length).toBe(ref.length);
    expect(Array.from(new TacotronSTFT().melBasis.subarray(0, 2050))).toEqual(Array.from(ours.subarray(0, 2050)));
    // bit-exact everywhere except where the reference machine's exp/log rounded the fmax edge differently:
    // filter 255 at the Nyquist bin is 0 there and 2.4e-17 here (mel_to_hz(hz_to_mel(24000)) = 24000.000000000004)
    let exact = 0, worst = 0;
    for (let i = 0; i < ref.length; i++) {
      if (ref[i] === ours[i]) exact++;
      else worst = Math.max(worst, Math.abs(ref[i]! - ours[i]!));
    }
    expect(exact).toBeGreaterThanOrEqual(ref.length - 1);
    expect(worst).toBeLessThan(1e-15);
  });

  it('hz↔mel (Slaney and HTK) round-trip and the 1 kHz break', async () => {
    const { hzToMel, melToHz } = await import('../src/audio/mel.js');
    expect(hzToMel(1000)).toBeCloseTo(15, 12);
    expect(hzToMel(500)).toBeCloseTo(7.5, 12);
    for (const f of [20, 700, 1000, 5000, 24000]) {
      expect(melToHz(hzToMel(f))).toBeCloseTo(f, 8);
      expect(melToHz(hzToMel(f, true), true)).toBeCloseTo(f, 8);
    }
  });
});
