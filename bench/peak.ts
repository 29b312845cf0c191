/**
 * The wasm FMA ceiling measured on this machine, in the same run as the stages it bounds: a register-only loop of
 * f32x4.relaxed_madd on 12 independent accumulators (no loads: what the vector units give at all), on every wasm
 * thread (the kernel pool of src/workers/kernel_pool.ts, as the GEMM uses it). Where the engine has no relaxed SIMD:
 * f32x4.mul + f32x4.add, the SIMD128 ceiling. 96 FLOP per iteration (12 × 4 lanes × 2).
 */
import * as tf from '@tensorflow/tfjs-core';
import { Fn, I32, S, V128 } from '../src/simd/asm.js';
import { moduleFor, offsetOf, wasmBackend } from '../src/simd/heap.js';
import { relaxedSimdSupported } from '../src/simd/relaxed.js';
import { kernelPool } from '../src/workers/kernel_pool.js';
import type { CeilingSpec } from './common.js';

const ACC = 12;
/** loop iterations per unit of the row range handed to each thread */
const UNIT = 1 << 16;

function peakModule(fma: boolean): Fn[] {
  const f = new Fn('run', [I32, I32, I32]); // (out, m0, m1): (m1 − m0)·UNIT iterations, lanes stored at out + 16·m0
  const [out, m0, m1] = [0, 1, 2];
  const acc = Array.from({ length: ACC }, () => f.local(V128));
  const x = f.local(V128), y = f.local(V128), t = f.local(V128), i = f.local(I32), end = f.local(I32);
  f.vconstF32(1.0000001, 1.0000001, 1.0000001, 1.0000001).set(x);
  f.vconstF32(0.9999999, 0.9999999, 0.9999999, 0.9999999).set(y);
  for (let a = 0; a < ACC; a++) f.vconstF32(a, a, a, a).set(acc[a]!);
  f.i32(0).set(i);
  f.get(m1).get(m0).sub().i32(UNIT).mul().set(end);
  f.loopUntil(() => f.get(i).get(end).geS(), () => {
    for (let a = 0; a < ACC; a++) {
      if (fma) f.get(x).get(y).get(acc[a]!).v(S.f32x4_relaxed_madd).set(acc[a]!);
      else f.get(x).get(y).v(S.f32x4_mul).get(acc[a]!).v(S.f32x4_add).set(acc[a]!);
    }
    f.get(i).i32(1).add().set(i);
  });
  f.get(acc[0]!).set(t);
  for (let a = 1; a < ACC; a++) f.get(t).get(acc[a]!).v(S.f32x4_add).set(t);
  f.get(out).get(m0).i32(16).mul().add().get(t).vstore(0);
  return [f];
}

/** the ceiling spec (wasm backend only): `units` rows of UNIT iterations split over the threads */
export function fmaPeakCeiling(units = 2048): CeilingSpec {
  const fma = relaxedSimdSupported();
  return {
    label: `wasm ${fma ? 'FMA (f32x4.relaxed_madd)' : 'SIMD128 (f32x4.mul + add)'} peak: register-only loop, every thread`,
    gflop: (units * UNIT * ACC * 8) / 1e9,
    make: () => {
      const b = wasmBackend();
      if (!b) throw new Error('fmaPeakCeiling: needs the wasm backend');
      const key = `peak:${fma ? 'fma' : 'simd128'}`;
      const build = (): Fn[] => peakModule(fma);
      const ex = moduleFor(b, key, build);
      const out = tf.zeros([units * 4]);
      const o = offsetOf(b, out);
      const run = (): tf.Tensor => {
        const pool = kernelPool(b);
        if (pool) pool.splitRows(key, build, units, 1, (a, c) => ex.run!(o, a, c), [o]);
        else ex.run!(o, 0, units);
        return tf.clone(out);
      };
      return { run, dispose: () => out.dispose() };
    },
  };
}
