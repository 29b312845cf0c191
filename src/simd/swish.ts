/**
 * GroupNorm's per-channel affine followed by swish, in one pass over a channels-last float32 tensor, as a
 * WebAssembly SIMD kernel on the tfjs-wasm heap:  y = x·scale_c + shift_c;  out = y·σ(y)  (or out = y).
 *
 * σ(y) = 1 / (1 + e^(−y)) with e^t evaluated as 2^n · p(r): n = round(t·log2 e) (by adding 1.5·2^23), r = t − n·ln2
 * (Cody–Waite, ln 2 in two parts), p the degree-7 Taylor polynomial of e^r on |r| ≤ ln2/2 (truncation < 1e-8 relative), 2^n built in the
 * exponent bits; t is clamped to [−87, 88] (σ is then 1 or below 1e-38). Within ~2 ulp of the exact σ, like any
 * float32 sigmoid (tfjs's or torch's).
 */
import * as tf from '@tensorflow/tfjs-core';
import { F32, Fn, I32, S, V128 } from './asm.js';
import { defineKernel, offsetOf, runCustom, simdAvailable } from './heap.js';
import { runSplit } from '../workers/kernel_pool.js';

const LN2_HI = 0.693145751953125; // 11 significant bits: n·LN2_HI is exact for |n| ≤ 2^12
const LN2_LO = 1.4286068203094172e-6;
const MAGIC = 12582912; // 1.5·2^23

/** run(x, scale, shift, out, C, swish, m0, m1): positions [m0, m1) (runSplit shares them over the kernel pool) */
function affineSwishFn(): Fn {
  const f = new Fn('run', [I32, I32, I32, I32, I32, I32, I32, I32]);
  const [px, ps, pb, pout, pC, psw, pm0, pm1] = [0, 1, 2, 3, 4, 5, 6, 7];
  const c = f.local(I32), xp = f.local(I32), op = f.local(I32), end = f.local(I32);
  const y = f.local(V128), t = f.local(V128), n = f.local(V128), r = f.local(V128), p = f.local(V128);
  const r2 = f.local(V128), r4 = f.local(V128);
  // constants hoisted into locals (a v128.const per use costs several instructions on x64)
  const consts = new Map<number, number>();
  const k = (v: number): void => {
    const l = consts.get(v);
    if (l === undefined) throw new Error(`swish: constant ${v} not hoisted`);
    f.get(l);
  };
  for (const v of [-87, 88, Math.LOG2E, MAGIC, LN2_HI, LN2_LO, 1 / 5040, 1 / 720, 1 / 120, 1 / 24, 1 / 6, 1 / 2, 1]) {
    const l = f.local(V128);
    f.vconstF32(v, v, v, v).set(l);
    consts.set(v, l);
  }
  f.get(px).get(pm1).get(pC).mul().i32(4).mul().add().set(end);
  f.get(px).get(pm0).get(pC).mul().i32(4).mul().add().set(xp);
  f.get(pout).get(pm0).get(pC).mul().i32(4).mul().add().set(op);
  f.block(); f.loop();
  f.get(xp).get(end).geU().brIf(1);
  f.i32(0).set(c);
  f.block(); f.loop();
  f.get(c).get(pC).geS().brIf(1);
  f.get(xp).get(c).i32(4).mul().add().vload().get(ps).get(c).i32(4).mul().add().vload().v(S.f32x4_mul)
    .get(pb).get(c).i32(4).mul().add().vload().v(S.f32x4_add).set(y);
  f.get(psw).if_();
  // t = clamp(−y, −87, 88) (pmin/pmax: plain minps/maxps; no NaN inputs here)
  f.get(y).v(S.f32x4_neg); k(-87); f.v(S.f32x4_pmax); k(88); f.v(S.f32x4_pmin).set(t);
  // n = round(t·log2 e) by the 1.5·2^23 trick: v = t·log2e + M rounds to an integer; its low mantissa bits hold n
  f.get(t); k(Math.LOG2E); f.v(S.f32x4_mul); k(MAGIC); f.v(S.f32x4_add).set(n);
  f.get(n); k(MAGIC); f.v(S.f32x4_sub).set(r); // r = n (as a float) for now
  // r = (t − n·LN2_HI) − n·LN2_LO
  f.get(t).get(r); k(LN2_HI); f.v(S.f32x4_mul).v(S.f32x4_sub).get(r); k(LN2_LO); f.v(S.f32x4_mul).v(S.f32x4_sub).set(r);
  // p = Σ_{i ≤ 7} r^i / i! by Estrin's scheme (short dependency chains):
  //   1 + [(r + r²(1/2 + r/6)) + r⁴((1/24 + r/120) + r²(1/720 + r/5040))]   (the 1 added last: smaller error)
  f.get(r).get(r).v(S.f32x4_mul).set(r2);
  f.get(r2).get(r2).v(S.f32x4_mul).set(r4);
  f.get(r);
  k(1 / 6); f.get(r).v(S.f32x4_mul); k(1 / 2); f.v(S.f32x4_add).get(r2).v(S.f32x4_mul).v(S.f32x4_add);
  k(1 / 120); f.get(r).v(S.f32x4_mul); k(1 / 24); f.v(S.f32x4_add);
  k(1 / 5040); f.get(r).v(S.f32x4_mul); k(1 / 720); f.v(S.f32x4_add).get(r2).v(S.f32x4_mul).v(S.f32x4_add);
  f.get(r4).v(S.f32x4_mul).v(S.f32x4_add);
  k(1); f.v(S.f32x4_add).set(p);
  // e^t = p · 2^n, 2^n = bits (n + 127) << 23 = (bits(v) + 127) << 23 (the magic's own bits shift out)
  f.get(p).get(n).i32(127).v(S.i32x4_splat).v(S.i32x4_add).i32(23).v(S.i32x4_shl).v(S.f32x4_mul);
  // y · 1 / (1 + e^t)
  k(1); f.v(S.f32x4_add).set(p);
  f.get(y); k(1); f.get(p).v(S.f32x4_div).v(S.f32x4_mul).set(y);
  f.end();
  f.get(op).get(c).i32(4).mul().add().get(y).vstore();
  f.get(c).i32(4).add().set(c);
  f.br(0);
  f.end(); f.end();
  f.get(xp).get(pC).i32(4).mul().add().set(xp);
  f.get(op).get(pC).i32(4).mul().add().set(op);
  f.br(0);
  f.end(); f.end();
  return f;
}
void F32;

defineKernel('MucodecAffineSwish', ['x', 'scale', 'shift'], (be, [x, sc, sh], attrs) => {
  const C = x!.shape[x!.shape.length - 1]!;
  const n = x!.shape.slice(0, -1).reduce((a, b) => a * b, 1);
  const out = be.makeOutput(x!.shape, 'float32');
  // positions over the threads (each output written once: the result does not depend on the split)
  runSplit(be, 'affine-swish', () => [affineSwishFn()],
    [offsetOf(be, x!), offsetOf(be, sc!), offsetOf(be, sh!), offsetOf(be, out), C, (attrs as { swish: boolean }).swish ? 1 : 0], n, Math.ceil(65536 / C));
  return out;
});

/** x·scale + shift per channel (last axis), then swish y·σ(y) when `swish`; plain tfjs ops off the wasm backend */
export function affineSwish<T extends tf.Tensor>(x: T, scale: tf.Tensor1D, shift: tf.Tensor1D, swish = true): T {
  const C = x.shape[x.shape.length - 1]!;
  if (!simdAvailable() || C % 4 !== 0 || x.dtype !== 'float32') {
    return tf.tidy(() => {
      const y = tf.add(tf.mul(x, scale), shift);
      return (swish ? tf.mul(y, tf.sigmoid(y)) : y) as T;
    });
  }
  return runCustom<T>('MucodecAffineSwish', [x, scale, shift], { swish });
}
