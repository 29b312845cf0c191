/**
 * models/transformer_2d_flow.py Transformer2DModel, patched-input path with ada_norm_single (PixArt-α style):
 *
 *   tokens = PatchEmbed(x) = Conv2d(k=p, s=p)(x) flattened row-major over (T/p, W/p) + 2-D sin-cos pos-embed
 *   modulation, emb = AdaLayerNormSingleFlow(t)
 *   tokens = blocks(tokens, modulation)
 *   shift, scale = scale_shift_table(2, D) + emb;  out = proj_out(LayerNorm(tokens)·(1 + scale) + shift)
 *   unpatchify (B, h·w, p·p·C) → (B, C, h·p, w·p)   (einsum nhwpqc → nchpwq)
 *
 * Memory: weights stay on the host (Params); with residency 'per-block' each block's ≈ 12·D² weights are
 * uploaded just before it runs and disposed right after (the real 720 M-parameter model never sits in the
 * 4 GiB wasm heap). 'resident' uploads everything once (fast for small models / native backends).
 */
import { abortCheck, drainSteps, drainStepsAsync } from '../steps.js';
import { bindingLimit } from '../device.js';
import * as tf from '@tensorflow/tfjs-core';
import type { Params } from '../params.js';
import { layerNorm } from '../../layers/norm.js';
import { BasicTransformerBlock, type BlockWeights } from './block.js';
import { innerDim, type DiTConfig } from './config.js';
import { get2dSincosPosEmbed } from './posembed.js';
import { AdaLayerNormSingleFlow, type AdaLNSingleWeights } from './timestep.js';
import { disposeLinear, linear, uploadLinear, type LinearW } from './weights.js';

export type Residency = 'resident' | 'per-block' | 'auto';

export interface DiTOptions {
  /** 'auto' (default): per-block when the backend is wasm and the weights exceed 1 GiB, else resident. */
  residency?: Residency;
}

/** Hook for intermediates (debugging / parity bisection); the tensor is only valid during the call. */
export type DiTTap = (name: string, t: tf.Tensor) => void;

interface TopWeights {
  patch: LinearW; // conv as (C·p·p, D) matMul
  adaln: AdaLNSingleWeights;
  scaleShiftTable: tf.Tensor2D;
  projOut: LinearW;
}

export class PatchEmbed {
  readonly baseSize: number;
  readonly interpolationScale: number;

  constructor(readonly p: Params, readonly cfg: DiTConfig) {
    const d = innerDim(cfg);
    p.get('proj.weight', [d, cfg.inChannels, cfg.patchSize, cfg.patchSize]);
    p.get('proj.bias', [d]);
    this.baseSize = Math.floor(cfg.sampleSize / cfg.patchSize);
    this.interpolationScale = Math.max(Math.floor(cfg.sampleSize / 64), 1);
  }

  /** Conv2d(k=s=p) as a matMul: weight (D, C, p, p) flattened over (C, p, p) → (C·p·p, D). */
  upload(): LinearW {
    const c = this.cfg, d = innerDim(c);
    const k = c.inChannels * c.patchSize * c.patchSize;
    const w = this.p.f32('proj.weight');
    return {
      wT: tf.tidy(() => tf.transpose(tf.tensor2d(w, [d, k])) as tf.Tensor2D),
      b: tf.tensor1d(this.p.f32('proj.bias', [d])),
    };
  }

  /** (h·w, D) position embedding of a grid, float32 (host). */
  posEmbed(h: number, w: number): Float32Array {
    return get2dSincosPosEmbed(innerDim(this.cfg), h, w, this.baseSize, this.interpolationScale);
  }

  /** latent (B, C, H, W) → tokens (B, (H/p)·(W/p), D) incl. the position embedding. */
  apply(latent: tf.Tensor4D, w?: LinearW): tf.Tensor3D {
    const own = w ?? this.upload();
    try {
      const [b, c, hh, ww] = latent.shape;
      const ps = this.cfg.patchSize;
      if (c !== this.cfg.inChannels) throw new Error(`PatchEmbed: input has ${c} channels, expected ${this.cfg.inChannels}`);
      if (hh % ps || ww % ps) throw new Error(`PatchEmbed: input ${hh}×${ww} is not divisible by patch size ${ps}`);
      const h = hh / ps, wd = ww / ps;
      const d = innerDim(this.cfg);
      const pos = this.posEmbed(h, wd);
      return tf.tidy(() => {
        // (B, C, h, p, w, p) → (B, h, w, C, p, p): one row per patch, ordered like the conv weight
        const patches = tf.transpose(latent.reshape([b, c, h, ps, wd, ps]), [0, 2, 4, 1, 3, 5]).reshape([b * h * wd, c * ps * ps]);
        const tok = linear(patches, own).reshape([b, h * wd, d]);
        return tf.add(tok, tf.tensor3d(pos, [1, h * wd, d])) as tf.Tensor3D;
      });
    } finally {
      if (!w) disposeLinear(own);
    }
  }
}

/** tf.keep every tensor reachable in a plain weights object (so a surrounding tf.tidy leaves them alone). */
function keepAll<T>(o: T): T {
  const visit = (v: unknown): void => {
    if (v instanceof tf.Tensor) tf.keep(v);
    else if (v && typeof v === 'object') for (const x of Object.values(v)) visit(x);
  };
  visit(o);
  return o;
}

export class Transformer2DModel {
  readonly dim: number;
  readonly patchEmbed: PatchEmbed;
  readonly adaln: AdaLayerNormSingleFlow;
  readonly blocks: BasicTransformerBlock[];
  readonly residency: 'resident' | 'per-block';
  private top: TopWeights | null = null;
  private resident: BlockWeights[] | null = null;

  /** `p` = the estimator subtree (upstream prefix `cfm_wrapper.estimator.`). */
  constructor(readonly p: Params, readonly cfg: DiTConfig, opts: DiTOptions = {}) {
    this.dim = innerDim(cfg);
    const d = this.dim;
    this.patchEmbed = new PatchEmbed(p.sub('pos_embed.'), cfg);
    this.adaln = new AdaLayerNormSingleFlow(p.sub('adaln_single.'), d, cfg.flowTSize);
    this.blocks = [];
    for (let i = 0; i < cfg.numLayers; i++) {
      this.blocks.push(new BasicTransformerBlock(p.sub(`transformer_blocks.${i}.`), d, cfg.heads, cfg.headDim, cfg.normEps));
    }
    p.get('scale_shift_table', [2, d]);
    p.get('proj_out.weight', [cfg.patchSize * cfg.patchSize * cfg.outChannels, d]);
    const want = opts.residency ?? 'auto';
    if (want === 'auto') {
      const bytes = Transformer2DModel.paramCount(cfg) * 4;
      this.residency = tf.getBackend() === 'wasm' && bytes > 2 ** 30 ? 'per-block' : 'resident';
    } else {
      this.residency = want;
    }
  }

  /** Parameter count of the estimator for a config (742,381,328 for the real one). */
  static paramCount(c: DiTConfig): number {
    const d = innerDim(c);
    const block = 6 * d + 4 * (d * d + d) + (d * 4 * d + 4 * d) + (4 * d * d + d);
    const patch = d * c.inChannels * c.patchSize * c.patchSize + d;
    const adaln = (c.flowTSize * d + d) + (d * d + d) + (d * 6 * d + 6 * d);
    const out = 2 * d + (d * c.patchSize * c.patchSize * c.outChannels + c.patchSize * c.patchSize * c.outChannels);
    return c.numLayers * block + patch + adaln + out;
  }

  private topWeights(): TopWeights {
    if (this.top) return this.top;
    const c = this.cfg, d = this.dim;
    const w: TopWeights = {
      patch: this.patchEmbed.upload(),
      adaln: this.adaln.upload(),
      scaleShiftTable: tf.tensor2d(this.p.f32('scale_shift_table', [2, d]), [2, d]),
      projOut: uploadLinear(this.p, 'proj_out', d, c.patchSize * c.patchSize * c.outChannels),
    };
    // the non-block weights are small (≈ 8·D² floats): kept resident in both modes. tf.keep: forward may
    // run inside a caller's tf.tidy, which must not dispose these cached tensors.
    keepAll(w);
    this.top = w;
    return w;
  }

  /**
   * hidden (B, in_channels, T, W) NCHW, t: the flow time per batch item (length B, or length 1 broadcast
   * to B) → (B, out_channels, T, W).
   */
  forward(hidden: tf.Tensor4D, t: ArrayLike<number> | number, tap?: DiTTap): tf.Tensor4D {
    return drainSteps(this.forwardSteps(hidden, t, tap));
  }

  /**
   * `forward` giving the event loop a turn after every block (at the real size a block pass takes seconds); same
   * bytes. An aborted `signal` stops it at the next block (its reason is thrown; nothing is left allocated).
   */
  forwardAsync(hidden: tf.Tensor4D, t: ArrayLike<number> | number, signal?: AbortSignal, tap?: DiTTap): Promise<tf.Tensor4D> {
    return drainStepsAsync(this.forwardSteps(hidden, t, tap), abortCheck(signal));
  }

  /** the forward as a step generator: one yield after each block (src/steps.ts) */
  *forwardSteps(hidden: tf.Tensor4D, t: ArrayLike<number> | number, tap?: DiTTap): Generator<number, tf.Tensor4D, void> {
    const [b, , hh, ww] = hidden.shape;
    const c = this.cfg, d = this.dim, ps = c.patchSize;
    const ts = typeof t === 'number' ? [t] : Array.from(t);
    if (ts.length !== b && ts.length !== 1) throw new Error(`Transformer2DModel: ${ts.length} timesteps for batch ${b} (give 1 or B)`);
    const tB = ts.length === b ? ts : new Array<number>(b).fill(ts[0]!);
    const h = hh / ps, wd = ww / ps;
    // split over the batch when the (B, N, D) token tensors would exceed the binding limit (src/device.ts: the CFG
    // pair of a batched decode at the real width: 2·B·4096·1584 floats); rows are independent, so same values
    const perRow = 4 * h * wd * Math.max(d, ps * ps * c.inChannels, ps * ps * c.outChannels); // tokens, patches, output
    const group = Math.floor(bindingLimit() / perRow);
    if (group < 1) throw new Error(`Transformer2DModel: one batch row's ${h * wd} tokens × ${d} exceed the device's binding limit (${bindingLimit()} bytes)`);
    if (b > group) {
      const outs: tf.Tensor4D[] = [];
      const taps = new Map<string, tf.Tensor[]>(); // each tap of the groups, joined over the batch
      try {
        for (let r0 = 0; r0 < b; r0 += group) {
          const n = Math.min(group, b - r0);
          const part = hidden.slice([r0, 0, 0, 0], [n, hidden.shape[1], hh, ww]);
          const sub: DiTTap | undefined = tap && ((name, v) => { taps.set(name, [...taps.get(name) ?? [], v.clone()]); });
          try {
            outs.push(yield* this.forwardSteps(part, tB.slice(r0, r0 + n), sub));
          } finally { part.dispose(); }
          if (r0 + n < b) yield -1;
        }
        for (const [name, vs] of taps) {
          const v = tf.concat(vs, 0);
          try { tap!(name, v); } finally { v.dispose(); }
        }
        return tf.concat(outs, 0);
      } finally {
        for (const o of outs) o.dispose();
        for (const vs of taps.values()) for (const v of vs) v.dispose();
      }
    }
    const top = this.topWeights();
    let x = this.patchEmbed.apply(hidden, top.patch);
    tap?.('patch_embed', x);
    const { modulation, embedded } = this.adaln.apply(tB, top.adaln);
    tap?.('t_mod', modulation);
    tap?.('t_embedded', embedded);
    try {
      if (this.residency === 'resident' && !this.resident) this.resident = this.blocks.map((bl) => keepAll(bl.upload()));
      for (let i = 0; i < this.blocks.length; i++) {
        const y = this.blocks[i]!.apply(x, modulation, this.resident?.[i]);
        x.dispose();
        x = y;
        tap?.(`block${i}`, x);
        if (i + 1 < this.blocks.length) yield i;
      }
      const out = tf.tidy(() => {
        const [shift, scale] = tf.split(tf.add(top.scaleShiftTable.expandDims(0), embedded.expandDims(1)), 2, 1) as [tf.Tensor, tf.Tensor];
        const nh = tf.add(tf.mul(layerNorm(x, 1e-6), tf.add(scale, 1)), shift);
        const y = linear(nh, top.projOut); // (B, h·w, p·p·C)
        // unpatchify: (B, h, w, p, q, C) → (B, C, h, p, w, q)
        return tf.transpose(y.reshape([b, h, wd, ps, ps, c.outChannels]), [0, 5, 1, 3, 2, 4])
          .reshape([b, c.outChannels, hh, ww]) as tf.Tensor4D;
      });
      return out;
    } finally {
      x.dispose();
      modulation.dispose();
      embedded.dispose();
    }
  }

  /** Release every uploaded weight (host Params are untouched). */
  dispose(): void {
    if (this.top) {
      disposeLinear(this.top.patch);
      AdaLayerNormSingleFlow.dispose(this.top.adaln);
      this.top.scaleShiftTable.dispose();
      disposeLinear(this.top.projOut);
      this.top = null;
    }
    if (this.resident) {
      for (const w of this.resident) BasicTransformerBlock.dispose(w);
      this.resident = null;
    }
  }
}
