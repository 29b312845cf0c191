/**
 * A dilated stride-1 conv1d by Winograd's F(M, M) on M-tap chunks of the kernel, with the transforms as WebAssembly
 * SIMD kernels and the channel contraction on the packed GEMM (./gemm.ts conv1dGemm) — the HiFi-GAN resblock convs
 * (k = 3, 7, 11, 15 at dilations 1, 3, 5, 48–768 channels). The algebra is layers/winograd1d.ts's (which builds it from
 * tfjs ops); in short, with output o = (M·s + u)·d + r (u < M, r < d: the phase of the dilation), xp the input with
 * its zero padding, A = 2M − 1 points, q = ⌈k / M⌉ chunks w_j = w[M·j … M·j + M − 1] (the kernel zero-padded to M·q):
 *     V_ξ[s'·d + r] = Σ_i Bᵀ[ξ][i] · xp[(M·s' + i)·d + r]          (A-sample tiles, ξ < A; the input kernel)
 *     U_{j,ξ}       = Σ_t G[ξ][t] · w[M·j + t]                      (once per layer, float64)
 *     M_ξ[s·d + r]  = Σ_j V_ξ[(s + j)·d + r] @ U_{j,ξ}              (a q-tap conv of dilation d: conv1dGemm)
 *     y[o]          = Σ_ξ Aᵀ[u][ξ] · M_ξ[s·d + r] + bias            (the output kernel, with leaky ReLU and residual)
 * A·q products per M outputs instead of k. The chunk shift M·j·d is a whole number of tiles only because the chunk
 * length equals the tile's output count, hence the square F(M, M). bestTile picks per kernel: F(3,3) (points 0, ±1,
 * ½, ∞: TRANSFORMS.F3h) for k = 3 (1.67 products per output instead of 3); F(4,4) (points 0, ±1, ½, ±2, ∞) for
 * k = 7, 11, 15 (3.5, 5.25, 7 instead of 7, 11, 15; F(3,3) needed 5, 6.67, 8.33). Accuracy (float32, 192 → 192
 * channels, random data, relative L2 against a float64 direct sum): direct 1.8–2.4e-7, F(3,3) 3.3–3.7e-7, F(4,4)
 * 3.7–5.3e-7; F(5,5) on eight finite points measured 1.2–2.0e-6 and is not used.
 */
import * as tf from '@tensorflow/tfjs-core';
import { Fn, I32, S, V128 } from './asm.js';
import { defineKernel, heapScratch, offsetOf, runCustom, simdAvailable } from './heap.js';
import { conv1dGemm, uploadPacked, type PackedB } from './gemm.js';
import { runSplit } from '../workers/kernel_pool.js';
import { lincomb, winogradMatrices } from './winograd.js';
import { TRANSFORMS, type Transform } from '../../layers/winograd.js';

/**
 * F(M, M): M outputs per tile = M taps per kernel chunk, A = 2M − 1 points. F(3,3) on TRANSFORMS.F3h; F(4,4) from
 * winogradMatrices on F44_POINTS.
 */
export interface Wino1dPlan { M: number; A: number; T: Transform }
export const WINO1D_POINTS: Record<number, number[]> = { 4: [0, -1, 1, 0.5, -2, 2], 5: [0, -1, 1, 0.5, -0.5, 2, -2, 0.25] };
const PLANS = new Map<number, Wino1dPlan>();
export function wino1dPlan(M: number): Wino1dPlan {
  let p = PLANS.get(M);
  if (!p) {
    if (M !== 3 && !WINO1D_POINTS[M]) throw new Error(`Conv1dWinogradGemm: F(${M},${M}) is not available`);
    const T = M === 3 ? TRANSFORMS.F3h : { m: M, ...winogradMatrices(M, M, WINO1D_POINTS[M]!) };
    p = { M, A: 2 * M - 1, T };
    PLANS.set(M, p);
  }
  return p;
}

/** products per output sample of a k-tap conv by F(M, M) on ⌈k/M⌉ chunks: (2M − 1)·⌈k/M⌉/M */
export const productsPerOutput = (k: number, M: number): number => (2 * M - 1) * Math.ceil(k / M) / M;

/** the tile size with the fewest products for a k-tap kernel (ties to the smaller, more accurate one) */
export function bestTile(k: number): number {
  return productsPerOutput(k, 4) < productsPerOutput(k, 3) ? 4 : 3;
}

/**
 * run(x, v_0…v_{A−1}, zero, s1d, len, padL, t0, t1): tiles t = b·s1d + s'·d + r of V_ξ, from the unpadded x rows
 * b·len + M·s'·d + r + i·d − padL; rows outside [0, len) (the zero padding) read the zero row at `zero` instead
 */
function inputModule(cin: number, d: number, { M, A, T }: Wino1dPlan): Fn[] {
  const f = new Fn('run', Array.from({ length: A + 7 }, () => I32));
  const px = 0, pv = Array.from({ length: A }, (_, i) => 1 + i), [pz, ps1d, plen, ppad, t0, t1] = Array.from({ length: 6 }, (_, i) => A + 1 + i);
  const t = f.local(I32), b = f.local(I32), rem = f.local(I32), sp = f.local(I32), first = f.local(I32), ri = f.local(I32), c = f.local(I32);
  const dst = Array.from({ length: A }, () => f.local(I32));
  const src = Array.from({ length: A }, () => f.local(I32));
  const xv = Array.from({ length: A }, () => f.local(V128));
  const row = 4 * cin;
  f.get(t0).set(t);
  f.loopUntil(() => f.get(t).get(t1).geS(), () => {
    f.get(t).get(ps1d).divS().set(b);
    f.get(t).get(b).get(ps1d).mul().sub().set(rem); // s'·d + r
    f.get(rem).i32(d).divS().set(sp);
    // the tile's first sample in x: M·s'·d + r − padL = rem + (M − 1)·s'·d − padL
    f.get(rem).get(sp).i32((M - 1) * d).mul().add().get(ppad).sub().set(first);
    for (let i = 0; i < A; i++) {
      f.get(first).i32(i * d).add().set(ri);
      // select(x + (b·len + ri)·row, zero, ri <u len)
      f.get(px).get(b).get(plen).mul().get(ri).add().i32(row).mul().add().get(pz).get(ri).get(plen).ltU().select().set(src[i]!);
    }
    for (let xi = 0; xi < A; xi++) f.get(pv[xi]!).get(t).i32(row).mul().add().set(dst[xi]!);
    f.i32(0).set(c);
    f.loopUntil(() => f.get(c).i32(row).geS(), () => {
      for (let i = 0; i < A; i++) f.get(src[i]!).get(c).add().vload().set(xv[i]!);
      for (let xi = 0; xi < A; xi++) { f.get(dst[xi]!).get(c).add(); lincomb(f, T.BT[xi]!, xv); f.vstore(); }
      f.get(c).i32(16).add().set(c);
    });
    f.get(t).i32(1).add().set(t);
  });
  return [f];
}

/**
 * run(m_0…m_{A−1}, bias, res, out, sd, L, t0, t1): tiles t = b·sd + s·d + r of M_ξ → outputs (M·s + u)·d + r < L of
 * batch b, + bias, then leaky ReLU (slope, when given), then + res (same layout as out)
 */
function outputModule(cout: number, d: number, slope: number | null, hasRes: boolean, { M, A, T }: Wino1dPlan): Fn[] {
  const f = new Fn('run', Array.from({ length: A + 7 }, () => I32));
  const pm = Array.from({ length: A }, (_, i) => i), [pb, pres, pout, psd, pL, t0, t1] = Array.from({ length: 7 }, (_, i) => A + i);
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

// x: (n·len, cin) input (its zero padding implicit) → V_0 … V_{A−1}, each (n·S1·d, cin)
defineKernel('MucodecWino1dInput', ['x'], (b, [x], attrs) => {
  const { cin, d, s1d, len, padL, n, M } = attrs as { cin: number; d: number; s1d: number; len: number; padL: number; n: number; M: number };
  const plan = wino1dPlan(M), tiles = n * s1d;
  const outs = Array.from({ length: plan.A }, () => b.makeOutput([tiles, cin], 'float32'));
  const zero = heapScratch(b, 4 * cin); // one zero row (kernels run one at a time: the scratch is ours until we return)
  b.wasm.HEAPU8.fill(0, zero, zero + 4 * cin);
  runSplit(b, `wino1d-in:${M}:${cin}:${d}`, () => inputModule(cin, d, plan),
    [offsetOf(b, x!), ...outs.map((o) => offsetOf(b, o)), zero, s1d, len, padL], tiles, 64);
  return outs;
});

/** the output kernel's name for A points (one kernel per input count: M_0 … M_{A−1}, bias, res) */
const outputKernels = new Set<number>();
function outputKernel(M: number): string {
  const name = `MucodecWino1dOutput${M}`, { A } = wino1dPlan(M);
  if (outputKernels.has(M)) return name;
  outputKernels.add(M);
  defineKernel(name, [...Array.from({ length: A }, (_, i) => `m${i}`), 'bias', 'res'], (b, ins, attrs) => {
    const { cout, d, sd, L, n, slope, hasRes } = attrs as { cout: number; d: number; sd: number; L: number; n: number; slope: number | null; hasRes: boolean };
    const out = b.makeOutput([n * L, cout], 'float32');
    const ptr = ins.map((t) => offsetOf(b, t!));
    runSplit(b, `wino1d-out:${M}:${cout}:${d}:${slope}:${hasRes}`, () => outputModule(cout, d, slope, hasRes, wino1dPlan(M)),
      [...ptr, offsetOf(b, out), sd, L], n * sd, 64);
    return out;
  });
  return name;
}

/** whether a conv of these channel counts can take this path (wasm backend; 4-channel SIMD vectors) */
export function winograd1dAvailable(kernel: number, cin: number, cout: number): boolean {
  return simdAvailable() && kernel >= 3 && cin % 4 === 0 && cout % 4 === 0;
}

/**
 * A conv1d (filter (k, cin, cout) as tfjs lays it out, bias, zero padding, dilation) in the F(M, M) form, M = `tile`
 * (default: bestTile(k)).
 */
export class Conv1dWinogradGemm {
  readonly q: number;
  readonly plan: Wino1dPlan;
  /** U_ξ packed as (q·cin, cout) for conv1dGemm */
  private readonly U: PackedB[];
  private readonly bias: tf.Tensor1D;

  /** the packed U_ξ on the host (packHost layout): pass them to a later instance to skip the transform */
  readonly hostU: Float32Array[];

  /**
   * `filter`: (k, cin, cout) row-major, or the checkpoint's (cout, cin, k) with `layout` 'oik'; null when `hostU` (an
   * earlier instance's transformed filters, same tile) is given
   */
  constructor(filter: Float32Array | null, readonly kernel: number, readonly cin: number, readonly cout: number, bias: Float32Array,
    readonly padL: number, readonly padR: number, readonly dilation: number, hostU?: Float32Array[], layout: 'kio' | 'oik' = 'kio',
    tile = bestTile(kernel)) {
    if (!filter && !hostU) throw new Error('Conv1dWinogradGemm: neither a filter nor its transformed form');
    if (filter && filter.length !== kernel * cin * cout) throw new Error(`Conv1dWinogradGemm: filter of ${filter.length} values for (${kernel}, ${cin}, ${cout})`);
    if (!winograd1dAvailable(kernel, cin, cout)) throw new Error(`Conv1dWinogradGemm: k ${kernel}, ${cin}→${cout} channels is not supported here`);
    this.plan = wino1dPlan(tile);
    const q = Math.ceil(kernel / tile);
    this.q = q;
    this.hostU = hostU ?? Conv1dWinogradGemm.transform(filter!, kernel, cin, cout, layout, tile);
    if (this.hostU.length !== this.plan.A) throw new Error(`Conv1dWinogradGemm: ${this.hostU.length} transformed filters, expected ${this.plan.A}`);
    this.U = this.hostU.map((h) => uploadPacked(h, q * cin, cout));
    this.bias = tf.tensor1d(bias);
  }

  /**
   * U_ξ = Σ_t G[ξ][t]·w[M·j + t] per chunk j (float64 sums, rounded once), written straight into the packed layout of
   * ./gemm.ts (rows j·cin + i, panels of 8 outputs; bias part zero). `layout`: the filter as tfjs lays it out
   * ('kio': (k, cin, cout)) or as the checkpoint stores it ('oik': (cout, cin, k), read one output row at a time).
   */
  static transform(f: Float32Array, kernel: number, cin: number, cout: number, layout: 'kio' | 'oik' = 'kio', tile = bestTile(kernel)): Float32Array[] {
    const { M, A, T } = wino1dPlan(tile);
    const q = Math.ceil(kernel / M), K = q * cin, P = Math.ceil(cout / 8), base = 8 * P;
    const outs = Array.from({ length: A }, () => new Float32Array(base + P * K * 8));
    const G = T.G;
    const at = layout === 'kio' ? (o: number, i: number, tap: number) => f[(tap * cin + i) * cout + o]!
      : (o: number, i: number, tap: number) => f[(o * cin + i) * kernel + tap]!;
    const w = new Float64Array(M);
    for (let o = 0; o < cout; o++) {
      const p = o >> 3, jj = o & 7;
      for (let i = 0; i < cin; i++) {
        for (let j = 0; j < q; j++) {
          for (let t = 0; t < M; t++) w[t] = M * j + t < kernel ? at(o, i, M * j + t) : 0;
          const dst = base + p * K * 8 + (j * cin + i) * 8 + jj;
          for (let xi = 0; xi < A; xi++) {
            const g = G[xi]!;
            let acc = 0;
            for (let t = 0; t < M; t++) acc += g[t]! * w[t]!;
            outs[xi]![dst] = acc;
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
    const d = this.dilation, q = this.q, cout = this.cout, M = this.plan.M;
    const L = len + this.padL + this.padR - (this.kernel - 1) * d;
    if (L <= 0) throw new Error(`Conv1dWinogradGemm: input of ${len} samples is shorter than the kernel span`);
    if (res && (res.shape[0] !== n || res.shape[1] !== L || res.shape[2] !== cout)) {
      throw new Error(`Conv1dWinogradGemm: residual (${res.shape.join(', ')}) does not match the output (${n}, ${L}, ${cout})`);
    }
    const S1 = Math.ceil(L / (M * d)) + q - 1; // tile rows the products read
    return tf.tidy(() => {
      const V = runCustom<tf.Tensor>('MucodecWino1dInput', [x.reshape([n * len, cin])],
        { cin, d, s1d: S1 * d, len, padL: this.padL, n, M }) as unknown as tf.Tensor2D[];
      const Ms = this.U.map((u, xi) => conv1dGemm(V[xi]!.reshape([n, S1 * d, cin]) as tf.Tensor3D, u, q, d, 0, 0));
      const r: tf.Tensor = res ?? tf.zeros([1]);
      const y = runCustom<tf.Tensor2D>(outputKernel(M), [...Ms, this.bias, r],
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
