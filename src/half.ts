/**
 * IEEE 754 binary16 (half precision) ⇄ float32, for the half-size weights (`mucodec convert --dtype f16`).
 *
 * Narrowing rounds to nearest, ties to even, on the float32 bits: normal results keep 10 of the 23 fraction bits;
 * results below 2^−14 become subnormals (multiples of 2^−24; below 2^−25 they round to a signed zero); a value that
 * rounds to 2^16 or more (|x| ≥ 65520) overflows to ±Infinity, as IEEE rounding does — the converter never lets
 * that happen to a weight (it keeps such tensors float32, convert/convert.ts). NaN stays NaN (quiet), ±Inf stay.
 *
 * Widening is exact (every half is a float32) and goes through a 65536-entry table built once (256 KiB), so loading
 * f16 weights costs one table lookup per value.
 */

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** the largest finite half, 65504 = (2 − 2^−10) · 2^15 */
export const HALF_MAX = 65504;

/** float32 `x` (a JS number, first rounded to float32) → its binary16 bit pattern (round to nearest even). */
export function toHalfBits(x: number): number {
  f32[0] = x;
  const b = u32[0]!;
  const sign = (b >>> 16) & 0x8000;
  const exp = (b >>> 23) & 0xff;
  const mant = b & 0x7fffff;
  if (exp === 0xff) return mant ? sign | 0x7e00 | (mant >>> 13) : sign | 0x7c00; // NaN (quiet) / ±Inf
  const e = exp - 112; // the half's biased exponent: exp − 127 + 15
  if (e >= 0x1f) return sign | 0x7c00; // ≥ 2^16 before rounding: overflow
  if (e <= 0) {
    // subnormal half m · 2^−24 with m = M · 2^(e − 14), M the float32 significand with its implicit bit
    // (float32 subnormals, exp 0, are far below 2^−25 and land here with e = −112: zero)
    const shift = 14 - e;
    if (shift > 24) return sign; // below 2^−25 (half the smallest subnormal): rounds to zero
    const M = mant | 0x800000;
    let m = M >>> shift;
    const rem = M & ((1 << shift) - 1);
    const halfway = 1 << (shift - 1);
    if (rem > halfway || (rem === halfway && (m & 1))) m++; // m = 1024 is the smallest normal: the right bits
    return sign | m;
  }
  let h = sign | (e << 10) | (mant >>> 13);
  const rem = mant & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && (h & 1))) h++; // a carry into the exponent is right (up to Infinity)
  return h;
}

/** A half bit pattern's value (exact). */
export function halfToNumber(h: number): number {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const f = h & 0x3ff;
  if (e === 0) return s * f * 2 ** -24;
  if (e === 31) return f ? NaN : s * Infinity;
  return s * (1 + f / 1024) * 2 ** (e - 15);
}

let table: Float32Array | null = null;

function widenTable(): Float32Array {
  if (!table) {
    table = new Float32Array(65536);
    for (let h = 0; h < 65536; h++) table[h] = halfToNumber(h);
  }
  return table;
}

/** Half bit patterns → float32 values (exact; a table lookup per value). */
export function widenHalf(bits: Uint16Array, out = new Float32Array(bits.length)): Float32Array {
  const t = widenTable();
  for (let i = 0; i < bits.length; i++) out[i] = t[bits[i]!]!;
  return out;
}

/** float32 values → half bit patterns (round to nearest even; ±Infinity beyond ±65504 after rounding). */
export function narrowToHalf(x: Float32Array, out = new Uint16Array(x.length)): Uint16Array {
  for (let i = 0; i < x.length; i++) out[i] = toHalfBits(x[i]!);
  return out;
}

/** The largest |value| of the finite entries (NaN/Inf ignored): whether a tensor fits in half precision. */
export function maxAbsFinite(x: Float32Array): number {
  let m = 0;
  for (let i = 0; i < x.length; i++) {
    const a = Math.abs(x[i]!);
    if (a > m && a !== Infinity) m = a;
  }
  return m;
}

/** Whether every finite value of `x` stays finite in half precision (rounds to at most 65504). */
export function fitsHalf(x: Float32Array): boolean {
  return maxAbsFinite(x) < 65520; // 65520 is the midpoint between 65504 and 2^16: it and above round to Infinity
}
