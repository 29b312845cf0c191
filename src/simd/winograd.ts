/**
 * Convolution by Winograd's minimal filtering F(m×m, r×r) (Lavin & Gray 2015), with the input, output and filter
 * transforms as WebAssembly SIMD kernels on the tfjs-wasm heap (./heap.ts) and the channel contraction as q = a²
 * plain 2-D tf.matMul calls (XNNPACK GEMM; on the wasm backend the packed FMA/SIMD128 GEMM of ./gemm.ts), a = m + r − 1:
 *
 *   Y = Aᵀ [ U ⊙ V ] A   per a×a input tile d (m×m output tile), V = Bᵀ d B, U = G g Gᵀ
 *   M_q = V_q (tiles × Cin) @ U_q (Cin × Cout),  q = k·a + l  (one GEMM per transform coefficient)
 *
 * Used as F(4×4, 3×3) (a = 6, 36 GEMMs: 2.25 instead of 9 multiply-adds per output and channel pair) for the 3×3
 * stride-1 convs of the VAE and of MuQ's frontend, and as F(4×4, 2×2) (25 GEMMs) for MuQ's stride-2 3×3 convs
 * rewritten as 2×2 convs of the space-to-depth image (Winograd3x3Stride2).
 * The transforms are element-wise along channels (4 channels per SIMD vector) and cost a few adds per value.
 * Matrices: built from the interpolation points (DEFAULT_POINTS / DEFAULT_POINTS_R2 and ∞) by the Toom–Cook
 * construction (`winogradMatrices`), checked against a direct sum in the tests.
 *
 * Tiles: the output rows of one band are cut into m×m tiles; input positions outside the band's rows, before row
 * 0 of the image or outside columns [0, W) read as zeros (the conv's zero padding), so no padded copy is made.
 * Results differ from a direct convolution only by float32 rounding (a relative L2 of a few 1e-6 per layer).
 */
import * as tf from '@tensorflow/tfjs-core';
import { Fn, I32, S, V128 } from './asm.js';
import { defineKernel, heapMemory, heapScratch, moduleFor, offsetOf, runCustom, simdAvailable, type WasmBackendLike } from './heap.js';
import { gemm, gemmBlocks, gemmEnabled, packTensor, type PackedB } from './gemm.js';
import { runSplit } from '../workers/kernel_pool.js';

/**
 * U_q packed for the GEMM of ./gemm.ts (on the wasm backend it replaces XNNPACK's matMul for the q products): packed
 * once per U tensor (kept U: for the layer's lifetime; fresh U: for the conv call), freed with it (`releaseU`).
 */
const packedU = new WeakMap<tf.Tensor2D, PackedB>();
/** U_q made by the filter kernel straight in packB's layout: (Cin + 1, Cout) = the zero bias row, then the panels */
const packedLayout = new WeakSet<tf.Tensor>();
function productWith(v: tf.Tensor2D, u: tf.Tensor2D): tf.Tensor2D {
  if (packedLayout.has(u)) return gemm(v, { packed: u as unknown as tf.Tensor1D, k: u.shape[0] - 1, n: u.shape[1] });
  if (!gemmEnabled()) return tf.matMul(v, u);
  return gemm(v, packedOf(u));
}
/** the packed copy of a row-major U_q, made on first use; it outlives the caller's tidy and is freed by releaseU */
function packedOf(u: tf.Tensor2D): PackedB {
  let p = packedU.get(u);
  if (!p) { p = packTensor(u); tf.keep(p.packed); packedU.set(u, p); }
  return p;
}
/** the U_q rows kept when the rest are zero: `taps` blocks of w rows, blocks first + j·stride (j < taps) of Cin / w */
export interface LiveBlocks { first: number; stride: number; taps: number }
function productBlocks(v: tf.Tensor2D, u: tf.Tensor2D, w: number, live: LiveBlocks): tf.Tensor2D {
  if (!gemmEnabled()) {
    const cols = Array.from({ length: live.taps }, (_, j) => v.slice([0, (live.first + j * live.stride) * w], [-1, w]));
    const a = cols.length === 1 ? cols[0]! : tf.concat(cols, 1);
    try { return tf.matMul(a, u); } finally { for (const c of cols) c.dispose(); if (cols.length > 1) a.dispose(); }
  }
  return gemmBlocks(v, packedOf(u), live.first * w, w, live.stride);
}
export function releaseU(us: tf.Tensor2D[]): void {
  for (const u of us) { packedU.get(u)?.packed.dispose(); packedU.delete(u); u.dispose(); }
}

/**
 * Tile geometry of F(m×m, r×r): input tiles of a = m + r − 1 rows and columns, q = a² GEMMs; `pad` = the zero rows /
 * columns the conv reads before the image (1 for a 3×3 'same' conv, 0 for a 'valid' one).
 */
interface Tiling { m: number; r: number; a: number; q: number; pad: number }
/** F(m, r) from its a − 1 finite interpolation points (and ∞) */
function tilingOf(points: number[], r: number, pad: number): Tiling {
  const a = points.length + 1;
  return { m: a - r + 1, r, a, q: a * a, pad };
}

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
export function lincomb(f: Fn, coef: number[], src: number[]): void {
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

/** for (ti = ti0; ti < ti1; ti++) { head(); body() } — the tile rows one thread's share covers */
function tileRows(f: Fn, ti: number, ti0: number, ti1: number, head: () => void, body: () => void): void {
  f.get(ti0).set(ti);
  f.loopUntil(() => f.get(ti).get(ti1).geS(), () => { head(); body(); f.get(ti).i32(1).add().set(ti); });
}

const vgrid = (f: Fn, r: number, c: number): number[][] => Array.from({ length: r }, () => Array.from({ length: c }, () => f.local(V128)));

/**
 * input transform: (x band, table of q output pointers, Rb rows, W, rowOff, th, tw, scratch) — tile (ti, tj) reads
 * band rows rowOff + m·ti + y and columns m·tj − pad + x (y, x < a), zeros outside [0, Rb) × [0, W); writes
 * V_q[(ti·tw + tj)·C + c]. Two passes through an a²·16-byte scratch (rows, then columns) keep ≤ 2a vectors live.
 */
function inputFn(C: number, BT: number[][], t: Tiling): Fn {
  const { m: M, a: A, q: Q } = t;
  const f = new Fn('run', [I32, I32, I32, I32, I32, I32, I32, I32, I32, I32]);
  const [px, ptab, pR, pW, pRow, , ptw, pscr0, ti0, ti1] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9];
  const ti = f.local(I32), tj = f.local(I32), c = f.local(I32), tile = f.local(I32), rb = f.local(I32), cb = f.local(I32), off = f.local(I32);
  const pscr = f.local(I32); // this tile row's scratch: rows of tiles run on different threads
  const inside = f.local(I32), ra = f.local(I32);
  const outp = Array.from({ length: Q }, () => f.local(I32));
  const rowp = Array.from({ length: A }, () => f.local(I32));
  const rv = Array.from({ length: A }, () => f.local(I32));
  const cv = Array.from({ length: A }, () => f.local(I32));
  const d = Array.from({ length: A }, () => f.local(V128));
  const zero = f.local(V128);
  f.vconstF32(0, 0, 0, 0).set(zero);
  outp.forEach((l, q) => f.get(ptab).i32load(4 * q).set(l));
  // every tile (ti, tj) of the tile rows [ti0, ti1) × tw grid
  tileRows(f, ti, ti0, ti1, () => f.get(pscr0).get(ti).i32(16 * A * A).mul().add().set(pscr), () => f.forRange(tj, 0, ptw, 1, () => {
    f.get(ti).get(ptw).mul().get(tj).add().set(tile);
    f.get(pRow).get(ti).i32(M).mul().add().set(rb);
    f.get(tj).i32(M).mul().i32(t.pad).sub().set(cb);
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
    // the channel loop, twice: interior tiles with plain loads, border tiles with zero-filled ones
    for (const safe of [false, true]) {
      if (!safe) f.get(inside).if_(); else f.else_();
      f.get(tile).i32(4 * C).mul().set(off);
      f.i32(0).set(c);
      f.loop();
      // pass 1, per input row y: t[y][l] = Σ_x BT[l][x] d[y][x] → scratch[(y·a + l)·16]
      for (let y = 0; y < A; y++) {
        if (!safe) {
          f.get(rowp[y]!).get(c).add().set(ra);
          for (let xx = 0; xx < A; xx++) f.get(ra).vload(4 * C * xx).set(d[xx]!);
        } else {
          for (let xx = 0; xx < A; xx++) {
            // select(load(valid ? addr : x), 0, valid)
            f.get(rowp[y]!).get(c).add().i32(4 * C * xx).add().get(px).get(rv[y]!).get(cv[xx]!).and_().select().vload()
              .get(zero).get(rv[y]!).get(cv[xx]!).and_().select().set(d[xx]!);
          }
        }
        for (let l = 0; l < A; l++) { f.get(pscr); lincomb(f, BT[l]!, d); f.vstore(16 * (y * A + l)); }
      }
      // pass 2, per column l: u[k][l] = Σ_y BT[k][y] t[y][l] → V_{k·a+l}
      for (let l = 0; l < A; l++) {
        for (let y = 0; y < A; y++) f.get(pscr).vload(16 * (y * A + l)).set(d[y]!);
        for (let k = 0; k < A; k++) { f.get(outp[k * A + l]!).get(off).add(); lincomb(f, BT[k]!, d); f.vstore(); }
      }
      f.get(off).i32(16).add().set(off);
      f.get(c).i32(16).add().tee(c).i32(4 * C).ltS().brIf(0);
      f.end();
    }
    f.end();
  }));
  return f;
}

/**
 * output transform: (table of q input pointers, bias, res, out, rows, W, th, tw, hasRes, skip, scratch) —
 * y = Aᵀ M A + bias (+ res), stored for the in-range pixels of each tile (out and res are (rows, W, Cout)); tile row
 * ti covers output rows m·ti − skip … Two passes through a scratch (columns, then rows).
 */
function outputFn(C: number, AT: number[][], t: Tiling): Fn {
  const { m: M, a: A, q: Q } = t;
  const f = new Fn('run', [I32, I32, I32, I32, I32, I32, I32, I32, I32, I32, I32, I32, I32]);
  const [ptab, pb, pres, pout, prows, pW, , ptw, phas, pskip, pscr0, ti0, ti1] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12];
  const pscr = f.local(I32); // this tile row's scratch
  const tr = f.local(I32); // output row of the tile's first row: m·ti − skip
  const ti = f.local(I32), tj = f.local(I32), c = f.local(I32), off = f.local(I32), full = f.local(I32), o0 = f.local(I32), pa = f.local(I32);
  const inp = Array.from({ length: Q }, () => f.local(I32));
  const ok = Array.from({ length: M * M }, () => f.local(I32)); // per pixel: inside the output
  const m = Array.from({ length: A }, () => f.local(V128));
  const yv = Array.from({ length: M }, () => f.local(V128));
  const bv = f.local(V128), v = f.local(V128);
  inp.forEach((l, q) => f.get(ptab).i32load(4 * q).set(l));
  // every tile (ti, tj) of the tile rows [ti0, ti1) × tw grid
  tileRows(f, ti, ti0, ti1, () => f.get(pscr0).get(ti).i32(16 * M * A).mul().add().set(pscr), () => f.forRange(tj, 0, ptw, 1, () => {
    f.get(ti).i32(M).mul().get(pskip).sub().set(tr);
    f.get(tr).i32(0).geS().get(tr).i32(M - 1).add().get(prows).ltS().and_().get(tj).i32(M).mul().i32(M - 1).add().get(pW).ltS().and_().set(full);
    for (let r = 0; r < M; r++) for (let s = 0; s < M; s++) {
      f.get(tr).i32(r).add().i32(0).geS().get(tr).i32(r).add().get(prows).ltS().and_().get(tj).i32(M).mul().i32(s).add().get(pW).ltS().and_().set(ok[r * M + s]!);
    }
    // byte offset of the tile's top-left output pixel, channel 0 (negative when its first rows are skipped)
    f.get(tr).get(pW).mul().get(tj).i32(M).mul().add().i32(4 * C).mul().set(o0);
    f.get(ti).get(ptw).mul().get(tj).add().i32(4 * C).mul().set(off);
    f.i32(0).set(c);
    f.loop();
    // pass 1, per column l: s[r][l] = Σ_k AT[r][k] m[k][l] → scratch[(r·a + l)·16]
    for (let l = 0; l < A; l++) {
      for (let k = 0; k < A; k++) f.get(inp[k * A + l]!).get(off).add().vload().set(m[k]!);
      for (let r = 0; r < M; r++) { f.get(pscr); lincomb(f, AT[r]!, m); f.vstore(16 * (r * A + l)); }
    }
    f.get(pb).get(c).add().vload().set(bv);
    // pass 2, per output row r: y[r][s] = Σ_l AT[s][l] s[r][l] + bias (+ res)
    for (let r = 0; r < M; r++) {
      for (let l = 0; l < A; l++) f.get(pscr).vload(16 * (r * A + l)).set(m[l]!);
      for (let s = 0; s < M; s++) { lincomb(f, AT[s]!, m); f.get(bv).v(S.f32x4_add).set(yv[s]!); }
      // row pointer into out/res: o0 + r·W·4C + c
      f.get(o0).get(pW).i32(r * 4 * C).mul().add().get(c).add().set(pa);
      f.get(full).if_();
      f.get(phas).if_();
      for (let s = 0; s < M; s++) f.get(pout).get(pa).add().get(yv[s]!).get(pres).get(pa).add().vload(4 * C * s).v(S.f32x4_add).vstore(4 * C * s);
      f.else_();
      for (let s = 0; s < M; s++) f.get(pout).get(pa).add().get(yv[s]!).vstore(4 * C * s);
      f.end();
      f.else_();
      for (let s = 0; s < M; s++) {
        f.get(ok[r * M + s]!).if_();
        f.get(yv[s]!).set(v);
        f.get(phas).if_();
        f.get(v).get(pres).get(pa).add().i32(4 * C * s).add().vload().v(S.f32x4_add).set(v);
        f.end();
        f.get(pout).get(pa).add().i32(4 * C * s).add().get(v).vstore();
        f.end();
      }
      f.end();
    }
    f.get(off).i32(16).add().set(off);
    f.get(c).i32(16).add().tee(c).i32(4 * C).ltS().brIf(0);
    f.end();
  }));
  return f;
}

/**
 * Filter transform, run(g HWIO (r, r, Cin, Cout), table of q output pointers, Cin, m0, m1): U_q[ci, co] = (G g Gᵀ)[q]
 * for input channels [m0, m1) (split over the kernel
 * pool: each channel's values are written once). `packed`: U_q in packB's layout for the GEMM (Cout % 8 = 0): Cout
 * zero floats (the panels' bias, zeroed by the caller), then panel p = columns [8p, 8p + 8) as Cin rows of 8 floats, so
 * no separate packing pass over the q·Cin·Cout floats; otherwise row-major (Cin, Cout).
 */
function filterFn(Cout: number, G: number[][], t: Tiling, packed: boolean): Fn {
  const { r: R, a: A, q: Q } = t;
  const f = new Fn('run', [I32, I32, I32, I32, I32]);
  const [pg, ptab, pcin, pm0, pm1] = [0, 1, 2, 3, 4];
  const ci = f.local(I32), co = f.local(I32), off = f.local(I32), stride = f.local(I32), dst = f.local(I32);
  const outp = Array.from({ length: Q }, () => f.local(I32));
  const g = vgrid(f, R, R), tmp = vgrid(f, A, R), u = vgrid(f, A, A);
  outp.forEach((l, q) => f.get(ptab).i32load(4 * q).set(l));
  f.get(pcin).i32(4 * Cout).mul().set(stride); // bytes between taps (i, j) and (i, j + 1)
  f.get(pm0).set(ci);
  f.loopUntil(() => f.get(ci).get(pm1).geS(), () => {
    f.i32(0).set(co);
    f.loop();
    f.get(ci).i32(Cout).mul().get(co).add().i32(4).mul().set(off);
    for (let i = 0; i < R; i++) for (let j = 0; j < R; j++) f.get(pg).get(off).add().get(stride).i32(i * R + j).mul().add().vload().set(g[i]![j]!);
    // tmp = G·g (a×r), u = tmp·Gᵀ (a×a)
    for (let k = 0; k < A; k++) for (let j = 0; j < R; j++) { lincomb(f, G[k]!, g.map((row) => row[j]!)); f.set(tmp[k]![j]!); }
    for (let k = 0; k < A; k++) for (let l = 0; l < A; l++) { lincomb(f, G[l]!, tmp[k]!); f.set(u[k]![l]!); }
    // destination byte offset: row-major, or Cout + (co / 8)·Cin·8 + ci·8 + co mod 8 floats
    if (packed) {
      f.get(co).i32(3).shrS().get(pcin).mul().get(ci).add().i32(8).mul().get(co).i32(7).and_().add().i32(Cout).add().i32(4).mul().set(dst);
    } else f.get(off).set(dst);
    for (let k = 0; k < A; k++) for (let l = 0; l < A; l++) f.get(outp[k * A + l]!).get(dst).add().get(u[k]![l]!).vstore();
    f.get(co).i32(4).add().tee(co).i32(Cout).ltS().brIf(0);
    f.end();
    f.get(ci).i32(1).add().set(ci);
  });
  return f;
}

/** a small persistent table in the wasm heap for pointer lists (one per heap; up to 128 pointers) */
const tables = new WeakMap<object, number>();
function pointerTable(be: WasmBackendLike, ptrs: number[]): number {
  const mod = be.wasm as unknown as { _malloc: (n: number) => number; HEAPU8: Uint8Array };
  if (ptrs.length > 128) throw new Error(`winograd: ${ptrs.length} pointers exceed the table`);
  let t = tables.get(be.wasm);
  if (t === undefined) { t = mod._malloc(4 * 128); tables.set(be.wasm, t); }
  new Int32Array(mod.HEAPU8.buffer, t, ptrs.length).set(ptrs);
  return t;
}



const keyOf = (points: number[], r: number, pad: number): string => `${r}:${pad}:${points.join(',')}`;
const matCache = new Map<string, ReturnType<typeof winogradMatrices>>();
function mats(t: Tiling, points: number[]): ReturnType<typeof winogradMatrices> {
  const k = keyOf(points, t.r, 0);
  let m = matCache.get(k);
  if (!m) { m = winogradMatrices(t.m, t.r, points); matCache.set(k, m); }
  return m;
}

interface TileAttrs { points: number[]; r: number; pad: number }
const tilingFrom = (a: TileAttrs): Tiling => tilingOf(a.points, a.r, a.pad);

defineKernel('MucodecWinoInput', ['x'], (be, [x], attrs) => {
  const { rowOff, th, tw } = attrs as { rowOff: number; th: number; tw: number };
  const a = attrs as unknown as TileAttrs;
  const t = tilingFrom(a);
  const [, Rb, W, C] = x!.shape as [number, number, number, number];
  const outs = Array.from({ length: t.q }, () => be.makeOutput([th * tw, C], 'float32'));
  const tab = pointerTable(be, outs.map((o) => offsetOf(be, o)));
  runSplit(be, `wino-in:${C}:${keyOf(a.points, a.r, a.pad)}`, () => [inputFn(C, mats(t, a.points).BT, t)],
    [offsetOf(be, x!), tab, Rb, W, rowOff, th, tw, heapScratch(be, 16 * t.a * t.a * th)], th, 4);
  return outs;
});

/** the output transform takes q GEMM results: one kernel per q (its input list is fixed when defined) */
function outputKernel(q: number): string {
  const name = `MucodecWinoOutput${q}`;
  if (definedOutputs.has(q)) return name;
  definedOutputs.add(q);
  defineKernel(name, [...Array.from({ length: q }, (_, i) => `m${i}`), 'b', 'res'], (be, ins, attrs) => {
    const { rows, W, th, tw, hasRes, skip } = attrs as { rows: number; W: number; th: number; tw: number; hasRes: boolean; skip: number };
    const a = attrs as unknown as TileAttrs;
    const t = tilingFrom(a);
    const C = ins[0]!.shape[1]!;
    const out = be.makeOutput([1, rows, W, C], 'float32');
    const tab = pointerTable(be, ins.slice(0, q).map((x) => offsetOf(be, x!)));
    runSplit(be, `wino-out:${C}:${keyOf(a.points, a.r, 0)}`, () => [outputFn(C, mats(t, a.points).AT, t)],
      [tab, offsetOf(be, ins[q]!), hasRes ? offsetOf(be, ins[q + 1]!) : 0, offsetOf(be, out), rows, W, th, tw, hasRes ? 1 : 0, skip,
        heapScratch(be, 16 * t.m * t.a * th)], th, 4);
    return out;
  });
  return name;
}
const definedOutputs = new Set<number>();

defineKernel('MucodecWinoFilter', ['g'], (be, [g], attrs) => {
  const a = attrs as unknown as TileAttrs & { packed: boolean };
  const t = tilingFrom(a);
  const [, , cin, cout] = g!.shape as [number, number, number, number];
  const outs = Array.from({ length: t.q }, () => be.makeOutput([a.packed ? cin + 1 : cin, cout], 'float32'));
  if (a.packed) for (const o of outs) new Float32Array(heapMemory(be)!.buffer, offsetOf(be, o), cout).fill(0);
  const tab = pointerTable(be, outs.map((o) => offsetOf(be, o)));
  runSplit(be, `wino-filter:${cout}:${a.packed ? 'p' : 'r'}:${keyOf(a.points, a.r, 0)}`, () => [filterFn(cout, mats(t, a.points).G, t, a.packed)],
    [offsetOf(be, g!), tab, cin], cin, t.q * cin * cout >= 1 << 18 ? 8 : Infinity);
  return outs;
});

/** whether a conv (cin → cout) can take this path: wasm backend, channel counts multiples of 4 */
export function winogradAvailable(cin: number, cout: number): boolean {
  return cin % 4 === 0 && cout % 4 === 0 && simdAvailable();
}

/** interpolation points of F(4, 2) (and ∞): 0, −1, 1, ½ */
export const DEFAULT_POINTS_R2 = [0, -1, 1, 0.5];

/**
 * Winograd F(m×m, r×r) for one stride-1 conv with r ∈ {2, 3}: filter (r, r, Cin, Cout) HWIO and bias tensors owned by
 * the caller; `pad` zero rows/columns before the image (3×3 default 1: 'same'; 2×2 default 0: 'valid'), output size
 * H + 2·pad − (r − 1). The transformed filter U (q × Cin × Cout) is kept while it is at most `cacheBytes` (default 16
 * MiB: the AudioLDM decoder levels up to 256 channels), otherwise made per call (keeping the VAE's 512- and
 * 1024-channel levels' U too measured slower, and would add ~2 GB to the heap). With the packed GEMM on and Cout % 8 = 0
 * the filter kernel writes U in the GEMM's packed layout (no packing pass per call, one copy when kept); otherwise U is
 * row-major and packed for the GEMM on first use (`packedOf`), the packed copy living as long as U.
 */
export class WinogradConv {
  private U: tf.Tensor2D[] | null = null;
  readonly points: number[];
  readonly cacheBytes: number;
  protected readonly t: Tiling;

  /**
   * `live`: per coefficient q, the Cin blocks (of `w` channels) whose U_q rows can be nonzero (null: all) — e.g. the
   * space-to-depth phases a stride-2 conv's zero taps leave out of the ∞ coefficients. U_q keeps only those rows and
   * the product reads only those columns of V_q (the skipped terms are exact zeros: same result, fewer multiplies).
   */
  readonly live: { w: number; blocks: Array<LiveBlocks | null> } | null;

  constructor(readonly filter: tf.Tensor4D, readonly bias: tf.Tensor1D,
    opts: { points?: number[]; cacheBytes?: number; pad?: number; live?: { w: number; blocks: Array<LiveBlocks | null> } } = {}) {
    const [kh, kw, cin, cout] = filter.shape;
    if (kh !== kw || (kh !== 2 && kh !== 3)) throw new Error(`winograd: ${kh}×${kw} filter, expected 2×2 or 3×3`);
    if (cin % 4 || cout % 4) throw new Error(`winograd: channels ${cin} → ${cout} must be multiples of 4`);
    this.points = opts.points ?? (kh === 3 ? DEFAULT_POINTS : DEFAULT_POINTS_R2);
    this.t = tilingOf(this.points, kh, opts.pad ?? (kh === 3 ? 1 : 0));
    if (this.t.q > 128) throw new Error(`winograd: ${this.t.q} GEMMs per tile is more than the kernels take`);
    this.cacheBytes = opts.cacheBytes ?? 16 * 1024 * 1024;
    this.live = opts.live ?? null;
    if (this.live) {
      const { w, blocks } = this.live;
      if (blocks.length !== this.t.q) throw new Error(`winograd: live blocks for ${blocks.length} coefficients, expected ${this.t.q}`);
      for (const b of blocks) {
        if (b && (cin % w || b.taps < 1 || b.stride < 1 || b.first < 0 || (b.first + (b.taps - 1) * b.stride + 1) * w > cin)) throw new Error(`winograd: live blocks ${JSON.stringify(b)} of ${w} do not fit ${cin} channels`);
      }
    }
  }

  /** output tile size m */
  get m(): number { return this.t.m; }

  private attrs(): TileAttrs { return { points: this.points, r: this.t.r, pad: this.t.pad }; }

  /** U_q tensors (cached or fresh); `fresh` tells the caller to dispose them */
  transformed(): { U: tf.Tensor2D[]; fresh: boolean } {
    if (this.U) return { U: this.U, fresh: false };
    const [, , cin, cout] = this.filter.shape;
    // straight in the GEMM's packed layout where the products run on it and need all of U_q
    const packed = gemmEnabled() && !this.live && cout % 8 === 0;
    const U = runCustom<tf.Tensor>('MucodecWinoFilter', [this.filter], { ...this.attrs(), packed }) as unknown as tf.Tensor2D[];
    if (packed) for (const u of U) packedLayout.add(u);
    if (this.live) {
      const { w, blocks } = this.live;
      blocks.forEach((b, q) => {
        if (!b) return;
        const u = U[q]!;
        U[q] = tf.tidy(() => tf.stridedSlice(u.reshape([cin / w, w, cout]), [b.first, 0, 0], [b.first + (b.taps - 1) * b.stride + 1, w, cout], [b.stride, 1, 1]).reshape([b.taps * w, cout]));
        u.dispose();
      });
    }
    if (this.t.q * cin * cout * 4 <= this.cacheBytes) { this.U = U.map((u) => tf.keep(u)); return { U: this.U, fresh: false }; }
    return { U, fresh: true };
  }

  /**
   * One band of the conv: output rows [r0, r0 + rows) of the image, from `x` (1, Rb, W, Cin) holding image rows [a, a + Rb).
   * The m×m tiles are aligned to image rows that are multiples of m (the first tile starts at t0 = r0 − r0 % m), so every
   * output pixel is computed by the same tile whatever the banding: results do not depend on band boundaries. `x` must
   * hold every image row the tiles read (`bandRows`); rows and columns outside the image are zeros. `rowOff` = (t0 − pad)
   * − a: the band row of the first tile's first input row. Adds bias and `res` (1, rows, outW, Cout). `U`: transformed
   * filter from `transformed()` (made and freed here when absent). `outW`: output width (default W + 2·pad − (r − 1)).
   */
  apply(x: tf.Tensor4D, rowOff: number, rows: number, skip: number, res?: tf.Tensor4D | null, U?: tf.Tensor2D[], outW?: number): tf.Tensor4D {
    const [n, , W, cin] = x.shape;
    const { m, q } = this.t;
    if (n !== 1) throw new Error('winograd: one image per call');
    if (cin !== this.filter.shape[2]) throw new Error(`winograd: input has ${cin} channels, expected ${this.filter.shape[2]}`);
    const Wo = outW ?? W + 2 * this.t.pad - (this.t.r - 1);
    const th = Math.ceil((rows + skip) / m), tw = Math.ceil(Wo / m);
    const V = runCustom<tf.Tensor>('MucodecWinoInput', [x], { rowOff, th, tw, ...this.attrs() }) as unknown as tf.Tensor2D[];
    const own = U ? null : this.transformed();
    const Us = U ?? own!.U;
    const Ms: tf.Tensor2D[] = [];
    try {
      for (let k = 0; k < q; k++) {
        const b = this.live?.blocks[k];
        Ms.push(b ? productBlocks(V[k]!, Us[k]!, this.live!.w, b) : productWith(V[k]!, Us[k]!));
        V[k]!.dispose();
      }
      return runCustom<tf.Tensor4D>(outputKernel(q), [...Ms, this.bias, res ?? this.bias], {
        rows, W: Wo, th, tw, hasRes: !!res, skip, ...this.attrs(),
      });
    } finally {
      for (const v of V) if (!v.isDisposed) v.dispose();
      for (const x of Ms) x.dispose();
      if (own?.fresh) releaseU(own.U);
    }
  }

  /** image rows [a, b) a band needs for output rows [r0, r1) of an image of H rows, its tile origin t0 and skip */
  bandRows(r0: number, r1: number, H: number): { a: number; b: number; t0: number; skip: number } {
    const { m, r, pad } = this.t;
    const t0 = r0 - (r0 % m);
    const th = Math.ceil((r1 - t0) / m);
    return { a: Math.max(0, t0 - pad), b: Math.min(H, t0 + m * th + (r - 1 - pad)), t0, skip: r0 - t0 };
  }

  /**
   * The whole conv of a device image x (N, H, W, Cin) → (N, H', W', Cout) + bias (+ `res`, same shape as the output),
   * image by image, in bands of tile rows whose transformed input (q · tiles · Cin floats) stays under `bandElements`
   * (default 2^24 = 64 MiB). Bands only decide which GEMM calls a tile goes to, never its values (see apply). x and
   * res are not disposed.
   */
  conv(x: tf.Tensor4D, res?: tf.Tensor4D | null, bandElements = 1 << 24): tf.Tensor4D {
    const [n, H, W, cin] = x.shape;
    const cout = this.filter.shape[3];
    const { m, q, pad, r } = this.t;
    const Ho = H + 2 * pad - (r - 1), Wo = W + 2 * pad - (r - 1);
    if (res && (res.shape[0] !== n || res.shape[1] !== Ho || res.shape[2] !== Wo || res.shape[3] !== cout)) {
      throw new Error(`winograd: residual ${JSON.stringify(res.shape)} does not match the output (${n}, ${Ho}, ${Wo}, ${cout})`);
    }
    if (n > 1) {
      // batch: image by image
      const ys: tf.Tensor4D[] = [];
      try {
        for (let i = 0; i < n; i++) {
          const xi = x.slice([i, 0, 0, 0], [1, H, W, cin]);
          const ri = res ? res.slice([i, 0, 0, 0], [1, Ho, Wo, cout]) : null;
          try { ys.push(this.conv(xi, ri, bandElements)); } finally { xi.dispose(); ri?.dispose(); }
        }
        return tf.concat(ys, 0);
      } finally {
        for (const y of ys) y.dispose();
      }
    }
    const tw = Math.ceil(Wo / m);
    const bandTileRows = Math.max(1, Math.floor(bandElements / (q * tw * cin)));
    const U = this.transformed();
    const parts: tf.Tensor4D[] = [];
    try {
      for (let r0 = 0; r0 < Ho; r0 += m * bandTileRows) {
        const r1 = Math.min(Ho, r0 + m * bandTileRows);
        const g = this.bandRows(r0, r1, H);
        const xs = g.a === 0 && g.b === H ? x : x.slice([0, g.a, 0, 0], [1, g.b - g.a, W, cin]);
        const rs = res && !(r0 === 0 && r1 === Ho) ? res.slice([0, r0, 0, 0], [1, r1 - r0, Wo, cout]) : res;
        try {
          parts.push(this.apply(xs, g.t0 - pad - g.a, r1 - r0, g.skip, rs, U.U, Wo));
        } finally {
          if (xs !== x) xs.dispose();
          if (rs && rs !== res) rs.dispose();
        }
      }
      if (parts.length === 1) return parts[0]!;
      return tf.concat(parts, 1);
    } finally {
      if (parts.length > 1) for (const p of parts) p.dispose();
      if (U.fresh) releaseU(U.U);
    }
  }

  dispose(): void {
    if (this.U) releaseU(this.U);
    this.U = null;
  }
}

/**
 * F(4×4, 3×3) for one 3×3 'same' conv (the VAE's and MuQ's stride-1 convs); `Winograd3x3.bandRows` gives the rows a
 * band needs without an instance.
 */
export class Winograd3x3 extends WinogradConv {
  constructor(filter: tf.Tensor4D, bias: tf.Tensor1D, opts: { points?: number[]; cacheBytes?: number } = {}) {
    if (filter.shape[0] !== 3 || filter.shape[1] !== 3) throw new Error(`winograd: ${filter.shape[0]}×${filter.shape[1]} filter, expected 3×3`);
    super(filter, bias, { ...opts, pad: 1 });
    if (this.m !== 4) throw new Error('Winograd3x3: the points must give F(4, 3) (5 finite points)');
  }

  /** image rows a band needs for output rows [r0, r1): [a, b), with the tile origin t0 and the apply() arguments */
  static bandRows(r0: number, r1: number, H: number): { a: number; b: number; t0: number; skip: number } {
    const t0 = r0 - (r0 % 4);
    const th = Math.ceil((r1 - t0) / 4);
    return { a: Math.max(0, t0 - 1), b: Math.min(H, t0 + 4 * th + 1), t0, skip: r0 - t0 };
  }
}

/**
 * Which space-to-depth phases (p, q) → block 2p + q of W' can reach each coefficient (k, l) of F(m×m, 2×2): tap (a, b)
 * of phase (p, q) holds w[2a + p, 2b + q], zero where an index is 3 (p = 1, a = 1 or q = 1, b = 1), and coefficient
 * (k, l) of U = G W' Gᵀ sums taps with G[k][a]·G[l][b] ≠ 0. With ∞ among the points (G's last row picks tap 1 only)
 * the ∞ row keeps phases p = 0 (blocks 0, 1), the ∞ column q = 0 (blocks 0, 2) and (∞, ∞) block 0: 16·4 + 8·2 + 1 = 81
 * block products per tile instead of 100. null where all four can.
 */
export function stride2LiveBlocks(points: number[]): Array<LiveBlocks | null> {
  const a = points.length + 1;
  const { G } = winogradMatrices(a - 1, 2, points);
  const out: Array<LiveBlocks | null> = [];
  for (let k = 0; k < a; k++) for (let l = 0; l < a; l++) {
    const live: number[] = [];
    for (let p = 0; p < 2; p++) for (let q = 0; q < 2; q++) {
      let reach = false;
      for (let ta = 0; ta < 2; ta++) for (let tb = 0; tb < 2; tb++) {
        if (2 * ta + p <= 2 && 2 * tb + q <= 2 && G[k]![ta] !== 0 && G[l]![tb] !== 0) reach = true;
      }
      if (reach) live.push(2 * p + q);
    }
    const stride = live.length > 1 ? live[1]! - live[0]! : 1;
    const ap = live.every((b, j) => b === live[0]! + j * stride);
    out.push(live.length === 4 || !ap || live.length === 0 ? null : { first: live[0]!, stride, taps: live.length });
  }
  return out;
}

/**
 * 3×3 convs with stride 2 and zero padding 1 (PyTorch Conv2d(k=3, stride=2, padding=1)) sharing one input, as ONE 2×2
 * 'valid' conv of the space-to-depth image:
 *   xp = x zero-padded (1 row/column before, up to 2(Ho + 1) × 2(Wo + 1)),  P[u, v, (2p + q)·C + c] = xp[2u + p, 2v + q, c]
 *   y[i, j] = Σ_{r,s<3} w[r, s]·xp[2i + r, 2j + s] = Σ_{a,b<2} W'[a, b]·P[i + a, j + b],  W'[a, b, (p, q)] = w[2a + p, 2b + q]
 * (zero where 2a + p or 2b + q is 3), run as Winograd F(4×4, 2×2) on the 4·Cin channels (DEFAULT_POINTS_R2): 25 GEMMs
 * per 16 outputs, 9 of them over only the phases the zero taps leave (stride2LiveBlocks): 5.06·Cin multiply-adds per
 * output instead of 9·Cin, with the SIMD transforms. The
 * space-to-depth copy is made per band. Several convs (Res2dModule's conv1 and shortcut conv3) share the input
 * transform: their W' sit side by side in the output channels, and `apply` splits the result.
 */
export class Winograd3x3Stride2 {
  readonly wino: WinogradConv;
  readonly filter: tf.Tensor4D;
  readonly bias: tf.Tensor1D;
  readonly cout: number;

  /** `filters`: HWIO (3, 3, Cin, couts[k]); `biases[k]`: (couts[k]) or null. The transformed filter is kept (cacheBytes). */
  constructor(filters: Float32Array[], readonly cin: number, readonly couts: number[], biases: Array<Float32Array | null>,
    readonly opts: { bandElements?: number; cacheBytes?: number } = {}) {
    if (filters.length !== couts.length || biases.length !== couts.length) throw new Error('winograd s2: filters, couts and biases must have the same length');
    this.cout = couts.reduce((a, b) => a + b, 0);
    const C4 = 4 * cin, co = this.cout;
    const w = new Float32Array(2 * 2 * C4 * co);
    const b = new Float32Array(co);
    let c0 = 0;
    filters.forEach((g, k) => {
      const ck = couts[k]!;
      if (g.length !== 9 * cin * ck) throw new Error(`winograd s2: filter ${k} has ${g.length} values, expected 3·3·${cin}·${ck}`);
      for (let a = 0; a < 2; a++) for (let bb = 0; bb < 2; bb++) for (let p = 0; p < 2; p++) for (let q = 0; q < 2; q++) {
        const r = 2 * a + p, s = 2 * bb + q;
        if (r > 2 || s > 2) continue;
        for (let c = 0; c < cin; c++) {
          const src = ((r * 3 + s) * cin + c) * ck;
          const dst = ((a * 2 + bb) * C4 + (2 * p + q) * cin + c) * co + c0;
          for (let o = 0; o < ck; o++) w[dst + o] = g[src + o]!;
        }
      }
      if (biases[k]) b.set(biases[k]!, c0);
      c0 += ck;
    });
    this.filter = tf.tensor4d(w, [2, 2, C4, co]);
    this.bias = tf.tensor1d(b);
    this.wino = new WinogradConv(this.filter, this.bias, { pad: 0, cacheBytes: opts.cacheBytes ?? Infinity, live: { w: cin, blocks: stride2LiveBlocks(DEFAULT_POINTS_R2) } });
  }

  /** x (N, H, W, Cin) → one (N, ⌈H/2⌉, ⌈W/2⌉, couts[k]) output per conv, bias added (no activation) */
  apply(x: tf.Tensor4D): tf.Tensor4D[] {
    const [n, H, W, C] = x.shape;
    if (C !== this.cin) throw new Error(`winograd s2: input has ${C} channels, expected ${this.cin}`);
    if (n > 1) {
      const per: tf.Tensor4D[][] = [];
      try {
        for (let i = 0; i < n; i++) {
          const xi = x.slice([i, 0, 0, 0], [1, H, W, C]);
          try { per.push(this.apply(xi)); } finally { xi.dispose(); }
        }
        return this.couts.map((_, k) => tf.concat(per.map((y) => y[k]!), 0));
      } finally {
        for (const y of per) for (const t of y) t.dispose();
      }
    }
    const Ho = Math.ceil(H / 2), Wo = Math.ceil(W / 2);
    const m = this.wino.m;
    const tw = Math.ceil(Wo / m);
    const bandTileRows = Math.max(1, Math.floor((this.opts.bandElements ?? 1 << 25) / (25 * tw * 4 * C)));
    const U = this.wino.transformed();
    const parts: tf.Tensor4D[] = [];
    let y: tf.Tensor4D;
    try {
      for (let r0 = 0; r0 < Ho; r0 += m * bandTileRows) {
        const r1 = Math.min(Ho, r0 + m * bandTileRows);
        // phase rows [r0, r1] = xp rows [2·r0, 2·r1 + 2) = x rows [2·r0 − 1, 2·r1 + 1)
        const a = Math.max(0, 2 * r0 - 1), bEnd = Math.min(H, 2 * r1 + 1);
        const top = 2 * r0 - 1 < 0 ? 1 : 0;
        const rowsP = r1 - r0 + 1;
        const P = tf.tidy(() => {
          const xs = x.slice([0, a, 0, 0], [1, bEnd - a, W, C]);
          const xp = tf.pad(xs, [[0, 0], [top, 2 * rowsP - top - (bEnd - a)], [1, 2 * (Wo + 1) - W - 1], [0, 0]]);
          return tf.transpose(xp.reshape([rowsP, 2, Wo + 1, 2, C]), [0, 2, 1, 3, 4]).reshape([1, rowsP, Wo + 1, 4 * C]) as tf.Tensor4D;
        });
        try {
          parts.push(this.wino.apply(P, 0, r1 - r0, 0, null, U.U, Wo));
        } finally {
          P.dispose();
        }
      }
      y = parts.length === 1 ? parts[0]! : tf.concat(parts, 1);
    } finally {
      if (parts.length > 1) for (const p of parts) p.dispose();
      if (U.fresh) releaseU(U.U);
    }
    if (this.couts.length === 1) return [y];
    const out = tf.split(y, this.couts, 3) as tf.Tensor4D[];
    y.dispose();
    return out;
  }

  dispose(): void {
    this.wino.dispose();
    this.filter.dispose();
    this.bias.dispose();
  }
}
