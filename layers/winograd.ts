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

interface Transform { m: number; BT: number[][]; G: number[][]; AT: number[][] }

/** Lavin & Gray's F(2,3) and F(4,3) matrices (interpolation points 0, ±1 / 0, ±1, ±2). */
const TRANSFORMS: Record<WinogradVariant, Transform> = {
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

export interface WinogradOptions {
  variant?: WinogradVariant;
  /** upper bound on the transformed-input elements of one band (default 2^24 = 64 MB) */
  bandElements?: number;
}

export class Conv3x3Winograd {
  readonly m: number;
  readonly a: number;
  /** depthwise input-transform filter (a, a, Cin, a²) */
  readonly inFilter: tf.Tensor4D;
  /** U_q (Cin, Cout), q = k·a + l */
  readonly U: tf.Tensor2D[];
  /** output transform (m², a²) */
  readonly outT: tf.Tensor2D;
  readonly bias: tf.Tensor1D | null;
  readonly bandElements: number;

  /**
   * `filterHWIO`: (3, 3, Cin, Cout) row-major, tap (i, j) of the kernel multiplies input (y + i − 1, x + j − 1)
   * (cross-correlation, as tf.conv2d / torch). `bias`: (Cout) or null.
   */
  constructor(filterHWIO: Float32Array, readonly cin: number, readonly cout: number, bias: Float32Array | null, opts: WinogradOptions = {}) {
    const T = TRANSFORMS[opts.variant ?? 'F4'];
    if (filterHWIO.length !== 9 * cin * cout) throw new Error(`winograd: filter has ${filterHWIO.length} values, expected 3·3·${cin}·${cout}`);
    const m = T.m, a = m + 2;
    this.m = m;
    this.a = a;
    this.bandElements = opts.bandElements ?? 1 << 24;
    const f = new Float32Array(a * a * cin * a * a);
    for (let i = 0; i < a; i++) for (let j = 0; j < a; j++) for (let k = 0; k < a; k++) for (let l = 0; l < a; l++) {
      const v = T.BT[k]![i]! * T.BT[l]![j]!;
      if (v === 0) continue;
      for (let c = 0; c < cin; c++) f[((i * a + j) * cin + c) * a * a + k * a + l] = v;
    }
    this.inFilter = tf.tensor4d(f, [a, a, cin, a * a]);
    // U_kl[ci, co] = Σ_ij G[k][i] G[l][j] g[i, j, ci, co], float64, rounded once
    const U: tf.Tensor2D[] = [];
    const acc = new Float64Array(cin * cout);
    for (let k = 0; k < a; k++) for (let l = 0; l < a; l++) {
      acc.fill(0);
      for (let i = 0; i < 3; i++) for (let j = 0; j < 3; j++) {
        const c = T.G[k]![i]! * T.G[l]![j]!;
        if (c === 0) continue;
        const off = (i * 3 + j) * cin * cout;
        for (let e = 0; e < cin * cout; e++) acc[e] += c * filterHWIO[off + e]!;
      }
      U.push(tf.tensor2d(Float32Array.from(acc), [cin, cout]));
    }
    this.U = U;
    const o = new Float32Array(m * m * a * a);
    for (let r = 0; r < m; r++) for (let s = 0; s < m; s++) for (let k = 0; k < a; k++) for (let l = 0; l < a; l++) {
      o[(r * m + s) * a * a + k * a + l] = T.AT[r]![k]! * T.AT[s]![l]!;
    }
    this.outT = tf.tensor2d(o, [m * m, a * a]);
    this.bias = bias ? tf.tensor1d(bias) : null;
  }

  /** 'same' 3×3 conv of x (N, H, W, Cin) → (N, H, W, Cout), + bias, optional ReLU. */
  apply(x: tf.Tensor4D, activation: 'linear' | 'relu' = 'linear'): tf.Tensor4D {
    const [n, H, W, C] = x.shape;
    if (C !== this.cin) throw new Error(`winograd: input has ${C} channels, expected ${this.cin}`);
    const { m, a } = this;
    const th = Math.ceil(H / m), tw = Math.ceil(W / m);
    // bands of tile rows
    const perTileRow = tw * C * a * a;
    const bandTiles = Math.max(1, Math.min(th, Math.floor(this.bandElements / perTileRow)));
    const perBatch: tf.Tensor4D[] = [];
    try {
      for (let b = 0; b < n; b++) {
        // zero padding: 1 on every side + bottom/right up to whole tiles
        const xp = tf.tidy(() => tf.pad(n === 1 ? x : x.slice([b, 0, 0, 0], [1, H, W, C]), [[0, 0], [1, th * m - H + 1], [1, tw * m - W + 1], [0, 0]]) as tf.Tensor4D);
        const parts: tf.Tensor4D[] = [];
        try {
          for (let t0 = 0; t0 < th; t0 += bandTiles) {
            const nt = Math.min(bandTiles, th - t0);
            const rows = Math.min(nt * m, H - t0 * m);
            parts.push(tf.tidy(() => {
              const band = xp.slice([0, t0 * m, 0, 0], [1, nt * m + 2, tw * m + 2, C]);
              const y = this.band(band, nt, tw);
              const yc = rows !== nt * m || W !== tw * m ? y.slice([0, 0, 0, 0], [1, rows, W, this.cout]) : y;
              let z: tf.Tensor4D = this.bias ? tf.add(yc, this.bias) : yc;
              if (activation === 'relu') z = tf.relu(z);
              return z;
            }));
          }
          perBatch.push(parts.length === 1 ? parts[0]! : tf.concat(parts, 1));
        } finally {
          xp.dispose();
          if (parts.length > 1) for (const p of parts) p.dispose();
        }
      }
      if (perBatch.length === 1) return perBatch[0]!;
      return tf.concat(perBatch, 0);
    } finally {
      if (perBatch.length > 1) for (const p of perBatch) p.dispose();
    }
  }

  /** one band: padded input (1, nt·m + 2, tw·m + 2, Cin) → (1, nt·m, tw·m, Cout), no bias */
  private band(xp: tf.Tensor4D, nt: number, tw: number): tf.Tensor4D {
    const { m, a, cin, cout } = this;
    const tiles = nt * tw;
    const v = tf.depthwiseConv2d(xp, this.inFilter, m, 'valid'); // (1, nt, tw, Cin·a²), channel c·a² + q
    const vt = tf.transpose(v.reshape([tiles, cin, a * a]), [2, 0, 1]); // (a², tiles, Cin)
    const ms: tf.Tensor2D[] = [];
    for (let q = 0; q < a * a; q++) ms.push(tf.matMul(vt.slice([q, 0, 0], [1, tiles, cin]).reshape([tiles, cin]) as tf.Tensor2D, this.U[q]!));
    const M = tf.concat(ms, 0).reshape([a * a, tiles * cout]);
    const Y = tf.matMul(this.outT, M as tf.Tensor2D).reshape([m, m, nt, tw, cout]); // (r, s, ti, tj, c)
    return tf.transpose(Y, [2, 0, 3, 1, 4]).reshape([1, nt * m, tw * m, cout]) as tf.Tensor4D;
  }

  dispose(): void {
    this.inFilter.dispose();
    for (const u of this.U) u.dispose();
    this.outT.dispose();
    this.bias?.dispose();
  }
}
