/**
 * 3×3, stride-1, zero-pad-1 convolution (NHWC, PyTorch cross-correlation) by Winograd's minimal filtering
 * F(m×m, 3×3) (Lavin & Gray 2015, "Fast Algorithms for Convolutional Neural Networks"):
 *   Y = Aᵀ [ (G g Gᵀ) ⊙ (Bᵀ d B) ] A      per (m+2)×(m+2) input tile d, m×m output tile Y
 * so the multiply-adds of the channel contraction drop from 9 per output to (m+2)²/m² per output: 2.25× fewer
 * for F(2,3), 4× fewer for F(4,3). Built from tfjs ops:
 *   input transform  Bᵀ d B : one depthwise conv (kernel (m+2)², stride m, channel multiplier (m+2)²) → a
 *                             transpose to ((m+2)², tiles, C);
 *   channel contraction     : (m+2)² plain 2-D matMuls (tiles, Cin) @ U_q (Cin, Cout), U = G g Gᵀ folded on the
 *                             host in float64 once;
 *   output transform  Aᵀ M A: one (m², (m+2)²) @ ((m+2)², tiles·Cout) matMul, then a transpose back to NHWC
 *                             (a run-copy on wasm, src/workers/wasm_kernels.ts).
 * The image is processed in bands of rows (bounded memory: the transformed input is (m+2)²/m² ≈ 2.25× the band).
 *
 * Variants: F(2,3), F(3,3) and F(4,3) on Lavin's points (0, ±1, ±2) and F(3,3)/F(4,3) on 0, ±1, ±1/2 ('h', smaller
 * transform entries, more accurate). Accuracy (float32, 512 → 512 channels, random data, relative L2 against a
 * float64 direct sum): direct conv 1.2e-6, F(2,3) 0.7e-6, F(4,3) 2.8e-6. Speed on tfjs-wasm (one thread,
 * 512 → 512 at 256 × 64, best of 5): direct 5.0 s, F(2,3) 3.5 s, F(3,3) 2.5 s, F(4,3) 1.8 s.
 */
import * as tf from '@tensorflow/tfjs-core';
import '../src/chained_ops.js';

export type WinogradVariant = 'F2' | 'F3' | 'F3h' | 'F4' | 'F4h';

/** A 1-D minimal-filtering algorithm F(m, r): n = m + r − 1 points; BT (n×n), G (n×r), AT (m×n). */
export interface Transform { m: number; BT: number[][]; G: number[][]; AT: number[][] }

/** Lavin & Gray's F(2,3) and F(4,3) matrices (interpolation points 0, ±1 / 0, ±1, ±2). */
export const TRANSFORMS: Record<WinogradVariant, Transform> = {
  F2: {
    m: 2,
    BT: [[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]],
    G: [[1, 0, 0], [1 / 2, 1 / 2, 1 / 2], [1 / 2, -1 / 2, 1 / 2], [0, 0, 1]],
    AT: [[1, 1, 1, 0], [0, 1, -1, -1]],
  },
  F4: {
    m: 4,
    BT: [[4, 0, -5, 0, 1, 0], [0, -4, -4, 1, 1, 0], [0, 4, -4, -1, 1, 0], [0, -2, -1, 2, 1, 0], [0, 2, -1, -2, 1, 0], [0, 4, 0, -5, 0, 1]],
    G: [[1 / 4, 0, 0], [-1 / 6, -1 / 6, -1 / 6], [-1 / 6, 1 / 6, -1 / 6], [1 / 24, 1 / 12, 1 / 6], [1 / 24, -1 / 12, 1 / 6], [0, 0, 1]],
    AT: [[1, 1, 1, 1, 1, 0], [0, 1, -1, 2, -2, 0], [0, 1, 1, 4, 4, 0], [0, 1, -1, 8, -8, 1]],
  },
  /** F(3,3) on the points 0, ±1, 2, ∞ (matrices from the Toom–Cook construction) */
  F3: {
    m: 3,
    BT: [[2, -1, -2, 1, 0], [0, -2, -1, 1, 0], [0, 2, -3, 1, 0], [0, -1, 0, 1, 0], [0, 2, -1, -2, 1]],
    G: [[1 / 2, 0, 0], [-1 / 2, -1 / 2, -1 / 2], [-1 / 6, 1 / 6, -1 / 6], [1 / 6, 1 / 3, 2 / 3], [0, 0, 1]],
    AT: [[1, 1, 1, 1, 0], [0, 1, -1, 2, 0], [0, 1, 1, 4, 1]],
  },
  /** F(3,3) on the points 0, ±1, 1/2, ∞ */
  F3h: {
    m: 3,
    BT: [[1 / 2, -1, -1 / 2, 1, 0], [0, -1 / 2, 1 / 2, 1, 0], [0, 1 / 2, -3 / 2, 1, 0], [0, -1, 0, 1, 0], [0, 1 / 2, -1, -1 / 2, 1]],
    G: [[2, 0, 0], [1, 1, 1], [-1 / 3, 1 / 3, -1 / 3], [-8 / 3, -4 / 3, -2 / 3], [0, 0, 1]],
    AT: [[1, 1, 1, 1, 0], [0, 1, -1, 1 / 2, 0], [0, 1, 1, 1 / 4, 1]],
  },
  /** F(4,3) on the points 0, ±1, ±1/2, ∞ (smaller transform entries: better float32 accuracy) */
  F4h: {
    m: 4,
    BT: [[1, 0, -5, 0, 4, 0], [0, -1, -1, 4, 4, 0], [0, 1, -1, -4, 4, 0], [0, -1, -2, 1, 2, 0], [0, 1, -2, -1, 2, 0], [0, 1, 0, -5, 0, 4]],
    G: [[1, 0, 0], [1 / 6, 1 / 6, 1 / 6], [1 / 6, -1 / 6, 1 / 6], [-4 / 3, -2 / 3, -1 / 3], [-4 / 3, 2 / 3, -1 / 3], [0, 0, 1 / 4]],
    AT: [[1, 1, 1, 1, 1, 0], [0, 1, -1, 1 / 2, -1 / 2, 0], [0, 1, 1, 1 / 4, 1 / 4, 0], [0, 1, -1, 1 / 8, -1 / 8, 1]],
  },
};

/**
 * Two-tap algorithms for the phases of a stride-2 conv: F(4,2) on the points 0, ±1, 1/2, ∞ (the F3h point set)
 * and the trivial one-tap "F(4,1)" (identity).
 */
const F4R2: Transform = {
  m: 4,
  BT: [[1 / 2, -1, -1 / 2, 1, 0], [0, -1 / 2, 1 / 2, 1, 0], [0, 1 / 2, -3 / 2, 1, 0], [0, -1, 0, 1, 0], [0, 1 / 2, -1, -1 / 2, 1]],
  G: [[2, 0], [1, 1], [-1 / 3, 1 / 3], [-8 / 3, -4 / 3], [0, 1]],
  AT: [[1, 1, 1, 1, 0], [0, 1, -1, 1 / 2, 0], [0, 1, 1, 1 / 4, 0], [0, 1, -1, 1 / 8, 1]],
};
const IDENT4: Transform = { m: 4, BT: [[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]], G: [[1], [1], [1], [1]], AT: [[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]] };

export interface WinogradOptions {
  variant?: WinogradVariant;
  /** upper bound on the transformed-input elements of one band (default 2^24 = 64 MB) */
  bandElements?: number;
}

/**
 * 'valid' 2-D correlation of an rh×rw kernel (HWIO) by the tensor product of two 1-D algorithms (rows: th, columns:
 * tw). Works on one pre-padded band (1, nt·mh + rh − 1, ntw·mw + rw − 1, Cin) → (1, nt·mh, ntw·mw, Cout), no bias.
 */
class WinogradCore {
  readonly ah: number;
  readonly aw: number;
  readonly inFilter: tf.Tensor4D;
  readonly U: tf.Tensor2D[];
  readonly outT: tf.Tensor2D;

  /** `kernels`: one or more HWIO kernels (rh, rw, Cin, Cout_k) sharing the input; their outputs are concatenated on channels */
  constructor(kernels: Float32Array[], readonly rh: number, readonly rw: number, readonly cin: number, readonly couts: number[], readonly th: Transform, readonly tw: Transform) {
    const ah = th.m + rh - 1, aw = tw.m + rw - 1;
    if (th.BT.length !== ah || tw.BT.length !== aw || th.G[0]!.length !== rh || tw.G[0]!.length !== rw) throw new Error('winograd: transform does not match the kernel size');
    this.ah = ah;
    this.aw = aw;
    const q = ah * aw;
    const f = new Float32Array(ah * aw * cin * q);
    for (let i = 0; i < ah; i++) for (let j = 0; j < aw; j++) for (let k = 0; k < ah; k++) for (let l = 0; l < aw; l++) {
      const v = th.BT[k]![i]! * tw.BT[l]![j]!;
      if (v === 0) continue;
      for (let c = 0; c < cin; c++) f[((i * aw + j) * cin + c) * q + k * aw + l] = v;
    }
    this.inFilter = tf.tensor4d(f, [ah, aw, cin, q]);
    // U_kl[ci, co] = Σ_ij Gh[k][i] Gw[l][j] g[i, j, ci, co] in float64, rounded once; kernels side by side in co
    const cout = couts.reduce((a, b) => a + b, 0);
    this.U = [];
    for (let k = 0; k < ah; k++) for (let l = 0; l < aw; l++) {
      const u = new Float32Array(cin * cout);
      let c0 = 0;
      kernels.forEach((g, kk) => {
        const co = couts[kk]!;
        if (g.length !== rh * rw * cin * co) throw new Error(`winograd: kernel ${kk} has ${g.length} values, expected ${rh}·${rw}·${cin}·${co}`);
        const acc = new Float64Array(cin * co);
        for (let i = 0; i < rh; i++) for (let j = 0; j < rw; j++) {
          const c = th.G[k]![i]! * tw.G[l]![j]!;
          if (c === 0) continue;
          const off = (i * rw + j) * cin * co;
          for (let e = 0; e < cin * co; e++) acc[e] += c * g[off + e]!;
        }
        for (let ci = 0; ci < cin; ci++) for (let o = 0; o < co; o++) u[ci * cout + c0 + o] = acc[ci * co + o]!;
        c0 += co;
      });
      this.U.push(tf.tensor2d(u, [cin, cout]));
    }
    const mh = th.m, mw = tw.m;
    const o = new Float32Array(mh * mw * q);
    for (let r = 0; r < mh; r++) for (let s = 0; s < mw; s++) for (let k = 0; k < ah; k++) for (let l = 0; l < aw; l++) {
      o[(r * mw + s) * q + k * aw + l] = th.AT[r]![k]! * tw.AT[s]![l]!;
    }
    this.outT = tf.tensor2d(o, [mh * mw, q]);
  }

  get cout(): number {
    return this.couts.reduce((a, b) => a + b, 0);
  }

  /** transformed-input elements per tile row of `ntw` tiles */
  perTileRow(ntw: number): number {
    return ntw * this.cin * this.ah * this.aw;
  }

  band(xp: tf.Tensor4D, nt: number, ntw: number): tf.Tensor4D {
    const { ah, aw, cin } = this;
    const mh = this.th.m, mw = this.tw.m;
    const q = ah * aw;
    const cout = this.cout;
    const tiles = nt * ntw;
    return tf.tidy(() => {
      const v = tf.depthwiseConv2d(xp, this.inFilter, [mh, mw], 'valid'); // (1, nt, ntw, Cin·q), channel c·q + k·aw + l
      const vt = tf.transpose(v.reshape([tiles, cin, q]), [2, 0, 1]); // (q, tiles, Cin)
      const ms: tf.Tensor2D[] = [];
      for (let k = 0; k < q; k++) ms.push(tf.matMul(vt.slice([k, 0, 0], [1, tiles, cin]).reshape([tiles, cin]) as tf.Tensor2D, this.U[k]!));
      const M = tf.concat(ms, 0).reshape([q, tiles * cout]);
      const Y = tf.matMul(this.outT, M as tf.Tensor2D).reshape([mh, mw, nt, ntw, cout]); // (r, s, ti, tj, c)
      return tf.transpose(Y, [2, 0, 3, 1, 4]).reshape([1, nt * mh, ntw * mw, cout]) as tf.Tensor4D;
    });
  }

  dispose(): void {
    this.inFilter.dispose();
    for (const u of this.U) u.dispose();
    this.outT.dispose();
  }
}

/** Split the channels of y into parts of `sizes`, add biases, apply activations; y is disposed. */
function epilogue(y: tf.Tensor4D, sizes: number[], biases: Array<tf.Tensor1D | null>, acts: Array<'linear' | 'relu'>): tf.Tensor4D[] {
  const out = tf.tidy(() => {
    const parts = sizes.length === 1 ? [y] : tf.split(y, sizes, 3);
    return parts.map((p, i) => {
      let z = biases[i] ? tf.add(p, biases[i]!) : p;
      if (acts[i] === 'relu') z = tf.relu(z);
      return z as tf.Tensor4D;
    });
  });
  if (!out.includes(y)) y.dispose();
  return out;
}

/** Run `bandFn` over bands of tile rows of every batch row and stitch the outputs (N, rows, cols, ·) per part. */
function runBands(n: number, th: number, bandTiles: number, bandFn: (b: number, t0: number, nt: number) => tf.Tensor4D[]): tf.Tensor4D[] {
  const perBatch: tf.Tensor4D[][] = [];
  try {
    for (let b = 0; b < n; b++) {
      const bands: tf.Tensor4D[][] = [];
      try {
        for (let t0 = 0; t0 < th; t0 += bandTiles) bands.push(bandFn(b, t0, Math.min(bandTiles, th - t0)));
        const nParts = bands[0]!.length;
        perBatch.push(Array.from({ length: nParts }, (_, k) => (bands.length === 1 ? bands[0]![k]! : tf.concat(bands.map((x) => x[k]!), 1))));
      } finally {
        if (bands.length > 1) for (const x of bands) for (const t of x) t.dispose();
      }
    }
    if (perBatch.length === 1) return perBatch[0]!;
    return perBatch[0]!.map((_, k) => tf.concat(perBatch.map((x) => x[k]!), 0));
  } finally {
    if (perBatch.length > 1) for (const x of perBatch) for (const t of x) t.dispose();
  }
}

/**
 * Image b of x (N, H, W, C), zero-padded by 1 row/column before and `below` / `right` after: made once per image
 * while runBands walks that image's bands (the previous image's copy is freed then, the last one by dispose()).
 */
function paddedImages(x: tf.Tensor4D, below: number, right: number): { get(b: number): tf.Tensor4D; dispose(): void } {
  const [n, H, W, C] = x.shape;
  let xp: tf.Tensor4D | null = null;
  let xpB = -1;
  return {
    get(b: number): tf.Tensor4D {
      if (xpB !== b || !xp) {
        xp?.dispose();
        xp = tf.tidy(() => tf.pad(n === 1 ? x : x.slice([b, 0, 0, 0], [1, H, W, C]), [[0, 0], [1, below], [1, right], [0, 0]]) as tf.Tensor4D);
        xpB = b;
      }
      return xp;
    },
    dispose(): void { xp?.dispose(); xp = null; },
  };
}

export class Conv3x3Winograd {
  readonly m: number;
  readonly core: WinogradCore;
  readonly bias: tf.Tensor1D | null;
  readonly bandElements: number;

  /**
   * `filterHWIO`: (3, 3, Cin, Cout) row-major, tap (i, j) of the kernel multiplies input (y + i − 1, x + j − 1)
   * (cross-correlation, as tf.conv2d / torch). `bias`: (Cout) or null.
   */
  constructor(filterHWIO: Float32Array, readonly cin: number, readonly cout: number, bias: Float32Array | null, opts: WinogradOptions = {}) {
    const T = TRANSFORMS[opts.variant ?? 'F4'];
    if (filterHWIO.length !== 9 * cin * cout) throw new Error(`winograd: filter has ${filterHWIO.length} values, expected 3·3·${cin}·${cout}`);
    this.m = T.m;
    this.core = new WinogradCore([filterHWIO], 3, 3, cin, [cout], T, T);
    this.bandElements = opts.bandElements ?? 1 << 24;
    this.bias = bias ? tf.tensor1d(bias) : null;
  }

  /** 'same' 3×3 conv of x (N, H, W, Cin) → (N, H, W, Cout), + bias, optional ReLU. */
  apply(x: tf.Tensor4D, activation: 'linear' | 'relu' = 'linear'): tf.Tensor4D {
    const [n, H, W, C] = x.shape;
    if (C !== this.cin) throw new Error(`winograd: input has ${C} channels, expected ${this.cin}`);
    const m = this.m;
    const th = Math.ceil(H / m), tw = Math.ceil(W / m);
    const bandTiles = Math.max(1, Math.min(th, Math.floor(this.bandElements / this.core.perTileRow(tw))));
    // zero padding: 1 on every side + bottom/right up to whole tiles
    const images = paddedImages(x, th * m - H + 1, tw * m - W + 1);
    try {
      return runBands(n, th, bandTiles, (b, t0, nt) => {
        const xp = images.get(b);
        const rows = Math.min(nt * m, H - t0 * m);
        const y = tf.tidy(() => {
          const band = xp.slice([0, t0 * m, 0, 0], [1, nt * m + 2, tw * m + 2, C]);
          const yb = this.core.band(band, nt, tw);
          return rows !== nt * m || W !== tw * m ? yb.slice([0, 0, 0, 0], [1, rows, W, this.cout]) : yb;
        });
        return epilogue(y, [this.cout], [this.bias], [activation]);
      })[0]!;
    } finally {
      images.dispose();
    }
  }

  dispose(): void {
    this.core.dispose();
    this.bias?.dispose();
  }
}

/**
 * 3×3 convolutions with stride 2 and zero padding 1 (PyTorch Conv2d(k=3, stride=2, padding=1)) that share one input,
 * by polyphase decomposition + Winograd. With xp the padded input and P_pq[u, v] = xp[2u + p, 2v + q]:
 *   y[i, j] = Σ_ab w[a, b] xp[2i + a, 2j + b]
 *           = (P_00 ⋆ w[{0,2},{0,2}]) + (P_01 ⋆ w[{0,2}, 1]) + (P_10 ⋆ w[1, {0,2}]) + P_11·w[1, 1]   (⋆: 'valid', taps at +0/+1)
 * The 2×2 part runs as F(4×4, 2×2), the 2×1 / 1×2 parts as F(4, 2) along one axis, the 1×1 part as a matMul:
 * 5.06 instead of 9 multiply-adds per output and input channel. Several convs on the same input (Res2dModule's
 * conv1 and shortcut conv3) share the phase split and the input transforms (their U matrices sit side by side).
 */
export class Conv3x3Stride2Winograd {
  readonly cores: [WinogradCore, WinogradCore, WinogradCore];
  readonly w11: tf.Tensor2D;
  readonly biases: Array<tf.Tensor1D | null>;
  readonly cout: number;
  readonly bandElements: number;

  /** `filters`: HWIO (3, 3, Cin, couts[k]) kernels; `biases[k]`: (couts[k]) or null */
  constructor(filters: Float32Array[], readonly cin: number, readonly couts: number[], biases: Array<Float32Array | null>, opts: { bandElements?: number } = {}) {
    if (filters.length !== couts.length || biases.length !== couts.length) throw new Error('winograd s2: filters, couts and biases must have the same length');
    const pick = (g: Float32Array, co: number, as: number[], bs: number[]): Float32Array => {
      const out = new Float32Array(as.length * bs.length * cin * co);
      as.forEach((a, i) => bs.forEach((b, j) => out.set(g.subarray((a * 3 + b) * cin * co, (a * 3 + b + 1) * cin * co), (i * bs.length + j) * cin * co)));
      return out;
    };
    filters.forEach((g, k) => { if (g.length !== 9 * cin * couts[k]!) throw new Error(`winograd s2: filter ${k} has ${g.length} values, expected 3·3·${cin}·${couts[k]}`); });
    this.cores = [
      new WinogradCore(filters.map((g, k) => pick(g, couts[k]!, [0, 2], [0, 2])), 2, 2, cin, couts, F4R2, F4R2),
      new WinogradCore(filters.map((g, k) => pick(g, couts[k]!, [0, 2], [1])), 2, 1, cin, couts, F4R2, IDENT4),
      new WinogradCore(filters.map((g, k) => pick(g, couts[k]!, [1], [0, 2])), 1, 2, cin, couts, IDENT4, F4R2),
    ];
    this.cout = couts.reduce((a, b) => a + b, 0);
    const w11 = new Float32Array(cin * this.cout);
    let c0 = 0;
    filters.forEach((g, k) => {
      const co = couts[k]!;
      const tap = g.subarray(4 * cin * co, 5 * cin * co); // (1, 1)
      for (let ci = 0; ci < cin; ci++) for (let o = 0; o < co; o++) w11[ci * this.cout + c0 + o] = tap[ci * co + o]!;
      c0 += co;
    });
    this.w11 = tf.tensor2d(w11, [cin, this.cout]);
    this.biases = biases.map((b) => (b ? tf.tensor1d(b) : null));
    this.bandElements = opts.bandElements ?? 1 << 24;
  }

  /** x (N, H, W, Cin) → one (N, ⌈H/2⌉, ⌈W/2⌉, couts[k]) output per conv, + bias, activation per conv. */
  apply(x: tf.Tensor4D, activations: Array<'linear' | 'relu'>): tf.Tensor4D[] {
    const [n, H, W, C] = x.shape;
    if (C !== this.cin) throw new Error(`winograd s2: input has ${C} channels, expected ${this.cin}`);
    const Ho = Math.ceil(H / 2), Wo = Math.ceil(W / 2);
    const m = 4;
    const th = Math.ceil(Ho / m), tw = Math.ceil(Wo / m);
    // phase images have th·m + 1 rows and tw·m + 1 columns: xp has twice that (pad 1 top/left, zeros below/right)
    const Hp = 2 * (th * m + 1), Wp = 2 * (tw * m + 1);
    const perTileRow = this.cores.reduce((a, c) => a + c.perTileRow(tw), 0);
    const bandTiles = Math.max(1, Math.min(th, Math.floor(this.bandElements / perTileRow)));
    const images = paddedImages(x, Hp - H - 1, Wp - W - 1);
    try {
      return runBands(n, th, bandTiles, (b, t0, nt) => {
        const xp = images.get(b);
        const rows = Math.min(nt * m, Ho - t0 * m);
        const y = tf.tidy(() => {
          const R = nt * m + 1, Cw = tw * m + 1;
          const band = xp.slice([0, 2 * t0 * m, 0, 0], [1, 2 * R, Wp, C]).reshape([R, 2, Cw, 2, C]);
          const ph = tf.transpose(band, [1, 3, 0, 2, 4]); // (p, q, u, v, C)
          const P = (p: number, q: number, r: number, c: number): tf.Tensor4D => ph.slice([p, q, 0, 0, 0], [1, 1, r, c, C]).reshape([1, r, c, C]) as tf.Tensor4D;
          const y00 = this.cores[0].band(P(0, 0, R, Cw), nt, tw);
          const y01 = this.cores[1].band(P(0, 1, R, Cw - 1), nt, tw);
          const y10 = this.cores[2].band(P(1, 0, R - 1, Cw), nt, tw);
          const y11 = tf.matMul(P(1, 1, R - 1, Cw - 1).reshape([(R - 1) * (Cw - 1), C]) as tf.Tensor2D, this.w11).reshape([1, R - 1, Cw - 1, this.cout]);
          const yb = tf.addN([y00, y01, y10, y11]) as tf.Tensor4D;
          return rows !== nt * m || Wo !== tw * m ? yb.slice([0, 0, 0, 0], [1, rows, Wo, this.cout]) : yb;
        });
        return epilogue(y, this.couts, this.biases, activations);
      });
    } finally {
      images.dispose();
    }
  }

  dispose(): void {
    for (const c of this.cores) c.dispose();
    this.w11.dispose();
    for (const b of this.biases) b?.dispose();
  }
}
