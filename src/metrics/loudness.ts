/**
 * Integrated loudness of ITU-R BS.1770-4 (LKFS / LUFS), for mono and stereo programmes.
 *
 * K-weighting = two biquads: the "pre-filter" high shelf (+4 dB above ≈ 1.7 kHz, head model) and the RLB high pass
 * (≈ 38 Hz). BS.1770 tabulates them for 48 kHz only; for any rate they are derived here from the analog prototypes by
 * the bilinear transform with pre-warping (f0, gain and Q as fitted to the 48 kHz table, the construction libebur128
 * uses), which reproduces the 48 kHz table to ~1e-10 (tested). Gating: 400 ms blocks every 100 ms (75 % overlap),
 * absolute gate −70 LKFS, relative gate −10 LU below the loudness of the blocks above the absolute gate.
 * Channel weights: 1.0 for left and right (surround channels do not occur here).
 */

export interface Biquad { b: [number, number, number]; a: [number, number, number] }

/** the two K-weighting stages at a sample rate (a[0] = 1) */
export function kWeighting(sampleRate: number): [Biquad, Biquad] {
  // stage 1: high shelf
  let f0 = 1681.974450955533, q = 0.7071752369554196;
  const g = 3.999843853973347;
  let k = Math.tan((Math.PI * f0) / sampleRate);
  const vh = 10 ** (g / 20);
  const vb = vh ** 0.4996667741545416;
  let a0 = 1 + k / q + k * k;
  const shelf: Biquad = {
    b: [(vh + (vb * k) / q + k * k) / a0, (2 * (k * k - vh)) / a0, (vh - (vb * k) / q + k * k) / a0],
    a: [1, (2 * (k * k - 1)) / a0, (1 - k / q + k * k) / a0],
  };
  // stage 2: RLB high pass (numerator 1, −2, 1 as in the 48 kHz table)
  f0 = 38.13547087602444; q = 0.5003270373238773;
  k = Math.tan((Math.PI * f0) / sampleRate);
  a0 = 1 + k / q + k * k;
  const highpass: Biquad = { b: [1, -2, 1], a: [1, (2 * (k * k - 1)) / a0, (1 - k / q + k * k) / a0] };
  return [shelf, highpass];
}

/** direct form I biquad, float64 */
export function biquad(x: ArrayLike<number>, f: Biquad): Float64Array {
  const y = new Float64Array(x.length);
  const [b0, b1, b2] = f.b, [, a1, a2] = f.a;
  let x1 = 0, x2 = 0, y1 = 0, y2 = 0;
  for (let i = 0; i < x.length; i++) {
    const x0 = x[i]!;
    const y0 = b0 * x0 + b1 * x1 + b2 * x2 - a1 * y1 - a2 * y2;
    y[i] = y0; x2 = x1; x1 = x0; y2 = y1; y1 = y0;
  }
  return y;
}

const ABSOLUTE_GATE = -70;
const RELATIVE_GATE = -10;

/** loudness of a sum of channel-weighted mean squares */
const lk = (z: number): number => -0.691 + 10 * Math.log10(z);

/**
 * Integrated loudness in LKFS of planar channels at `sampleRate`. −Infinity for silence (no block above the
 * absolute gate); throws for programmes shorter than one 400 ms block.
 */
export function integratedLoudness(channels: Float32Array[], sampleRate: number): number {
  if (channels.length < 1 || channels.length > 2) throw new Error(`loudness: mono or stereo only (got ${channels.length} channels)`);
  const n = channels[0]!.length;
  const block = Math.round(0.4 * sampleRate), step = Math.round(0.1 * sampleRate);
  if (n < block) throw new Error(`loudness: ${(n / sampleRate).toFixed(3)} s is shorter than one 400 ms gating block`);
  const [s1, s2] = kWeighting(sampleRate);
  const blocks = Math.floor((n - block) / step) + 1;
  // z[j] = Σ_channels mean square of block j (channel weights 1)
  const z = new Float64Array(blocks);
  for (const ch of channels) {
    const y = biquad(biquad(ch, s1), s2);
    const cum = new Float64Array(n + 1);
    for (let i = 0; i < n; i++) cum[i + 1] = cum[i]! + y[i]! * y[i]!;
    for (let j = 0; j < blocks; j++) z[j] += (cum[j * step + block]! - cum[j * step]!) / block;
  }
  const gated = (thr: number): number[] => [...z].filter((v) => lk(v) > thr);
  const abs = gated(ABSOLUTE_GATE);
  if (!abs.length) return -Infinity;
  const relThr = lk(abs.reduce((s, v) => s + v, 0) / abs.length) + RELATIVE_GATE;
  const rel = abs.filter((v) => lk(v) > relThr);
  return lk(rel.reduce((s, v) => s + v, 0) / rel.length);
}
