/**
 * Narrow 1-D convolutions and element-wise helpers as WebAssembly SIMD kernels on the tfjs-wasm heap (./heap.ts).
 *
 * Why: XNNPACK's convolution kernels vectorise over OUTPUT CHANNELS in tiles of 8; with 1, 2 or 4 channels (the
 * last HiFi-GAN stages of a narrow vocoder) most lanes are wasted and every call pays setup and indirection-buffer
 * costs (≈ 0.3–2 GFLOP/s). These kernels pick lanes that are full for the shape:
 *   - Cout % 4 = 0 : lanes over output channels, several time steps per iteration (independent accumulators);
 *   - Cin = Cout = 1: lanes over 4 consecutive time steps;
 *   - Cin = Cout = 2: lanes (t, o0), (t, o1), (t+1, o0), (t+1, o1).
 * Zero padding is implicit (taps outside the input contribute nothing), so no padded copy is made.
 *
 * y[n, t, o] = b[o] + Σ_j Σ_i w[j, i, o] · x[n, t − padL + j·d, i]   (j = 0…k−1 outer, i inner: the same order on
 * every path, so the vector interior and the scalar edges round identically); then optionally leaky ReLU
 * (y > 0 ? y : slope·y) and optionally + res[n, t, o], in that order. Filters are tfjs conv1d filters (k, Cin, Cout).
 */
import * as tf from '@tensorflow/tfjs-core';
import { F32, Fn, I32, S, V128 } from './asm.js';
import { defineKernel, moduleFor, offsetOf, runCustom, simdAvailable, type WasmBackendLike } from './heap.js';

export type Strategy = 'oc4' | 'c1' | 'c2';

/** which kernel shape (if any) fits a (cin, cout) conv */
export function smallConvStrategy(cin: number, cout: number): Strategy | null {
  if (cin === 1 && cout === 1) return 'c1';
  if (cin === 2 && cout === 2) return 'c2';
  if (cout % 4 === 0 && cout <= 64 && cin <= 64) return 'oc4';
  return null;
}

/** output time steps per vector iteration of a strategy */
function stepOf(s: Strategy, cout: number): { U: number; step: number } {
  if (s === 'c1') return { U: 4, step: 16 };
  if (s === 'c2') return { U: 4, step: 8 };
  const G = cout / 4;
  const U = G >= 4 ? 1 : G >= 2 ? 2 : 4;
  return { U, step: U };
}

// parameter indices shared by the conv functions
const P = { x: 0, w: 1, b: 2, res: 3, out: 4, n: 5, Lin: 6, L: 7, padL: 8, t0: 9, t1: 10, act: 11, slope: 12, hasRes: 13 };
const CONV_PARAMS = [I32, I32, I32, I32, I32, I32, I32, I32, I32, I32, I32, I32, F32, I32] as const;

/** epilogue on the v128 on the stack top: leaky ReLU (if act), + res at [resPtrLocal + off] (if hasRes), store at [outPtrLocal + off] */
function vEpilogue(f: Fn, vtmp: number, slopeV: number, zero: number, resPtr: number, outPtr: number, off: number): void {
  f.set(vtmp);
  f.get(P.act).if_();
  f.get(vtmp).get(vtmp).get(slopeV).v(S.f32x4_mul).get(vtmp).get(zero).v(S.f32x4_gt).v(S.bitselect).set(vtmp);
  f.end();
  f.get(P.hasRes).if_();
  f.get(vtmp).get(resPtr).vload(off).v(S.f32x4_add).set(vtmp);
  f.end();
  f.get(outPtr).get(vtmp).vstore(off);
}

/** the vector interior over t ∈ [t0, t1) (t1 − t0 a multiple of the step; every tap in range) */
function interiorFn(s: Strategy, cin: number, cout: number, k: number, d: number): Fn {
  const f = new Fn('interior', [...CONV_PARAMS]);
  const nn = f.local(I32), t = f.local(I32), xb = f.local(I32), ob = f.local(I32), rb = f.local(I32);
  const xp = f.local(I32), op = f.local(I32), rp = f.local(I32);
  const slopeV = f.local(V128), zero = f.local(V128), vtmp = f.local(V128), xv = f.local(V128);
  const { U, step } = stepOf(s, cout);
  f.get(P.slope).v(S.f32x4_splat).set(slopeV);
  f.vconstF32(0, 0, 0, 0).set(zero);
  // hoisted weights / bias
  let wl: number[] = [], biasV = -1;
  const G = s === 'oc4' ? cout / 4 : 1;
  const acc: number[][] = Array.from({ length: U }, () => Array.from({ length: G }, () => f.local(V128)));
  if (s === 'c1') {
    wl = Array.from({ length: k }, (_, j) => { const l = f.local(V128); f.get(P.w).vsplatLoad(4 * j).set(l); return l; });
    biasV = f.local(V128); f.get(P.b).vsplatLoad(0).set(biasV);
  } else if (s === 'c2') {
    wl = Array.from({ length: 2 * k }, (_, q) => { const l = f.local(V128); f.get(P.w).vload64Splat(8 * q).set(l); return l; }); // q = j·2 + i
    biasV = f.local(V128); f.get(P.b).vload64Splat(0).set(biasV);
  }
  const wg = s === 'oc4' ? Array.from({ length: G }, () => f.local(V128)) : [];
  f.get(P.n).eqz().if_().ret().end();
  f.i32(0).set(nn);
  f.loop(); // batch
  f.get(nn).get(P.Lin).mul().i32(4 * cin).mul().get(P.x).add().set(xb);
  f.get(nn).get(P.L).mul().i32(4 * cout).mul().get(P.out).add().set(ob);
  f.get(nn).get(P.L).mul().i32(4 * cout).mul().get(P.res).add().set(rb);
  f.get(P.t0).set(t);
  f.block(); f.loop(); // time
  f.get(t).get(P.t1).geS().brIf(1);
  f.get(t).get(P.padL).sub().i32(4 * cin).mul().get(xb).add().set(xp);
  f.get(t).i32(4 * cout).mul().get(ob).add().set(op);
  f.get(t).i32(4 * cout).mul().get(rb).add().set(rp);
  if (s === 'oc4') {
    for (let u = 0; u < U; u++) for (let g = 0; g < G; g++) f.get(P.b).vload(16 * g).set(acc[u]![g]!);
    for (let j = 0; j < k; j++) {
      for (let i = 0; i < cin; i++) {
        for (let g = 0; g < G; g++) f.get(P.w).vload(4 * ((j * cin + i) * cout + 4 * g)).set(wg[g]!);
        for (let u = 0; u < U; u++) {
          f.get(xp).vsplatLoad(4 * ((u + j * d) * cin + i)).set(xv);
          for (let g = 0; g < G; g++) f.get(acc[u]![g]!).get(xv).get(wg[g]!).v(S.f32x4_mul).v(S.f32x4_add).set(acc[u]![g]!);
        }
      }
    }
    for (let u = 0; u < U; u++) for (let g = 0; g < G; g++) { f.get(acc[u]![g]!); vEpilogue(f, vtmp, slopeV, zero, rp, op, 4 * (u * cout + 4 * g)); }
  } else if (s === 'c1') {
    for (let u = 0; u < U; u++) f.get(biasV).set(acc[u]![0]!);
    for (let j = 0; j < k; j++) {
      for (let u = 0; u < U; u++) f.get(acc[u]![0]!).get(xp).vload(4 * (4 * u + j * d)).get(wl[j]!).v(S.f32x4_mul).v(S.f32x4_add).set(acc[u]![0]!);
    }
    for (let u = 0; u < U; u++) { f.get(acc[u]![0]!); vEpilogue(f, vtmp, slopeV, zero, rp, op, 16 * u); }
  } else {
    for (let u = 0; u < U; u++) f.get(biasV).set(acc[u]![0]!);
    for (let j = 0; j < k; j++) {
      for (let u = 0; u < U; u++) {
        f.get(xp).vload(4 * 2 * (2 * u + j * d)).set(xv);
        f.get(acc[u]![0]!)
          .get(xv).get(xv).shuffle32(0, 0, 2, 2).get(wl[2 * j]!).v(S.f32x4_mul).v(S.f32x4_add)
          .get(xv).get(xv).shuffle32(1, 1, 3, 3).get(wl[2 * j + 1]!).v(S.f32x4_mul).v(S.f32x4_add)
          .set(acc[u]![0]!);
      }
    }
    for (let u = 0; u < U; u++) { f.get(acc[u]![0]!); vEpilogue(f, vtmp, slopeV, zero, rp, op, 16 * u); }
  }
  f.get(t).i32(step).add().set(t);
  f.br(0);
  f.end(); f.end(); // time
  f.get(nn).i32(1).add().tee(nn).get(P.n).ltS().brIf(0);
  f.end(); // batch
  return f;
}

/** scalar outputs t ∈ [t0, t1) with bounds-checked taps (edges and remainders); same summation order as the interior */
function edgeFn(cin: number, cout: number, k: number, d: number): Fn {
  const f = new Fn('edge', [...CONV_PARAMS]);
  const nn = f.local(I32), t = f.local(I32), o = f.local(I32), j = f.local(I32), i = f.local(I32), src = f.local(I32);
  const acc = f.local(F32), xb = f.local(I32), ob = f.local(I32), wp = f.local(I32), xp = f.local(I32);
  f.get(P.n).eqz().if_().ret().end();
  f.i32(0).set(nn);
  f.loop(); // batch
  f.get(nn).get(P.Lin).mul().i32(4 * cin).mul().get(P.x).add().set(xb);
  f.get(nn).get(P.L).mul().i32(4 * cout).mul().set(ob);
  f.get(P.t0).set(t);
  f.block(); f.loop(); // t
  f.get(t).get(P.t1).geS().brIf(1);
  f.i32(0).set(o);
  f.loop(); // o
  f.get(P.b).get(o).i32(4).mul().add().f32load().set(acc);
  f.i32(0).set(j);
  f.loop(); // j
  f.get(t).get(P.padL).sub().get(j).i32(d).mul().add().set(src);
  f.get(src).i32(0).geS().get(src).get(P.Lin).ltS().and_(); // 0 ≤ src < Lin
  f.if_();
  f.get(src).i32(4 * cin).mul().get(xb).add().set(xp);
  f.get(j).i32(cin).mul().i32(cout).mul().get(o).add().i32(4).mul().get(P.w).add().set(wp);
  f.i32(0).set(i);
  f.loop(); // i
  f.get(acc).get(wp).f32load().get(xp).f32load().f32mul().f32add().set(acc);
  f.get(wp).i32(4 * cout).add().set(wp);
  f.get(xp).i32(4).add().set(xp);
  f.get(i).i32(1).add().tee(i).i32(cin).ltS().brIf(0);
  f.end(); // i
  f.end(); // if
  f.get(j).i32(1).add().tee(j).i32(k).ltS().brIf(0);
  f.end(); // j
  // epilogue
  f.get(P.act).if_();
  f.get(acc).get(acc).get(P.slope).f32mul().get(acc).f32(0).f32gt().select().set(acc);
  // select(a, b, c) = c ? a : b → acc > 0 ? acc : slope·acc
  f.end();
  f.get(P.hasRes).if_();
  f.get(acc).get(P.res).get(ob).add().get(t).i32(cout).mul().get(o).add().i32(4).mul().add().f32load().f32add().set(acc);
  f.end();
  f.get(P.out).get(ob).add().get(t).i32(cout).mul().get(o).add().i32(4).mul().add().get(acc).f32store();
  f.get(o).i32(1).add().tee(o).i32(cout).ltS().brIf(0);
  f.end(); // o
  f.get(t).i32(1).add().set(t);
  f.br(0);
  f.end(); f.end(); // t
  f.get(nn).i32(1).add().tee(nn).get(P.n).ltS().brIf(0);
  f.end(); // batch
  return f;
}

interface ConvAttrs { k: number; d: number; padL: number; padR: number; slope: number | null }

defineKernel('MucodecConv1dSmall', ['x', 'w', 'b', 'res'], (be, [x, w, b, res], attrs) => {
  const a = attrs as unknown as ConvAttrs & { hasRes: boolean };
  const [n, Lin, cin] = x!.shape as [number, number, number];
  const cout = w!.shape[2]!;
  const s = smallConvStrategy(cin, cout)!;
  const L = Lin + a.padL + a.padR - (a.k - 1) * a.d;
  const out = be.makeOutput([n, L, cout], 'float32');
  if (n === 0 || L <= 0) return out;
  const ex = moduleFor(be, `conv1d:${s}:${cin}:${cout}:${a.k}:${a.d}`, () => [interiorFn(s, cin, cout, a.k, a.d), edgeFn(cin, cout, a.k, a.d)]);
  const { step } = stepOf(s, cout);
  // interior: every tap inside [0, Lin): t ≥ padL and t − padL + (k−1)d ≤ Lin − 1
  const lo = Math.min(L, a.padL);
  const hi = Math.max(lo, Math.min(L, Lin + a.padL - (a.k - 1) * a.d));
  const t1 = lo + Math.floor((hi - lo) / step) * step;
  const args = [offsetOf(be, x!), offsetOf(be, w!), offsetOf(be, b!), a.hasRes ? offsetOf(be, res!) : 0, offsetOf(be, out), n, Lin, L, a.padL];
  const tail = [a.slope !== null ? 1 : 0, a.slope ?? 0, a.hasRes ? 1 : 0];
  if (t1 > lo) ex.interior!(...args, lo, t1, ...tail);
  if (lo > 0) ex.edge!(...args, 0, lo, ...tail);
  if (L > t1) ex.edge!(...args, t1, L, ...tail);
  return out;
});

/**
 * Conv1d (stride 1) of x (n, Lin, Cin) with filter (k, Cin, Cout), bias (Cout), zero padding padL/padR, dilation d;
 * then leaky ReLU with `slope` (if not null), then + res (if given). Needs `smallConvStrategy(cin, cout)` and the wasm
 * backend (`simdAvailable()`).
 */
export function conv1dSmall(
  x: tf.Tensor3D, filter: tf.Tensor3D, bias: tf.Tensor1D,
  o: { dilation?: number; padL: number; padR: number; slope?: number | null; res?: tf.Tensor3D | null },
): tf.Tensor3D {
  const [k, cin, cout] = filter.shape;
  if (x.shape[2] !== cin) throw new Error(`conv1dSmall: input has ${x.shape[2]} channels, filter expects ${cin}`);
  if (!smallConvStrategy(cin, cout)) throw new Error(`conv1dSmall: no kernel for ${cin} → ${cout} channels`);
  const d = o.dilation ?? 1;
  const res = o.res ?? null;
  const L = x.shape[1] + o.padL + o.padR - (k - 1) * d;
  if (res && (res.shape[0] !== x.shape[0] || res.shape[1] !== L || res.shape[2] !== cout)) {
    throw new Error(`conv1dSmall: residual (${res.shape.join(', ')}) does not match the output (${x.shape[0]}, ${L}, ${cout})`);
  }
  const attrs = { k, d, padL: o.padL, padR: o.padR, slope: o.slope ?? null, hasRes: !!res };
  return runCustom<tf.Tensor3D>('MucodecConv1dSmall', [x, filter, bias, res ?? bias], attrs);
}

// ---------------------------------------------------------------------------------------------------------------
// element-wise

function lreluFn(): Fn {
  // (x, out, n, slope): out = x > 0 ? x : slope·x
  const f = new Fn('lrelu', [I32, I32, I32, F32]);
  const i = f.local(I32), nv = f.local(I32), v = f.local(V128), sv = f.local(V128), z = f.local(V128), s = f.local(F32);
  f.get(3).v(S.f32x4_splat).set(sv);
  f.vconstF32(0, 0, 0, 0).set(z);
  f.get(2).i32(-4).and_().set(nv);
  f.i32(0).set(i);
  f.block(); f.loop();
  f.get(i).get(nv).geS().brIf(1);
  f.get(0).get(i).i32(4).mul().add().vload().set(v);
  f.get(1).get(i).i32(4).mul().add()
    .get(v).get(v).get(sv).v(S.f32x4_mul).get(v).get(z).v(S.f32x4_gt).v(S.bitselect).vstore();
  f.get(i).i32(4).add().set(i);
  f.br(0);
  f.end(); f.end();
  f.block(); f.loop();
  f.get(i).get(2).geS().brIf(1);
  f.get(0).get(i).i32(4).mul().add().f32load().set(s);
  f.get(1).get(i).i32(4).mul().add().get(s).get(s).get(3).f32mul().get(s).f32(0).f32gt().select().f32store();
  f.get(i).i32(1).add().set(i);
  f.br(0);
  f.end(); f.end();
  return f;
}

defineKernel('MucodecLeakyRelu', ['x'], (be, [x], attrs) => {
  const out = be.makeOutput(x!.shape, 'float32');
  const n = x!.shape.reduce((p, q) => p * q, 1);
  if (n) moduleFor(be, 'eltwise', () => [lreluFn()]).lrelu!(offsetOf(be, x!), offsetOf(be, out), n, (attrs as { slope: number }).slope);
  return out;
});

/** leaky ReLU x > 0 ? x : slope·x (same values as tf.leakyRelu), fast path on wasm */
export function leakyRelu<T extends tf.Tensor>(x: T, slope: number): T {
  if (!simdAvailable() || x.dtype !== 'float32') return tf.leakyRelu(x, slope);
  return runCustom<T>('MucodecLeakyRelu', [x], { slope });
}

export { simdAvailable } from './heap.js';
export type { WasmBackendLike };

// ---------------------------------------------------------------------------------------------------------------
// overlapping bands (for convolutions whose per-row output is long)

defineKernel('MucodecBandGather', ['x'], (be, [x], attrs) => {
  const { m, span, padL, nb } = attrs as { m: number; span: number; padL: number; nb: number };
  const [n, Lin, C] = x!.shape as [number, number, number];
  const len = m + span;
  const out = be.makeOutput([n * nb, len, C], 'float32');
  const heap = new Float32Array(be.wasm.HEAPU8.buffer); // after makeOutput: the heap may have grown
  const xo = offsetOf(be, x!) / 4, oo = offsetOf(be, out) / 4;
  for (let r = 0; r < n; r++) {
    for (let b = 0; b < nb; b++) {
      const start = b * m - padL;
      const dst = oo + (r * nb + b) * len * C;
      const a = Math.max(0, start), e = Math.min(Lin, start + len);
      if (e <= a) { heap.fill(0, dst, dst + len * C); continue; }
      if (a > start) heap.fill(0, dst, dst + (a - start) * C);
      heap.copyWithin(dst + (a - start) * C, xo + (r * Lin + a) * C, xo + (r * Lin + e) * C);
      if (e < start + len) heap.fill(0, dst + (e - start) * C, dst + len * C);
    }
  }
  return out;
});

/**
 * Bands for a conv of `span` = (k−1)·d: x (n, Lin, C) → (n·nb, m + span, C), band b of row r = input samples
 * [b·m − padL, b·m + m − padL + span) with zeros outside [0, Lin). A 'valid' conv of the bands gives output samples
 * [b·m, (b+1)·m) of the zero-padded conv, row-major (n, nb·m, Cout) after a reshape.
 */
export function bandGather(x: tf.Tensor3D, m: number, span: number, padL: number, nb: number): tf.Tensor3D {
  if (!simdAvailable()) {
    return tf.tidy(() => {
      const [n, Lin, C] = x.shape;
      const total = nb * m + span;
      const xp = tf.pad(x, [[0, 0], [padL, Math.max(0, total - padL - Lin)], [0, 0]]).slice([0, 0, 0], [n, total, C]) as tf.Tensor3D;
      const parts: tf.Tensor3D[] = [];
      for (let b = 0; b < nb; b++) parts.push(xp.slice([0, b * m, 0], [n, m + span, C]).expandDims(1) as unknown as tf.Tensor3D);
      return (tf.concat(parts, 1) as unknown as tf.Tensor4D).reshape([n * nb, m + span, C]) as tf.Tensor3D;
    });
  }
  return runCustom<tf.Tensor3D>('MucodecBandGather', [x], { m, span, padL, nb });
}
