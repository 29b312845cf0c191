/** Deterministic test data: n values uniform in a·[−½, ½) from a 32-bit LCG (Numerical Recipes' constants) seeded by `seed`. */
export function lcgRand(n: number, seed: number, a = 1): Float32Array {
  let s = seed >>> 0;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) { s = (Math.imul(s, 1664525) + 1013904223) >>> 0; out[i] = a * (s / 2 ** 32 - 0.5); }
  return out;
}
