/**
 * The packed GEMM of src/simd/gemm.ts against a float64 reference on random shapes with ragged edges (M not a multiple
 * of the 6-row micro-tile, N not a multiple of the 8-column panel, K not a multiple of the 256 k-block), on both paths:
 * FMA (f32x4.relaxed_madd, where the engine has relaxed SIMD: Node 20 after the run-time flag, Node ≥ 22 natively)
 * and SIMD128 (mul + add); and 1 vs 2 threads (each in a child process) give the same bytes. The same GEMM as a
 * stride-1 conv1d (conv1dGemm: one K chunk per tap over the padded input, the vocoder's convs) against a float64
 * conv on batches, dilations, paddings and channel counts over the 256 k-block; and as a 'valid' conv2d over a padded
 * image flattened to rows (conv2dValidGemm: the VAE's direct convs).
 */
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../src/backend.js';
import { conv1dGemm, conv2dValidGemm, gemm, gemmBlocks, packB, packTensor } from '../src/simd/gemm.js';
import { fmaMode, relaxedSimdSupported, setFmaMode, useFma } from '../src/simd/relaxed.js';
import { runHelper } from './helpers/run_child.js';
import { lcgRand } from './helpers/lcg.js';

const rand = lcgRand;

beforeAll(async () => { await initBackend('wasm'); });

describe('packed GEMM (wasm)', () => {
  it('relaxed SIMD is detected on this Node (20: via the run-time flag) and can be switched off', () => {
    expect(relaxedSimdSupported()).toBe(true);
    const m = fmaMode();
    setFmaMode('off');
    expect(useFma()).toBe(false);
    setFmaMode('auto');
    expect(useFma()).toBe(true);
    setFmaMode(m);
  });

  const shapes: Array<[number, number, number]> = [
    [1, 1, 1], [5, 3, 7], [6, 8, 8], [7, 9, 9], [13, 17, 4], [12, 256, 16], [25, 257, 33], [61, 600, 23], [100, 72, 130],
  ];
  for (const fma of [true, false]) {
    it(`${fma ? 'FMA' : 'SIMD128'} path = float64 reference within the summation bound, (out, in) packing = (in, out)`, () => {
      for (const [m, k, n] of shapes) {
        const a = rand(m * k, 1 + m), b = rand(k * n, 2 + k), bias = rand(n, 3 + n);
        // the same weight in torch Linear layout (out, in)
        const w = new Float32Array(k * n);
        for (let i = 0; i < k; i++) for (let j = 0; j < n; j++) w[j * k + i] = b[i * n + j]!;
        const A = tf.tensor2d(a, [m, k]);
        const p1 = packB(b, k, n, bias), p2 = packB(w, k, n, bias, true);
        const y = gemm(A, p1, fma), y2 = gemm(A, p2, fma);
        const got = y.dataSync(), got2 = y2.dataSync();
        expect(y.shape).toEqual([m, n]);
        for (let i = 0; i < m; i++) {
          for (let j = 0; j < n; j++) {
            let ref = bias[j]!, mag = Math.abs(bias[j]!);
            for (let q = 0; q < k; q++) { ref += a[i * k + q]! * b[q * n + j]!; mag += Math.abs(a[i * k + q]! * b[q * n + j]!); }
            // recursive float32 summation: |error| ≤ (k + 1) · 2⁻²⁴ · Σ|terms| (+ the product roundings)
            const bound = (k + 2) * 2 ** -23 * mag + 1e-30;
            const e = Math.abs(got[i * n + j]! - ref);
            if (e > bound) throw new Error(`(${m}, ${k}, ${n}) [${i}, ${j}]: |${got[i * n + j]} − ${ref}| = ${e} > ${bound}`);
          }
        }
        expect(Array.from(got2)).toEqual(Array.from(got));
        tf.dispose([A, y, y2, p1.packed, p2.packed]);
      }
    });
  }

  // [n, len, cin, cout, taps, d, padL, padR]
  const convs: Array<[number, number, number, number, number, number, number, number]> = [
    [1, 9, 3, 5, 1, 1, 0, 0], [1, 40, 16, 8, 3, 1, 1, 1], [2, 37, 7, 13, 3, 3, 3, 3], [1, 50, 300, 9, 3, 5, 5, 5],
    [3, 20, 32, 17, 7, 1, 3, 3], [2, 64, 257, 24, 5, 2, 0, 8], [1, 15, 10, 6, 11, 1, 5, 5],
  ];
  for (const fma of [true, false]) {
    it(`conv1dGemm (${fma ? 'FMA' : 'SIMD128'}) = float64 conv1d within the summation bound: batch, dilation, padding`, () => {
      const before = tf.memory().numTensors;
      for (const [n, len, cin, cout, taps, d, padL, padR] of convs) {
        const x = rand(n * len * cin, 5 + len), w = rand(taps * cin * cout, 6 + cin), bias = rand(cout, 7 + cout);
        const X = tf.tensor3d(x, [n, len, cin]);
        const p = packB(w, taps * cin, cout, bias);
        const y = conv1dGemm(X, p, taps, d, padL, padR, fma);
        const L = len + padL + padR - (taps - 1) * d;
        expect(y.shape).toEqual([n, L, cout]);
        const got = y.dataSync();
        for (let b = 0; b < n; b++) {
          for (let t = 0; t < L; t++) {
            for (let o = 0; o < cout; o++) {
              let ref = bias[o]!, mag = Math.abs(bias[o]!);
              for (let j = 0; j < taps; j++) {
                const s = t + j * d - padL;
                if (s < 0 || s >= len) continue;
                for (let i = 0; i < cin; i++) {
                  const v = x[(b * len + s) * cin + i]! * w[(j * cin + i) * cout + o]!;
                  ref += v; mag += Math.abs(v);
                }
              }
              const bound = (taps * cin + 2) * 2 ** -23 * mag + 1e-30;
              const e = Math.abs(got[(b * L + t) * cout + o]! - ref);
              if (e > bound) throw new Error(`conv ${[n, len, cin, cout, taps, d, padL, padR].join(',')} [${b}, ${t}, ${o}]: ${e} > ${bound}`);
            }
          }
        }
        tf.dispose([X, y, p.packed]);
      }
      expect(tf.memory().numTensors).toBe(before);
    });
  }

  // [hp, wp, cin, cout, kh, kw]
  const convs2d: Array<[number, number, number, number, number, number]> = [
    [6, 34, 16, 24, 3, 3], [5, 5, 3, 7, 3, 3], [4, 9, 300, 10, 3, 3], [3, 8, 20, 12, 1, 1], [7, 6, 5, 9, 2, 3],
  ];
  for (const fma of [true, false]) {
    it(`conv2dValidGemm (${fma ? 'FMA' : 'SIMD128'}) = float64 valid conv2d within the summation bound`, () => {
      const before = tf.memory().numTensors;
      for (const [hp, wp, cin, cout, kh, kw] of convs2d) {
        const x = rand(hp * wp * cin, 8 + wp), w = rand(kh * kw * cin * cout, 9 + cin), bias = rand(cout, 10 + cout);
        const X = tf.tensor4d(x, [1, hp, wp, cin]);
        const p = packB(w, kh * kw * cin, cout, bias);
        const y = conv2dValidGemm(X, p, kh, kw, fma);
        const ho = hp - kh + 1, wo = wp - kw + 1;
        expect(y.shape).toEqual([1, ho, wo, cout]);
        const got = y.dataSync();
        for (let r = 0; r < ho; r++) {
          for (let c = 0; c < wo; c++) {
            for (let o = 0; o < cout; o++) {
              let ref = bias[o]!, mag = Math.abs(bias[o]!);
              for (let ty = 0; ty < kh; ty++) {
                for (let tx = 0; tx < kw; tx++) {
                  for (let i = 0; i < cin; i++) {
                    const v = x[((r + ty) * wp + c + tx) * cin + i]! * w[((ty * kw + tx) * cin + i) * cout + o]!;
                    ref += v; mag += Math.abs(v);
                  }
                }
              }
              const bound = (kh * kw * cin + 2) * 2 ** -23 * mag + 1e-30;
              const e = Math.abs(got[(r * wo + c) * cout + o]! - ref);
              if (e > bound) throw new Error(`conv2d ${[hp, wp, cin, cout, kh, kw].join(',')} [${r}, ${c}, ${o}]: ${e} > ${bound}`);
            }
          }
        }
        tf.dispose([X, y, p.packed]);
      }
      expect(tf.memory().numTensors).toBe(before);
    });
  }

  it('conv1dGemm refuses a filter packed for another channel count and an input shorter than the span', () => {
    const X = tf.zeros([1, 4, 5]) as tf.Tensor3D;
    const p = packB(new Float32Array(3 * 6 * 2), 3 * 6, 2);
    expect(() => conv1dGemm(X, p, 3, 1, 1, 1)).toThrow(/18 rows for 3 taps × 5 channels/);
    const q = packB(new Float32Array(3 * 5 * 2), 3 * 5, 2);
    expect(() => conv1dGemm(X, q, 3, 3, 0, 0)).toThrow(/shorter than the kernel span/);
    tf.dispose([X, p.packed, q.packed]);
  });

  it('packTensor (the heap-to-heap pack kernel) lays B out exactly as packB does, ragged panels included', () => {
    const before = tf.memory().numTensors;
    for (const [k, n] of [[1, 1], [5, 8], [7, 13], [72, 4096], [300, 203], [1024, 1024]] as const) {
      const b = rand(k * n, 11 + k + n);
      const B = tf.tensor2d(b, [k, n]);
      const viaHeap = packTensor(B), viaHost = packB(b, k, n);
      expect([viaHeap.k, viaHeap.n]).toEqual([k, n]);
      expect(Array.from(viaHeap.packed.dataSync())).toEqual(Array.from(viaHost.packed.dataSync()));
      tf.dispose([B, viaHeap.packed, viaHost.packed]);
    }
    expect(tf.memory().numTensors).toBe(before);
  });

  it('gemmBlocks: column blocks of A (contiguous and strided) give the bytes of the GEMM on those columns gathered', () => {
    const before = tf.memory().numTensors;
    for (const fma of relaxedSimdSupported() ? [true, false] : [false]) {
      for (const [M, w, nb, first, stride, taps, N] of [[37, 12, 4, 0, 2, 2, 20], [13, 300, 4, 1, 1, 2, 9], [8, 8, 4, 3, 1, 1, 16]] as const) {
        const a = tf.tensor2d(rand(M * w * nb, 81), [M, w * nb]);
        const bh = rand(taps * w * N, 82), bias = rand(N, 83);
        const packed = packB(bh, taps * w, N, bias);
        const cols = Array.from({ length: taps }, (_, j) => a.slice([0, (first + j * stride) * w], [M, w]));
        const gathered = tf.concat(cols, 1) as tf.Tensor2D;
        const [y, ref] = [gemmBlocks(a, packed, first * w, w, stride, fma), gemm(gathered, packed, fma)];
        expect(y.shape).toEqual([M, N]);
        expect(Array.from(y.dataSync())).toEqual(Array.from(ref.dataSync()));
        expect(() => gemmBlocks(a, packed, (first + 1) * w, w, stride + 2, fma)).toThrow(/do not fit A's/);
        [a, gathered, y, ref, packed.packed, ...cols].forEach((t) => t.dispose());
      }
    }
    expect(tf.memory().numTensors).toBe(before);
  });
  it('A with another inner size than the packed B is refused', () => {
    const A = tf.zeros([4, 5]) as tf.Tensor2D;
    const p = packB(new Float32Array(6 * 3), 6, 3);
    expect(() => gemm(A, p)).toThrow(/5 columns, B 6 rows/);
    tf.dispose([A, p.packed]);
  });

  it('2 threads give the 1-thread bytes on both paths', async () => {
    const probe = async (threads: number): Promise<{ threads: number; fma: boolean; hashes: Record<string, string>; tensors: number }> => {
      const r = await runHelper('gemm_probe.ts', [], { MUCODEC_THREADS: String(threads) }, 120_000);
      const line = r.stdout.split('\n').find((l) => l.startsWith('{'));
      if (r.status !== 0 || !line) throw new Error(`gemm probe (${threads}) failed: ${r.stderr.slice(-2000)}`);
      return JSON.parse(line) as { threads: number; fma: boolean; hashes: Record<string, string>; tensors: number };
    };
    const one = await probe(1), two = await probe(2);
    expect([one.threads, two.threads]).toEqual([1, 2]);
    expect(two.fma).toBe(true);
    expect(Object.keys(two.hashes)).toHaveLength(16);
    expect(two.hashes).toEqual(one.hashes);
    expect([one.tensors, two.tensors]).toEqual([0, 0]);
    // FMA rounds differently from mul + add: the two paths really are different kernels
    expect(two.hashes['97x1000x64.fma']).not.toBe(two.hashes['97x1000x64.simd128']);
  });
});
