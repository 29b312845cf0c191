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
 * k = 7, 11, 15 (3.5, 5.25, 7 instead of 7, 11, 15; F(3,3) needed 5, 6.67, 8.33).
 *
 * The chunk axis is itself a q-tap correlation over tile rows (M_ξ above, with matrix-valued taps U_{j,ξ}), so with
 * q > 1 it runs by a second, outer Winograd F(m2, q) (nested Winograd: the tensor product of the two algorithms, as
 * for a 2-D conv): V_{ξ,η}[S·d + r] = Σ_i2 B2ᵀ[η][i2]·V_ξ[(m2·S + i2)·d + r] (the same input kernel, stride m2, on V_ξ),
 * U_{ξ,η} = Σ_j G2[η][j]·U_{j,ξ}, one-tap products W_{ξ,η} = V_{ξ,η} @ U_{ξ,η}, and M_ξ[(m2·S + u2)·d + r] =
 * Σ_η A2ᵀ[u2][η]·W_{ξ,η}[S·d + r] (the output kernel without bias): A·(m2 + q − 1) products per M·m2 outputs
 * (bestOuter: m2 = 3 → 2.33, 2.92, 3.5 products per output for k = 7, 11, 15).
 *
 * Accuracy (float32, 192 → 192 channels, random data, relative L2 against a float64 direct sum): direct 1.8–2.4e-7,
 * F(3,3) 3.3–3.7e-7, F(4,4) 3.7–5.3e-7, F(4,4) × F(3, q) 3.4–7.1e-7; F(5,5) on eight finite points measured 1.2–2.0e-6
 * and is not used.
 */
import * as tf from '@tensorflow/tfjs-core';
import { Fn, I32, S, V128 } from './asm.js';
import { defineKernel, heapScratch, offsetOf, runCustom, simdAvailable } from './heap.js';
import { conv1dGemm, uploadPacked, type PackedB } from './gemm.js';
import { runSplit } from '../workers/kernel_pool.js';
import { lincomb, winogradMatrices } from './winograd.js';
import { TRANSFORMS, type Transform } from '../../layers/winograd.js';

/**
 * F(m, r): m outputs per tile (the tile stride), r taps, A = m + r − 1 points. The inner algorithm is square (r = m:
 * the kernel chunk length must equal the tile stride, above); the outer one (over the chunk axis, below) is F(m2, q).
 * F(3,3) on TRANSFORMS.F3h; the others from winogradMatrices on the first A − 1 of WINO1D_POINTS (and ∞).
 */
export interface Wino1dPlan { M: number; r: number; A: number; T: Transform; key: string }
export const WINO1D_POINTS = [0, -1, 1, 0.5, -2, 2];
const PLANS = new Map<string, Wino1dPlan>();
export function wino1dPlan(m: number, r = m): Wino1dPlan {
  const key = `${m}x${r}`;
  let p = PLANS.get(key);
  if (!p) {
    const A = m + r - 1;
    if (!Number.isInteger(m) || !Number.isInteger(r) || m < 1 || r < 1 || A - 1 > WINO1D_POINTS.length) throw new Error(`Conv1dWinogradGemm: F(${m},${r}) is not available`);
    const T = key === '3x3' ? TRANSFORMS.F3h : { m, ...winogradMatrices(m, r, WINO1D_POINTS.slice(0, A - 1)) };
    p = { M: m, r, A, T, key };
    PLANS.set(key, p);
  }
  return p;
}

/** products per output sample of a k-tap conv by F(M, M) on q = ⌈k/M⌉ chunks, the chunk axis by F(m2, q) (m2 > 1) */
export function productsPerOutput(k: number, M: number, m2 = 1): number {
  const q = Math.ceil(k / M);
  return (2 * M - 1) * (m2 > 1 && q > 1 ? (m2 + q - 1) / m2 : q) / M;
}

/** the tile size with the fewest products for a k-tap kernel (ties to the smaller, more accurate one) */
export function bestTile(k: number): number {
  return productsPerOutput(k, 4) < productsPerOutput(k, 3) ? 4 : 3;
}

/**
 * The outer tile m2 over the chunk axis: 3 where there are several chunks (F(3, q) on 4–6 points: k = 7, 11, 15 at
 * F(4,4) take 2.33, 2.92, 3.5 products per output instead of 3.5, 5.25, 7), else 1 (none). m2 = 2 saves less (2.63,
 * 3.5, 4.38) and holds fewer transformed filters (A·(m2 + q − 1) matrices of cin × cout instead of A·q: for the
 * full-width vocoder ≈ 1.8 GiB of wasm heap with m2 = 2, 2.2 with m2 = 3, 1.4 without).
 */
export function bestOuter(k: number, tile = bestTile(k)): number {
  return Math.ceil(k / tile) > 1 ? 3 : 1;
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
 * batch b, + bias (when hasBias), then leaky ReLU (slope, when given), then + res (same layout as out)
 */
function outputModule(cout: number, d: number, slope: number | null, hasBias: boolean, hasRes: boolean, { M, A, T }: Wino1dPlan): Fn[] {
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
        if (hasBias) f.get(pb).get(c).add().vload().v(S.f32x4_add);
        f.set(y);
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
  const { cin, d, s1d, len, padL, n, m, r } = attrs as { cin: number; d: number; s1d: number; len: number; padL: number; n: number; m: number; r: number };
  const plan = wino1dPlan(m, r), tiles = n * s1d;
  const outs = Array.from({ length: plan.A }, () => b.makeOutput([tiles, cin], 'float32'));
  const zero = heapScratch(b, 4 * cin); // one zero row (kernels run one at a time: the scratch is ours until we return)
  b.wasm.HEAPU8.fill(0, zero, zero + 4 * cin);
  runSplit(b, `wino1d-in:${plan.key}:${cin}:${d}`, () => inputModule(cin, d, plan),
    [offsetOf(b, x!), ...outs.map((o) => offsetOf(b, o)), zero, s1d, len, padL], tiles, 64);
  return outs;
});

/** the output kernel's name for a plan (one kernel per input count: M_0 … M_{A−1}, bias, res) */
const outputKernels = new Set<string>();
function outputKernel(plan: Wino1dPlan): string {
  const name = `MucodecWino1dOutput${plan.key}`;
  if (outputKernels.has(name)) return name;
  outputKernels.add(name);
  defineKernel(name, [...Array.from({ length: plan.A }, (_, i) => `m${i}`), 'bias', 'res'], (b, ins, attrs) => {
    const { cout, d, sd, L, n, slope, hasBias, hasRes } = attrs as { cout: number; d: number; sd: number; L: number; n: number; slope: number | null; hasBias: boolean; hasRes: boolean };
    const out = b.makeOutput([n * L, cout], 'float32');
    const ptr = ins.map((t) => offsetOf(b, t!));
    runSplit(b, `wino1d-out:${plan.key}:${cout}:${d}:${slope}:${hasBias}:${hasRes}`, () => outputModule(cout, d, slope, hasBias, hasRes, plan),
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
 * (default: bestTile(k)); with `outer` = m2 > 1 (and more than one chunk) the chunk axis by F(m2, q) as well.
 */
export class Conv1dWinogradGemm {
  readonly q: number;
  readonly plan: Wino1dPlan;
  /** F(m2, q) over the chunk axis, or null (the q chunks as taps of the products) */
  readonly outer: Wino1dPlan | null;
  /** U_ξ packed as (q·cin, cout) for conv1dGemm; with `outer`, U_{ξ,η} as (cin, cout), index ξ·A2 + η */
  private readonly U: PackedB[];
  private readonly bias: tf.Tensor1D;

  /** the packed U on the host (packHost layout): pass them to a later instance (same tile and outer) to skip the transform */
  readonly hostU: Float32Array[];

  /**
   * `filter`: (k, cin, cout) row-major, or the checkpoint's (cout, cin, k) with `layout` 'oik'; null when `hostU` (an
   * earlier instance's transformed filters, same tile and outer) is given
   */
  constructor(filter: Float32Array | null, readonly kernel: number, readonly cin: number, readonly cout: number, bias: Float32Array,
    readonly padL: number, readonly padR: number, readonly dilation: number, hostU?: Float32Array[], layout: 'kio' | 'oik' = 'kio',
    tile = bestTile(kernel), outer = bestOuter(kernel, tile)) {
    if (!filter && !hostU) throw new Error('Conv1dWinogradGemm: neither a filter nor its transformed form');
    if (filter && filter.length !== kernel * cin * cout) throw new Error(`Conv1dWinogradGemm: filter of ${filter.length} values for (${kernel}, ${cin}, ${cout})`);
    if (!winograd1dAvailable(kernel, cin, cout)) throw new Error(`Conv1dWinogradGemm: k ${kernel}, ${cin}→${cout} channels is not supported here`);
    this.plan = wino1dPlan(tile);
    const q = Math.ceil(kernel / tile);
    this.q = q;
    this.outer = outer > 1 && q > 1 ? wino1dPlan(outer, q) : null;
    this.hostU = hostU ?? Conv1dWinogradGemm.transform(filter!, kernel, cin, cout, layout, tile, outer);
    const count = this.plan.A * (this.outer?.A ?? 1);
    if (this.hostU.length !== count) throw new Error(`Conv1dWinogradGemm: ${this.hostU.length} transformed filters, expected ${count}`);
    const rows = this.outer ? cin : q * cin;
    this.U = this.hostU.map((h) => uploadPacked(h, rows, cout));
    this.bias = tf.tensor1d(bias);
  }

  /**
   * U_{j,ξ} = Σ_t G[ξ][t]·w[M·j + t] per chunk j and, with an outer F(m2, q), U_{ξ,η} = Σ_j G2[η][j]·U_{j,ξ} (float64
   * sums, rounded once), written straight into the packed layout of ./gemm.ts (rows j·cin + i, or i with the outer
   * algorithm; panels of 8 outputs; bias part zero). `layout`: the filter as tfjs lays it out ('kio': (k, cin, cout))
   * or as the checkpoint stores it ('oik': (cout, cin, k), read one output row at a time).
   */
  static transform(f: Float32Array, kernel: number, cin: number, cout: number, layout: 'kio' | 'oik' = 'kio', tile = bestTile(kernel), outer = bestOuter(kernel, tile)): Float32Array[] {
    const { M, A, T } = wino1dPlan(tile);
    const q = Math.ceil(kernel / M), P = Math.ceil(cout / 8), base = 8 * P;
    const o2 = outer > 1 && q > 1 ? wino1dPlan(outer, q) : null, A2 = o2?.A ?? 1;
    const K = o2 ? cin : q * cin;
    const outs = Array.from({ length: A * A2 }, () => new Float32Array(base + P * K * 8));
    const G = T.G, G2 = o2?.T.G;
    const at = layout === 'kio' ? (o: number, i: number, tap: number) => f[(tap * cin + i) * cout + o]!
      : (o: number, i: number, tap: number) => f[(o * cin + i) * kernel + tap]!;
    const w = new Float64Array(M), u = new Float64Array(q * A);
    for (let o = 0; o < cout; o++) {
      const p = o >> 3, jj = o & 7;
      for (let i = 0; i < cin; i++) {
        for (let j = 0; j < q; j++) {
          for (let t = 0; t < M; t++) w[t] = M * j + t < kernel ? at(o, i, M * j + t) : 0;
          for (let xi = 0; xi < A; xi++) {
            const g = G[xi]!;
            let acc = 0;
            for (let t = 0; t < M; t++) acc += g[t]! * w[t]!;
            if (G2) u[j * A + xi] = acc;
            else outs[xi]![base + p * K * 8 + (j * cin + i) * 8 + jj] = acc;
          }
        }
        if (!G2) continue;
        const dst = base + p * K * 8 + i * 8 + jj;
        for (let xi = 0; xi < A; xi++) {
          for (let eta = 0; eta < A2; eta++) {
            const g2 = G2[eta]!;
            let acc = 0;
            for (let j = 0; j < q; j++) acc += g2[j]! * u[j * A + xi]!;
            outs[xi * A2 + eta]![dst] = acc;
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
    const d = this.dilation, q = this.q, cout = this.cout, M = this.plan.M, o2 = this.outer;
    const L = len + this.padL + this.padR - (this.kernel - 1) * d;
    if (L <= 0) throw new Error(`Conv1dWinogradGemm: input of ${len} samples is shorter than the kernel span`);
    if (res && (res.shape[0] !== n || res.shape[1] !== L || res.shape[2] !== cout)) {
      throw new Error(`Conv1dWinogradGemm: residual (${res.shape.join(', ')}) does not match the output (${n}, ${L}, ${cout})`);
    }
    const So = Math.ceil(L / (M * d)); // output tiles per phase
    const So2 = o2 ? Math.ceil(So / o2.M) : So; // outer output tiles per phase
    const S1 = (o2 ? o2.M * So2 : So) + q - 1; // tile rows the products read
    return tf.tidy(() => {
      const V = runCustom<tf.Tensor>('MucodecWino1dInput', [x.reshape([n * len, cin])],
        { cin, d, s1d: S1 * d, len, padL: this.padL, n, m: M, r: M }) as unknown as tf.Tensor2D[];
      let Ms: tf.Tensor[];
      if (!o2) Ms = this.U.map((u, xi) => conv1dGemm(V[xi]!.reshape([n, S1 * d, cin]) as tf.Tensor3D, u, q, d, 0, 0));
      else {
        // the chunk axis: V_ξ → V_{ξ,η} (F(m2, q) input transform over tile rows), one-tap products, back to M_ξ
        Ms = V.map((v, xi) => {
          const V2 = runCustom<tf.Tensor>('MucodecWino1dInput', [v],
            { cin, d, s1d: So2 * d, len: S1 * d, padL: 0, n, m: o2.M, r: o2.r }) as unknown as tf.Tensor2D[];
          const W = V2.map((v2, eta) => conv1dGemm(v2.reshape([n, So2 * d, cin]) as tf.Tensor3D, this.U[xi * o2.A + eta]!, 1, 1, 0, 0));
          tf.dispose(V2);
          const m = runCustom<tf.Tensor2D>(outputKernel(o2), [...W, this.bias, this.bias],
            { cout, d, sd: So2 * d, L: So * d, n, slope: null, hasBias: false, hasRes: false });
          tf.dispose(W);
          return m;
        });
      }
      tf.dispose(V);
      const r: tf.Tensor = res ?? tf.zeros([1]);
      const y = runCustom<tf.Tensor2D>(outputKernel(this.plan), [...Ms, this.bias, r],
        { cout, d, sd: So * d, L, n, slope, hasBias: true, hasRes: !!res });
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
