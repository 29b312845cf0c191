/**
 * Per-channel statistics of a channels-last float32 tensor in float64, as a WebAssembly SIMD kernel on the
 * tfjs-wasm heap: mean_c = Σ_p x[p, c] / n, then M2_c = Σ_p (x[p, c] − mean_c)² (two passes, each sum in float64).
 * Partial results of several tensors (bands of one image) combine exactly as Chan et al.'s pairwise update
 * (`combineStats`), so GroupNorm statistics can be gathered band by band while the bands are still in the heap.
 */
import * as tf from '@tensorflow/tfjs-core';
import { Fn, I32, S, V128 } from './asm.js';
import { defineKernel, moduleFor, offsetOf, runCustom, simdAvailable } from './heap.js';

/** count, per-channel mean and centred sum of squares */
export interface ChannelStats {
  n: number;
  mean: Float64Array;
  m2: Float64Array;
}

/** (x, out, n positions, C) — out: 2C doubles, [0, C) means, [C, 2C) M2 */
function statsFn(): Fn {
  const f = new Fn('stats', [I32, I32, I32, I32]);
  const [px, pout, pn, pC] = [0, 1, 2, 3];
  const c = f.local(I32), xp = f.local(I32), acc = f.local(I32), end = f.local(I32), q = f.local(I32);
  const v = f.local(V128), nv = f.local(V128), mlo = f.local(V128);
  // zero the 2C doubles
  f.i32(0).set(c);
  f.loopUntil(() => f.get(c).get(pC).i32(2).mul().geS(), () => {
    f.get(pout).get(c).i32(8).mul().add().vconstF32(0, 0, 0, 0).vstore();
    f.get(c).i32(2).add().set(c);
  });
  f.get(px).get(pn).get(pC).mul().i32(4).mul().add().set(end);
  // pass 1: sums
  // every position p (xp = x + p·4C), every channel quad c
  f.get(px).set(xp);
  f.loopUntil(() => f.get(xp).get(end).geU(), () => {
    f.forRange(c, 0, pC, 4, () => {
      f.get(xp).get(c).i32(4).mul().add().vload().set(v);
      f.get(pout).get(c).i32(8).mul().add().set(acc);
      f.get(acc).get(acc).vload(0).get(v).v(S.f64x2_promote_low_f32x4).v(S.f64x2_add).vstore(0);
      f.get(acc).get(acc).vload(16).get(v).get(v).shuffle32(2, 3, 0, 1).v(S.f64x2_promote_low_f32x4).v(S.f64x2_add).vstore(16);
    });
    f.get(xp).get(pC).i32(4).mul().add().set(xp);
  });
  // means = sums / n
  f.get(pn).f64cvtI32().v(S.f64x2_splat).set(nv);
  f.forRange(c, 0, pC, 2, () => {
    f.get(pout).get(c).i32(8).mul().add().tee(acc).get(acc).vload().get(nv).v(S.f64x2_div).vstore();
  });
  // pass 2: centred squares into [C, 2C)
  // every position p (xp = x + p·4C), every channel quad c
  f.get(px).set(xp);
  f.loopUntil(() => f.get(xp).get(end).geU(), () => {
    f.forRange(c, 0, pC, 4, () => {
      f.get(xp).get(c).i32(4).mul().add().vload().set(v);
      f.get(pout).get(c).i32(8).mul().add().set(acc); // means of c, c+1 at acc, of c+2, c+3 at acc + 16
      f.get(acc).get(pC).i32(8).mul().add().set(q); // M2 likewise at q, q + 16
      f.get(v).v(S.f64x2_promote_low_f32x4).get(acc).vload(0).v(S.f64x2_sub).set(mlo);
      f.get(q).get(q).vload(0).get(mlo).get(mlo).v(S.f64x2_mul).v(S.f64x2_add).vstore(0);
      f.get(v).get(v).shuffle32(2, 3, 0, 1).v(S.f64x2_promote_low_f32x4).get(acc).vload(16).v(S.f64x2_sub).set(mlo);
      f.get(q).get(q).vload(16).get(mlo).get(mlo).v(S.f64x2_mul).v(S.f64x2_add).vstore(16);
    });
    f.get(xp).get(pC).i32(4).mul().add().set(xp);
  });
  return f;
}

defineKernel('MucodecChannelStats', ['x'], (be, [x]) => {
  const C = x!.shape[x!.shape.length - 1]!;
  const n = x!.shape.slice(0, -1).reduce((a, b) => a * b, 1);
  const out = be.makeOutput([4 * C], 'float32'); // 2C doubles
  moduleFor(be, 'stats', () => [statsFn()]).stats!(offsetOf(be, x!), offsetOf(be, out), n, C);
  return out;
});

/** statistics of every channel of x (…, C); C must be a multiple of 4 on the SIMD path */
export function channelStats(x: tf.Tensor): ChannelStats {
  const C = x.shape[x.shape.length - 1]!;
  const n = x.size / C;
  if (simdAvailable() && C % 4 === 0 && x.dtype === 'float32') {
    const t = runCustom('MucodecChannelStats', [x]);
    const d = new Float64Array((t.dataSync() as Float32Array).buffer.slice(0));
    t.dispose();
    return { n, mean: d.slice(0, C), m2: d.slice(C, 2 * C) };
  }
  const d = x.dataSync() as Float32Array;
  const mean = new Float64Array(C), m2 = new Float64Array(C);
  for (let p = 0; p < n; p++) for (let c = 0; c < C; c++) mean[c] += d[p * C + c]!;
  for (let c = 0; c < C; c++) mean[c] /= n;
  for (let p = 0; p < n; p++) for (let c = 0; c < C; c++) { const v = d[p * C + c]! - mean[c]!; m2[c] += v * v; }
  return { n, mean, m2 };
}

/** Chan et al.'s pairwise combination of two partial statistics (same channels) */
export function combineStats(a: ChannelStats | null, b: ChannelStats): ChannelStats {
  if (!a || a.n === 0) return b;
  if (b.n === 0) return a;
  const n = a.n + b.n;
  const mean = new Float64Array(a.mean.length), m2 = new Float64Array(a.mean.length);
  for (let c = 0; c < mean.length; c++) {
    const d = b.mean[c]! - a.mean[c]!;
    mean[c] = a.mean[c]! + (d * b.n) / n;
    m2[c] = a.m2[c]! + b.m2[c]! + (d * d * a.n * b.n) / n;
  }
  return { n, mean, m2 };
}
