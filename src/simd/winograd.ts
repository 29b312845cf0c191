/**
 * 3×3 stride-1 convolution by Winograd's minimal filtering F(4×4, 3×3) (Lavin & Gray 2015), with the input,
 * output and filter transforms as WebAssembly SIMD kernels on the tfjs-wasm heap (./heap.ts) and the channel
 * contraction as 36 plain 2-D tf.matMul calls (XNNPACK GEMM):
 *
 *   Y = Aᵀ [ U ⊙ V ] A   per 6×6 input tile d (4×4 output tile), V = Bᵀ d B, U = G g Gᵀ
 *   M_q = V_q (tiles × Cin) @ U_q (Cin × Cout),  q = k·6 + l  (one GEMM per transform coefficient)
 *
 * so the multiply-adds of the contraction drop from 9 to 36/16 = 2.25 per output and input/output channel (4×).
 * The transforms are element-wise along channels (4 channels per SIMD vector) and cost a few adds per value.
 * Matrices: built from the interpolation points (DEFAULT_POINTS and ∞) by the Toom–Cook construction
 * (`winogradMatrices`), checked against a direct sum in the tests.
 *
 * Tiles: the output rows of one band are cut into 4×4 tiles; input positions outside the band's rows, above row
 * 0 of the image or outside columns [0, W) read as zeros (the conv's zero padding), so no padded copy is made.
 * Results differ from a direct convolution only by float32 rounding (a relative L2 of a few 1e-6 per layer).
 */
import * as tf from '@tensorflow/tfjs-core';
import { Fn, I32, S, V128 } from './asm.js';
import { defineKernel, moduleFor, offsetOf, runCustom, simdAvailable, type WasmBackendLike } from './heap.js';

const M = 4; // output tile
const R = 3; // kernel
const A = M + R - 1; // input tile (6)
const Q = A * A; // transform coefficients (36)

function polyMul(a: number[], b: number[]): number[] {
  const o = new Array<number>(a.length + b.length - 1).fill(0);
  a.forEach((x, i) => b.forEach((y, j) => { o[i + j] += x * y; }));
  return o;
}

/**
 * F(m, r) for the correlation y_i = Σ_k g_k d_{i+k}: y = Aᵀ [(G g) ⊙ (Bᵀ d)], from n − 1 = m + r − 2 finite points
 * plus ∞ (transposed Toom–Cook linear convolution; the Lagrange denominators go into G, so Bᵀ holds the
 * coefficients of Π_{l≠j}(x − p_l) and of Π_l (x − p_l)).
 */
export function winogradMatrices(m: number, r: number, points: number[]): { AT: number[][]; G: number[][]; BT: number[][] } {
  const n = m + r - 1;
  if (points.length !== n - 1) throw new Error(`winograd: F(${m}, ${r}) needs ${n - 1} finite points`);
  const N: number[][] = Array.from({ length: n }, () => new Array<number>(n).fill(0));
  const den: number[] = [];
  for (let j = 0; j < n - 1; j++) {
    let p = [1];
    let d = 1;
    for (let l = 0; l < n - 1; l++) if (l !== j) { p = polyMul(p, [-points[l]!, 1]); d *= points[j]! - points[l]!; }
    p.forEach((c, i) => { N[i]![j] = c; });
    den.push(d);
  }
  let pinf = [1];
  for (let l = 0; l < n - 1; l++) pinf = polyMul(pinf, [-points[l]!, 1]);
  pinf.forEach((c, i) => { N[i]![n - 1] = c; });
  const G = Array.from({ length: n }, (_, j) => Array.from({ length: r }, (_, k) => (j < n - 1 ? points[j]! ** k / den[j]! : k === r - 1 ? 1 : 0)));
  const AT = Array.from({ length: m }, (_, i) => Array.from({ length: n }, (_, j) => (j < n - 1 ? points[j]! ** i : i === m - 1 ? 1 : 0)));
  const BT = Array.from({ length: n }, (_, i) => Array.from({ length: n }, (_, j) => N[j]![i]!));
  return { AT, G, BT };
}

/** interpolation points 0, −1, 1, ½, −2 (and ∞): ~35 % less rounding error than 0, ±1, ±2 (Barabasz et al. 2020, "Error
 * analysis and improving the accuracy of Winograd convolution for deep neural networks") */
export const DEFAULT_POINTS = [0, -1, 1, 0.5, -2];

/** emit Σ_j coef[j]·src[j] (v128 locals) onto the stack; skips zeros, ±1 without a multiply */
function lincomb(f: Fn, coef: number[], src: number[]): void {
  let first = true;
  coef.forEach((c, j) => {
    if (c === 0) return;
    const s = src[j]!;
    if (first) {
      if (c === 1) f.get(s);
      else if (c === -1) f.get(s).v(S.f32x4_neg);
      else f.get(s).vconstF32(c, c, c, c).v(S.f32x4_mul);
      first = false;
      return;
    }
    if (c === 1) f.get(s).v(S.f32x4_add);
    else if (c === -1) f.get(s).v(S.f32x4_sub);
    else f.get(s).vconstF32(c, c, c, c).v(S.f32x4_mul).v(S.f32x4_add);
  });
  if (first) f.vconstF32(0, 0, 0, 0);
}

/** the 2-D transform T·X·Tᵀ of a (cols(T) × cols(T)) block of v128 locals into rows(T)² locals */
function transform2d(f: Fn, T: number[][], x: number[][], tmp: number[][], out: number[][]): void {
  const nOut = T.length, nIn = T[0]!.length;
  // tmp[k][c] = Σ_y T[k][y] x[y][c]
  for (let k = 0; k < nOut; k++) for (let c = 0; c < nIn; c++) { lincomb(f, T[k]!, x.map((row) => row[c]!)); f.set(tmp[k]![c]!); }
  // out[k][l] = Σ_c tmp[k][c] T[l][c]
  for (let k = 0; k < nOut; k++) for (let l = 0; l < nOut; l++) { lincomb(f, T[l]!, tmp[k]!); f.set(out[k]![l]!); }
}

const vgrid = (f: Fn, r: number, c: number): number[][] => Array.from({ length: r }, () => Array.from({ length: c }, () => f.local(V128)));

/**
 * input transform: (x band, table of 36 output pointers, Rb rows, W, rowOff, th, tw) — tile (ti, tj) reads band rows
 * rowOff + 4ti + y and columns 4tj − 1 + x (y, x < 6), zeros outside [0, Rb) × [0, W); writes V_q[(ti·tw + tj)·C + c].
 */
function inputFn(C: number, BT: number[][]): Fn {
  const f = new Fn('input', [I32, I32, I32, I32, I32, I32, I32]);
  const [px, ptab, pR, pW, pRow, pth, ptw] = [0, 1, 2, 3, 4, 5, 6];
  const ti = f.local(I32), tj = f.local(I32), c = f.local(I32), tile = f.local(I32), rb = f.local(I32), cb = f.local(I32), off = f.local(I32);
  const inside = f.local(I32);
  const outp = Array.from({ length: Q }, () => f.local(I32));
  const rowp = Array.from({ length: A }, () => f.local(I32));
  const rv = Array.from({ length: A }, () => f.local(I32));
  const cv = Array.from({ length: A }, () => f.local(I32));
  const x = vgrid(f, A, A), tmp = vgrid(f, A, A), u = vgrid(f, A, A);
  const zero = f.local(V128);
  f.vconstF32(0, 0, 0, 0).set(zero);
  outp.forEach((l, q) => f.get(ptab).i32load(4 * q).set(l));
  f.i32(0).set(ti);
  f.block(); f.loop();
  f.get(ti).get(pth).geS().brIf(1);
  f.i32(0).set(tj);
  f.block(); f.loop();
  f.get(tj).get(ptw).geS().brIf(1);
  f.get(ti).get(ptw).mul().get(tj).add().set(tile);
  f.get(pRow).get(ti).i32(M).mul().add().set(rb);
  f.get(tj).i32(M).mul().i32(1).sub().set(cb);
  // row pointers (column cb) and validity
  for (let y = 0; y < A; y++) {
    f.get(rb).i32(y).add().get(pW).mul().get(cb).add().i32(4 * C).mul().get(px).add().set(rowp[y]!);
    f.get(rb).i32(y).add().i32(0).geS().get(rb).i32(y).add().get(pR).ltS().and_().set(rv[y]!);
    f.get(cb).i32(y).add().i32(0).geS().get(cb).i32(y).add().get(pW).ltS().and_().set(cv[y]!);
  }
  f.get(rv[0]!);
  for (let y = 1; y < A; y++) f.get(rv[y]!).and_();
  for (let y = 0; y < A; y++) f.get(cv[y]!).and_();
  f.set(inside);
  f.i32(0).set(c);
  f.loop();
  f.get(inside).if_();
  for (let y = 0; y < A; y++) for (let xx = 0; xx < A; xx++) f.get(rowp[y]!).get(c).i32(4).mul().add().vload(4 * C * xx).set(x[y]![xx]!);
  f.else_();
  for (let y = 0; y < A; y++) {
    for (let xx = 0; xx < A; xx++) {
      // select(load(valid ? addr : x), 0, valid)
      f.get(rowp[y]!).get(c).i32(4).mul().add().i32(4 * C * xx).add().get(px).get(rv[y]!).get(cv[xx]!).and_().select().vload()
        .get(zero).get(rv[y]!).get(cv[xx]!).and_().select().set(x[y]![xx]!);
    }
  }
  f.end();
  transform2d(f, BT, x, tmp, u);
  f.get(tile).i32(C).mul().get(c).add().i32(4).mul().set(off);
  for (let k = 0; k < A; k++) for (let l = 0; l < A; l++) f.get(outp[k * A + l]!).get(off).add().get(u[k]![l]!).vstore();
  f.get(c).i32(4).add().tee(c).i32(C).ltS().brIf(0);
  f.end();
  f.get(tj).i32(1).add().set(tj);
  f.br(0);
  f.end(); f.end();
  f.get(ti).i32(1).add().set(ti);
  f.br(0);
  f.end(); f.end();
  return f;
}

/**
 * output transform: (table of 36 input pointers, bias, res, out, rows, W, th, tw, hasRes) — y = Aᵀ M A + bias (+ res),
 * stored for the in-range pixels of each tile (out and res are (rows, W, Cout)).
 */
function outputFn(C: number, AT: number[][]): Fn {
  const f = new Fn('output', [I32, I32, I32, I32, I32, I32, I32, I32, I32, I32]);
  const [ptab, pb, pres, pout, prows, pW, pth, ptw, phas, pskip] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9];
  const tr = f.local(I32); // output row of the tile's first row: 4·ti − skip
  const ti = f.local(I32), tj = f.local(I32), c = f.local(I32), off = f.local(I32), full = f.local(I32), o0 = f.local(I32), r0p = f.local(I32);
  const inp = Array.from({ length: Q }, () => f.local(I32));
  const m = vgrid(f, A, A), tmp = vgrid(f, M, A), y = vgrid(f, M, M);
  const bv = f.local(V128), v = f.local(V128);
  inp.forEach((l, q) => f.get(ptab).i32load(4 * q).set(l));
  f.i32(0).set(ti);
  f.block(); f.loop();
  f.get(ti).get(pth).geS().brIf(1);
  f.i32(0).set(tj);
  f.block(); f.loop();
  f.get(tj).get(ptw).geS().brIf(1);
  f.get(ti).i32(M).mul().get(pskip).sub().set(tr);
  f.get(tr).i32(0).geS().get(tr).i32(M - 1).add().get(prows).ltS().and_().get(tj).i32(M).mul().i32(M - 1).add().get(pW).ltS().and_().set(full);
  // byte offset of the tile's top-left output pixel, channel 0 (negative when its first rows are skipped)
  f.get(tr).get(pW).mul().get(tj).i32(M).mul().add().i32(4 * C).mul().set(o0);
  f.i32(0).set(c);
  f.loop();
  f.get(ti).get(ptw).mul().get(tj).add().i32(C).mul().get(c).add().i32(4).mul().set(off);
  for (let k = 0; k < A; k++) for (let l = 0; l < A; l++) f.get(inp[k * A + l]!).get(off).add().vload().set(m[k]![l]!);
  // tmp = AT·m (4×6), y = tmp·A (4×4)
  for (let r = 0; r < M; r++) for (let l = 0; l < A; l++) { lincomb(f, AT[r]!, m.map((row) => row[l]!)); f.set(tmp[r]![l]!); }
  for (let r = 0; r < M; r++) for (let s = 0; s < M; s++) { lincomb(f, AT[s]!, tmp[r]!); f.set(y[r]![s]!); }
  f.get(pb).get(c).i32(4).mul().add().vload().set(bv);
  for (let r = 0; r < M; r++) {
    for (let s = 0; s < M; s++) {
      // pixel (4ti + r, 4tj + s): byte offset o0 + (r·W + s)·C·4 + c·4
      f.get(full).get(tr).i32(r).add().i32(0).geS().get(tr).i32(r).add().get(prows).ltS().and_()
        .get(tj).i32(M).mul().i32(s).add().get(pW).ltS().and_().or_();
      f.if_();
      f.get(y[r]![s]!).get(bv).v(S.f32x4_add).set(v);
      f.get(o0).get(pW).i32(r).mul().i32(s).add().i32(4 * C).mul().add().get(c).i32(4).mul().add().set(r0p);
      f.get(phas).if_();
      f.get(v).get(pres).get(r0p).add().vload().v(S.f32x4_add).set(v);
      f.end();
      f.get(pout).get(r0p).add().get(v).vstore();
      f.end();
    }
  }
  f.get(c).i32(4).add().tee(c).i32(C).ltS().brIf(0);
  f.end();
  f.get(tj).i32(1).add().set(tj);
  f.br(0);
  f.end(); f.end();
  f.get(ti).i32(1).add().set(ti);
  f.br(0);
  f.end(); f.end();
  return f;
}

/** filter transform: (g HWIO (3, 3, Cin, Cout), table of 36 output pointers, Cin) → U_q[ci, co] = (G g Gᵀ)[q] */
function filterFn(Cout: number, G: number[][]): Fn {
  const f = new Fn('filter', [I32, I32, I32]);
  const [pg, ptab, pcin] = [0, 1, 2];
  const ci = f.local(I32), co = f.local(I32), off = f.local(I32), stride = f.local(I32);
  const outp = Array.from({ length: Q }, () => f.local(I32));
  const g = vgrid(f, R, R), tmp = vgrid(f, A, R), u = vgrid(f, A, A);
  outp.forEach((l, q) => f.get(ptab).i32load(4 * q).set(l));
  f.get(pcin).i32(4 * Cout).mul().set(stride); // bytes between taps (i, j) and (i, j + 1)
  f.i32(0).set(ci);
  f.loop();
  f.i32(0).set(co);
  f.loop();
  f.get(ci).i32(Cout).mul().get(co).add().i32(4).mul().set(off);
  for (let i = 0; i < R; i++) for (let j = 0; j < R; j++) f.get(pg).get(off).add().get(stride).i32(i * R + j).mul().add().vload().set(g[i]![j]!);
  // tmp = G·g (6×3), u = tmp·Gᵀ (6×6)
  for (let k = 0; k < A; k++) for (let j = 0; j < R; j++) { lincomb(f, G[k]!, g.map((row) => row[j]!)); f.set(tmp[k]![j]!); }
  for (let k = 0; k < A; k++) for (let l = 0; l < A; l++) { lincomb(f, G[l]!, tmp[k]!); f.set(u[k]![l]!); }
  for (let k = 0; k < A; k++) for (let l = 0; l < A; l++) f.get(outp[k * A + l]!).get(off).add().get(u[k]![l]!).vstore();
  f.get(co).i32(4).add().tee(co).i32(Cout).ltS().brIf(0);
  f.end();
  f.get(ci).i32(1).add().tee(ci).get(pcin).ltS().brIf(0);
  f.end();
  return f;
}

/** a small persistent table in the wasm heap for pointer lists (one per heap) */
const tables = new WeakMap<object, number>();
function pointerTable(be: WasmBackendLike, ptrs: number[]): number {
  const mod = be.wasm as unknown as { _malloc: (n: number) => number; HEAPU8: Uint8Array };
  let t = tables.get(be.wasm);
  if (t === undefined) { t = mod._malloc(4 * 64); tables.set(be.wasm, t); }
  new Int32Array(mod.HEAPU8.buffer, t, ptrs.length).set(ptrs);
  return t;
}

const keyOf = (points: number[]): string => points.join(',');
const matCache = new Map<string, ReturnType<typeof winogradMatrices>>();
function mats(points: number[]): ReturnType<typeof winogradMatrices> {
  const k = keyOf(points);
  let m = matCache.get(k);
  if (!m) { m = winogradMatrices(M, R, points); matCache.set(k, m); }
  return m;
}

defineKernel('MucodecWinoInput', ['x'], (be, [x], attrs) => {
  const { rowOff, th, tw, points } = attrs as { rowOff: number; th: number; tw: number; points: number[] };
  const [, Rb, W, C] = x!.shape as [number, number, number, number];
  const outs = Array.from({ length: Q }, () => be.makeOutput([th * tw, C], 'float32'));
  const ex = moduleFor(be, `wino-in:${C}:${keyOf(points)}`, () => [inputFn(C, mats(points).BT)]);
  const tab = pointerTable(be, outs.map((o) => offsetOf(be, o)));
  ex.input!(offsetOf(be, x!), tab, Rb, W, rowOff, th, tw);
  return outs;
});

defineKernel('MucodecWinoOutput', [...Array.from({ length: Q }, (_, q) => `m${q}`), 'b', 'res'], (be, ins, attrs) => {
  const { rows, W, th, tw, hasRes, points, skip } = attrs as { rows: number; W: number; th: number; tw: number; hasRes: boolean; points: number[]; skip: number };
  const C = ins[0]!.shape[1]!;
  const out = be.makeOutput([1, rows, W, C], 'float32');
  const ex = moduleFor(be, `wino-out:${C}:${keyOf(points)}`, () => [outputFn(C, mats(points).AT)]);
  const tab = pointerTable(be, ins.slice(0, Q).map((t) => offsetOf(be, t!)));
  ex.output!(tab, offsetOf(be, ins[Q]!), hasRes ? offsetOf(be, ins[Q + 1]!) : 0, offsetOf(be, out), rows, W, th, tw, hasRes ? 1 : 0, skip);
  return out;
});

defineKernel('MucodecWinoFilter', ['g'], (be, [g], attrs) => {
  const { points } = attrs as { points: number[] };
  const [, , cin, cout] = g!.shape as [number, number, number, number];
  const outs = Array.from({ length: Q }, () => be.makeOutput([cin, cout], 'float32'));
  const ex = moduleFor(be, `wino-filter:${cout}:${keyOf(points)}`, () => [filterFn(cout, mats(points).G)]);
  const tab = pointerTable(be, outs.map((o) => offsetOf(be, o)));
  ex.filter!(offsetOf(be, g!), tab, cin);
  return outs;
});

/** whether a conv (cin → cout) can take this path: wasm backend, channel counts multiples of 4 */
export function winogradAvailable(cin: number, cout: number): boolean {
  return cin % 4 === 0 && cout % 4 === 0 && simdAvailable();
}

/**
 * F(4×4, 3×3) for one conv: filter (3, 3, Cin, Cout) HWIO and bias tensors owned by the caller. The transformed
 * filter U (36 × Cin × Cout, 4× the filter) is kept while it is at most `cacheBytes` (default 16 MiB: the AudioLDM
 * decoder levels up to 256 channels), otherwise made per call (keeping the 512- and 1024-channel levels' U too
 * measured slower, and would add ~2 GB to the heap).
 */
export class Winograd3x3 {
  private U: tf.Tensor2D[] | null = null;
  readonly points: number[];

  constructor(readonly filter: tf.Tensor4D, readonly bias: tf.Tensor1D, opts: { points?: number[]; cacheBytes?: number } = {}) {
    const [kh, kw, cin, cout] = filter.shape;
    if (kh !== 3 || kw !== 3) throw new Error(`winograd: ${kh}×${kw} filter, expected 3×3`);
    if (cin % 4 || cout % 4) throw new Error(`winograd: channels ${cin} → ${cout} must be multiples of 4`);
    this.points = opts.points ?? DEFAULT_POINTS;
    this.cacheBytes = opts.cacheBytes ?? 16 * 1024 * 1024;
  }

  readonly cacheBytes: number;

  /** U_q tensors (cached or fresh); `fresh` tells the caller to dispose them */
  transformed(): { U: tf.Tensor2D[]; fresh: boolean } {
    if (this.U) return { U: this.U, fresh: false };
    const U = runCustom<tf.Tensor>('MucodecWinoFilter', [this.filter], { points: this.points }) as unknown as tf.Tensor2D[];
    const [, , cin, cout] = this.filter.shape;
    if (Q * cin * cout * 4 <= this.cacheBytes) { this.U = U.map((u) => tf.keep(u)); return { U: this.U, fresh: false }; }
    return { U, fresh: true };
  }

  /**
   * One band of a zero-padded 'same' 3×3 conv: output rows [r0, r0 + rows) of the image, from `x` (1, Rb, W, Cin) holding
   * image rows [a, a + Rb). The 4×4 tiles are aligned to image rows that are multiples of 4 (the first tile starts at
   * t0 = r0 − r0 % 4), so every output pixel is computed by the same tile whatever the banding: results do not depend
   * on band boundaries. `x` must hold every image row in [t0 − 1, t0 + 4·th + 1) (th = tile rows); rows outside the
   * image are zeros. `rowOff` = (t0 − 1) − a: the band row of the first tile's first input row. Adds bias and `res`
   * (1, rows, W, Cout). `U`: transformed filter from `transformed()` (made and freed here when absent).
   */
  apply(x: tf.Tensor4D, rowOff: number, rows: number, skip: number, res?: tf.Tensor4D | null, U?: tf.Tensor2D[]): tf.Tensor4D {
    const [n, , W, cin] = x.shape;
    if (n !== 1) throw new Error('winograd: one image per call');
    if (cin !== this.filter.shape[2]) throw new Error(`winograd: input has ${cin} channels, expected ${this.filter.shape[2]}`);
    const th = Math.ceil((rows + skip) / M), tw = Math.ceil(W / M);
    const V = runCustom<tf.Tensor>('MucodecWinoInput', [x], { rowOff, th, tw, points: this.points }) as unknown as tf.Tensor2D[];
    const own = U ? null : this.transformed();
    const Us = U ?? own!.U;
    const Ms: tf.Tensor2D[] = [];
    try {
      for (let q = 0; q < Q; q++) { Ms.push(tf.matMul(V[q]!, Us[q]!)); V[q]!.dispose(); }
      return runCustom<tf.Tensor4D>('MucodecWinoOutput', [...Ms, this.bias, res ?? this.bias], {
        rows, W, th, tw, hasRes: !!res, points: this.points, skip,
      });
    } finally {
      for (const v of V) if (!v.isDisposed) v.dispose();
      for (const m of Ms) m.dispose();
      if (own?.fresh) for (const u of own.U) u.dispose();
    }
  }

  /** image rows a band needs for output rows [r0, r1): [a, b), with the tile origin t0 and the apply() arguments */
  static bandRows(r0: number, r1: number, H: number): { a: number; b: number; t0: number; skip: number } {
    const t0 = r0 - (r0 % M);
    const th = Math.ceil((r1 - t0) / M);
    return { a: Math.max(0, t0 - 1), b: Math.min(H, t0 + M * th + 1), t0, skip: r0 - t0 };
  }

  dispose(): void {
    if (this.U) for (const u of this.U) u.dispose();
    this.U = null;
  }
}
