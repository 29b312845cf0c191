/**
 * The WebAssembly SIMD kernels of src/simd against plain tfjs ops (wasm backend): narrow conv1d in every lane layout
 * (1 → 1, 2 → 2, Cout % 4 = 0), dilation, asymmetric padding, fused leaky ReLU and residual, edges and remainders,
 * batch; leaky ReLU; overlapping band gather.
 */
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../src/backend.js';
import { bandGather, conv1dSmall, leakyRelu, simdAvailable } from '../src/simd/conv1d.js';
import { lcgRand } from './helpers/lcg.js';

const rand = lcgRand;

function maxAbs(a: tf.Tensor, b: tf.Tensor): number {
  expect(a.shape).toEqual(b.shape);
  const x = a.dataSync(), y = b.dataSync();
  let m = 0;
  for (let i = 0; i < x.length; i++) m = Math.max(m, Math.abs(x[i]! - y[i]!));
  return m;
}

beforeAll(async () => { await initBackend(); });

describe('SIMD kernels (wasm)', () => {
  it('run on the wasm backend', () => {
    expect(tf.getBackend()).toBe('wasm');
    expect(simdAvailable()).toBe(true);
  });

  const cases: Array<[n: number, L: number, cin: number, cout: number, k: number, d: number, padL: number, padR: number]> = [
    [2, 1000, 1, 1, 15, 5, 35, 35], [1, 50, 1, 1, 7, 1, 3, 3], [2, 1001, 2, 2, 7, 3, 9, 9], [1, 13, 2, 2, 2, 1, 1, 1],
    [3, 999, 4, 4, 11, 5, 25, 25], [1, 5, 4, 4, 15, 5, 35, 35], [1, 777, 8, 8, 3, 1, 1, 1], [2, 300, 16, 40, 2, 1, 1, 1],
    [1, 64, 3, 12, 3, 2, 0, 4],
  ];
  for (const [n, L, cin, cout, k, d, padL, padR] of cases) {
    it(`conv1d ${cin} → ${cout}, k ${k}, dilation ${d}, pad ${padL}/${padR}, batch ${n}, length ${L}`, () => {
      const before = tf.memory().numTensors;
      const x = tf.tensor3d(rand(n * L * cin, L + k), [n, L, cin]);
      const w = tf.tensor3d(rand(k * cin * cout, 3 + d, 0.6), [k, cin, cout]);
      const b = tf.tensor1d(rand(cout, 5, 0.6));
      const Lout = L + padL + padR - (k - 1) * d;
      const res = tf.tensor3d(rand(n * Lout * cout, 9), [n, Lout, cout]);
      for (const [slope, r] of [[null, null], [0.1, null], [null, res], [0.2, res]] as const) {
        const ref = tf.tidy(() => {
          let y = tf.add(tf.conv1d(tf.pad(x, [[0, 0], [padL, padR], [0, 0]]), w, 1, 'valid', 'NWC', d), b);
          if (slope !== null) y = tf.leakyRelu(y, slope);
          if (r) y = tf.add(y, r);
          return y;
        });
        const got = conv1dSmall(x, w, b, { dilation: d, padL, padR, slope, res: r });
        expect(maxAbs(got, ref)).toBeLessThan(2e-6);
        ref.dispose(); got.dispose();
      }
      [x, w, b, res].forEach((t) => t.dispose());
      expect(tf.memory().numTensors).toBe(before);
    });
  }

  it('leaky ReLU equals tf.leakyRelu bit for bit (odd lengths, signed zeros)', () => {
    const x = tf.tensor1d([...rand(1001, 2, 4), 0, -0, 1e-45, -1e-45]);
    for (const s of [0.1, 0.01]) expect(Array.from(leakyRelu(x, s).dataSync())).toEqual(Array.from(tf.leakyRelu(x, s).dataSync()));
  });

  it('band gather: overlapping, zero-padded bands of every row', () => {
    const n = 2, L = 23, C = 3, m = 7, span = 4, padL = 2, nb = 4;
    const x = tf.tensor3d(rand(n * L * C, 8), [n, L, C]);
    const g = bandGather(x, m, span, padL, nb);
    expect(g.shape).toEqual([n * nb, m + span, C]);
    const xd = x.dataSync(), gd = g.dataSync();
    for (let r = 0; r < n; r++) for (let b = 0; b < nb; b++) for (let t = 0; t < m + span; t++) for (let c = 0; c < C; c++) {
      const src = b * m - padL + t;
      const want = src >= 0 && src < L ? xd[(r * L + src) * C + c]! : 0;
      expect(gd[((r * nb + b) * (m + span) + t) * C + c]).toBe(want);
    }
  });
});

describe('channel statistics (float64)', () => {
  it('per-channel mean and centred sum of squares; band partials combine to the whole', async () => {
    const { channelStats, combineStats } = await import('../src/simd/stats.js');
    const n = 301, C = 36;
    const d = rand(n * C, 12, 3).map((v, i) => v + (i % C) * 0.25 + 100 * (i % 7 === 0 ? 1 : 0));
    const x = tf.tensor2d(d, [n, C]);
    const whole = channelStats(x);
    const a = channelStats(x.slice([0, 0], [100, C])), b = channelStats(x.slice([100, 0], [n - 100, C]));
    const both = combineStats(a, b);
    for (let c = 0; c < C; c++) {
      let s = 0;
      for (let p = 0; p < n; p++) s += d[p * C + c]!;
      const mean = s / n;
      let m2 = 0;
      for (let p = 0; p < n; p++) m2 += (d[p * C + c]! - mean) ** 2;
      expect(whole.mean[c]).toBe(mean);
      expect(whole.m2[c]).toBeCloseTo(m2, 8);
      expect(both.mean[c]).toBeCloseTo(mean, 12);
      expect(Math.abs(both.m2[c]! - m2) / m2).toBeLessThan(1e-12);
    }
    expect(whole.n).toBe(n);
    x.dispose();
  });
});

describe('affine + swish', () => {
  it('y = x·s + b per channel, then y·σ(y): within 3 ulp of float64 (and exact affine without swish)', async () => {
    const { affineSwish } = await import('../src/simd/swish.js');
    const C = 8, n = 4096;
    const xs = rand(n * C, 77, 60);
    const sc = rand(C, 3, 2), sh = rand(C, 4, 2);
    const x = tf.tensor2d(xs, [n, C]), s = tf.tensor1d(sc), b = tf.tensor1d(sh);
    const y = affineSwish(x, s, b).dataSync(), a = affineSwish(x, s, b, false).dataSync();
    let worst = 0;
    for (let i = 0; i < n * C; i++) {
      const v = Math.fround(Math.fround(xs[i]! * sc[i % C]!) + sh[i % C]!);
      expect(a[i]).toBe(v);
      const ref = v / (1 + Math.exp(-v));
      if (Math.abs(ref) < 1e-30) { expect(Math.abs(y[i]! - ref)).toBeLessThan(1e-30); continue; }
      const ulp = 2 ** (Math.floor(Math.log2(Math.abs(ref))) - 23);
      worst = Math.max(worst, Math.abs(y[i]! - ref) / ulp);
    }
    expect(worst).toBeLessThan(3);
    [x, s, b].forEach((t) => t.dispose());
  });
});

describe('Winograd F(4×4, 3×3)', () => {
  it('matrices from the points reproduce 1-D correlation exactly (float64)', async () => {
    const { winogradMatrices, DEFAULT_POINTS } = await import('../src/simd/winograd.js');
    const { AT, G, BT } = winogradMatrices(4, 3, DEFAULT_POINTS);
    const g = [0.3, -1.2, 0.7], d = [1, -2, 0.5, 3, -1.5, 2.5];
    const Gg = G.map((r) => r.reduce((s, v, k) => s + v * g[k]!, 0));
    const Bd = BT.map((r) => r.reduce((s, v, k) => s + v * d[k]!, 0));
    const y = AT.map((r) => r.reduce((s, v, j) => s + v * Gg[j]! * Bd[j]!, 0));
    for (let i = 0; i < 4; i++) expect(y[i]).toBeCloseTo(g[0]! * d[i]! + g[1]! * d[i + 1]! + g[2]! * d[i + 2]!, 12);
  });

  it("same-padded conv + bias (+ residual) within float32 rounding of tf.conv2d; bands give the whole image's values", async () => {
    const { Winograd3x3 } = await import('../src/simd/winograd.js');
    const before = tf.memory().numTensors;
    for (const [H, W, C, Co] of [[13, 10, 8, 4], [9, 7, 4, 12], [20, 33, 32, 32]] as const) {
      const x = tf.tensor4d(rand(H * W * C, H + W), [1, H, W, C]);
      const g = tf.tensor4d(rand(9 * C * Co, 5, 2 / Math.sqrt(9 * C)), [3, 3, C, Co]);
      const b = tf.tensor1d(rand(Co, 6, 0.2));
      const res = tf.tensor4d(rand(H * W * Co, 8), [1, H, W, Co]);
      const ref = tf.tidy(() => tf.add(tf.add(tf.conv2d(x, g, 1, 'same'), b), res));
      const w = new Winograd3x3(g, b);
      const whole = w.apply(x, -1, H, 0, res);
      const r = ref.dataSync(), y = whole.dataSync();
      let e = 0, n = 0;
      for (let i = 0; i < r.length; i++) { e += (y[i]! - r[i]!) ** 2; n += r[i]! ** 2; }
      expect(Math.sqrt(e / n)).toBeLessThan(5e-6);
      // output rows [5, 9) from the rows a band needs
      const bd = Winograd3x3.bandRows(5, 9, H);
      const band = x.slice([0, bd.a, 0, 0], [1, bd.b - bd.a, W, C]) as tf.Tensor4D;
      const rs = res.slice([0, 5, 0, 0], [1, 4, W, Co]) as tf.Tensor4D;
      const part = w.apply(band, bd.t0 - 1 - bd.a, 4, bd.skip, rs);
      expect(Array.from(part.dataSync())).toEqual(Array.from(y.subarray(5 * W * Co, 9 * W * Co)));
      [x, g, b, res, ref, whole, band, part, rs].forEach((t) => t.dispose());
      w.dispose();
    }
    expect(tf.memory().numTensors).toBe(before);
  });

  it('conv(): whole images in bands, batch image by image, residual per band = the single-call result bit for bit', async () => {
    const { Winograd3x3 } = await import('../src/simd/winograd.js');
    const before = tf.memory().numTensors;
    const [N, H, W, C, Co] = [2, 23, 10, 8, 12];
    const x = tf.tensor4d(rand(N * H * W * C, 31), [N, H, W, C]);
    const g = tf.tensor4d(rand(9 * C * Co, 32, 2 / Math.sqrt(9 * C)), [3, 3, C, Co]);
    const b = tf.tensor1d(rand(Co, 33, 0.2));
    const res = tf.tensor4d(rand(N * H * W * Co, 34), [N, H, W, Co]);
    const w = new Winograd3x3(g, b);
    // 36 · 3 tile columns · 8 channels = 864 elements per tile row: 900 → one tile row (4 image rows) per band
    const banded = w.conv(x, res, 900);
    const whole = w.conv(x, res);
    expect(banded.shape).toEqual([N, H, W, Co]);
    expect(Array.from(banded.dataSync())).toEqual(Array.from(whole.dataSync()));
    for (let i = 0; i < N; i++) {
      const xi = x.slice([i, 0, 0, 0], [1, H, W, C]) as tf.Tensor4D;
      const ri = res.slice([i, 0, 0, 0], [1, H, W, Co]) as tf.Tensor4D;
      const one = w.apply(xi, -1, H, 0, ri);
      const wi = whole.slice([i, 0, 0, 0], [1, H, W, Co]);
      expect(Array.from(wi.dataSync())).toEqual(Array.from(one.dataSync()));
      [xi, ri, one, wi].forEach((t) => t.dispose());
    }
    const noRes = w.conv(x, null, 900);
    const ref = tf.tidy(() => tf.add(tf.conv2d(x, g, 1, 'same'), b));
    const r = ref.dataSync(), y = noRes.dataSync();
    let e = 0, n = 0;
    for (let i = 0; i < r.length; i++) { e += (y[i]! - r[i]!) ** 2; n += r[i]! ** 2; }
    expect(Math.sqrt(e / n)).toBeLessThan(5e-6);
    const short = res.slice([0, 0, 0, 0], [N, H - 1, W, Co]) as tf.Tensor4D;
    expect(() => w.conv(x, short)).toThrow(/residual/);
    [x, g, b, res, banded, whole, noRes, ref, short].forEach((t) => t.dispose());
    w.dispose();
    expect(tf.memory().numTensors).toBe(before);
  });
  it('2×2 valid conv (F(4×4, 2×2)) and 3×3 stride-2 convs by space-to-depth match tf.conv2d; bands change nothing', async () => {
    const { WinogradConv, Winograd3x3Stride2 } = await import('../src/simd/winograd.js');
    const before = tf.memory().numTensors;
    const relL2 = (a: Float32Array | Int32Array | Uint8Array, b: Float32Array | Int32Array | Uint8Array): number => {
      let e = 0, n = 0;
      for (let i = 0; i < a.length; i++) { e += (a[i]! - b[i]!) ** 2; n += b[i]! ** 2; }
      return Math.sqrt(e / n);
    };
    // 2×2 'valid'
    {
      const [H, W, C, Co] = [11, 9, 8, 12];
      const x = tf.tensor4d(rand(H * W * C, 41), [1, H, W, C]);
      const g = tf.tensor4d(rand(4 * C * Co, 42, 2 / Math.sqrt(4 * C)), [2, 2, C, Co]);
      const b = tf.tensor1d(rand(Co, 43, 0.2));
      const w = new WinogradConv(g, b);
      const y = w.conv(x);
      const ref = tf.tidy(() => tf.add(tf.conv2d(x, g, 1, 'valid'), b));
      expect(y.shape).toEqual(ref.shape);
      expect(relL2(y.dataSync(), ref.dataSync())).toBeLessThan(5e-6);
      const yb = w.conv(x, null, 300); // one tile row per band
      expect(Array.from(yb.dataSync())).toEqual(Array.from(y.dataSync()));
      [x, g, b, y, ref, yb].forEach((t) => t.dispose());
      w.dispose();
    }
    // stride 2, pad 1, two convs sharing the input, odd and even sizes, batch 2
    for (const [N, H, W, C] of [[2, 13, 10, 4], [1, 16, 7, 8]] as const) {
      const couts = [8, 4];
      const gs = couts.map((co, k) => rand(9 * C * co, 50 + k, 2 / Math.sqrt(9 * C)));
      const bs = couts.map((co, k) => rand(co, 60 + k, 0.2));
      const x = tf.tensor4d(rand(N * H * W * C, 44), [N, H, W, C]);
      const conv = new Winograd3x3Stride2(gs, C, couts, bs);
      const convBanded = new Winograd3x3Stride2(gs, C, couts, bs, { bandElements: 25 * 2 * 4 * C });
      const ys = conv.apply(x);
      const yb = convBanded.apply(x);
      couts.forEach((co, k) => {
        const ref = tf.tidy(() => tf.add(tf.conv2d(tf.pad(x, [[0, 0], [1, 1], [1, 1], [0, 0]]), tf.tensor4d(gs[k]!, [3, 3, C, co]), 2, 'valid'), tf.tensor1d(bs[k]!)));
        expect(ys[k]!.shape).toEqual(ref.shape);
        expect(relL2(ys[k]!.dataSync(), ref.dataSync())).toBeLessThan(5e-6);
        expect(Array.from(yb[k]!.dataSync())).toEqual(Array.from(ys[k]!.dataSync()));
        ref.dispose();
      });
      [x, ...ys, ...yb].forEach((t) => t.dispose());
      conv.dispose(); convBanded.dispose();
    }
    expect(tf.memory().numTensors).toBe(before);
  });
  it('the filter transform written straight in the GEMM layout equals the row-major U packed by packTensor (threads split it by channel)', async () => {
    const { runCustom } = await import('../src/simd/heap.js');
    const { packTensor } = await import('../src/simd/gemm.js');
    const before = tf.memory().numTensors;
    for (const [cin, cout] of [[12, 16], [40, 24]] as const) {
      const g = tf.tensor4d(rand(9 * cin * cout, 90), [3, 3, cin, cout]);
      const attrs = { points: [0, -1, 1, 0.5, -2], r: 3, pad: 1 };
      const rowMajor = runCustom('MucodecWinoFilter', [g], { ...attrs, packed: false }) as unknown as tf.Tensor2D[];
      const packed = runCustom('MucodecWinoFilter', [g], { ...attrs, packed: true }) as unknown as tf.Tensor2D[];
      expect(packed).toHaveLength(36);
      rowMajor.forEach((u, q) => {
        const ref = packTensor(u);
        expect(packed[q]!.shape).toEqual([cin + 1, cout]);
        expect(Array.from(packed[q]!.dataSync())).toEqual(Array.from(ref.packed.dataSync()));
        ref.packed.dispose();
      });
      [g, ...rowMajor, ...packed].forEach((t) => t.dispose());
    }
    expect(tf.memory().numTensors).toBe(before);
  });
  it('stride 2: the ∞ coefficients skip the phases the zero taps leave out (81 of 100 block products), same bytes as the full products', async () => {
    const { WinogradConv, Winograd3x3Stride2, stride2LiveBlocks, DEFAULT_POINTS_R2 } = await import('../src/simd/winograd.js');
    const before = tf.memory().numTensors;
    const live = stride2LiveBlocks(DEFAULT_POINTS_R2);
    expect(live).toHaveLength(25);
    expect(live.reduce((s, b) => s + (b ? b.taps : 4), 0)).toBe(81);
    // ∞ is the last point: its row keeps phases p = 0 (blocks 0, 1), its column q = 0 (blocks 0, 2), the corner block 0
    expect(live[4 * 5 + 0]).toEqual({ first: 0, stride: 1, taps: 2 });
    expect(live[0 * 5 + 4]).toEqual({ first: 0, stride: 2, taps: 2 });
    expect(live[24]).toEqual({ first: 0, stride: 1, taps: 1 });
    for (const C of [4, 12]) {
      const [H, W, co] = [10, 13, 8];
      const s2 = new Winograd3x3Stride2([rand(9 * C * co, 70, 2 / Math.sqrt(9 * C))], C, [co], [rand(co, 71, 0.2)]);
      const x = tf.tensor4d(rand(H * W * 4 * C, 72), [1, H, W, 4 * C]);
      const full = new WinogradConv(s2.filter, s2.bias, { pad: 0 });
      const skip = new WinogradConv(s2.filter, s2.bias, { pad: 0, live: { w: C, blocks: live } });
      const [a, b] = [full.conv(x), skip.conv(x)];
      expect(Array.from(b.dataSync())).toEqual(Array.from(a.dataSync()));
      [x, a, b].forEach((t) => t.dispose());
      full.dispose(); skip.dispose(); s2.dispose();
    }
    const [g0, b0] = [tf.zeros([2, 2, 8, 4]) as tf.Tensor4D, tf.zeros([4]) as tf.Tensor1D];
    expect(() => new WinogradConv(g0, b0, { pad: 0, live: { w: 4, blocks: [{ first: 1, stride: 1, taps: 2 }] } })).toThrow(/live blocks for 1 coefficients, expected 25/);
    expect(() => new WinogradConv(g0, b0, { pad: 0, live: { w: 4, blocks: live.map((b) => b && { ...b, first: 1 }) } })).toThrow(/do not fit 8 channels/);
    g0.dispose(); b0.dispose();
    expect(tf.memory().numTensors).toBe(before);
  });
});
