/**
 * Half-precision emulation (layers/f16.ts roundToHalf, src/dit/precision.ts 'f16-emulated') on wasm: the rounding
 * against an exact host binary16 conversion (round to nearest even, subnormals, overflow), and the emulated DiT's
 * error on the DiT parity cases (bench/f16_error.ts measures all of them; README "Kernels on WebGPU" has the table).
 */
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../src/backend.js';
import { roundToHalf } from '../layers/f16.js';
import { ditPrecision, parseDitPrecision } from '../src/dit/precision.js';
import { measureF16Error } from '../bench/f16_error.js';
import { fixtureDir } from './parity-helper.js';

/** exact float32 → binary16 (round to nearest even) → float32, from the bits */
function halfOf(x: number): number {
  const f = new Float32Array([x]);
  const u = new Uint32Array(f.buffer)[0]!;
  const sign = u >>> 31 ? -1 : 1;
  const e = (u >>> 23) & 0xff, m = u & 0x7fffff;
  if (e === 0xff) return m ? NaN : sign * Infinity;
  const a = Math.abs(f[0]!);
  // the binary16 step at a's magnitude: 2^(exp - 10) for normals, 2^-24 below 2^-14
  const exp = e === 0 ? -127 : e - 127;
  const step = 2 ** (Math.max(exp, -14) - 10);
  const q = a / step, lo = Math.floor(q), rem = q - lo;
  const n = rem > 0.5 || (rem === 0.5 && lo % 2 === 1) ? lo + 1 : lo;
  const r = n * step;
  return r > 65504 ? sign * Infinity : sign * r;
}

beforeAll(async () => { await initBackend('wasm'); });

describe('half-precision emulation', () => {
  it('roundToHalf is the nearest binary16 value: normals, subnormals, overflow (ties to a neighbour)', async () => {
    const xs: number[] = [0, 1, -1, 65504, 65519.99, 65520, -65520, 1e5, 2 ** -14, 2 ** -24, 2 ** -25, 3 * 2 ** -26, 1e-9, 1 + 2 ** -11, 1 + 3 * 2 ** -11];
    let s = 12345;
    const u = (): number => { s = (Math.imul(s, 1664525) + 1013904223) >>> 0; return s / 2 ** 32; };
    for (let i = 0; i < 20000; i++) xs.push((u() < 0.5 ? -1 : 1) * (1 + u()) * 2 ** Math.floor(u() * 50 - 30));
    const x = tf.tensor1d(xs);
    const y = roundToHalf(x);
    const got = (await y.data()) as Float32Array;
    const xf = (await x.data()) as Float32Array;
    x.dispose(); y.dispose();
    let exact = 0;
    for (let i = 0; i < xs.length; i++) {
      const want = halfOf(xf[i]!);
      if (Object.is(got[i], want) || got[i] === want) { exact++; continue; }
      // allowed only at an exact tie, and then to the other neighbour (Veltkamp's split may round a tie away from even)
      const a = Math.abs(xf[i]!), exp = Math.floor(Math.log2(a)), step = 2 ** (Math.max(exp, -14) - 10);
      expect(Math.abs(a / step - Math.floor(a / step)), `x=${xf[i]} got ${got[i]} want ${want}`).toBe(0.5);
      expect(Math.abs(Math.abs(got[i]!) - Math.abs(want)), `x=${xf[i]}`).toBe(step);
    }
    expect(exact).toBeGreaterThanOrEqual(xs.length - 5);
    expect([got[3], got[4], got[5], got[6], got[7]]).toEqual([65504, 65504, Infinity, -Infinity, Infinity]); // 65520 and up overflow
    expect([got[9], got[10], got[11]]).toEqual([2 ** -24, 0, 2 ** -24]); // 2^-25 ties to even (0); 1.5·2^-25 up
  });

  it('f16-emulated DiT: error of half-precision size against the f32 fixtures, and f32 untouched', async () => {
    const start = tf.memory().numTensors;
    const rows = await measureF16Error([fixtureDir('decoder', 'dit.block'), fixtureDir('decoder', 'dit.transformer')]);
    expect(rows.map((r) => `${r.case} ${r.precision}`)).toEqual(['dit.block f32', 'dit.block f16-emulated', 'dit.transformer f32', 'dit.transformer f16-emulated']);
    for (let i = 0; i < rows.length; i += 2) {
      const [f32, f16] = [rows[i]!, rows[i + 1]!];
      expect(f32.pass, f32.case).toBe(true);
      expect(f16.rel_l2, f16.case).toBeGreaterThan(10 * f32.rel_l2); // the rounding points took effect
      expect(f16.rel_l2, f16.case).toBeLessThan(4 * 2 ** -11); // a few units of binary16's relative step
    }
    expect(ditPrecision()).toBe('f32');
    expect(tf.memory().numTensors).toBe(start);
  });

  it('--precision values: f16 is refused with the reason, f16-emulated accepted', () => {
    expect(parseDitPrecision('f16-emulated')).toBe('f16-emulated');
    expect(parseDitPrecision('F32')).toBe('f32');
    expect(() => parseDitPrecision('f16', '--precision')).toThrow(/--precision "f16": half-precision kernels are not available .*shader-f16.*f16-emulated/);
    expect(() => parseDitPrecision('bf16')).toThrow(/"bf16" is not one of: f32, f16-emulated/);
  });
});
