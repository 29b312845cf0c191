/**
 * Host-side real short-time Fourier transform (plain JS, float64 arithmetic, float32 or float64 output).
 * The wasm backend has no FFT kernel, so spectra are computed here with fft.js (radix-4, power-of-two sizes)
 * and, for other sizes, Bluestein's chirp-z algorithm on top of it.
 *
 * Conventions follow torch.stft / librosa with `center=True`: the signal is padded by n_fft/2 on both sides
 * (reflect by default: the edge sample is not repeated), frame t covers padded samples [t·hop, t·hop + n_fft),
 * frames = 1 + floor((N + 2·(n_fft/2) − n_fft) / hop), bins = n_fft/2 + 1, and a window shorter than n_fft
 * is zero-padded to n_fft centred (librosa.util.pad_center / torch.stft). Output layout is (B, bins, frames),
 * row-major, as PyTorch returns it.
 */
import FFT from 'fft.js';

export type PadMode = 'reflect' | 'constant' | 'replicate';

export interface StftOptions {
  nFft: number;
  hop: number;
  /** window samples (length ≤ nFft; zero-padded to nFft, centred). Default: periodic Hann of length nFft. */
  window?: ArrayLike<number>;
  /** pad nFft/2 on both sides (default true) */
  center?: boolean;
  /** padding mode when center is true (default 'reflect', as torch.stft and GM:STFT.transform) */
  padMode?: PadMode;
  /** 1: magnitude |X| (default); 2: power |X|² */
  power?: 1 | 2;
}

export interface Spectrogram<T extends Float32Array | Float64Array = Float32Array> {
  /** (B, bins, frames) row-major */
  data: T;
  shape: [number, number, number];
}

/** Periodic Hann window (scipy.signal.get_window('hann', n, fftbins=True), torch.hann_window(n)), float64. */
export function hannWindow(n: number, periodic = true): Float64Array {
  const w = new Float64Array(n);
  const denom = periodic ? n : n - 1;
  if (n === 1) { w[0] = 1; return w; }
  for (let i = 0; i < n; i++) w[i] = 0.5 - 0.5 * Math.cos((2 * Math.PI * i) / denom);
  return w;
}

/** number of frames for a signal of `n` samples */
export function stftFrames(n: number, nFft: number, hop: number, center = true): number {
  const padded = center ? n + 2 * Math.floor(nFft / 2) : n;
  if (padded < nFft) throw new Error(`stft: ${n} samples are shorter than one ${nFft}-sample frame`);
  return 1 + Math.floor((padded - nFft) / hop);
}

/** Pad a signal on both sides. reflect = numpy/torch "reflect" (edge not repeated; needs pad < n). */
export function padSignal(x: ArrayLike<number>, left: number, right: number, mode: PadMode): Float64Array {
  const n = x.length;
  if (mode === 'reflect' && (left >= n || right >= n)) {
    throw new Error(`stft: reflect padding of ${Math.max(left, right)} needs more than ${Math.max(left, right)} samples, got ${n}`);
  }
  const out = new Float64Array(n + left + right);
  for (let i = 0; i < n; i++) out[left + i] = x[i]!;
  for (let i = 0; i < left; i++) {
    const src = mode === 'reflect' ? left - i : 0; // out[i] ↔ x[left - i]
    out[i] = mode === 'constant' ? 0 : x[src]!;
  }
  for (let i = 0; i < right; i++) {
    const src = mode === 'reflect' ? n - 2 - i : n - 1;
    out[left + n + i] = mode === 'constant' ? 0 : x[src]!;
  }
  return out;
}

/**
 * Real DFT of a fixed size: X[k] = Σ_n x[n]·e^{−2πikn/N}, k = 0 … N/2, in float64.
 * Power-of-two sizes use fft.js directly; other sizes use Bluestein's algorithm.
 */
export class RealDft {
  readonly bins: number;
  private readonly fft: FFT | null;
  private readonly out: number[] | null;
  // Bluestein state
  private readonly m: number = 0;
  private readonly big: FFT | null = null;
  private readonly chirpRe: Float64Array | null = null;
  private readonly chirpIm: Float64Array | null = null;
  private readonly bSpec: number[] | null = null;
  private readonly bufA: number[] | null = null;
  private readonly bufB: number[] | null = null;

  constructor(readonly size: number) {
    this.bins = Math.floor(size / 2) + 1;
    if (size >= 2 && (size & (size - 1)) === 0) {
      this.fft = new FFT(size);
      this.out = this.fft.createComplexArray();
      return;
    }
    this.fft = null;
    this.out = null;
    let m = 1;
    while (m < 2 * size - 1) m <<= 1;
    this.m = m;
    this.big = new FFT(m);
    // chirp w[n] = e^{−iπ n²/N}; n² mod 2N keeps the angle exact for large n
    const cr = new Float64Array(size), ci = new Float64Array(size);
    for (let n = 0; n < size; n++) {
      const a = (Math.PI * ((n * n) % (2 * size))) / size;
      cr[n] = Math.cos(a);
      ci[n] = -Math.sin(a);
    }
    this.chirpRe = cr;
    this.chirpIm = ci;
    const b = this.big.createComplexArray();
    for (let n = 0; n < size; n++) {
      b[2 * n] = cr[n]!; b[2 * n + 1] = -ci[n]!; // conj(w)
      if (n > 0) { b[2 * (m - n)] = cr[n]!; b[2 * (m - n) + 1] = -ci[n]!; }
    }
    this.bSpec = this.big.createComplexArray();
    this.big.transform(this.bSpec, b);
    this.bufA = this.big.createComplexArray();
    this.bufB = this.big.createComplexArray();
  }

  /** x (length size) → re, im (length bins each) */
  transform(x: ArrayLike<number>, re: Float64Array, im: Float64Array): void {
    const n = this.size;
    if (this.fft) {
      const out = this.out!;
      this.fft.realTransform(out, x);
      for (let k = 0; k < this.bins; k++) { re[k] = out[2 * k]!; im[k] = out[2 * k + 1]!; }
      return;
    }
    const m = this.m, a = this.bufA!, c = this.bufB!, cr = this.chirpRe!, ci = this.chirpIm!, bs = this.bSpec!;
    a.fill(0);
    for (let i = 0; i < n; i++) { const v = x[i]!; a[2 * i] = v * cr[i]!; a[2 * i + 1] = v * ci[i]!; }
    this.big!.transform(c, a);
    for (let k = 0; k < m; k++) {
      const xr = c[2 * k]!, xi = c[2 * k + 1]!, yr = bs[2 * k]!, yi = bs[2 * k + 1]!;
      c[2 * k] = xr * yr - xi * yi;
      c[2 * k + 1] = xr * yi + xi * yr;
    }
    this.big!.inverseTransform(a, c); // fft.js inverse includes the 1/m factor
    for (let k = 0; k < this.bins; k++) {
      const yr = a[2 * k]!, yi = a[2 * k + 1]!;
      re[k] = yr * cr[k]! - yi * ci[k]!;
      im[k] = yr * ci[k]! + yi * cr[k]!;
    }
  }
}

/** Window of length winLength zero-padded (centred) to nFft, as librosa.util.pad_center / torch.stft do. */
export function centerWindow(window: ArrayLike<number>, nFft: number): Float64Array {
  const wl = window.length;
  if (wl > nFft) throw new Error(`stft: window length ${wl} exceeds n_fft ${nFft}`);
  const out = new Float64Array(nFft);
  const off = Math.floor((nFft - wl) / 2);
  for (let i = 0; i < wl; i++) out[off + i] = window[i]!;
  return out;
}

/**
 * Iterate over the frames of one signal: calls `each(t, re, im)` with the frame's spectrum (bins values,
 * float64, reused buffers). The low-level entry for callers that need the complex values.
 */
export function forEachStftFrame(
  x: ArrayLike<number>, opts: StftOptions,
  each: (t: number, re: Float64Array, im: Float64Array) => void,
): number {
  const { nFft, hop } = opts;
  const center = opts.center ?? true;
  const win = centerWindow(opts.window ?? hannWindow(nFft), nFft);
  const half = Math.floor(nFft / 2);
  const sig = center ? padSignal(x, half, half, opts.padMode ?? 'reflect') : Float64Array.from(x);
  const frames = stftFrames(x.length, nFft, hop, center);
  const dft = new RealDft(nFft);
  const frame = new Float64Array(nFft);
  const re = new Float64Array(dft.bins), im = new Float64Array(dft.bins);
  for (let t = 0; t < frames; t++) {
    const off = t * hop;
    for (let i = 0; i < nFft; i++) frame[i] = sig[off + i]! * win[i]!;
    dft.transform(frame, re, im);
    each(t, re, im);
  }
  return frames;
}

/**
 * Magnitude (power 1) or power (2) spectrogram of a batch of signals.
 * `signals`: (B, N) row-major (one Float32Array of B·N values with `batch`), or an array of B signals.
 */
export function stft(
  signals: Float32Array | ArrayLike<number>[], opts: StftOptions & { batch?: number; float64?: false },
): Spectrogram<Float32Array>;
export function stft(
  signals: Float32Array | ArrayLike<number>[], opts: StftOptions & { batch?: number; float64: true },
): Spectrogram<Float64Array>;
export function stft(
  signals: Float32Array | ArrayLike<number>[], opts: StftOptions & { batch?: number; float64?: boolean },
): Spectrogram<Float32Array> | Spectrogram<Float64Array> {
  const rows = splitRows(signals, opts.batch);
  const n = rows[0]!.length;
  const frames = stftFrames(n, opts.nFft, opts.hop, opts.center ?? true);
  const bins = Math.floor(opts.nFft / 2) + 1;
  const out = opts.float64 ? new Float64Array(rows.length * bins * frames) : new Float32Array(rows.length * bins * frames);
  const power = opts.power ?? 1;
  rows.forEach((row, b) => {
    if (row.length !== n) throw new Error('stft: all signals of a batch must have the same length');
    const base = b * bins * frames;
    forEachStftFrame(row, opts, (t, re, im) => {
      for (let k = 0; k < bins; k++) {
        const p = re[k]! * re[k]! + im[k]! * im[k]!;
        out[base + k * frames + t] = power === 2 ? p : Math.sqrt(p);
      }
    });
  });
  return { data: out, shape: [rows.length, bins, frames] } as Spectrogram<Float32Array> | Spectrogram<Float64Array>;
}

function splitRows(signals: Float32Array | ArrayLike<number>[], batch?: number): ArrayLike<number>[] {
  if (Array.isArray(signals)) return signals;
  const b = batch ?? 1;
  const sig = signals as Float32Array;
  if (sig.length % b) throw new Error(`stft: ${sig.length} samples do not split into ${b} rows`);
  const n = sig.length / b;
  return Array.from({ length: b }, (_, i) => sig.subarray(i * n, (i + 1) * n));
}
