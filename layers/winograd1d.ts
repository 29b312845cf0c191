/**
 * 1-D convolution (NWC, PyTorch nn.Conv1d cross-correlation: stride 1, zero padding, dilation d, any kernel size k)
 * by Winograd's minimal filtering F(3, 3) applied to 3-tap chunks of the kernel — the HiFi-GAN resblock shape
 * (k = 3, 7, 11, 15 at dilations 1, 3, 5, wide channels).
 *
 * The kernel is zero-padded to K = 3q taps and cut into q chunks w_j = w[3j … 3j+2]. Output o = (3s + u)·d + r
 * (u ∈ {0,1,2}, r ∈ [0, d): the phase of the dilation) reads x at ((3(s + j) + u + t)·d + r), t < 3, for chunk j —
 * i.e. chunk j is an F(3,3) tile of the phase-r subsequence starting at block s + j. With
 *     V_ξ[s', r] = Σ_i Bᵀ[ξ][i] · x[(3s' + i)·d + r]         (5-sample input tiles, ξ = the 5 points)
 *     U_{j,ξ}    = Σ_t G[ξ][t] · w[3j + t]                    (Cin × Cout, folded in float64 once)
 *     M_ξ[f]     = Σ_j V_ξ[f + j·d] @ U_{j,ξ}                 (f = s·d + r: a q-tap conv of dilation d over tiles)
 *     y[(3s + u)·d + r] = Σ_ξ Aᵀ[u][ξ] · M_ξ[s·d + r]
 * the channel contraction (all the multiply-adds that matter) costs 5·q per 3 outputs instead of k: 1.8× fewer
 * for k = 3 and 15, 1.65× for k = 11, 1.4× for k = 7 — and runs as 5 ordinary convolutions (XNNPACK GEMMs) at a
 * third of the length. Points 0, ±1, ½, ∞ (layers/winograd.ts 'F3h': the most accurate F(3,3) measured there).
 *
 * Built from tfjs ops, in bands of output samples (bounded memory: the transformed input is 5/3 of the band).
 * The exact Toom–Cook algebra is in Lavin & Gray 2015; the chunking is the usual "nested" extension to long kernels.
 */
import * as tf from '@tensorflow/tfjs-core';
import { TRANSFORMS } from './winograd.js';

const T = TRANSFORMS.F3h;
const A = 5; // points per tile
const M = 3; // outputs per tile

export interface Conv1dWinogradOptions {
  /** output samples per band (rounded to whole 3d blocks); default 3·2^13 */
  band?: number;
}

export class Conv1dWinograd {
  readonly q: number;
  /** U[ξ]: (1, q, Cin, Cout) conv filters of the transformed domain */
  readonly U: tf.Tensor4D[];
  readonly BT: tf.Tensor2D;
  readonly AT: tf.Tensor2D;
  readonly bias: tf.Tensor1D | null;
  readonly band: number;

  /**
   * `filter`: (k, Cin, Cout) row-major (tfjs conv1d layout), cross-correlation taps; `bias` (Cout) or null.
   */
  constructor(
    filter: Float32Array, readonly kernel: number, readonly cin: number, readonly cout: number, bias: Float32Array | null,
    readonly padL: number, readonly padR: number, readonly dilation = 1, opts: Conv1dWinogradOptions = {},
  ) {
    if (filter.length !== kernel * cin * cout) throw new Error(`Conv1dWinograd: filter has ${filter.length} values, expected ${kernel}·${cin}·${cout}`);
    if (bias && bias.length !== cout) throw new Error(`Conv1dWinograd: ${bias.length} bias values for ${cout} channels`);
    const q = Math.ceil(kernel / M);
    this.q = q;
    const cc = cin * cout;
    const U: Float32Array[] = Array.from({ length: A }, () => new Float32Array(q * cc));
    const acc = new Float64Array(cc);
    for (let xi = 0; xi < A; xi++) {
      for (let j = 0; j < q; j++) {
        acc.fill(0);
        for (let t = 0; t < M; t++) {
          const tap = M * j + t, g = T.G[xi]![t]!;
          if (tap >= kernel || g === 0) continue;
          const w = filter.subarray(tap * cc, (tap + 1) * cc);
          for (let e = 0; e < cc; e++) acc[e] += g * w[e]!;
        }
        U[xi]!.set(acc, j * cc);
      }
    }
    this.U = U.map((u) => tf.tensor4d(u, [1, q, cin, cout]));
    this.BT = tf.tensor2d(T.BT.flat(), [A, A]);
    this.AT = tf.tensor2d(T.AT.flat(), [M, A]);
    this.bias = bias ? tf.tensor1d(bias) : null;
    const block = M * dilation;
    this.band = Math.max(1, Math.round((opts.band ?? 3 * (1 << 13)) / block)) * block;
  }

  outLength(len: number): number {
    return len + this.padL + this.padR - (this.kernel - 1) * this.dilation;
  }

  /**
   * x (n, len, Cin) → (n, L, Cout), L = len + padL + padR − (k−1)·d; then + bias, optional leaky ReLU (`slope`),
   * optional residual `res` (n, L, Cout) added last. x is not disposed.
   */
  apply(x: tf.Tensor3D, slope: number | null = null, res: tf.Tensor3D | null = null): tf.Tensor3D {
    const [n, len, cin] = x.shape;
    if (cin !== this.cin) throw new Error(`Conv1dWinograd: input has ${cin} channels, expected ${this.cin}`);
    const L = this.outLength(len);
    if (L <= 0) throw new Error(`Conv1dWinograd: input of ${len} samples is shorter than the kernel span`);
    if (res && (res.shape[0] !== n || res.shape[1] !== L || res.shape[2] !== this.cout)) throw new Error(`Conv1dWinograd: residual ${res.shape} does not match the output (${n}, ${L}, ${this.cout})`);
    const pieces: tf.Tensor3D[] = [];
    try {
      for (let o0 = 0; o0 < L; o0 += this.band) {
        const Lb = Math.min(this.band, L - o0);
        pieces.push(tf.tidy(() => {
          let y = this.bandOutput(x, o0, Lb, len);
          if (this.bias) y = tf.add(y, this.bias);
          if (slope !== null) y = tf.leakyRelu(y, slope);
          if (res) y = tf.add(y, pieces.length === 0 && Lb === L ? res : tf.slice(res, [0, o0, 0], [n, Lb, this.cout]));
          return y as tf.Tensor3D;
        }));
      }
      if (pieces.length === 1) return pieces.pop()!;
      return tf.concat(pieces, 1);
    } finally {
      for (const p of pieces) p.dispose();
    }
  }

  /** outputs [o0, o0 + Lb) before bias: o0 is a multiple of 3d */
  private bandOutput(x: tf.Tensor3D, o0: number, Lb: number, len: number): tf.Tensor3D {
    const [n, , cin] = x.shape;
    const d = this.dilation, q = this.q, cout = this.cout;
    const S = Math.ceil(Lb / (M * d)); // tile rows
    const S1 = S + q - 1; // tile rows the input transform needs
    // padded input window: xp[p] = x[o0 − padL + p], p ∈ [0, 3d·(S1 + 1)) (zeros outside x)
    const need = M * d * (S1 + 1);
    const from = o0 - this.padL;
    const lo = Math.max(0, from), hi = Math.min(len, from + need);
    let xp: tf.Tensor3D = hi > lo ? tf.slice(x, [0, lo, 0], [n, hi - lo, cin]) : tf.zeros([n, 0, cin]);
    const before = lo - from, after = need - before - (hi - lo);
    if (before > 0 || after > 0) xp = tf.pad(xp, [[0, 0], [before, after], [0, 0]]);
    // blocks of 3d samples: tile s' reads block s' (samples i = 0, 1, 2) and the first 2d of block s' + 1 (i = 3, 4)
    const blocks = xp.reshape([n, S1 + 1, M * d, cin]);
    const taps: tf.Tensor[] = [];
    for (let i = 0; i < A; i++) {
      const b0 = i < M ? 0 : 1, off = (i % M) * d;
      taps.push(tf.slice(blocks, [0, b0, off, 0], [n, S1, d, cin]));
    }
    const N = n * S1 * d * cin;
    const V = tf.matMul(this.BT, tf.stack(taps).reshape([A, N])); // (5, N)
    const Ms: tf.Tensor[] = [];
    for (let xi = 0; xi < A; xi++) {
      const v = tf.slice(V, [xi, 0], [1, N]).reshape([n, 1, S1 * d, cin]) as tf.Tensor4D;
      Ms.push(tf.conv2d(v, this.U[xi]!, 1, 'valid', 'NHWC', [1, d]).reshape([n * S * d * cout]));
    }
    const Y = tf.matMul(this.AT, tf.stack(Ms)); // (3, n·S·d·Cout): Y[u][b][s][r][c]
    const y = tf.transpose(Y.reshape([M, n, S, d, cout]), [1, 2, 0, 3, 4]).reshape([n, S * M * d, cout]) as tf.Tensor3D;
    return S * M * d === Lb ? y : tf.slice(y, [0, 0, 0], [n, Lb, cout]);
  }

  dispose(): void {
    for (const u of this.U) u.dispose();
    this.BT.dispose();
    this.AT.dispose();
    this.bias?.dispose();
  }
}
