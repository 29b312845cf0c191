import { beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend, currentBackend } from '../src/backend.js';
import { ReplayNoise, SeededNoise } from '../src/noise.js';
import { Params } from '../src/params.js';
import { Conv1d, Conv2d, ConvTranspose1d } from '../layers/conv.js';
import { Linear } from '../layers/linear.js';
import { groupNormChannelsLast, layerNorm } from '../layers/norm.js';
import { multiHeadAttention } from '../layers/attention.js';
import { foldWeightNorm, permute } from '../layers/host.js';
import type { HostTensor } from '../src/hosttensor.js';

const rnd = new SeededNoise(7);
function ht(shape: number[]): HostTensor {
  return { dtype: 'float32', shape, data: rnd.randn(shape) };
}
function maxDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

beforeAll(async () => { await initBackend(); });

describe('backend', () => {
  it('chooses a backend and reports why the others were skipped', () => {
    const r = currentBackend()!;
    expect(['tensorflow-gpu', 'tensorflow', 'webgpu', 'wasm', 'cpu']).toContain(r.chosen);
    expect(tf.getBackend()).toBe(r.tfName);
    for (const s of r.skipped) expect(s.reason.length).toBeGreaterThan(0);
  });
  it('rejects an unknown backend name clearly', async () => {
    await expect(initBackend('tpu')).rejects.toThrow(/unknown backend "tpu"/);
  });
});

describe('noise', () => {
  it('a seed reproduces its stream, another seed differs, and draws are standard normal', () => {
    const a = new SeededNoise(42).randn([4, 1000]);
    const b = new SeededNoise(42).randn([4, 1000]);
    const c = new SeededNoise(43).randn([4, 1000]);
    expect(Array.from(a)).toEqual(Array.from(b));
    expect(maxDiff(a, c)).toBeGreaterThan(0.1);
    const n = new SeededNoise(1).randn([200000]);
    let s = 0, s2 = 0;
    for (const v of n) { s += v; s2 += v * v; }
    expect(Math.abs(s / n.length)).toBeLessThan(0.01);
    expect(Math.abs(s2 / n.length - 1)).toBeLessThan(0.02);
  });
  it('replays recorded draws in order and rejects a shape mismatch', () => {
    const d1 = ht([2, 3]), d2 = ht([5]);
    const r = new ReplayNoise([d1, d2]);
    expect(Array.from(r.randn([2, 3]))).toEqual(Array.from(d1.data as Float32Array));
    expect(() => r.randn([4], 'eps')).toThrow(/eps #2 wants shape \(4\) but the recorded draw is \(5\)/);
  });
});

describe('params', () => {
  it('names missing and mis-shaped tensors', () => {
    const p = new Params(new Map([['a.weight', ht([2, 3])]]), '', 'test.safetensors');
    expect(() => p.get('a.bias')).toThrow(/test.safetensors: missing tensor "a.bias"/);
    expect(() => p.get('a.weight', [3, 2])).toThrow(/shape \(2, 3\), expected \(3, 2\)/);
    expect(p.sub('a.').get('weight', [2, -1]).shape).toEqual([2, 3]);
  });
});

describe('layers (against direct loops)', () => {
  it('Linear', () => {
    const w = ht([5, 4]), b = ht([5]), x = ht([3, 4]);
    const lin = new Linear(new Params(new Map([['l.weight', w], ['l.bias', b]])), 'l', 4, 5);
    const y = tf.tidy(() => lin.apply(tf.tensor(x.data as Float32Array, [3, 4])).dataSync());
    const ref = new Float32Array(15);
    for (let i = 0; i < 3; i++) for (let o = 0; o < 5; o++) {
      let s = (b.data as Float32Array)[o]!;
      for (let k = 0; k < 4; k++) s += (x.data as Float32Array)[i * 4 + k]! * (w.data as Float32Array)[o * 4 + k]!;
      ref[i * 5 + o] = s;
    }
    expect(maxDiff(y, ref)).toBeLessThan(1e-5);
    lin.dispose();
  });

  it('Conv2d with PyTorch padding and stride', () => {
    const [n, ci, co, h, wd, k] = [2, 3, 4, 7, 6, 3];
    const w = ht([co, ci, k, k]), b = ht([co]), x = ht([n, ci, h, wd]);
    const conv = new Conv2d(new Params(new Map([['c.weight', w], ['c.bias', b]])), 'c', { stride: 2, padding: [0, 1, 0, 1] });
    const y = tf.tidy(() => {
      const xl = tf.transpose(tf.tensor4d(x.data as Float32Array, [n, ci, h, wd]), [0, 2, 3, 1]) as tf.Tensor4D;
      return tf.transpose(conv.apply(xl), [0, 3, 1, 2]);
    });
    const oh = Math.floor((h + 1 - k) / 2) + 1, ow = Math.floor((wd + 1 - k) / 2) + 1;
    expect(y.shape).toEqual([n, co, oh, ow]);
    const X = x.data as Float32Array, W = w.data as Float32Array;
    const ref = new Float32Array(n * co * oh * ow);
    for (let bi = 0; bi < n; bi++) for (let o = 0; o < co; o++) for (let i = 0; i < oh; i++) for (let j = 0; j < ow; j++) {
      let s = (b.data as Float32Array)[o]!;
      for (let c = 0; c < ci; c++) for (let u = 0; u < k; u++) for (let v = 0; v < k; v++) {
        const yy = i * 2 + u, xx = j * 2 + v;
        if (yy < h && xx < wd) s += X[((bi * ci + c) * h + yy) * wd + xx]! * W[((o * ci + c) * k + u) * k + v]!;
      }
      ref[((bi * co + o) * oh + i) * ow + j] = s;
    }
    expect(maxDiff(y.dataSync(), ref)).toBeLessThan(1e-4);
    y.dispose(); conv.dispose();
  });

  it('Conv1d (dilated, and depthwise) and ConvTranspose1d with PyTorch output lengths', () => {
    const [n, c, len] = [2, 3, 11];
    const x = ht([n, len, c]); // NWC
    const X = x.data as Float32Array;
    // dilated full conv, k=3, dilation 2, padding 2
    const w = ht([4, c, 3]), b = ht([4]);
    const conv = new Conv1d(new Params(new Map([['c.weight', w], ['c.bias', b]])), 'c', { padding: 2, dilation: 2 });
    const y = tf.tidy(() => conv.apply(tf.tensor3d(X, [n, len, c])).dataSync());
    const ref = new Float32Array(n * len * 4);
    for (let bi = 0; bi < n; bi++) for (let t = 0; t < len; t++) for (let o = 0; o < 4; o++) {
      let s = (b.data as Float32Array)[o]!;
      for (let ci = 0; ci < c; ci++) for (let kk = 0; kk < 3; kk++) {
        const tt = t - 2 + kk * 2;
        if (tt >= 0 && tt < len) s += X[(bi * len + tt) * c + ci]! * (w.data as Float32Array)[(o * c + ci) * 3 + kk]!;
      }
      ref[(bi * len + t) * 4 + o] = s;
    }
    expect(maxDiff(y, ref)).toBeLessThan(1e-4);
    // depthwise k=5, padding 2, no bias
    const wd = ht([c, 1, 5]);
    const dw = new Conv1d(new Params(new Map([['d.weight', wd]])), 'd', { padding: 2, groups: c, bias: false });
    const yd = tf.tidy(() => dw.apply(tf.tensor3d(X, [n, len, c])).dataSync());
    const refd = new Float32Array(n * len * c);
    for (let bi = 0; bi < n; bi++) for (let t = 0; t < len; t++) for (let ci = 0; ci < c; ci++) {
      let s = 0;
      for (let kk = 0; kk < 5; kk++) { const tt = t - 2 + kk; if (tt >= 0 && tt < len) s += X[(bi * len + tt) * c + ci]! * (wd.data as Float32Array)[ci * 5 + kk]!; }
      refd[(bi * len + t) * c + ci] = s;
    }
    expect(maxDiff(yd, refd)).toBeLessThan(1e-4);
    // transposed: k=10, stride 5, padding 2 → (L-1)*5 - 4 + 10 = 5L + 1
    const wt = ht([c, 2, 10]), bt = ht([2]);
    const ct = new ConvTranspose1d(new Params(new Map([['t.weight', wt], ['t.bias', bt]])), 't', { stride: 5, padding: 2 });
    const yt = tf.tidy(() => ct.apply(tf.tensor3d(X, [n, len, c])));
    expect(yt.shape).toEqual([n, 5 * len + 1, 2]);
    const full = (len - 1) * 5 + 10;
    const reft = new Float32Array(n * full * 2);
    for (let bi = 0; bi < n; bi++) for (let t = 0; t < len; t++) for (let ci = 0; ci < c; ci++) for (let o = 0; o < 2; o++) for (let kk = 0; kk < 10; kk++) {
      reft[(bi * full + t * 5 + kk) * 2 + o]! += X[(bi * len + t) * c + ci]! * (wt.data as Float32Array)[(ci * 2 + o) * 10 + kk]!;
    }
    const ytd = yt.dataSync();
    let m = 0;
    for (let bi = 0; bi < n; bi++) for (let t = 0; t < 5 * len + 1; t++) for (let o = 0; o < 2; o++) {
      m = Math.max(m, Math.abs(ytd[(bi * (5 * len + 1) + t) * 2 + o]! - (reft[(bi * full + t + 2) * 2 + o]! + (bt.data as Float32Array)[o]!)));
    }
    expect(m).toBeLessThan(1e-4);
    yt.dispose(); conv.dispose(); dw.dispose(); ct.dispose();
  });

  it('layerNorm and groupNorm', () => {
    const x = ht([2, 5, 8]);
    const X = x.data as Float32Array;
    const y = tf.tidy(() => layerNorm(tf.tensor(X, [2, 5, 8]), 1e-6).dataSync());
    for (let r = 0; r < 10; r++) {
      const row = X.subarray(r * 8, r * 8 + 8);
      const mu = row.reduce((a, v) => a + v, 0) / 8;
      const va = row.reduce((a, v) => a + (v - mu) ** 2, 0) / 8;
      for (let i = 0; i < 8; i++) expect(Math.abs(y[r * 8 + i]! - (row[i]! - mu) / Math.sqrt(va + 1e-6))).toBeLessThan(1e-5);
    }
    // groupNorm: channels-last (N, HW, C=8), 4 groups
    const g = tf.tidy(() => groupNormChannelsLast(tf.tensor(X, [2, 5, 8]), 4, 1e-6, tf.ones([8]), tf.zeros([8])).dataSync());
    for (let bi = 0; bi < 2; bi++) for (let gi = 0; gi < 4; gi++) {
      const vals: number[] = [];
      for (let t = 0; t < 5; t++) for (let c = gi * 2; c < gi * 2 + 2; c++) vals.push(X[(bi * 5 + t) * 8 + c]!);
      const mu = vals.reduce((a, v) => a + v, 0) / vals.length;
      const va = vals.reduce((a, v) => a + (v - mu) ** 2, 0) / vals.length;
      for (let t = 0; t < 5; t++) for (let c = gi * 2; c < gi * 2 + 2; c++) {
        expect(Math.abs(g[(bi * 5 + t) * 8 + c]! - (X[(bi * 5 + t) * 8 + c]! - mu) / Math.sqrt(va + 1e-6))).toBeLessThan(1e-5);
      }
    }
  });

  it('multi-head attention per head equals the direct formula, and leaks nothing', () => {
    const [b, t, h, dh] = [2, 5, 3, 4];
    const q = ht([b, t, h * dh]), k = ht([b, t, h * dh]), v = ht([b, t, h * dh]);
    const before = tf.memory().numTensors;
    const r = tf.tidy(() => {
      const { out, probs } = multiHeadAttention(tf.tensor3d(q.data as Float32Array, [b, t, h * dh]), tf.tensor3d(k.data as Float32Array, [b, t, h * dh]), tf.tensor3d(v.data as Float32Array, [b, t, h * dh]), h, { returnProbs: true });
      return [out, probs!];
    });
    const out = r[0]!.dataSync();
    const Q = q.data as Float32Array, K = k.data as Float32Array, V = v.data as Float32Array;
    for (let bi = 0; bi < b; bi++) for (let hi = 0; hi < h; hi++) for (let i = 0; i < t; i++) {
      const s: number[] = [];
      for (let j = 0; j < t; j++) {
        let d = 0;
        for (let c = 0; c < dh; c++) d += Q[(bi * t + i) * h * dh + hi * dh + c]! * K[(bi * t + j) * h * dh + hi * dh + c]!;
        s.push(d / Math.sqrt(dh));
      }
      const mx = Math.max(...s);
      const e = s.map((x) => Math.exp(x - mx));
      const z = e.reduce((a, x) => a + x, 0);
      for (let c = 0; c < dh; c++) {
        let o = 0;
        for (let j = 0; j < t; j++) o += (e[j]! / z) * V[(bi * t + j) * h * dh + hi * dh + c]!;
        expect(Math.abs(out[(bi * t + i) * h * dh + hi * dh + c]! - o)).toBeLessThan(1e-5);
      }
    }
    expect(r[1]!.shape).toEqual([b, h, t, t]);
    tf.dispose(r);
    expect(tf.memory().numTensors).toBe(before);
  });

  it('host permute and weight-norm folding', () => {
    const x = ht([2, 3, 4]);
    const p = permute(x.data as Float32Array, [2, 3, 4], [2, 0, 1]);
    expect(p.shape).toEqual([4, 2, 3]);
    expect(p.data[(3 * 2 + 1) * 3 + 2]).toBe((x.data as Float32Array)[(1 * 3 + 2) * 4 + 3]);
    const g = ht([2, 1, 1]), v = ht([2, 3, 1]);
    const w = foldWeightNorm(g, v).data as Float32Array;
    for (let o = 0; o < 2; o++) {
      const vv = (v.data as Float32Array).subarray(o * 3, o * 3 + 3);
      const nrm = Math.hypot(...vv);
      for (let i = 0; i < 3; i++) expect(Math.abs(w[o * 3 + i]! - (g.data as Float32Array)[o]! * vv[i]! / nrm)).toBeLessThan(1e-6);
    }
  });
});
