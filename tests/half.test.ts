/**
 * binary16 conversion (src/half.ts) against a reference written out here from the IEEE 754 definition: a half is
 * (−1)^s · 2^(e−15) · (1 + f/1024) for 1 ≤ e ≤ 30, (−1)^s · 2^−14 · f/1024 for e = 0, ±Infinity / NaN for e = 31;
 * rounding a real x to half = the nearest finite half (ties: the one with an even fraction, i.e. even bit pattern),
 * and ±Infinity when |x| ≥ 65520 (the midpoint between the largest finite half 65504 and 2^16, which would be the
 * next value with an unbounded exponent: IEEE 754 §7.4 overflow under round-to-nearest).
 */
import { describe, expect, it } from 'vitest';
import { halfToNumber, narrowToHalf, toHalfBits, widenHalf } from '../src/half.js';

/** the reference value of a bit pattern, from the definition (independent of src/half.ts) */
function refValue(h: number): number {
  const s = (h >> 15) & 1, e = (h >> 10) & 31, f = h & 1023;
  const sign = s ? -1 : 1;
  if (e === 31) return f === 0 ? sign * Infinity : NaN;
  if (e === 0) return sign * Math.pow(2, -14) * (f / 1024);
  return sign * Math.pow(2, e - 15) * (1 + f / 1024);
}

// every non-negative finite half in increasing order (patterns 0x0000 … 0x7bff are increasing in value)
const POS = Array.from({ length: 0x7c00 }, (_, h) => ({ h, v: refValue(h) }));

/** the reference rounding of a float32 value: nearest half by search over all finite halves, ties to even */
function refRound(x: number): number {
  if (Number.isNaN(x)) return NaN;
  const sign = x < 0 || Object.is(x, -0) ? 0x8000 : 0;
  const a = Math.abs(x);
  if (a >= 65520) return sign | 0x7c00;
  let lo = 0, hi = POS.length - 1; // largest v ≤ a
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if (POS[mid]!.v <= a) lo = mid; else hi = mid - 1;
  }
  const below = POS[lo]!;
  if (below.v === a || lo === POS.length - 1) return sign | below.h;
  const above = POS[lo + 1]!;
  const dl = a - below.v, du = above.v - a; // exact in float64: all these have ≤ 25 significant bits
  if (dl < du) return sign | below.h;
  if (du < dl) return sign | above.h;
  return sign | (below.h % 2 === 0 ? below.h : above.h);
}

const f32 = (x: number): number => Math.fround(x);

describe('half precision', () => {
  it('every bit pattern: widening gives the IEEE value, and narrowing that value gives the pattern back', () => {
    const all = Uint16Array.from({ length: 65536 }, (_, h) => h);
    const wide = widenHalf(all);
    for (let h = 0; h < 65536; h++) {
      const ref = refValue(h);
      if (Number.isNaN(ref)) {
        expect(Number.isNaN(wide[h]!), `0x${h.toString(16)}`).toBe(true);
        expect(Number.isNaN(halfToNumber(toHalfBits(wide[h]!)))).toBe(true); // NaN stays NaN
        continue;
      }
      if (wide[h] !== ref) expect(wide[h], `0x${h.toString(16)}`).toBe(ref);
      if (toHalfBits(ref) !== h) expect(toHalfBits(ref), `0x${h.toString(16)}`).toBe(h);
    }
    expect(Object.is(wide[0x8000], -0)).toBe(true);
  });

  it('midpoints between neighbours round to the even pattern; one float32 ulp off them rounds to the nearer', () => {
    let checked = 0;
    for (let i = 0; i + 1 < POS.length; i += 7) {
      const a = POS[i]!, b = POS[i + 1]!;
      const mid = (a.v + b.v) / 2; // 12 significant bits: exact in float32
      expect(f32(mid)).toBe(mid);
      const even = a.h % 2 === 0 ? a.h : b.h;
      for (const s of [0, 0x8000]) {
        const x = s ? -mid : mid;
        expect(toHalfBits(x)).toBe(s | even);
        expect(toHalfBits(x)).toBe(refRound(x));
        const up = f32(mid * (1 + 2 ** -23)), down = f32(mid * (1 - 2 ** -24));
        expect(toHalfBits(s ? -up : up)).toBe(s | b.h);
        expect(toHalfBits(s ? -down : down)).toBe(s | a.h);
      }
      checked++;
    }
    expect(checked).toBeGreaterThan(4000);
  });

  it('random float32 values over the whole range (subnormals, underflow, overflow) match the reference', () => {
    // a fixed LCG: float32 bit patterns whose exponent spans 2^−30 … 2^17 (around half's range on both ends)
    let state = 12345;
    const rnd = (): number => { state = (Math.imul(state, 1103515245) + 12345) >>> 0; return state; };
    const buf = new Float32Array(1), bits = new Uint32Array(buf.buffer);
    const xs = new Float32Array(200_000);
    for (let i = 0; i < xs.length; i++) {
      const exp = 97 + (rnd() % 48); // 2^(97−127) … 2^(144−127)
      bits[0] = ((rnd() & 1) << 31) | (exp << 23) | (rnd() & 0x7fffff);
      xs[i] = buf[0]!;
    }
    const got = narrowToHalf(xs);
    let bad = 0;
    for (let i = 0; i < xs.length; i++) if (got[i] !== refRound(xs[i]!)) bad++;
    expect(bad).toBe(0);
  });

  it('edges: the largest half, overflow at 65520, the smallest subnormal, underflow to signed zero, infinities', () => {
    expect(toHalfBits(65504)).toBe(0x7bff); // 0 11110 1111111111: 2^15 · (1 + 1023/1024)
    expect(toHalfBits(65519)).toBe(0x7bff); // below the midpoint 65520
    expect(toHalfBits(65520)).toBe(0x7c00); // the midpoint: ties to even, and the even neighbour is 2^16 → Infinity
    expect(toHalfBits(-1e6)).toBe(0xfc00);
    expect(toHalfBits(Infinity)).toBe(0x7c00);
    expect(toHalfBits(2 ** -24)).toBe(0x0001);
    expect(toHalfBits(2 ** -25)).toBe(0x0000); // exactly half the smallest subnormal: ties to even (zero)
    expect(toHalfBits(f32(2 ** -25 * (1 + 2 ** -20)))).toBe(0x0001);
    expect(toHalfBits(-(2 ** -26))).toBe(0x8000);
    expect(toHalfBits(f32(1e-45))).toBe(0x0000); // a float32 subnormal
    expect(toHalfBits(f32(2 ** -14 * (1 - 2 ** -12)))).toBe(0x0400); // rounds up into the smallest normal
    expect(toHalfBits(1)).toBe(0x3c00); // 0 01111 0000000000: e = 15, f = 0
    // 1/3 = 2^−2 · 1.333…: e = 13 = 0b01101, f = round(1024 / 3) = 341 = 0b0101010101 → 0 01101 0101010101
    expect(toHalfBits(f32(1 / 3))).toBe((13 << 10) | 341);
  });
});
