/**
 * A dilated stride-1 conv1d by Winograd's F(3, 3) on 3-tap chunks of the kernel, with the transforms as WebAssembly
 * SIMD kernels and the channel contraction on the packed GEMM (./gemm.ts conv1dGemm) — the HiFi-GAN resblock convs
 * (k = 7, 11, 15 at dilations 1, 3, 5, 96–768 channels). The algebra is layers/winograd1d.ts's (which builds it from
 * tfjs ops); in short, with output o = (3s + u)·d + r (u < 3, r < d: the phase of the dilation), xp the input with
 * its zero padding, q = ⌈k / 3⌉ chunks w_j = w[3j … 3j+2] (the kernel zero-padded to 3q taps):
 *     V_ξ[s'·d + r] = Σ_i Bᵀ[ξ][i] · xp[(3s' + i)·d + r]            (5-sample tiles, ξ < 5; the input kernel)
 *     U_{j,ξ}       = Σ_t G[ξ][t] · w[3j + t]                       (once per layer, float64)
 *     M_ξ[s·d + r]  = Σ_j V_ξ[(s + j)·d + r] @ U_{j,ξ}              (a q-tap conv of dilation d: conv1dGemm)
 *     y[o]          = Σ_ξ Aᵀ[u][ξ] · M_ξ[s·d + r] + bias            (the output kernel, with leaky ReLU and residual)
 * 5q products per 3 outputs instead of k: 1.4× fewer for k = 7, 1.65× for 11, 1.8× for 15. Points 0, ±1, ½, ∞
 * (TRANSFORMS.F3h). Results differ from the direct conv by float32 rounding only.
 */
import * as tf from '@tensorflow/tfjs-core';
import { Fn, I32, S, V128 } from './asm.js';
import { defineKernel, offsetOf, runCustom, simdAvailable } from './heap.js';
import { conv1dGemm, uploadPacked, type PackedB } from './gemm.js';
import { runSplit } from '../workers/kernel_pool.js';
import { lincomb } from './winograd.js';
import { TRANSFORMS } from '../../layers/winograd.js';

const T = TRANSFORMS.F3h;
const A = 5; // points per tile
const M = 3; // outputs per tile = taps per kernel chunk

/** run(x, v0…v4, s1d, P, t0, t1): tiles t = b·s1d + s'·d + r of V_ξ, from x rows b·P + 3s'·d + r + i·d */
function inputModule(cin: number, d: number): Fn[] {
  const f = new Fn('run', [I32, I32, I32, I32, I32, I32, I32, I32, I32, I32]);
  const [px, ps1d, pP, t0, t1] = [0, 6, 7, 8, 9], pv = [1, 2, 3, 4, 5];
  const t = f.local(I32), b = f.local(I32), rem = f.local(I32), sp = f.local(I32), src = f.local(I32), c = f.local(I32);
  const dst = Array.from({ length: A }, () => f.local(I32));
  const xv = Array.from({ length: A }, () => f.local(V128));
  const row = 4 * cin;
  f.get(t0).set(t);
  f.loopUntil(() => f.get(t).get(t1).geS(), () => {
    f.get(t).get(ps1d).divS().set(b);
    f.get(t).get(b).get(ps1d).mul().sub().set(rem); // s'·d + r
    f.get(rem).i32(d).divS().set(sp);
    // x row b·P + 3s'·d + r = b·P + rem + 2·s'·d
    f.get(px).get(b).get(pP).mul().get(rem).add().get(sp).i32(2 * d).mul().add().i32(row).mul().add().set(src);
    for (let xi = 0; xi < A; xi++) f.get(pv[xi]!).get(t).i32(row).mul().add().set(dst[xi]!);
    f.i32(0).set(c);
    f.loopUntil(() => f.get(c).i32(row).geS(), () => {
      for (let i = 0; i < A; i++) f.get(src).get(c).add().vload(i * d * row).set(xv[i]!);
      for (let xi = 0; xi < A; xi++) { f.get(dst[xi]!).get(c).add(); lincomb(f, T.BT[xi]!, xv); f.vstore(); }
      f.get(c).i32(16).add().set(c);
    });
    f.get(t).i32(1).add().set(t);
  });
  return [f];
}

/**
 * run(m0…m4, bias, res, out, sd, L, t0, t1): tiles t = b·sd + s·d + r of M_ξ → outputs (3s + u)·d + r < L of batch b,
 * + bias, then leaky ReLU (slope, when given), then + res (same layout as out)
 */
function outputModule(cout: number, d: number, slope: number | null, hasRes: boolean): Fn[] {
  const f = new Fn('run', [I32, I32, I32, I32, I32, I32, I32, I32, I32, I32, I32, I32]);
  const pm = [0, 1, 2, 3, 4], [pb, pres, pout, psd, pL, t0, t1] = [5, 6, 7, 8, 9, 10, 11];
  const t = f.local(I32), b = f.local(I32), rem = f.local(I32), s = f.local(I32), r = f.local(I32), o = f.local(I32);
  const c = f.local(I32), moff = f.local(I32), ooff = f.local(I32);
  const mv = Array.from({ length: A }, () => f.local(V128));
  const y = f.local(V128);
  const row = 4 * cout;
  f.get(t0).set(t);
  f.loopUntil(() => f.get(t).get(t1).geS(), () => {
    f.get(t).get(psd).divS().set(b);
    f.get(t).get(b).get(psd).mul().sub().set(rem);
    f.get(rem).i32(d).divS().set(s);
    f.get(rem).get(s).i32(d).mul().sub().set(r);
    f.get(s).i32(M * d).mul().get(r).add().set(o); // output of u = 0
    f.get(t).i32(row).mul().set(moff);
    for (let u = 0; u < M; u++) {
      f.get(o).i32(u * d).add().get(pL).ltS().if_();
      f.get(b).get(pL).mul().get(o).add().i32(u * d).add().i32(row).mul().set(ooff);
      f.i32(0).set(c);
      f.loopUntil(() => f.get(c).i32(row).geS(), () => {
        for (let xi = 0; xi < A; xi++) if (T.AT[u]![xi] !== 0) f.get(pm[xi]!).get(moff).add().get(c).add().vload().set(mv[xi]!);
        lincomb(f, T.AT[u]!, mv);
        f.get(pb).get(c).add().vload().v(S.f32x4_add).set(y);
        if (slope !== null) f.get(y).get(y).vconstF32(slope, slope, slope, slope).v(S.f32x4_mul).v(S.f32x4_max).set(y);
        if (hasRes) f.get(y).get(pres).get(ooff).add().get(c).add().vload().v(S.f32x4_add).set(y);
        f.get(pout).get(ooff).add().get(c).add().get(y).vstore();
        f.get(c).i32(16).add().set(c);
      });
      f.end();
    }
    f.get(t).i32(1).add().set(t);
  });
  return [f];
}

// xp: (n·P, cin) padded input → V_0 … V_4, each (n·S1·d, cin)
defineKernel('MucodecWino1dInput', ['xp'], (b, [xp], attrs) => {
  const { cin, d, s1d, P, n } = attrs as { cin: number; d: number; s1d: number; P: number; n: number };
  const tiles = n * s1d;
  const outs = Array.from({ length: A }, () => b.makeOutput([tiles, cin], 'float32'));
  runSplit(b, `wino1d-in:${cin}:${d}`, () => inputModule(cin, d), [offsetOf(b, xp!), ...outs.map((o) => offsetOf(b, o)), s1d, P], tiles, 64);
  return outs;
});

defineKernel('MucodecWino1dOutput', ['m0', 'm1', 'm2', 'm3', 'm4', 'bias', 'res'], (b, ins, attrs) => {
  const { cout, d, sd, L, n, slope, hasRes } = attrs as { cout: number; d: number; sd: number; L: number; n: number; slope: number | null; hasRes: boolean };
  const out = b.makeOutput([n * L, cout], 'float32');
  const ptr = ins.map((t) => offsetOf(b, t!));
  runSplit(b, `wino1d-out:${cout}:${d}:${slope}:${hasRes}`, () => outputModule(cout, d, slope, hasRes),
    [...ptr, offsetOf(b, out), sd, L], n * sd, 64);
  return out;
});

/** whether a conv of these channel counts can take this path (wasm backend; 4-channel SIMD vectors) */
export function winograd1dAvailable(kernel: number, cin: number, cout: number): boolean {
  return simdAvailable() && kernel >= 3 && cin % 4 === 0 && cout % 4 === 0;
}

/** A conv1d (filter (k, cin, cout) as tfjs lays it out, bias, zero padding, dilation) in the F(3,3) form. */
export class Conv1dWinogradGemm {
  readonly q: number;
  /** U_ξ packed as (q·cin, cout) for conv1dGemm */
  private readonly U: PackedB[];
  private readonly bias: tf.Tensor1D;

  /** the packed U_ξ on the host (packHost layout): pass them to a later instance to skip the transform */
  readonly hostU: Float32Array[];

  /**
   * `filter`: (k, cin, cout) row-major, or the checkpoint's (cout, cin, k) with `layout` 'oik'; null when `hostU` (an
   * earlier instance's transformed filters) is given
   */
  constructor(filter: Float32Array | null, readonly kernel: number, readonly cin: number, readonly cout: number, bias: Float32Array,
    readonly padL: number, readonly padR: number, readonly dilation: number, hostU?: Float32Array[], layout: 'kio' | 'oik' = 'kio') {
    if (!filter && !hostU) throw new Error('Conv1dWinogradGemm: neither a filter nor its transformed form');
    if (filter && filter.length !== kernel * cin * cout) throw new Error(`Conv1dWinogradGemm: filter of ${filter.length} values for (${kernel}, ${cin}, ${cout})`);
    if (!winograd1dAvailable(kernel, cin, cout)) throw new Error(`Conv1dWinogradGemm: k ${kernel}, ${cin}→${cout} channels is not supported here`);
    const q = Math.ceil(kernel / M), cc = cin * cout;
    this.q = q;
    this.hostU = hostU ?? Conv1dWinogradGemm.transform(filter!, kernel, cin, cout, layout);
    if (this.hostU.length !== A) throw new Error(`Conv1dWinogradGemm: ${this.hostU.length} transformed filters, expected ${A}`);
    this.U = this.hostU.map((h) => uploadPacked(h, q * cin, cout));
    this.bias = tf.tensor1d(bias);
  }

  /**
   * U_ξ = Σ_t G[ξ][t]·w[3j + t] per chunk j (float64 sums, rounded once), written straight into the packed layout of
   * ./gemm.ts (rows j·cin + i, panels of 8 outputs; bias part zero). `layout`: the filter as tfjs lays it out
   * ('kio': (k, cin, cout)) or as the checkpoint stores it ('oik': (cout, cin, k), read one output row at a time).
   */
  static transform(f: Float32Array, kernel: number, cin: number, cout: number, layout: 'kio' | 'oik' = 'kio'): Float32Array[] {
    const q = Math.ceil(kernel / M), K = q * cin, P = Math.ceil(cout / 8), base = 8 * P;
    const outs = Array.from({ length: A }, () => new Float32Array(base + P * K * 8));
    const G = T.G;
    const at = layout === 'kio' ? (o: number, i: number, tap: number) => f[(tap * cin + i) * cout + o]!
      : (o: number, i: number, tap: number) => f[(o * cin + i) * kernel + tap]!;
    for (let o = 0; o < cout; o++) {
      const p = o >> 3, jj = o & 7;
      for (let i = 0; i < cin; i++) {
        for (let j = 0; j < q; j++) {
          const t0 = M * j;
          const w0 = at(o, i, t0), w1 = t0 + 1 < kernel ? at(o, i, t0 + 1) : 0, w2 = t0 + 2 < kernel ? at(o, i, t0 + 2) : 0;
          const dst = base + p * K * 8 + (j * cin + i) * 8 + jj;
          for (let xi = 0; xi < A; xi++) {
            const g = G[xi]!;
            outs[xi]![dst] = g[0]! * w0 + g[1]! * w1 + g[2]! * w2;
          }
        }
      }
    }
    return outs;
  }

  /** x (n, len, cin) → (n, L, cout): conv + bias, then leaky ReLU (`slope`), then + `res` (n, L, cout). x is kept. */
  apply(x: tf.Tensor3D, slope: number | null = null, res?: tf.Tensor3D): tf.Tensor3D {
    const [n, len, cin] = x.shape;
    // leaky ReLU as max(y, slope·y) (the output kernel): exact for 0 ≤ slope ≤ 1
    if (slope !== null && !(slope >= 0 && slope <= 1)) throw new Error(`Conv1dWinogradGemm: leaky ReLU slope ${slope} outside [0, 1]`);
    if (cin !== this.cin) throw new Error(`Conv1dWinogradGemm: input has ${cin} channels, expected ${this.cin}`);
    const d = this.dilation, q = this.q, cout = this.cout;
    const L = len + this.padL + this.padR - (this.kernel - 1) * d;
    if (L <= 0) throw new Error(`Conv1dWinogradGemm: input of ${len} samples is shorter than the kernel span`);
    if (res && (res.shape[0] !== n || res.shape[1] !== L || res.shape[2] !== cout)) {
      throw new Error(`Conv1dWinogradGemm: residual (${res.shape.join(', ')}) does not match the output (${n}, ${L}, ${cout})`);
    }
    const S1 = Math.ceil(L / (M * d)) + q - 1; // tile rows the products read
    const P = M * d * (S1 + 1); // padded input length: tile s' reads block s' and the first 2d samples of block s' + 1
    return tf.tidy(() => {
      const keep = Math.min(len, P - this.padL);
      const xs = keep < len ? tf.slice(x, [0, 0, 0], [n, keep, cin]) : x;
      const xp = tf.pad(xs, [[0, 0], [this.padL, P - this.padL - keep], [0, 0]]);
      const V = runCustom<tf.Tensor>('MucodecWino1dInput', [xp.reshape([n * P, cin])], { cin, d, s1d: S1 * d, P, n }) as unknown as tf.Tensor2D[];
      const Ms = this.U.map((u, xi) => conv1dGemm(V[xi]!.reshape([n, S1 * d, cin]) as tf.Tensor3D, u, q, d, 0, 0));
      const r: tf.Tensor = res ?? tf.zeros([1]);
      const y = runCustom<tf.Tensor2D>('MucodecWino1dOutput', [...Ms, this.bias, r],
        { cout, d, sd: (S1 - q + 1) * d, L, n, slope, hasRes: !!res });
      return y.reshape([n, L, cout]) as tf.Tensor3D;
    });
  }

  /** keep its tensors out of an enclosing tidy (when made inside one) */
  keep(): void {
    for (const u of this.U) tf.keep(u.packed);
    tf.keep(this.bias);
  }

  dispose(): void {
    for (const u of this.U) u.packed.dispose();
    this.bias.dispose();
  }
}
