/**
 * Band-limited resampling identical to torchaudio's `functional.resample` / `transforms.Resample` with the
 * defaults MuCodec uses (method sinc_interp_hann = "sinc_interpolation", lowpass_filter_width 6, rolloff 0.99).
 *
 *   resample(x, orig, target, {kernelPrecision})   one channel, Float32Array in / out
 *   resample48kTo24k(x)                            MODEL `rsq48tomuencoder` (transforms.Resample(48000, 24000))
 *   sincResampleKernel(orig, target, precision)    the (new/gcd, 2·width + orig/gcd) polyphase kernel
 *
 * Kernel precision (torchaudio functional.py `_get_sinc_resample_kernel`):
 *  - 'float64': transforms.Resample builds the kernel with dtype=None: index grid in float64 (the phase offset
 *    −i/new comes from an int64 arange divided in the default float32 dtype, then promoted), rounded to float32
 *    once at the end (model.py rsq48tomuencoder; also the `rsq48tomuencoder.kernel` buffer of mucodec.pt).
 *  - 'float32': functional.resample(waveform, ...) passes the waveform dtype, so every step of the kernel
 *    formula runs in float32 (generate.py file2code). Emulated here step by step with Math.fround.
 * The convolution (`_apply_sinc_resample_kernel`: zero pad (width, width + orig), conv1d stride orig,
 * interleave the new phases, keep ceil(new·L/orig) samples) is accumulated in float64 and rounded once.
 * Cost O(n_out · live taps) ≤ O(n_out · (2·width + orig/gcd)).
 */

export type KernelPrecision = 'float64' | 'float32';

export interface ResampleOptions {
  /** 'float64' = transforms.Resample (default here: the MuCodec encoder path), 'float32' = functional.resample */
  kernelPrecision?: KernelPrecision;
  lowpassFilterWidth?: number;
  rolloff?: number;
}

export interface SincKernel {
  /** orig_freq / gcd */
  orig: number;
  /** new_freq / gcd */
  target: number;
  width: number;
  /** taps per phase = 2·width + orig */
  taps: number;
  /** (target, taps) row-major, float32 values */
  kernel: Float32Array;
  /** per phase: the live tap range [lo, hi). Outside |t| < lowpass_filter_width the clamped sinc·Hann tail is
   *  0 (float64-built kernel) or ~1e-24 (float32-built: cos(fl32(π/2)) ≠ 0); taps below 1e-20 of the kernel
   *  peak are skipped — their total contribution is > 10 orders of magnitude below float32 resolution.
   *  For 44.1 k → 48 k only ~13 of 161 taps are live. */
  lo: Int32Array;
  hi: Int32Array;
  /** the kernel widened to float64 (the sums run in float64), min(lo) and max(hi) */
  kernel64: Float64Array;
  minLo: number;
  maxHi: number;
}

export function gcd(a: number, b: number): number {
  a = Math.abs(a); b = Math.abs(b);
  while (b) [a, b] = [b, a % b];
  return a;
}

const f = Math.fround;

/** torchaudio `_get_sinc_resample_kernel` (sinc_interp_hann). */
export function sincResampleKernel(origFreq: number, newFreq: number, opts: ResampleOptions = {}): SincKernel {
  if (!Number.isInteger(origFreq) || !Number.isInteger(newFreq) || origFreq <= 0 || newFreq <= 0) {
    throw new Error(`resample: frequencies must be positive integers (got ${origFreq}, ${newFreq})`);
  }
  const lpw = opts.lowpassFilterWidth ?? 6;
  const rolloff = opts.rolloff ?? 0.99;
  const prec = opts.kernelPrecision ?? 'float64';
  if (lpw <= 0) throw new Error('resample: lowpass filter width must be positive');
  const g = gcd(origFreq, newFreq);
  const orig = origFreq / g;
  const target = newFreq / g;
  const baseFreq = Math.min(orig, target) * rolloff; // python float
  const width = Math.ceil((lpw * orig) / baseFreq);
  const taps = 2 * width + orig;
  const kernel = new Float32Array(target * taps);
  const scale = baseFreq / orig; // python float
  if (prec === 'float64') {
    for (let i = 0; i < target; i++) {
      // torch.arange(0, -new, -1) (int64) / new -> default dtype float32, then + float64 idx
      const phase = f(-i / target);
      for (let k = 0; k < taps; k++) {
        const idx = (k - width) / orig;
        let t = (phase + idx) * baseFreq;
        t = Math.min(Math.max(t, -lpw), lpw);
        const c = Math.cos((t * Math.PI) / lpw / 2);
        const window = c * c;
        t *= Math.PI;
        const sinc = t === 0 ? 1 : Math.sin(t) / t;
        kernel[i * taps + k] = sinc * (window * scale);
      }
    }
  } else {
    // every op in float32; python float scalars are cast to float32 by the tensor op
    const baseF = f(baseFreq), piF = f(Math.PI), lpwF = f(lpw), scaleF = f(scale), origF = f(orig), targetF = f(target);
    for (let i = 0; i < target; i++) {
      const phase = f(f(-i) / targetF);
      for (let k = 0; k < taps; k++) {
        const idx = f(f(k - width) / origF);
        let t = f(phase + idx);
        t = f(t * baseF);
        t = Math.min(Math.max(t, -lpwF), lpwF);
        const c = f(Math.cos(f(f(f(t * piF) / lpwF) / 2)));
        const window = f(c * c);
        t = f(t * piF);
        const sinc = t === 0 ? 1 : f(f(Math.sin(t)) / t);
        kernel[i * taps + k] = f(sinc * f(window * scaleF));
      }
    }
  }
  const lo = new Int32Array(target), hi = new Int32Array(target);
  let peak = 0;
  for (let i = 0; i < kernel.length; i++) peak = Math.max(peak, Math.abs(kernel[i]!));
  const dead = (v: number): boolean => Math.abs(v) <= peak * 1e-20;
  for (let i = 0; i < target; i++) {
    let a = 0, b = taps;
    while (a < b && dead(kernel[i * taps + a]!)) a++;
    while (b > a && dead(kernel[i * taps + b - 1]!)) b--;
    lo[i] = a; hi[i] = b;
  }
  return {
    orig, target, width, taps, kernel, lo, hi,
    kernel64: Float64Array.from(kernel), minLo: lo.reduce((m, v) => Math.min(m, v), taps), maxHi: hi.reduce((m, v) => Math.max(m, v), 0),
  };
}

/** Entries of the (new/gcd, 2·width + orig/gcd) kernel, without building it (4 bytes each, 12 with its float64 copy). */
export function sincKernelEntries(origFreq: number, newFreq: number, opts: ResampleOptions = {}): number {
  const g = gcd(origFreq, newFreq);
  const orig = origFreq / g, target = newFreq / g;
  const width = Math.ceil(((opts.lowpassFilterWidth ?? 6) * orig) / (Math.min(orig, target) * (opts.rolloff ?? 0.99)));
  return target * (2 * width + orig);
}

/** Output length of torchaudio's resample: ceil(new·L / orig) with gcd-reduced rates. */
export function resampledLength(length: number, origFreq: number, newFreq: number): number {
  const g = gcd(origFreq, newFreq);
  const o = origFreq / g, n = newFreq / g;
  return Math.ceil((n * length) / o);
}

/** Apply a polyphase kernel: y[j·new + i] = Σ_k K[i, k] · x[j·orig + k − width] (zeros outside x). */
export function applySincKernel(x: Float32Array, k: SincKernel): Float32Array {
  return applySincKernelRange(x, 0, x.length, k, 0, resampledLength(x.length, k.orig, k.target));
}

/**
 * The input samples [a, b) (within [0, n)) that outputs [o0, o1) of a signal of n samples depend on: the halo of
 * the taps around the blocks of those outputs. Chunked resampling reads these, with overlapping halos.
 */
export function sincInputRange(k: SincKernel, n: number, o0: number, o1: number): [number, number] {
  if (o1 <= o0) return [0, 0];
  const { orig, target, width } = k;
  const a = Math.floor(o0 / target) * orig - width + k.minLo;
  const b = Math.floor((o1 - 1) / target) * orig - width + k.maxHi;
  return [Math.min(n, Math.max(0, a)), Math.max(0, Math.min(n, b))];
}

/**
 * Outputs [o0, o1) of applySincKernel on a signal of n samples, given `x` = its samples [xStart, xStart + x.length)
 * (covering at least sincInputRange(k, n, o0, o1)). Every output is the same float64 sum in the same tap order as
 * in the whole-signal call (the signal ends at 0 and n clamp the taps exactly as there), so chunks concatenate to
 * the whole-signal result bit for bit.
 */
export function applySincKernelRange(x: Float32Array, xStart: number, n: number, k: SincKernel, o0: number, o1: number): Float32Array {
  const { orig, target, width, taps, lo, hi } = k;
  const outLen = Math.ceil((target * n) / orig);
  if (!(Number.isInteger(o0) && Number.isInteger(o1) && o0 >= 0 && o0 <= o1 && o1 <= outLen)) {
    throw new Error(`resample: output range [${o0}, ${o1}) outside [0, ${outLen})`);
  }
  const [a, b] = sincInputRange(k, n, o0, o1);
  if (a < xStart || b > xStart + x.length) {
    throw new Error(`resample: outputs [${o0}, ${o1}) need input [${a}, ${b}), given [${xStart}, ${xStart + x.length})`);
  }
  const y = new Float32Array(o1 - o0);
  const kd = k.kernel64;
  // the interior (no clamping at the signal ends) gets a straight loop per phase with its taps in locals' reach
  // (3-4x faster in V8 than the clamped general loop); both sum the same taps in the same order
  const jFirst = Math.max(0, Math.ceil((width - k.minLo) / orig)); // first block with start + lo ≥ 0 for every phase
  const jLast = Math.floor((n - k.maxHi + width) / orig); // last block with start + hi ≤ n for every phase
  let o = o0;
  for (let j = Math.floor(o0 / target); o < o1; j++) {
    const start = j * orig - width; // signal index of tap 0
    const xs = start - xStart; // its index in x
    const interior = j >= jFirst && j <= jLast && (j + 1) * target <= outLen;
    for (let i = o - j * target; i < target && o < o1; i++, o++) {
      const row = i * taps;
      let acc = 0;
      if (interior) {
        const h = hi[i]!;
        for (let kk = lo[i]!, xi = xs + kk, ki = row + kk; kk < h; kk++) acc += kd[ki++]! * x[xi++]!;
      } else {
        const kLo = Math.max(lo[i]!, -start);
        const kHi = Math.min(hi[i]!, n - start);
        for (let kk = kLo; kk < kHi; kk++) acc += kd[row + kk]! * x[xs + kk]!;
      }
      y[o - o0] = acc;
    }
  }
  return y;
}

const kernelCache = new Map<string, SincKernel>();

/** The kernel of resample(·, orig, target, opts), built once and cached (the streaming encoder reuses it per chunk). */
export function cachedKernel(orig: number, target: number, opts: ResampleOptions = {}): SincKernel {
  const key = `${orig}/${target}/${opts.kernelPrecision ?? 'float64'}/${opts.lowpassFilterWidth ?? 6}/${opts.rolloff ?? 0.99}`;
  let k = kernelCache.get(key);
  if (!k) {
    k = sincResampleKernel(orig, target, opts);
    if (kernelCache.size > 16) kernelCache.clear();
    kernelCache.set(key, k);
  }
  return k;
}

/**
 * Resample one channel from `origFreq` to `newFreq` (torchaudio semantics; equal rates return a copy).
 * Default kernel precision 'float64' (transforms.Resample); pass 'float32' for functional.resample.
 */
export function resample(x: Float32Array, origFreq: number, newFreq: number, opts: ResampleOptions = {}): Float32Array {
  if (origFreq === newFreq) return x.slice();
  return applySincKernel(x, cachedKernel(origFreq, newFreq, opts));
}

/** MODEL `rsq48tomuencoder` = torchaudio transforms.Resample(48000, 24000): float64-built kernel (1, 28). */
export function resample48kTo24k(x: Float32Array): Float32Array {
  return resample(x, 48000, 24000, { kernelPrecision: 'float64' });
}
