/**
 * Performance replacements must not change values: the heap-to-heap Slice / SplitV / Unpack / Transpose kernels
 * (src/workers/wasm_kernels.ts) give exactly the cpu backend's bytes, and the Winograd 3×3 convolution
 * (layers/winograd.ts) agrees with a float64 direct sum as closely as tf.conv2d does (F(2,3)) or within a few
 * times that (F(4,3)).
 */
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../src/backend.js';
import '../src/chained_ops.js';
import { Conv3x3Stride2Winograd, Conv3x3Winograd, type WinogradVariant } from '../layers/winograd.js';

beforeAll(async () => { await initBackend('wasm'); });

/** run `f` on the cpu backend with the same inputs (as host arrays) */
async function onCpu<T>(f: () => T): Promise<T> {
  await tf.setBackend('cpu');
  try { return f(); } finally { await tf.setBackend('wasm'); }
}

const seq = (n: number, a = 0.5, b = -3): Float32Array => Float32Array.from({ length: n }, (_, i) => i * a + b);

describe('wasm kernel replacements = cpu backend bytes', () => {
  const sliceCases: Array<[number[], number[], number[]]> = [
    [[5, 7, 3], [1, 2, 0], [3, 4, 3]],
    [[2, 3, 4, 5, 6], [1, 0, 2, 1, 3], [1, 3, 2, -1, 2]],
    [[10], [3], [4]],
    [[4, 6], [0, 2], [4, 3]],
    [[2, 16, 2, 32], [0, 0, 1, 0], [2, 16, 1, 32]],
    [[3, 40, 50], [1, 0, 0], [2, 40, 50]],
    [[3, 4], [1, 1], [0, 2]],
  ];
  it('Slice (float32, int32, bool; contiguous, strided, rank 1–5, empty)', async () => {
    const before = tf.memory().numTensors;
    for (const [sh, b, s] of sliceCases) {
      const n = sh.reduce((x, y) => x * y, 1);
      const data = seq(n);
      const ours = tf.tidy(() => tf.slice(tf.tensor(data, sh), b, s).dataSync());
      const ref = await onCpu(() => tf.tidy(() => tf.slice(tf.tensor(data, sh), b, s).dataSync()));
      expect(Array.from(ours), `slice ${sh} ${b} ${s}`).toEqual(Array.from(ref));
      const ints = Int32Array.from({ length: n }, (_, i) => i * 7 - 5);
      const oi = tf.tidy(() => tf.slice(tf.tensor(ints, sh, 'int32'), b, s).dataSync());
      const ri = await onCpu(() => tf.tidy(() => tf.slice(tf.tensor(ints, sh, 'int32'), b, s).dataSync()));
      expect(Array.from(oi)).toEqual(Array.from(ri));
    }
    const bools = tf.tidy(() => tf.slice(tf.tensor([true, false, true, true, false], [5], 'bool'), [1], [3]).dataSync());
    expect(Array.from(bools)).toEqual([0, 1, 1]);
    expect(tf.memory().numTensors).toBe(before);
  });

  it('SplitV and Unpack round-trip and equal the cpu backend', async () => {
    for (const [sh, axis, parts] of [[[2, 16, 2, 32], 2, 2], [[6, 5, 4], 0, [1, 2, 3]], [[3, 8, 64], 1, 4], [[2, 3, 4, 5, 6], 3, [2, 3]]] as Array<[number[], number, number | number[]]>) {
      const data = seq(sh.reduce((x, y) => x * y, 1), 0.25, 1);
      const ours = tf.tidy(() => tf.split(tf.tensor(data, sh), parts, axis).map((t) => Array.from(t.dataSync())));
      const ref = await onCpu(() => tf.tidy(() => tf.split(tf.tensor(data, sh), parts, axis).map((t) => Array.from(t.dataSync()))));
      expect(ours).toEqual(ref);
      const un = tf.tidy(() => tf.unstack(tf.tensor(data, sh), axis).map((t) => [t.shape, Array.from(t.dataSync())]));
      const unRef = await onCpu(() => tf.tidy(() => tf.unstack(tf.tensor(data, sh), axis).map((t) => [t.shape, Array.from(t.dataSync())])));
      expect(un).toEqual(unRef);
    }
  });

  it('Transpose (runs kept whole, last axis moved, size-1 axes, rank 2–5)', async () => {
    const cases: Array<[number[], number[]]> = [
      [[4, 4, 8, 6, 40], [2, 0, 3, 1, 4]], [[2, 3, 5, 64], [0, 2, 1, 3]], [[1, 16, 20, 64], [0, 2, 1, 3]],
      [[3, 1, 7, 40], [2, 1, 0, 3]], [[6, 8, 33], [1, 0, 2]], [[5, 6, 7], [2, 1, 0]], [[2, 3, 4, 5], [1, 0, 2, 3]], [[33, 40], [1, 0]],
    ];
    for (const [sh, perm] of cases) {
      const data = seq(sh.reduce((x, y) => x * y, 1));
      const ours = tf.tidy(() => { const y = tf.transpose(tf.tensor(data, sh), perm); return [y.shape, Array.from(y.dataSync())]; });
      const ref = await onCpu(() => tf.tidy(() => { const y = tf.transpose(tf.tensor(data, sh), perm); return [y.shape, Array.from(y.dataSync())]; }));
      expect(ours, `transpose ${sh} ${perm}`).toEqual(ref);
    }
  });
});

/** float64 direct 3×3 'same' cross-correlation, NHWC, HWIO filter */
function conv3x3Ref(x: Float32Array, [n, h, w, ci]: number[], f: Float32Array, co: number, bias: Float32Array): Float64Array {
  const y = new Float64Array(n! * h! * w! * co);
  for (let b = 0; b < n!; b++) for (let i = 0; i < h!; i++) for (let j = 0; j < w!; j++) for (let o = 0; o < co; o++) {
    let s = bias[o]!;
    for (let di = 0; di < 3; di++) for (let dj = 0; dj < 3; dj++) {
      const ii = i + di - 1, jj = j + dj - 1;
      if (ii < 0 || ii >= h! || jj < 0 || jj >= w!) continue;
      for (let c = 0; c < ci!; c++) s += x[((b * h! + ii) * w! + jj) * ci! + c]! * f[((di * 3 + dj) * ci! + c) * co + o]!;
    }
    y[((b * h! + i) * w! + j) * co + o] = s;
  }
  return y;
}

function relL2(a: ArrayLike<number>, ref: ArrayLike<number>): number {
  let e = 0, r = 0;
  for (let i = 0; i < ref.length; i++) { const d = a[i]! - ref[i]!; e += d * d; r += ref[i]! * ref[i]!; }
  return Math.sqrt(e / r);
}

describe('Winograd 3×3 conv (layers/winograd.ts)', () => {
  // odd sizes (not multiples of the tile), batch 2, and a band limit small enough to force several bands
  const shape = [2, 23, 13, 12];
  const cout = 10;
  let s = 12345;
  const rnd = (n: number, sc: number): Float32Array => Float32Array.from({ length: n }, () => {
    s ^= s << 13; s ^= s >>> 17; s ^= s << 5;
    return sc * (((s >>> 0) / 4294967296) * 2 - 1);
  });
  const x = rnd(shape.reduce((a, b) => a * b, 1), 1);
  const f = rnd(9 * 12 * cout, 0.3);
  const bias = rnd(cout, 0.1);
  const ref = conv3x3Ref(x, shape, f, cout, bias);

  it('tf.conv2d baseline error', () => {
    const d = tf.tidy(() => tf.add(tf.conv2d(tf.tensor4d(x, shape as [number, number, number, number]), tf.tensor4d(f, [3, 3, 12, cout]), 1, 'same'), tf.tensor1d(bias)).dataSync());
    expect(relL2(d, ref)).toBeLessThan(1e-6);
  });

  for (const [variant, tol] of [['F2', 1e-6], ['F3', 2e-6], ['F3h', 2e-6], ['F4', 4e-6], ['F4h', 3e-6]] as Array<[WinogradVariant, number]>) {
    it(`${variant}: = float64 direct sum (several bands, ragged tiles, batch 2, ReLU), no leaks`, () => {
      const before = tf.memory().numTensors;
      const w = new Conv3x3Winograd(f, 12, cout, bias, { variant, bandElements: 2000 });
      const xt = tf.tensor4d(x, shape as [number, number, number, number]);
      const y = w.apply(xt);
      expect(y.shape).toEqual([2, 23, 13, cout]);
      expect(relL2(y.dataSync(), ref)).toBeLessThan(tol);
      const yr = w.apply(xt, 'relu');
      const d = yr.dataSync();
      expect(relL2(d, ref.map((v) => Math.max(0, v)))).toBeLessThan(tol);
      for (const t of [xt, y, yr]) t.dispose();
      w.dispose();
      expect(tf.memory().numTensors).toBe(before);
    });
  }
});

/** float64 direct 3×3 stride-2 pad-1 cross-correlation (PyTorch Conv2d(3, stride 2, padding 1)), NHWC */
function conv3x3s2Ref(x: Float32Array, [n, h, w, ci]: number[], f: Float32Array, co: number, bias: Float32Array): { y: Float64Array; shape: number[] } {
  const ho = Math.ceil(h! / 2), wo = Math.ceil(w! / 2);
  const y = new Float64Array(n! * ho * wo * co);
  for (let b = 0; b < n!; b++) for (let i = 0; i < ho; i++) for (let j = 0; j < wo; j++) for (let o = 0; o < co; o++) {
    let s = bias[o]!;
    for (let di = 0; di < 3; di++) for (let dj = 0; dj < 3; dj++) {
      const ii = 2 * i + di - 1, jj = 2 * j + dj - 1;
      if (ii < 0 || ii >= h! || jj < 0 || jj >= w!) continue;
      for (let c = 0; c < ci!; c++) s += x[((b * h! + ii) * w! + jj) * ci! + c]! * f[((di * 3 + dj) * ci! + c) * co + o]!;
    }
    y[((b * ho + i) * wo + j) * co + o] = s;
  }
  return { y, shape: [n!, ho, wo, co] };
}

describe('stride-2 polyphase Winograd (Conv3x3Stride2Winograd)', () => {
  let s = 777;
  const rnd = (n: number, sc: number): Float32Array => Float32Array.from({ length: n }, () => {
    s ^= s << 13; s ^= s >>> 17; s ^= s << 5;
    return sc * (((s >>> 0) / 4294967296) * 2 - 1);
  });
  for (const shape of [[2, 23, 13, 8], [1, 32, 64, 8], [1, 9, 6, 8]]) {
    it(`${shape}: two convs sharing the input = float64 direct sums (bands, ragged tiles, relu on one), no leaks`, () => {
      const cos = [6, 5];
      const x = rnd(shape.reduce((a, b) => a * b, 1), 1);
      const fs = cos.map((co) => rnd(9 * 8 * co, 0.3));
      const bs = cos.map((co) => rnd(co, 0.1));
      const before = tf.memory().numTensors;
      const w = new Conv3x3Stride2Winograd(fs, 8, cos, bs, { bandElements: 3000 });
      const xt = tf.tensor4d(x, shape as [number, number, number, number]);
      const ys = w.apply(xt, ['relu', 'linear']);
      cos.forEach((co, k) => {
        const ref = conv3x3s2Ref(x, shape, fs[k]!, co, bs[k]!);
        expect(ys[k]!.shape).toEqual(ref.shape);
        const r = k === 0 ? ref.y.map((v) => Math.max(0, v)) : ref.y;
        expect(relL2(ys[k]!.dataSync(), r)).toBeLessThan(2e-6);
        // and the same as tf.conv2d with explicit (1, 1) padding
        const d = tf.tidy(() => {
          let z = tf.add(tf.conv2d(xt, tf.tensor4d(fs[k]!, [3, 3, 8, co]), 2, [[0, 0], [1, 1], [1, 1], [0, 0]]), tf.tensor1d(bs[k]!));
          if (k === 0) z = tf.relu(z);
          return z.dataSync();
        });
        expect(relL2(ys[k]!.dataSync(), d)).toBeLessThan(2e-6);
      });
      for (const t of [xt, ...ys]) t.dispose();
      w.dispose();
      expect(tf.memory().numTensors).toBe(before);
    });
  }
});
