/**
 * Residual vector quantiser of MuCodec (`rvq_muencoder_emb`): upstream libs/rvq/descript_quantize3.py
 * (ResidualVectorQuantize / VectorQuantize), eval mode. MuCodec uses one codebook of 16384 × 32 on
 * 1024-wide MuQ states; the class supports n_codebooks ≥ 1 like upstream.
 *
 * Weights: in_proj / out_proj are weight_norm(Conv1d(k=1)) — folded once on the host (g · v / ‖v‖) into plain
 * (in, out) matrices, so every projection is a 2-D matMul over (B·T) rows. The codebook search uses a
 * pre-normalised, pre-transposed codebook (32, N) and runs in row chunks so the (rows × N) distance matrix stays
 * small (T·B × 16384 floats would be 200 MB for a batch of 3 windows).
 */
import * as tf from '@tensorflow/tfjs-core';
import '../chained_ops.js';
import { foldWeightNorm, linearWeightT } from '../../layers/host.js';
import { shapeStr, toFloat32 } from '../hosttensor.js';
import type { Params } from '../params.js';

/** ResidualVectorQuantize constructor arguments (upstream names). */
export interface RVQConfig {
  input_dim: number;
  n_codebooks: number;
  codebook_size: number;
  codebook_dim: number;
}

/** MuCodec's configuration (model.py: ResidualVectorQuantize(input_dim=1024, n_codebooks=1, 16384, 32)). */
export const MUCODEC_RVQ_CONFIG: RVQConfig = { input_dim: 1024, n_codebooks: 1, codebook_size: 16384, codebook_dim: 32 };

/**
 * Which weights to load: 'encode' = in_proj + codebook (codes only; quantize() then returns zQ = null),
 * 'decode' = codebook + out_proj (fromCodes only), 'both', or 'auto' (= 'both' when out_proj is present, else
 * 'encode').
 */
export type RVQParts = 'encode' | 'decode' | 'both' | 'auto';

export interface QuantizeResult {
  /** (B, n_codebooks, T) int32 code indices */
  codes: tf.Tensor3D;
  /** (B, input_dim, T): Σ out_proj(z_e + (codebook[code] − z_e)) (straight-through form, as upstream); null when
   *  out_proj is not loaded or `withZq: false` was asked */
  zQ: tf.Tensor3D | null;
  /** (B, n_codebooks·codebook_dim, T): the projected latents z_e (concatenated over codebooks) */
  latents: tf.Tensor3D;
}

export interface FromCodesResult {
  /** (B, input_dim, T) = Σ_i out_proj_i(codebook_i[codes_i]) */
  zQ: tf.Tensor3D;
  /** (B, n_codebooks·codebook_dim, T): codebook rows (not normalised) */
  zP: tf.Tensor3D;
}

/** Rows of the (rows × codebook_size) distance matrix computed at once. */
const SEARCH_ROWS = 256;

class Quantizer {
  /** in_proj folded, (input_dim, codebook_dim) */
  inW: tf.Tensor2D | null = null;
  inB: tf.Tensor1D | null = null;
  /** out_proj folded, (codebook_dim, input_dim) */
  outW: tf.Tensor2D | null = null;
  outB: tf.Tensor1D | null = null;
  /** raw codebook (N, codebook_dim), for lookups */
  codebook: tf.Tensor2D;
  /** F.normalize(codebook)ᵀ, (codebook_dim, N) */
  cNormT: tf.Tensor2D | null = null;
  /** Σ over dim of F.normalize(codebook)², (1, N) */
  cSq: tf.Tensor2D | null = null;

  constructor(p: Params, cfg: RVQConfig, encode: boolean, decode: boolean) {
    const D = cfg.input_dim, d = cfg.codebook_dim, N = cfg.codebook_size;
    const cb = p.get('codebook.weight', [N, d]);
    const cbv = toFloat32(cb);
    this.codebook = tf.tensor2d(cbv, [N, d]);
    if (encode) {
      const w = foldWeightNorm(p.get('in_proj.weight_g', [d, 1, 1]), p.get('in_proj.weight_v', [d, D, 1]));
      const wt = linearWeightT({ dtype: 'float32', shape: [d, D], data: w.data });
      this.inW = tf.tensor2d(wt.data, [D, d]);
      this.inB = p.tensor('in_proj.bias', [d]) as tf.Tensor1D;
      // F.normalize(codebook): row / max(‖row‖₂, 1e-12), float32 arithmetic (sum of squares, sqrt, clamp, divide)
      const cn = new Float32Array(N * d);
      const csq = new Float32Array(N);
      const f = new Float32Array(1);
      for (let n = 0; n < N; n++) {
        let ss = 0;
        for (let k = 0; k < d; k++) { const x = cbv[n * d + k]!; f[0] = ss + Math.fround(x * x); ss = f[0]!; }
        const norm = Math.max(Math.fround(Math.sqrt(ss)), 1e-12);
        let s2 = 0;
        for (let k = 0; k < d; k++) {
          const y = Math.fround(cbv[n * d + k]! / norm);
          cn[k * N + n] = y; // transposed: (d, N)
          s2 = Math.fround(s2 + Math.fround(y * y));
        }
        csq[n] = s2;
      }
      this.cNormT = tf.tensor2d(cn, [d, N]);
      this.cSq = tf.tensor2d(csq, [1, N]);
    }
    if (decode) {
      const w = foldWeightNorm(p.get('out_proj.weight_g', [D, 1, 1]), p.get('out_proj.weight_v', [D, d, 1]));
      const wt = linearWeightT({ dtype: 'float32', shape: [D, d], data: w.data });
      this.outW = tf.tensor2d(wt.data, [d, D]);
      this.outB = p.tensor('out_proj.bias', [D]) as tf.Tensor1D;
    }
  }

  /** rows (R, input_dim) → z_e rows (R, codebook_dim) */
  project(rows: tf.Tensor2D): tf.Tensor2D {
    return tf.tidy(() => tf.add(tf.matMul(rows, this.inW!), this.inB!) as tf.Tensor2D);
  }

  /** VectorQuantize.decode_latents on rows (R, d): code indices (R,) int32 */
  search(ze: tf.Tensor2D): tf.Tensor1D {
    const R = ze.shape[0];
    const parts: tf.Tensor1D[] = [];
    for (let r0 = 0; r0 < R; r0 += SEARCH_ROWS) {
      const n = Math.min(SEARCH_ROWS, R - r0);
      parts.push(tf.tidy(() => {
        const e0 = n === R ? ze : tf.slice(ze, [r0, 0], [n, -1]);
        // F.normalize(encodings): x / max(‖x‖₂, 1e-12)
        const norm = tf.maximum(tf.sqrt(tf.sum(tf.square(e0), 1, true)), 1e-12);
        const e = tf.div(e0, norm) as tf.Tensor2D;
        const eSq = tf.sum(tf.square(e), 1, true);
        // dist = (Σe² − 2·e·cᵀ) + Σc² in upstream's order; argmax(−dist) = argmin(dist) (negation is exact)
        const dot = tf.matMul(tf.mul(e, 2), this.cNormT!);
        const dist = tf.add(tf.sub(eSq, dot), this.cSq!);
        return tf.argMin(dist, 1) as tf.Tensor1D;
      }));
    }
    if (parts.length === 1) return parts[0]!;
    const out = tf.concat(parts, 0);
    for (const t of parts) t.dispose();
    return out;
  }

  /** out_proj on rows (R, d) → (R, input_dim) */
  unproject(rows: tf.Tensor2D): tf.Tensor2D {
    return tf.tidy(() => tf.add(tf.matMul(rows, this.outW!), this.outB!) as tf.Tensor2D);
  }

  dispose(): void {
    for (const t of [this.inW, this.inB, this.outW, this.outB, this.codebook, this.cNormT, this.cSq]) t?.dispose();
  }
}

export class RVQ {
  private constructor(
    readonly config: RVQConfig,
    private readonly quantizers: Quantizer[],
    readonly canEncode: boolean,
    readonly canDecode: boolean,
  ) {}

  /** `p` is the subtree of the module (keys `quantizers.{i}.in_proj.weight_g`, …, `quantizers.{i}.codebook.weight`). */
  static fromParams(p: Params, cfg: RVQConfig = MUCODEC_RVQ_CONFIG, parts: RVQParts = 'auto'): RVQ {
    let encode = parts === 'encode' || parts === 'both' || parts === 'auto';
    let decode = parts === 'decode' || parts === 'both';
    if (parts === 'auto') decode = p.has('quantizers.0.out_proj.weight_v');
    if (!encode && !decode) encode = true;
    const qs: Quantizer[] = [];
    try {
      for (let i = 0; i < cfg.n_codebooks; i++) qs.push(new Quantizer(p.sub(`quantizers.${i}.`), cfg, encode, decode));
    } catch (e) {
      for (const q of qs) q.dispose();
      throw e;
    }
    return new RVQ(cfg, qs, encode, decode);
  }

  /**
   * ResidualVectorQuantize.forward (eval): z (B, input_dim, T) → codes, z_q, latents. The input is upstream's
   * channels-first layout; `quantizeChannelsLast` takes (B, T, input_dim) (MuQ hidden states) without a transpose.
   */
  quantize(z: tf.Tensor3D, opts: { withZq?: boolean } = {}): QuantizeResult {
    if (z.shape[1] !== this.config.input_dim) throw new Error(`rvq: input ${shapeStr(z.shape)} is not (B, ${this.config.input_dim}, T)`);
    const zt = tf.transpose(z, [0, 2, 1]) as tf.Tensor3D;
    try {
      return this.quantizeChannelsLast(zt, opts);
    } finally {
      zt.dispose();
    }
  }

  /** As `quantize`, on channels-last input (B, T, input_dim); outputs keep upstream's layouts. */
  quantizeChannelsLast(x: tf.Tensor3D, opts: { withZq?: boolean } = {}): QuantizeResult {
    if (!this.canEncode) throw new Error('rvq: loaded for decoding only (in_proj not loaded)');
    const [B, T, D] = x.shape;
    if (D !== this.config.input_dim) throw new Error(`rvq: input ${shapeStr(x.shape)} is not (B, T, ${this.config.input_dim})`);
    const withZq = (opts.withZq ?? true) && this.canDecode;
    const d = this.config.codebook_dim;
    const codesL: tf.Tensor1D[] = [];
    const latL: tf.Tensor2D[] = [];
    let zq: tf.Tensor2D | null = null;
    let residual: tf.Tensor2D = tf.reshape(x, [B * T, D]);
    try {
      for (let i = 0; i < this.quantizers.length; i++) {
        const q = this.quantizers[i]!;
        const ze = q.project(residual);
        latL.push(ze);
        const idx = q.search(ze);
        codesL.push(idx);
        const last = i === this.quantizers.length - 1;
        if (!withZq && last) break;
        if (!this.canDecode) throw new Error('rvq: residual quantisation with n_codebooks > 1 needs out_proj');
        // forward's straight-through z_q = z_e + (codebook[idx] − z_e), then out_proj
        const zqi = tf.tidy(() => q.unproject(tf.add(ze, tf.sub(tf.gather(q.codebook, idx), ze)) as tf.Tensor2D));
        const nz: tf.Tensor2D | null = withZq ? (zq ? (tf.add(zq, zqi) as tf.Tensor2D) : tf.clone(zqi)) : null;
        zq?.dispose();
        zq = nz;
        if (!last) {
          const nr = tf.sub(residual, zqi) as tf.Tensor2D;
          residual.dispose();
          residual = nr;
        }
        zqi.dispose();
      }
      const codes = tf.tidy(() => (tf.stack(codesL.map((c) => c.reshape([B, T])), 1) as tf.Tensor3D).toInt()); // (B, N, T)
      const latents = tf.tidy(() => tf.transpose(tf.concat(latL.map((l) => l.reshape([B, T, d])), 2), [0, 2, 1]) as tf.Tensor3D);
      const zQ = zq ? tf.tidy(() => tf.transpose(zq!.reshape([B, T, D]), [0, 2, 1]) as tf.Tensor3D) : null;
      return { codes, latents, zQ };
    } finally {
      residual.dispose();
      for (const t of [...codesL, ...latL]) t.dispose();
      zq?.dispose();
    }
  }

  /** Codes only (B, n_codebooks, T) as a host Int32Array (row-major), from channels-last (B, T, input_dim). */
  async codesChannelsLast(x: tf.Tensor3D): Promise<Int32Array> {
    const r = this.quantizeChannelsLast(x, { withZq: false });
    try {
      return (await r.codes.data()) as Int32Array;
    } finally {
      r.codes.dispose();
      r.latents.dispose();
    }
  }

  /**
   * ResidualVectorQuantize.from_codes: codes (B, n, T) int (n ≤ n_codebooks) → z_q (B, input_dim, T),
   * z_p (B, n·codebook_dim, T). Accepts a tensor or a host array with its shape.
   */
  fromCodes(codes: tf.Tensor3D | { data: Int32Array; shape: [number, number, number] }): FromCodesResult {
    if (!this.canDecode) throw new Error('rvq: loaded for encoding only (out_proj not loaded)');
    return tf.tidy(() => {
      const c = codes instanceof tf.Tensor ? codes.toInt() : tf.tensor3d(codes.data, codes.shape, 'int32');
      const [B, n, T] = c.shape as [number, number, number];
      if (n > this.quantizers.length) throw new Error(`rvq: codes ${shapeStr(c.shape)} have ${n} codebooks, model has ${this.quantizers.length}`);
      const N = this.config.codebook_size;
      // host codes are checked where they are (no read back of the tensor just made from them; a device backend
      // cannot read synchronously); a tensor argument is read (host backends)
      const flat = codes instanceof tf.Tensor ? c.dataSync() : codes.data;
      for (let i = 0; i < flat.length; i++) {
        const v = flat[i]!;
        if (!(v >= 0 && v < N)) throw new Error(`rvq: code ${v} at index ${i} is outside [0, ${N})`);
      }
      const d = this.config.codebook_dim, D = this.config.input_dim;
      let zq: tf.Tensor2D | null = null;
      const zps: tf.Tensor2D[] = [];
      for (let i = 0; i < n; i++) {
        const q = this.quantizers[i]!;
        const idx = tf.reshape(tf.slice(c, [0, i, 0], [B, 1, T]), [B * T]);
        const zp = tf.gather(q.codebook, idx) as tf.Tensor2D; // rows (B·T, d)
        zps.push(zp);
        const zqi = q.unproject(zp);
        zq = zq ? (tf.add(zq, zqi) as tf.Tensor2D) : zqi;
      }
      const zP = tf.transpose(tf.concat(zps.map((z) => z.reshape([B, T, d])), 2), [0, 2, 1]) as tf.Tensor3D;
      const zQ = tf.transpose(zq!.reshape([B, T, D]), [0, 2, 1]) as tf.Tensor3D;
      return { zQ, zP };
    });
  }

  dispose(): void {
    for (const q of this.quantizers) q.dispose();
  }
}
