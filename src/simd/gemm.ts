/**
 * A packed GEMM for constant right-hand operands (the linears of the DiT and of the conformer): C = A · B + bias,
 * A (M, K) row-major on the tfjs-wasm heap, B packed once at load into panels of 8 columns.
 *
 * Micro-kernel: MR × 8 outputs (MR = 6 rows × 2 f32x4 accumulators = 12 v128 registers, + 2 B vectors + 1 A splat),
 * per k one 8-wide B row and MR broadcasts of A, accumulated with f32x4.relaxed_madd (FMA) where relaxed SIMD exists
 * (./relaxed.ts), else f32x4.mul + f32x4.add (SIMD128). Blocking: K in chunks of KC (the B sliver KC × 8 stays in
 * L1 over a block of MC rows of A, which stays in L2); C is initialised from the bias on the first chunk and
 * accumulated in place afterwards. Every C element sums its products in k order 0…K−1 whatever the row block,
 * ragged edge or thread: results do not depend on the thread count.
 *
 * Packed layout (one float32 tensor on the heap): [bias padded to 8·P | panel 0 (K × 8) | … | panel P−1], P = ⌈N / 8⌉,
 * the columns past N zero. Ragged N: the last panel's stores/loads touch only its nv = N − 8(P − 1) columns.
 * Threads: the row range [0, M) is split between the calling thread and the kernel pool (src/workers/kernel_pool.ts)
 * when the heap is shared.
 */
import * as tf from '@tensorflow/tfjs-core';
import { Fn, I32, S, V128 } from './asm.js';
import { defineKernel, heapMemory, offsetOf, runCustom, simdAvailable, type WasmBackendLike } from './heap.js';
import { relaxedSimdSupported, useFma } from './relaxed.js';
import { runSplit } from '../workers/kernel_pool.js';

export const MR = 6;
export const NR = 8;
const KC = 256;
const MC = 96;

/** A weight packed for gemm(): the heap tensor and its logical shape (K in, N out) */
export interface PackedB { packed: tf.Tensor1D; k: number; n: number }

/** Pack B (K, N) row-major — or Wᵀ of a torch Linear weight W (N, K) with `fromOutIn` — and an optional bias (N). */
export function packB(b: Float32Array, k: number, n: number, bias?: Float32Array | null, fromOutIn = false): PackedB {
  return uploadPacked(packHost(b, k, n, bias, fromOutIn), k, n);
}

/** a packHost() array as the heap tensor gemm() takes */
export function uploadPacked(host: Float32Array, k: number, n: number): PackedB {
  const P = Math.ceil(n / NR);
  if (host.length !== NR * P + P * k * NR) throw new Error(`uploadPacked: ${host.length} values for a packed (${k}, ${n})`);
  return { packed: tf.tensor1d(host), k, n };
}

/** packB's layout on the host (to keep and upload again later) */
export function packHost(b: Float32Array, k: number, n: number, bias?: Float32Array | null, fromOutIn = false): Float32Array {
  if (b.length !== k * n) throw new Error(`packB: ${b.length} values for (${k}, ${n})`);
  if (bias && bias.length !== n) throw new Error(`packB: bias of ${bias.length} for ${n} columns`);
  const P = Math.ceil(n / NR);
  const out = new Float32Array(NR * P + P * k * NR);
  if (bias) out.set(bias, 0);
  const base = NR * P;
  for (let p = 0; p < P; p++) {
    const o = base + p * k * NR;
    const nv = Math.min(NR, n - p * NR);
    for (let kk = 0; kk < k; kk++) {
      const dst = o + kk * NR;
      if (fromOutIn) for (let j = 0; j < nv; j++) out[dst + j] = b[(p * NR + j) * k + kk]!;
      else for (let j = 0, src = kk * n + p * NR; j < nv; j++) out[dst + j] = b[src + j]!;
    }
  }
  return out;
}

/**
 * Pack a (K, N) tensor that changes per call (attention's Kᵀ and V, the Winograd U_q made per call): on the wasm
 * backend by a heap-to-heap kernel (MucodecPackB, panels over the kernel pool), elsewhere on the host. No bias.
 */
export function packTensor(b: tf.Tensor2D): PackedB {
  const [k, n] = b.shape;
  if (simdAvailable() && b.dtype === 'float32') return { packed: runCustom<tf.Tensor1D>('MucodecPackB', [b], { k, n }), k, n };
  return packB(b.dataSync() as Float32Array, k, n);
}

/** run(b, out, k, p0, p1): panels [p0, p1) of B (k rows of n) into packB's layout after the 8·P bias floats */
function packModule(n: number): Fn[] {
  const P = Math.ceil(n / NR), nvLast = n - NR * (P - 1);
  const f = new Fn('run', [I32, I32, I32, I32, I32]);
  const [pb, pout, pk, p0, p1] = [0, 1, 2, 3, 4];
  const p = f.local(I32), src = f.local(I32), dst = f.local(I32), end = f.local(I32);
  f.get(p0).set(p);
  f.loopUntil(() => f.get(p).get(p1).geS(), () => {
    f.get(pb).get(p).i32(4 * NR).mul().add().set(src);
    f.get(pout).i32(4 * NR * P).add().get(p).get(pk).mul().i32(4 * NR).mul().add().set(dst);
    f.get(dst).get(pk).i32(4 * NR).mul().add().set(end);
    const full = (): void => {
      f.loopUntil(() => f.get(dst).get(end).geU(), () => {
        f.get(dst).get(src).vload(0).vstore(0);
        f.get(dst).get(src).vload(16).vstore(16);
        f.get(src).i32(4 * n).add().set(src);
        f.get(dst).i32(4 * NR).add().set(dst);
      });
    };
    if (nvLast === NR) full();
    else {
      f.get(p).i32(P - 1).ltS().if_();
      full();
      f.else_();
      f.loopUntil(() => f.get(dst).get(end).geU(), () => {
        f.get(dst).vconstF32(0, 0, 0, 0).vstore(0);
        f.get(dst).vconstF32(0, 0, 0, 0).vstore(16);
        for (let j = 0; j < nvLast; j++) f.get(dst).get(src).f32load(4 * j).f32store(4 * j);
        f.get(src).i32(4 * n).add().set(src);
        f.get(dst).i32(4 * NR).add().set(dst);
      });
      f.end();
    }
    f.get(p).i32(1).add().set(p);
  });
  return [f];
}

defineKernel('MucodecPackB', ['b'], (be, [b], attrs) => {
  const { k, n } = attrs as { k: number; n: number };
  const P = Math.ceil(n / NR);
  const out = be.makeOutput([NR * P + P * k * NR], 'float32');
  const o = offsetOf(be, out);
  new Float32Array(heapMemory(be)!.buffer, o, NR * P).fill(0); // no bias
  // panels over the threads only when there is enough to copy
  runSplit(be, `packB:${n}`, () => packModule(n), [offsetOf(be, b!), o, k], P, k * n >= 1 << 16 ? 4 : Infinity);
  return out;
});

// micro-kernel params
const A = 0, B = 1, C = 2, KCP = 3, INIT = 4, BIAS = 5;

/**
 * the MR' × nv micro-kernel (MR' ≤ MR rows, nv ≤ 8 valid columns) for leading dimensions lda (A) and n (C):
 * f(a, b, c, kc, init, bias) sums kc steps of A row-major (4 bytes a step) times B panel rows (32 bytes a step)
 */
export function microKernel(mr: number, nv: number, lda0: number, n: number, fma: boolean, tag: string): Fn {
  const f = new Fn(`${tag}${mr}_${nv}`, [I32, I32, I32, I32, I32, I32]);
  const acc = Array.from({ length: mr }, () => [f.local(V128), f.local(V128)] as const);
  const b0 = f.local(V128), b1 = f.local(V128), av = f.local(V128), t = f.local(V128);
  const ap = f.local(I32), bp = f.local(I32), aEnd = f.local(I32);
  const two = nv > 4;
  const lda = 4 * lda0, ldc = 4 * n;
  // init: bias, or the partial sums already in C
  f.get(INIT).if_();
  for (let r = 0; r < mr; r++) {
    f.get(BIAS).vload(0).set(acc[r]![0]);
    if (two) f.get(BIAS).vload(16).set(acc[r]![1]);
  }
  f.else_();
  for (let r = 0; r < mr; r++) {
    for (let h = 0; h < (two ? 2 : 1); h++) {
      const lanes = Math.min(4, nv - 4 * h);
      if (lanes === 4) { f.get(C).vload(r * ldc + 16 * h).set(acc[r]![h]); continue; }
      f.vconstF32(0, 0, 0, 0).set(t);
      for (let j = 0; j < lanes; j++) f.get(t).get(C).f32load(r * ldc + 16 * h + 4 * j).lane(S.f32x4_replace_lane, j).set(t);
      f.get(t).set(acc[r]![h]);
    }
  }
  f.end();
  f.get(A).set(ap).get(B).set(bp);
  f.get(A).get(KCP).i32(4).mul().add().set(aEnd);
  f.loopUntil(() => f.get(ap).get(aEnd).geU(), () => {
    f.get(bp).vload(0).set(b0);
    if (two) f.get(bp).vload(16).set(b1);
    for (let r = 0; r < mr; r++) {
      f.get(ap).vsplatLoad(r * lda).set(av);
      for (let h = 0; h < (two ? 2 : 1); h++) {
        const bv = h ? b1 : b0;
        if (fma) f.get(av).get(bv).get(acc[r]![h]).v(S.f32x4_relaxed_madd).set(acc[r]![h]);
        else f.get(av).get(bv).v(S.f32x4_mul).get(acc[r]![h]).v(S.f32x4_add).set(acc[r]![h]);
      }
    }
    f.get(ap).i32(4).add().set(ap);
    f.get(bp).i32(4 * NR).add().set(bp);
  });
  for (let r = 0; r < mr; r++) {
    for (let h = 0; h < (two ? 2 : 1); h++) {
      const lanes = Math.min(4, nv - 4 * h);
      if (lanes === 4) { f.get(C).get(acc[r]![h]).vstore(r * ldc + 16 * h); continue; }
      for (let j = 0; j < lanes; j++) f.get(C).get(acc[r]![h]).lane(S.f32x4_extract_lane, j).f32store(r * ldc + 16 * h + 4 * j);
    }
  }
  return f;
}

/**
 * How the rows of A are laid out. The plain GEMM: A (M, K) row-major (lda = cin = K, one tap). A stride-1
 * convolution over a padded NWC input X (rows = time steps, cin channels), taps j = 0…T−1 at dilation d: the K = T·cin
 * inner dimension is (tap, channel) as the tfjs filter (T, cin, cout) reshaped, and the A row of output t for tap j is
 * X row t + j·d, so a K chunk never crosses a tap and starts at X + (t·cin + j·d·cin + i0) — the same micro-kernel.
 * A 2-D kh × kw conv over a padded NHWC image (Hp, Wp) is the same over the image flattened to rows y·Wp + x: tap
 * (ty, tx) = (j / kw, j mod kw) reads X row t + tx·dx + ty·dy with dx = 1, dy = Wp (the tfjs filter (kh, kw, cin, cout)
 * reshaped is (tap, channel) again); outputs at x ≥ Wout wrap into the next row and are dropped by the caller.
 */
interface Geometry {
  k: number; n: number; fma: boolean; lda: number; cin: number;
  /** taps per filter row, and the X-row step between neighbouring taps in a row (dx) and between filter rows (dy) */
  kw: number; dx: number; dy: number;
  rowsOuter: boolean;
}

/**
 * run(a, packed, c, m0, m1): C rows [m0, m1). Function indices: mk(mr, 8) = mr − 1, mk(mr, nv) = MR + mr − 1 (ragged
 * last panel), run = 2·MR. Loop order: K chunks outside the row blocks (the plain GEMM: a B chunk stays in L2 over all
 * rows), or with `rowsOuter` the row blocks outside (the convolutions: a C block stays in cache over every tap, where
 * B is small).
 */
function gemmModule(g: Geometry): Fn[] {
  const { k, n, fma, lda, cin, kw, dx, dy } = g;
  const P = Math.ceil(n / NR);
  const nvLast = n - NR * (P - 1);
  const fns: Fn[] = [];
  for (let mr = 1; mr <= MR; mr++) fns.push(microKernel(mr, NR, lda, n, fma, 'mk'));
  for (let mr = 1; mr <= MR; mr++) fns.push(microKernel(mr, nvLast, lda, n, fma, 'edge'));
  const f = new Fn('run', [I32, I32, I32, I32, I32]);
  const [a, bk, c, m0, m1] = [0, 1, 2, 3, 4];
  const pc = f.local(I32), kc = f.local(I32), init = f.local(I32), ic = f.local(I32), ie = f.local(I32);
  const p = f.local(I32), ir = f.local(I32), bp = f.local(I32), rem = f.local(I32), pEnd = f.local(I32);
  const tap = f.local(I32), i0 = f.local(I32), aoff = f.local(I32), ty = f.local(I32);
  const panelBytes = 4 * k * NR;
  const biasBytes = 4 * NR * P;
  /** panels [p, pEnd) with micro-kernels of column width nv (index base 0: full, MR: ragged) */
  const panels = (base: number): void => {
    f.loopUntil(() => f.get(p).get(pEnd).geS(), () => {
      // bp = packed + bias + p·panel + pc·8 floats
      f.get(bk).i32(biasBytes).add().get(p).i32(panelBytes).mul().add().get(pc).i32(4 * NR).mul().add().set(bp);
      f.get(ic).set(ir);
      const call = (mr: number): void => {
        f.get(a).get(ir).i32(lda).mul().get(aoff).add().i32(4).mul().add(); // A + (ir·lda + aoff)·4
        f.get(bp);
        f.get(c).get(ir).i32(n).mul().get(p).i32(NR).mul().add().i32(4).mul().add(); // C + (ir·n + 8p)·4
        f.get(kc).get(init);
        f.get(bk).get(p).i32(4 * NR).mul().add(); // bias of the panel
        f.call(base + mr - 1);
      };
      f.loopUntil(() => f.get(ir).i32(MR).add().get(ie).gtS(), () => { call(MR); f.get(ir).i32(MR).add().set(ir); });
      f.get(ie).get(ir).sub().set(rem);
      for (let mr = 1; mr < MR; mr++) { f.get(rem).i32(mr).eq().if_(); call(mr); f.end(); }
      f.get(p).i32(1).add().set(p);
    });
  };
  /**
   * the chunk at pc: tap = pc / cin, i0 = pc − tap·cin, kc = min(KC, cin − i0), (ty, tx) = (tap / kw, tap mod kw),
   * aoff = (tx·dx + ty·dy)·cin + i0
   */
  const chunkHead = (): void => {
    f.get(pc).i32(cin).divS().set(tap);
    f.get(pc).get(tap).i32(cin).mul().sub().set(i0);
    f.i32(cin).get(i0).sub().set(kc);
    f.get(kc).i32(KC).gtS().if_().i32(KC).set(kc).end();
    f.get(tap).i32(kw).divS().set(ty);
    f.get(tap).get(ty).i32(kw).mul().sub().i32(dx * cin).mul(); // tx·dx·cin
    f.get(ty).i32(dy * cin).mul().add().get(i0).add().set(aoff);
    f.get(pc).eqz().set(init);
  };
  /** rows [ic, min(ic + MC, m1)) × every panel, for the current chunk */
  const rowBlock = (): void => {
    f.get(ic).i32(MC).add().set(ie);
    f.get(ie).get(m1).gtS().if_().get(m1).set(ie).end();
    f.i32(0).set(p).i32(nvLast === NR ? P : P - 1).set(pEnd);
    panels(0);
    if (nvLast !== NR) { f.i32(P - 1).set(p).i32(P).set(pEnd); panels(MR); }
  };
  const chunks = (body: () => void): void => {
    f.i32(0).set(pc);
    f.loopUntil(() => f.get(pc).i32(k).geS(), () => { chunkHead(); body(); f.get(pc).get(kc).add().set(pc); });
  };
  const rows = (body: () => void): void => {
    f.get(m0).set(ic);
    f.loopUntil(() => f.get(ic).get(m1).geS(), () => { body(); f.get(ic).i32(MC).add().set(ic); });
  };
  if (g.rowsOuter) rows(() => chunks(rowBlock));
  else chunks(() => rows(rowBlock));
  fns.push(f);
  return fns;
}

const moduleKey = (g: Geometry): string =>
  `gemm:${g.k}:${g.n}:${g.fma ? 'fma' : 'simd128'}:${g.lda}:${g.cin}:${g.kw}:${g.dx}:${g.dy}:${g.rowsOuter ? 'r' : 'k'}`;

/** C rows [0, rows) of the module for g (split over the kernel pool in whole micro-tiles when the heap is shared) */
function runRows(b: WasmBackendLike, g: Geometry, args: number[], rows: number): void {
  runSplit(b, moduleKey(g), () => gemmModule(g), args, rows, 2 * MR * 4, MR);
}

// blocks (gemmBlocks): K = taps·w columns of A, block j at column col0 + j·stride·w (as conv taps: cin = w, dy = stride)
defineKernel('MucodecGemm', ['a', 'packed'], (b, [a, packed], attrs) => {
  const { k, n, fma, blocks } = attrs as { k: number; n: number; fma: boolean; blocks?: { col0: number; w: number; stride: number } };
  const m = a!.shape[0]!;
  const out = b.makeOutput([m, n], 'float32');
  if (m === 0) return out;
  const lda = a!.shape[1]!;
  const g: Geometry = blocks
    ? { k, n, fma, lda, cin: blocks.w, kw: 1, dx: 0, dy: blocks.stride, rowsOuter: false }
    : { k, n, fma, lda: k, cin: k, kw: 1, dx: 0, dy: 0, rowsOuter: false };
  runRows(b, g, [offsetOf(b, a!) + 4 * (blocks?.col0 ?? 0), offsetOf(b, packed!), offsetOf(b, out)], m);
  return out;
});

// x: the padded input flattened to (rows of X, cin); taps = kh·kw; rows: the output rows computed; outRows ≥ rows, the
// rest zeroed
defineKernel('MucodecConvGemm', ['x', 'packed'], (b, [x, packed], attrs) => {
  const { taps, kw, dx, dy, cin, n, rows, outRows, fma } = attrs as
    { taps: number; kw: number; dx: number; dy: number; cin: number; n: number; rows: number; outRows: number; fma: boolean };
  const out = b.makeOutput([outRows, n], 'float32');
  const oc = offsetOf(b, out);
  if (rows > 0) runRows(b, { k: taps * cin, n, fma, lda: cin, cin, kw, dx, dy, rowsOuter: true }, [offsetOf(b, x!), offsetOf(b, packed!), oc], rows);
  if (outRows > rows) new Float32Array(heapMemory(b)!.buffer, oc + 4 * rows * n, (outRows - rows) * n).fill(0);
  return out;
});

let gemmMode: 'auto' | 'off' = process.env.MUCODEC_GEMM === '0' || process.env.MUCODEC_GEMM === 'off' ? 'off' : 'auto';

/** 'off' (or MUCODEC_GEMM=0): the linears use tfjs matMul (XNNPACK); 'auto': this GEMM on the wasm backend */
export function setGemmMode(m: 'auto' | 'off'): void { gemmMode = m; }

/**
 * Whether the model's linears use this GEMM: on the wasm backend unless switched off. bench/gemm.ts measured it
 * faster than XNNPACK's matMul on the DiT and conformer shapes on both paths (FMA and SIMD128), so it is the default.
 */
export function gemmEnabled(): boolean {
  return gemmMode === 'auto' && simdAvailable();
}

/** what every entry point here needs: the wasm backend, a float32 operand, relaxed SIMD when FMA is asked for */
function checkOperand(what: string, name: string, x: tf.Tensor, fma: boolean): void {
  if (!simdAvailable()) throw new Error(`${what}: needs the wasm backend`);
  if (x.dtype !== 'float32') throw new Error(`${what}: ${name} must be float32 (got ${x.dtype})`);
  if (fma && !relaxedSimdSupported()) throw new Error(`${what}: FMA asked for, but this engine has no relaxed SIMD`);
}

/** C = A · B + bias with a packed B (A: (M, K) float32 on the wasm backend). `fma`: default useFma(). */
export function gemm(a: tf.Tensor2D, b: PackedB, fma = useFma()): tf.Tensor2D {
  checkOperand('gemm', 'A', a, fma);
  if (a.shape[1] !== b.k) throw new Error(`gemm: A has ${a.shape[1]} columns, B ${b.k} rows`);
  return runCustom<tf.Tensor2D>('MucodecGemm', [a, b.packed], { k: b.k, n: b.n, fma });
}

/**
 * C = A' · B + bias where A' (M, taps·w) is `taps` column blocks of A (M, lda): block j = columns [col0 + j·stride·w,
 * + w) — the products of a Winograd coefficient whose U rows are zero outside those blocks (Winograd3x3Stride2). The
 * skipped terms are exact zeros, so C equals the full product's bytes.
 */
export function gemmBlocks(a: tf.Tensor2D, b: PackedB, col0: number, w: number, stride: number, fma = useFma()): tf.Tensor2D {
  checkOperand('gemmBlocks', 'A', a, fma);
  const taps = b.k / w, lda = a.shape[1];
  if (!Number.isInteger(taps) || taps < 1 || stride < 1 || col0 < 0 || col0 + ((taps - 1) * stride + 1) * w > lda) {
    throw new Error(`gemmBlocks: ${b.k} rows of B as blocks of ${w} from column ${col0} (stride ${stride}) do not fit A's ${lda} columns`);
  }
  return runCustom<tf.Tensor2D>('MucodecGemm', [a, b.packed], { k: b.k, n: b.n, fma, blocks: { col0, w, stride } });
}

/**
 * A stride-1 conv1d (zero padding padL/padR, dilation d) of NWC x (n, len, cin) with a filter packed by
 * packB(filter (taps, cin, cout) as (taps·cin, cout), bias): the GEMM above over the padded input, one tap per K
 * chunk (see Geometry). Each output sums tap-major, channels within, whatever the thread count.
 */
export function conv1dGemm(x: tf.Tensor3D, w: PackedB, taps: number, d: number, padL: number, padR: number, fma = useFma()): tf.Tensor3D {
  const [n, len, cin] = x.shape;
  checkOperand('conv1dGemm', 'x', x, fma);
  if (w.k !== taps * cin) throw new Error(`conv1dGemm: filter of ${w.k} rows for ${taps} taps × ${cin} channels`);
  const lp = len + padL + padR, span = (taps - 1) * d, L = lp - span, cout = w.n;
  if (L <= 0) throw new Error(`conv1dGemm: input of ${len} samples is shorter than the kernel span`);
  return tf.tidy(() => {
    const xp = padL || padR ? tf.pad(x, [[0, 0], [padL, padR], [0, 0]]) : x;
    const rows = n * lp - span;
    const outRows = n === 1 ? rows : n * lp;
    const y = runCustom<tf.Tensor2D>('MucodecConvGemm', [xp.reshape([n * lp, cin]), w.packed], { taps, kw: taps, dx: d, dy: 0, cin, n: cout, rows, outRows, fma });
    if (n === 1) return y.reshape([1, L, cout]) as tf.Tensor3D;
    return tf.slice(y.reshape([n, lp, cout]) as tf.Tensor3D, [0, 0, 0], [n, L, cout]);
  });
}

/**
 * A stride-1 'valid' kh × kw conv2d of an already padded NHWC image x (1, Hp, Wp, cin) with a filter packed by
 * packB(filter (kh, kw, cin, cout) as (kh·kw·cin, cout), bias) → (1, Hp − kh + 1, Wp − kw + 1, cout): the conv GEMM
 * over the image flattened to rows (see Geometry), the wrapped columns sliced off. Each output sums (ty, tx, channel)
 * in that order whatever the thread count.
 */
export function conv2dValidGemm(x: tf.Tensor4D, w: PackedB, kh: number, kw: number, fma = useFma()): tf.Tensor4D {
  const [n, hp, wp, cin] = x.shape;
  checkOperand('conv2dValidGemm', 'x', x, fma);
  if (n !== 1) throw new Error(`conv2dValidGemm: batch of ${n} (one image at a time)`);
  if (w.k !== kh * kw * cin) throw new Error(`conv2dValidGemm: filter of ${w.k} rows for ${kh}×${kw} taps × ${cin} channels`);
  const ho = hp - kh + 1, wo = wp - kw + 1, cout = w.n;
  if (ho <= 0 || wo <= 0) throw new Error(`conv2dValidGemm: image ${hp}×${wp} is smaller than the ${kh}×${kw} kernel`);
  return tf.tidy(() => {
    const rows = (ho - 1) * wp + wo;
    const y = runCustom<tf.Tensor2D>('MucodecConvGemm', [x.reshape([hp * wp, cin]), w.packed],
      { taps: kh * kw, kw, dx: 1, dy: wp, cin, n: cout, rows, outRows: ho * wp, fma });
    const y4 = y.reshape([1, ho, wp, cout]) as tf.Tensor4D;
    return wo === wp ? y4 : tf.slice(y4, [0, 0, 0, 0], [1, ho, wo, cout]);
  });
}
