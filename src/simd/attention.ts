/**
 * Fused multi-head attention on the tfjs-wasm heap: softmax(q kᵀ · scale) v for every head without a (Tq, Tk) score
 * tensor. Work items are (head, block of MB query rows); for each, the MB × Tk scores go to a per-thread scratch (it
 * stays in L2), are turned into exp(s − max) by a SIMD exp in place, multiplied by V with the packed GEMM's
 * micro-kernel (./gemm.ts) straight into the head's columns of the output, and the rows are divided by their sums.
 * Same math as the plain form (layers/attention.ts: scores scaled, max subtracted, exp, normalised, times v); the
 * normalisation moves after the product (Σ e·v / Σ e instead of Σ (e / Σ e)·v), a rounding-level difference.
 *
 * Layouts (made by two tf.transpose calls, Tk padded to a multiple of 8 with zero keys whose scores are masked):
 * K as (H, Tk/8, dh, 8) — Kᵀ of each head in panels of 8 keys, the B operand of q·kᵀ; V as (H, dh/8, Tk, 8) — each
 * head's V in panels of 8 columns, the B operand of p·v. dh must be a multiple of 8 (the DiT's 72, the conformer's 64).
 * Each output element sums in key order whatever the split, so the result does not depend on the thread count.
 */
import * as tf from '@tensorflow/tfjs-core';
import { Fn, I32, S, V128 } from './asm.js';
import { defineKernel, heapScratch, offsetOf, runCustom, simdAvailable } from './heap.js';
import { MR, microKernel } from './gemm.js';
import { relaxedSimdSupported, useFma } from './relaxed.js';
import { runSplit, splitParts } from '../workers/kernel_pool.js';

/** query rows per work item (a multiple of MR) */
const MB = 24;
/** keys per chunk of the p·v product */
const KC = 256;
/** written over the scores of padding keys: exp of it minus any real maximum underflows to the clamp below */
const MASKED = -3e38;

export type ScoreScale = { mode: 'mul'; by: number } | { mode: 'div'; by: number };

interface Dims { heads: number; dh: number; tq: number; tk: number; tkp: number; scaleMode: ScoreScale['mode']; scaleBy: number; fma: boolean }

/**
 * exp(x) of v128 `x` (lanes ≤ 0 here) into `x`: Cephes expf — n = round(x·log₂e), r = x − n·ln2 in two parts, a
 * degree-6 polynomial, times 2ⁿ. x is clamped at −87 so 2ⁿ stays a normal float. Rounding by the 1.5·2²³ shifter:
 * j = x·log₂e + 1.5·2²³ holds n in its low mantissa bits (bits(j) = 0x4B400000 + n), so (bits(j) + 127) << 23 is 2ⁿ
 * (the shifted-out 0x4B4… is 0 mod 2³²). pmax, not max: one instruction (no NaN here). `fma`: the polynomial's
 * steps by relaxed_madd.
 */
function expInPlace(f: Fn, x: number, j: number, n: number, r: number, fma: boolean): void {
  const splat = (v: number): void => { f.f32(v).v(S.f32x4_splat); };
  /** top of stack · b + c, where `b()` and `c()` push their operands */
  const madd = (b: () => void, c: () => void): void => {
    if (fma) { b(); c(); f.v(S.f32x4_relaxed_madd); } else { b(); f.v(S.f32x4_mul); c(); f.v(S.f32x4_add); }
  };
  const SHIFTER = 12582912; // 1.5·2²³
  f.get(x); splat(-87); f.v(S.f32x4_pmax).set(x);
  f.get(x); madd(() => splat(Math.LOG2E), () => splat(SHIFTER)); f.tee(j);
  splat(SHIFTER); f.v(S.f32x4_sub).set(n);
  f.get(x).get(n); splat(0.693359375); f.v(S.f32x4_mul).v(S.f32x4_sub);
  f.get(n); splat(-2.12194440e-4); f.v(S.f32x4_mul).v(S.f32x4_sub).set(r);
  splat(1.9875691500e-4);
  for (const c of [1.3981999507e-3, 8.3334519073e-3, 4.1665795894e-2, 1.6666665459e-1, 5.0000001201e-1]) {
    madd(() => f.get(r), () => splat(c));
  }
  // y = p·r² + r + 1
  f.get(r).v(S.f32x4_mul);
  madd(() => f.get(r), () => f.get(r));
  splat(1); f.v(S.f32x4_add);
  // × 2ⁿ
  f.get(j).i32(127).v(S.i32x4_splat).v(S.i32x4_add).i32(23).v(S.i32x4_shl);
  f.v(S.f32x4_mul).set(x);
}

/** the horizontal reduction of v128 `v` by `op` (max or add), splatted to every lane */
function reduce(f: Fn, v: number, op: number): void {
  f.get(v).get(v).get(v).shuffle32(2, 3, 0, 1).v(op).set(v);
  f.get(v).get(v).get(v).shuffle32(1, 0, 3, 2).v(op).set(v);
}

/**
 * run(q, kp, vp, out, scratch, m0, m1, part): items [m0, m1), item = head · blocks + block. Functions: S kernels
 * (lda = D, ldc = tkp) at 0…MR−1, O kernels (lda = tkp, ldc = D) at MR…2MR−1, run last.
 * Scratch slot `part`: MB × tkp scores, MB sums, 8 zero floats (the micro-kernels' "bias" for a first chunk).
 */
function attentionModule(d: Dims): Fn[] {
  const { heads, dh, tq, tk, tkp, scaleMode, scaleBy, fma } = d;
  const D = heads * dh, blocks = Math.ceil(tq / MB);
  const fns: Fn[] = [];
  for (let mr = 1; mr <= MR; mr++) fns.push(microKernel(mr, 8, D, tkp, fma, 'sk'));
  for (let mr = 1; mr <= MR; mr++) fns.push(microKernel(mr, 8, tkp, D, fma, 'ok'));
  const f = new Fn('run', [I32, I32, I32, I32, I32, I32, I32, I32]);
  const [q, kp, vp, out, scratch, m0, m1, part] = [0, 1, 2, 3, 4, 5, 6, 7];
  const it = f.local(I32), h = f.local(I32), r0 = f.local(I32), rows = f.local(I32), sp = f.local(I32);
  const sums = f.local(I32), zero = f.local(I32), p = f.local(I32), rt = f.local(I32), rem = f.local(I32);
  const c0 = f.local(I32), kc = f.local(I32), ptr = f.local(I32), end = f.local(I32), r = f.local(I32);
  const vx = f.local(V128), vm = f.local(V128), vs = f.local(V128), t1 = f.local(V128), t2 = f.local(V128), t3 = f.local(V128);
  const slotBytes = 4 * (MB * tkp + MB + 8);
  const headK = 4 * tkp * dh, headV = 4 * tkp * dh;
  /** row tiles of the item: call kernel base + mr − 1 with (a, b, c) pushed by `args(rt)`, then kc, init, zero */
  const tiles = (base: number, args: () => void, kcArg: () => void, init: () => void): void => {
    const call = (mr: number): void => { args(); kcArg(); init(); f.get(zero); f.call(base + mr - 1); };
    f.i32(0).set(rt);
    f.loopUntil(() => f.get(rt).i32(MR).add().get(rows).gtS(), () => { call(MR); f.get(rt).i32(MR).add().set(rt); });
    f.get(rows).get(rt).sub().set(rem);
    for (let mr = 1; mr < MR; mr++) { f.get(rem).i32(mr).eq().if_(); call(mr); f.end(); }
  };
  f.get(scratch).get(part).i32(slotBytes).mul().add().set(sp);
  f.get(sp).i32(4 * MB * tkp).add().set(sums);
  f.get(sums).i32(4 * MB).add().set(zero);
  f.get(zero).vconstF32(0, 0, 0, 0).vstore(0);
  f.get(zero).vconstF32(0, 0, 0, 0).vstore(16);
  f.get(m0).set(it);
  f.loopUntil(() => f.get(it).get(m1).geS(), () => {
    f.get(it).i32(blocks).divS().set(h);
    f.get(it).get(h).i32(blocks).mul().sub().i32(MB).mul().set(r0);
    f.i32(tq).get(r0).sub().set(rows);
    f.get(rows).i32(MB).gtS().if_().i32(MB).set(rows).end();
    // 1. scores S = q_h · kᵀ_h, panel by panel of 8 keys (a panel of Kᵀ stays in L1 over the row tiles)
    f.i32(0).set(p);
    f.loopUntil(() => f.get(p).i32(tkp / 8).geS(), () => {
      tiles(0, () => {
        f.get(q).get(r0).get(rt).add().i32(4 * D).mul().add().get(h).i32(4 * dh).mul().add();
        f.get(kp).get(h).i32(headK).mul().add().get(p).i32(4 * dh * 8).mul().add();
        f.get(sp).get(rt).i32(4 * tkp).mul().add().get(p).i32(32).mul().add();
      }, () => f.i32(dh), () => f.i32(1));
      f.get(p).i32(1).add().set(p);
    });
    // 2. per row: mask padding keys, scale, max, exp(x − max) in place, the sum
    f.i32(0).set(r);
    f.loopUntil(() => f.get(r).get(rows).geS(), () => {
      f.get(sp).get(r).i32(4 * tkp).mul().add().set(ptr);
      for (let c = tk; c < tkp; c++) f.get(ptr).f32(MASKED).f32store(4 * c);
      f.get(ptr).i32(4 * tkp).add().set(end);
      const scaleOp = scaleMode === 'mul' ? S.f32x4_mul : S.f32x4_div;
      // the max of the raw scores, then scaled: the same value as the max of the scaled ones (scaling by a positive
      // number is monotone, rounding included)
      f.f32(-Infinity).v(S.f32x4_splat).set(vm);
      f.loopUntil(() => f.get(ptr).get(end).geU(), () => {
        f.get(ptr).vload(0).get(vm).v(S.f32x4_pmax).set(vm);
        f.get(ptr).i32(16).add().set(ptr);
      });
      reduce(f, vm, S.f32x4_pmax);
      f.get(vm).f32(scaleBy).v(S.f32x4_splat).v(scaleOp).set(vm);
      f.get(ptr).i32(4 * tkp).sub().set(ptr);
      f.f32(0).v(S.f32x4_splat).set(vs);
      f.loopUntil(() => f.get(ptr).get(end).geU(), () => {
        f.get(ptr).vload(0).f32(scaleBy).v(S.f32x4_splat).v(scaleOp).get(vm).v(S.f32x4_sub).set(vx);
        expInPlace(f, vx, t1, t2, t3, fma);
        f.get(ptr).get(vx).vstore(0);
        f.get(vs).get(vx).v(S.f32x4_add).set(vs);
        f.get(ptr).i32(16).add().set(ptr);
      });
      reduce(f, vs, S.f32x4_add);
      f.get(sums).get(r).i32(4).mul().add().get(vs).lane(S.f32x4_extract_lane, 0).f32store(0);
      f.get(r).i32(1).add().set(r);
    });
    // 3. O_h = e · v_h, keys in chunks of KC (chunk-major, as the GEMM sums), into the head's columns of out
    f.i32(0).set(c0);
    f.loopUntil(() => f.get(c0).i32(tkp).geS(), () => {
      f.i32(tkp).get(c0).sub().set(kc);
      f.get(kc).i32(KC).gtS().if_().i32(KC).set(kc).end();
      f.i32(0).set(p);
      f.loopUntil(() => f.get(p).i32(dh / 8).geS(), () => {
        tiles(MR, () => {
          f.get(sp).get(rt).i32(4 * tkp).mul().add().get(c0).i32(4).mul().add();
          f.get(vp).get(h).i32(headV).mul().add().get(p).i32(32 * tkp).mul().add().get(c0).i32(32).mul().add();
          f.get(out).get(r0).get(rt).add().i32(4 * D).mul().add().get(h).i32(4 * dh).mul().add().get(p).i32(32).mul().add();
        }, () => f.get(kc), () => f.get(c0).eqz());
        f.get(p).i32(1).add().set(p);
      });
      f.get(c0).get(kc).add().set(c0);
    });
    // 4. divide each row of the head's columns by its sum
    f.i32(0).set(r);
    f.loopUntil(() => f.get(r).get(rows).geS(), () => {
      f.get(sums).get(r).i32(4).mul().add().vsplatLoad(0).set(vs);
      f.get(out).get(r0).get(r).add().i32(4 * D).mul().add().get(h).i32(4 * dh).mul().add().set(ptr);
      for (let c = 0; c < dh / 4; c++) f.get(ptr).get(ptr).vload(16 * c).get(vs).v(S.f32x4_div).vstore(16 * c);
      f.get(r).i32(1).add().set(r);
    });
    f.get(it).i32(1).add().set(it);
  });
  fns.push(f);
  return fns;
}

defineKernel('MucodecAttention', ['q', 'kp', 'vp'], (be, [q, kp, vp], attrs) => {
  const d = attrs as unknown as Dims;
  const D = d.heads * d.dh;
  const out = be.makeOutput([d.tq, D], 'float32');
  const items = d.heads * Math.ceil(d.tq / MB);
  const slot = 4 * (MB * d.tkp + MB + 8);
  const key = `attn:${d.heads}:${d.dh}:${d.tq}:${d.tk}:${d.scaleMode}:${d.scaleBy}:${d.fma ? 'fma' : 'simd128'}`;
  runSplit(be, key, () => attentionModule(d), [offsetOf(be, q!), offsetOf(be, kp!), offsetOf(be, vp!), offsetOf(be, out),
    heapScratch(be, slot * splitParts(be))], items, 2);
  return out;
});

/** why the fused kernel cannot take these inputs (null: it can) */
export function wasmAttentionUnsupported(q: tf.Tensor3D, k: tf.Tensor3D, v: tf.Tensor3D, heads: number, fma = useFma()): string | null {
  if (!simdAvailable()) return 'not the wasm backend';
  if (fma && !relaxedSimdSupported()) return 'FMA asked for without relaxed SIMD';
  if ([q, k, v].some((t) => t.dtype !== 'float32')) return 'not float32';
  const d = q.shape[2];
  if (d % heads !== 0 || (d / heads) % 8 !== 0) return `head size ${d / heads} is not a multiple of 8`;
  if (k.shape[2] !== d || v.shape[2] !== d || v.shape[1] !== k.shape[1] || k.shape[0] !== q.shape[0]) return 'q, k, v shapes disagree';
  if (k.shape[1] === 0 || q.shape[1] === 0) return 'empty';
  return null;
}

/** q (B, Tq, H·dh), k/v (B, Tk, H·dh) → (B, Tq, H·dh): softmax(scale(q kᵀ)) v per head (check wasmAttentionUnsupported first) */
export function wasmAttention(q: tf.Tensor3D, k: tf.Tensor3D, v: tf.Tensor3D, heads: number, scale: ScoreScale, fma = useFma()): tf.Tensor3D {
  const why = wasmAttentionUnsupported(q, k, v, heads, fma);
  if (why) throw new Error(`wasmAttention: ${why}`);
  const [b, tq, D] = q.shape;
  const tk = k.shape[1], dh = D / heads, tkp = Math.ceil(tk / 8) * 8;
  return tf.tidy(() => {
    const outs: tf.Tensor2D[] = [];
    for (let bi = 0; bi < b; bi++) {
      const pick = (x: tf.Tensor3D, n: number): tf.Tensor2D => (b === 1 ? x.reshape([n, D]) : x.slice([bi, 0, 0], [1, n, D]).reshape([n, D]));
      const pad = (x: tf.Tensor2D): tf.Tensor2D => (tkp === tk ? x : tf.pad(x, [[0, tkp - tk], [0, 0]]));
      const kp = tf.transpose(pad(pick(k, tk)).reshape([tkp / 8, 8, heads, dh]), [2, 0, 3, 1]);
      const vp = tf.transpose(pad(pick(v, tk)).reshape([tkp, heads, dh / 8, 8]), [1, 2, 0, 3]);
      outs.push(runCustom<tf.Tensor2D>('MucodecAttention', [pick(q, tq), kp, vp], { heads, dh, tq, tk, tkp, scaleMode: scale.mode, scaleBy: scale.by, fma }));
    }
    return (b === 1 ? outs[0]! : tf.stack(outs)).reshape([b, tq, D]) as tf.Tensor3D; // one batch: no stacking copy
  });
}
