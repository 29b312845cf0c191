/**
 * Wav2Vec2-Conformer encoder layer with rotary self-attention, eval mode (transformers
 * models/wav2vec2_conformer/modeling_wav2vec2_conformer.py: Wav2Vec2ConformerEncoderLayer,
 * Wav2Vec2ConformerSelfAttention (position_embeddings_type "rotary"), Wav2Vec2ConformerConvolutionModule,
 * Wav2Vec2ConformerFeedForward, Wav2Vec2ConformerRotaryPositionalEmbedding). Activations (B, T, D).
 *
 *   x = x + 0.5·FFN1(LN(x));  x = x + MHSA(LN(x));  x = x + Conv(x);  x = x + 0.5·FFN2(LN(x));  x = LN_final(x)
 */
import * as tf from '@tensorflow/tfjs-core';
import { Params } from '../params.js';
import { toFloat32, type HostTensor } from '../hosttensor.js';
import { Linear } from '../../layers/linear.js';
import { Conv1d } from '../../layers/conv.js';
import { layerNorm } from '../../layers/norm.js';
import { silu } from '../../layers/activations.js';
import { multiHeadAttention } from '../../layers/attention.js';
import { gemm, gemmEnabled, packB, type PackedB } from '../simd/gemm.js';

export interface ConformerConfig {
  hiddenSize: number;
  numHeads: number;
  intermediateSize: number;
  /** conv_depthwise_kernel_size */
  convKernel: number;
  rotaryBase: number;
  layerNormEps: number;
  batchNormEps: number;
}

const f = Math.fround;

/**
 * Rotary inv_freq as the module builds its buffer: 1 / (base ** (arange(0, dim, 2).float() / dim)), float32.
 * Prefer the checkpoint buffer `conformer.embed_positions.inv_freq` (NOTES pitfall 5: torch's float32 pow is
 * not always the correctly rounded value used here).
 */
export function rotaryInvFreq(headSize: number, base: number): Float32Array {
  const out = new Float32Array(headSize / 2);
  for (let i = 0; i < out.length; i++) out[i] = f(1 / f(Math.pow(base, f((2 * i) / headSize))));
  return out;
}

/** cos/sin tables (T, head_size) row-major: emb = cat(freqs, freqs), freqs[t, i] = fl32(t · inv_freq[i]). */
export interface RotaryTables {
  length: number;
  headSize: number;
  cos: Float32Array;
  sin: Float32Array;
}

export function rotaryTables(length: number, invFreq: Float32Array): RotaryTables {
  const half = invFreq.length;
  const headSize = 2 * half;
  const cos = new Float32Array(length * headSize);
  const sin = new Float32Array(length * headSize);
  for (let t = 0; t < length; t++) {
    for (let i = 0; i < half; i++) {
      const a = f(t * invFreq[i]!);
      const c = f(Math.cos(a)), s = f(Math.sin(a));
      cos[t * headSize + i] = c; cos[t * headSize + half + i] = c;
      sin[t * headSize + i] = s; sin[t * headSize + half + i] = s;
    }
  }
  return { length, headSize, cos, sin };
}

/** Rotary tables from the fixture/upstream layout (2, T, 1, 1, head_size) = [cos, sin]. */
export function rotaryFromStacked(t: HostTensor): RotaryTables {
  const [two, len, , , hs] = t.shape as [number, number, number, number, number];
  if (two !== 2 || t.shape.length !== 5) throw new Error(`rotary: expected (2, T, 1, 1, head_size), got (${t.shape.join(', ')})`);
  const d = toFloat32(t);
  return { length: len, headSize: hs, cos: d.slice(0, len * hs), sin: d.slice(len * hs, 2 * len * hs) };
}

/**
 * The rotary tables as tfjs tensors shaped for (B, T, H, 2, dh/2) activations: cos (T, 1, 2, dh/2) and
 * the sign-folded sin (T, 1, 2, dh/2) = [−sin[:dh/2], sin[dh/2:]], so that
 * h·cos + rot(h)·sin (rot(h) = [−h₂, h₁]) = h·cos + swap_halves(h)·sinSigned, bit for bit.
 */
export class RotaryTensors {
  readonly cos: tf.Tensor;
  readonly sinSigned: tf.Tensor;
  constructor(readonly tables: RotaryTables) {
    const { length: t, headSize: hs } = tables;
    const half = hs / 2;
    const ss = tables.sin.slice();
    for (let i = 0; i < t; i++) for (let j = 0; j < half; j++) ss[i * hs + j] = -ss[i * hs + j]!;
    this.cos = tf.tensor(tables.cos, [t, 1, 2, half]);
    this.sinSigned = tf.tensor(ss, [t, 1, 2, half]);
  }
  dispose(): void {
    this.cos.dispose();
    this.sinSigned.dispose();
  }
}

/** Wav2Vec2ConformerSelfAttention._apply_rotary_embedding on (B, T, H·dh). */
export function applyRotary(x: tf.Tensor3D, rot: RotaryTensors, heads: number): tf.Tensor3D {
  return tf.tidy(() => {
    const [b, t, d] = x.shape;
    const dh = d / heads;
    if (dh !== rot.tables.headSize) throw new Error(`rotary: head size ${dh} != table head size ${rot.tables.headSize}`);
    if (t > rot.tables.length) throw new Error(`rotary: ${t} frames > table length ${rot.tables.length}`);
    const cos = t === rot.tables.length ? rot.cos : rot.cos.slice(0, t);
    const sin = t === rot.tables.length ? rot.sinSigned : rot.sinSigned.slice(0, t);
    const x5 = x.reshape([b, t, heads, 2, dh / 2]);
    // swap the two halves of every head: split + concat on a RANK-3 view (B·T·H, 2, dh/2). On wasm a rank-5 split
    // takes a generic slow path (~1.9 s vs 27 ms at T = 1024, 16 heads); split + concat beats tf.reverse / gather.
    const [h1, h2] = tf.split(x.reshape([b * t * heads, 2, dh / 2]), 2, 1);
    const swapped = tf.concat([h2!, h1!], 1).reshape([b, t, heads, 2, dh / 2]);
    const y = tf.add(tf.mul(x5, cos), tf.mul(swapped, sin));
    return y.reshape([b, t, d]) as tf.Tensor3D;
  });
}

function ln(p: Params, name: string): { g: tf.Tensor1D; b: tf.Tensor1D } {
  return { g: p.tensor(`${name}.weight`) as tf.Tensor1D, b: p.tensor(`${name}.bias`) as tf.Tensor1D };
}

/** Wav2Vec2ConformerFeedForward: intermediate_dense → SiLU → output_dense (dropouts are identity). */
class FeedForward {
  readonly inner: Linear;
  readonly outer: Linear;
  constructor(p: Params, d: number, inter: number) {
    this.inner = new Linear(p, 'intermediate_dense', d, inter);
    this.outer = new Linear(p, 'output_dense', inter, d);
  }
  apply(x: tf.Tensor): tf.Tensor {
    return tf.tidy(() => this.outer.apply(silu(this.inner.apply(x))));
  }
  dispose(): void {
    this.inner.dispose();
    this.outer.dispose();
  }
}

/**
 * A bias-free pointwise Conv1d (out, in, 1) (output rows [r0, r1) of it) as an (in, out) product on (B·T, C): the packed
 * GEMM of src/simd/gemm.ts on the wasm backend (packed once here), tf.matMul elsewhere.
 */
class Pointwise {
  private readonly w: tf.Tensor2D | null;
  private readonly packed: PackedB | null;
  constructor(p: Params, name: string, out: number, inC: number, rows?: [number, number]) {
    const w = p.f32(`${name}.weight`, [out, inC, 1]);
    const [r0, r1] = rows ?? [0, out];
    const n = r1 - r0;
    const wt = new Float32Array(inC * n);
    for (let o = r0; o < r1; o++) for (let i = 0; i < inC; i++) wt[i * n + (o - r0)] = w[o * inC + i]!;
    this.packed = gemmEnabled() ? packB(wt, inC, n) : null;
    this.w = this.packed ? null : tf.tensor2d(wt, [inC, n]);
  }
  apply(h: tf.Tensor2D): tf.Tensor2D {
    return this.packed ? gemm(h, this.packed) : tf.matMul(h, this.w!);
  }
  dispose(): void {
    this.w?.dispose();
    this.packed?.packed.dispose();
  }
}

/**
 * Wav2Vec2ConformerConvolutionModule: LN → pointwise_conv1 (D → 2D) → GLU(dim=channels) → depthwise conv
 * (k, zero pad (k−1)/2) → BatchNorm1d (eval; folded into the depthwise weights in float64) → SiLU →
 * pointwise_conv2. GLU's two halves are computed by two matMuls (no split copy).
 */
class ConvModule {
  readonly lnG: tf.Tensor1D;
  readonly lnB: tf.Tensor1D;
  readonly pwA: Pointwise;
  readonly pwB: Pointwise;
  readonly pw2: Pointwise;
  readonly depthwise: Conv1d;
  constructor(p: Params, readonly cfg: ConformerConfig) {
    const d = cfg.hiddenSize;
    const k = cfg.convKernel;
    if (k % 2 !== 1) throw new Error(`conformer conv: depthwise kernel ${k} must be odd`);
    ({ g: this.lnG, b: this.lnB } = ln(p, 'layer_norm'));
    this.pwA = new Pointwise(p, 'pointwise_conv1', 2 * d, d, [0, d]);
    this.pwB = new Pointwise(p, 'pointwise_conv1', 2 * d, d, [d, 2 * d]);
    this.pw2 = new Pointwise(p, 'pointwise_conv2', d, d);
    const w = p.f32('depthwise_conv.weight', [d, 1, k]);
    const mean = p.f32('batch_norm.running_mean', [d]);
    const vr = p.f32('batch_norm.running_var', [d]);
    const g = p.f32('batch_norm.weight', [d]);
    const beta = p.f32('batch_norm.bias', [d]);
    const fw = new Float32Array(w.length);
    const fb = new Float32Array(d);
    for (let c = 0; c < d; c++) {
      const s = g[c]! / Math.sqrt(vr[c]! + cfg.batchNormEps);
      for (let j = 0; j < k; j++) fw[c * k + j] = w[c * k + j]! * s;
      fb[c] = beta[c]! - mean[c]! * s;
    }
    const dp = new Params(new Map<string, HostTensor>([
      ['dw.weight', { dtype: 'float32', shape: [d, 1, k], data: fw }],
      ['dw.bias', { dtype: 'float32', shape: [d], data: fb }],
    ]), '', `${p.source} (${p.prefix}depthwise_conv + batch_norm folded)`);
    this.depthwise = new Conv1d(dp, 'dw', { padding: (k - 1) / 2, groups: d, bias: true });
  }
  apply(x: tf.Tensor3D): tf.Tensor3D {
    return tf.tidy(() => {
      const [b, t, d] = x.shape;
      const h = layerNorm(x, this.cfg.layerNormEps, this.lnG, this.lnB).reshape([b * t, d]) as tf.Tensor2D;
      const glu = tf.mul(this.pwA.apply(h), tf.sigmoid(this.pwB.apply(h))).reshape([b, t, d]) as tf.Tensor3D;
      const dw = this.depthwise.apply(glu);
      const act = silu(dw).reshape([b * t, d]) as tf.Tensor2D;
      return this.pw2.apply(act).reshape([b, t, d]) as tf.Tensor3D;
    });
  }
  dispose(): void {
    for (const t of [this.lnG, this.lnB]) t.dispose();
    for (const w of [this.pwA, this.pwB, this.pw2]) w.dispose();
    this.depthwise.dispose();
  }
}

/** Wav2Vec2ConformerSelfAttention, rotary: rotate LN(x) for q and k, v from the un-rotated LN(x). No mask. */
class SelfAttention {
  readonly q: Linear;
  readonly k: Linear;
  readonly v: Linear;
  readonly out: Linear;
  constructor(p: Params, readonly cfg: ConformerConfig) {
    const d = cfg.hiddenSize;
    this.q = new Linear(p, 'linear_q', d, d);
    this.k = new Linear(p, 'linear_k', d, d);
    this.v = new Linear(p, 'linear_v', d, d);
    this.out = new Linear(p, 'linear_out', d, d);
  }
  apply(x: tf.Tensor3D, rot: RotaryTensors, returnProbs: boolean): { out: tf.Tensor3D; probs?: tf.Tensor4D } {
    const heads = this.cfg.numHeads;
    const dh = this.cfg.hiddenSize / heads;
    let probs: tf.Tensor4D | undefined;
    const out = tf.tidy(() => {
      const xr = applyRotary(x, rot, heads);
      const q = this.q.apply(xr) as tf.Tensor3D;
      const k = this.k.apply(xr) as tf.Tensor3D;
      const v = this.v.apply(x) as tf.Tensor3D;
      // scores = (q·kᵀ) / √head_size (a float32 scalar divide, as torch does)
      const r = multiHeadAttention(q, k, v, heads, { divideScores: Math.sqrt(dh), returnProbs });
      if (r.probs) probs = tf.keep(r.probs);
      return this.out.apply(r.out) as tf.Tensor3D;
    });
    return { out, probs };
  }
  dispose(): void {
    this.q.dispose(); this.k.dispose(); this.v.dispose(); this.out.dispose();
  }
}

/** Sub-block outputs for bisecting (fixture mids: ffn1, self_attn, conv_module, ffn2 — before their residuals). */
export interface ConformerLayerMids {
  ffn1?: tf.Tensor3D;
  self_attn?: tf.Tensor3D;
  conv_module?: tf.Tensor3D;
  ffn2?: tf.Tensor3D;
}

export class ConformerLayer {
  readonly ffn1: FeedForward;
  readonly ffn2: FeedForward;
  readonly attn: SelfAttention;
  readonly conv: ConvModule;
  readonly norms: Record<'ffn1_layer_norm' | 'self_attn_layer_norm' | 'ffn2_layer_norm' | 'final_layer_norm', { g: tf.Tensor1D; b: tf.Tensor1D }>;

  /** `p` at one layer, e.g. `model.conformer.layers.0.` */
  constructor(p: Params, readonly cfg: ConformerConfig) {
    const d = cfg.hiddenSize;
    if (d % cfg.numHeads) throw new Error(`conformer: hidden ${d} not divisible by ${cfg.numHeads} heads`);
    this.ffn1 = new FeedForward(p.sub('ffn1.'), d, cfg.intermediateSize);
    this.ffn2 = new FeedForward(p.sub('ffn2.'), d, cfg.intermediateSize);
    this.attn = new SelfAttention(p.sub('self_attn.'), cfg);
    this.conv = new ConvModule(p.sub('conv_module.'), cfg);
    this.norms = {
      ffn1_layer_norm: ln(p, 'ffn1_layer_norm'),
      self_attn_layer_norm: ln(p, 'self_attn_layer_norm'),
      ffn2_layer_norm: ln(p, 'ffn2_layer_norm'),
      final_layer_norm: ln(p, 'final_layer_norm'),
    };
  }

  private ln(x: tf.Tensor, which: keyof ConformerLayer['norms']): tf.Tensor {
    const n = this.norms[which];
    return layerNorm(x, this.cfg.layerNormEps, n.g, n.b);
  }

  /** (B, T, D) → (B, T, D); `returnProbs` gives the attention probabilities (B, H, T, T). */
  apply(x: tf.Tensor3D, rot: RotaryTensors, opts: { returnProbs?: boolean; mids?: ConformerLayerMids } = {}): { out: tf.Tensor3D; probs?: tf.Tensor4D } {
    let probs: tf.Tensor4D | undefined;
    const mids = opts.mids;
    const out = tf.tidy(() => {
      const f1 = this.ffn1.apply(this.ln(x, 'ffn1_layer_norm'));
      if (mids) mids.ffn1 = tf.keep(f1) as tf.Tensor3D;
      let h = tf.add(tf.mul(f1, 0.5), x);
      const a = this.attn.apply(this.ln(h, 'self_attn_layer_norm') as tf.Tensor3D, rot, !!opts.returnProbs);
      probs = a.probs;
      if (mids) mids.self_attn = tf.keep(a.out);
      h = tf.add(a.out, h);
      const c = this.conv.apply(h as tf.Tensor3D);
      if (mids) mids.conv_module = tf.keep(c);
      h = tf.add(h, c);
      const f2 = this.ffn2.apply(this.ln(h, 'ffn2_layer_norm'));
      if (mids) mids.ffn2 = tf.keep(f2) as tf.Tensor3D;
      h = tf.add(tf.mul(f2, 0.5), h);
      return this.ln(h, 'final_layer_norm') as tf.Tensor3D;
    });
    return { out, probs };
  }

  dispose(): void {
    this.ffn1.dispose(); this.ffn2.dispose(); this.attn.dispose(); this.conv.dispose();
    for (const n of Object.values(this.norms)) { n.g.dispose(); n.b.dispose(); }
  }
}
