/**
 * Transformer2DModel configuration (upstream names in comments: configs/models/transformer2D.json).
 * Only the patched-input, ada_norm_single, self-attention-only path MuCodec uses is implemented.
 */
export interface DiTConfig {
  /** num_attention_heads */
  heads: number;
  /** attention_head_dim */
  headDim: number;
  /** in_channels (x ‖ incontext_x ‖ mu = 96) */
  inChannels: number;
  /** out_channels */
  outChannels: number;
  /** num_layers */
  numLayers: number;
  /** patch_size */
  patchSize: number;
  /** sample_size (sets the PatchEmbed base grid and interpolation scale) */
  sampleSize: number;
  /** norm_eps */
  normEps: number;
  /** PixArtAlphaCombinedFlowEmbeddings.flow_t_size (hard-coded 512 upstream) */
  flowTSize: number;
}

/** The released MuCodec estimator (742 M params): 24 layers, 22 heads × 72 = 1584, FF 6336. */
export const REAL_DIT_CONFIG: DiTConfig = {
  heads: 22, headDim: 72, inChannels: 96, outChannels: 32, numLayers: 24,
  patchSize: 2, sampleSize: 384, normEps: 1e-6, flowTSize: 512,
};

export function innerDim(c: DiTConfig): number {
  return c.heads * c.headDim;
}

/** Build a DiTConfig from an upstream Transformer2DModel config dict (e.g. a fixture's case.json config). */
export function ditConfigFromUpstream(j: Record<string, unknown>): DiTConfig {
  const num = (k: string, dflt?: number): number => {
    const v = j[k];
    if (typeof v === 'number') return v;
    if (dflt !== undefined) return dflt;
    throw new Error(`DiT config: "${k}" is missing`);
  };
  if (j.norm_type !== undefined && j.norm_type !== 'ada_norm_single') throw new Error(`DiT config: norm_type ${String(j.norm_type)} is not supported (ada_norm_single only)`);
  if (j.cross_attention_dim !== undefined && j.cross_attention_dim !== null) throw new Error('DiT config: cross attention is not supported');
  if (j.activation_fn !== undefined && j.activation_fn !== 'gelu-approximate') throw new Error(`DiT config: activation_fn ${String(j.activation_fn)} is not supported`);
  if (j.attention_bias === false) throw new Error('DiT config: attention_bias false is not supported');
  if (j.norm_elementwise_affine === true) throw new Error('DiT config: norm_elementwise_affine true is not supported');
  return {
    heads: num('num_attention_heads'),
    headDim: num('attention_head_dim'),
    inChannels: num('in_channels'),
    outChannels: num('out_channels', num('in_channels')),
    numLayers: num('num_layers'),
    patchSize: num('patch_size'),
    sampleSize: num('sample_size'),
    normEps: num('norm_eps', 1e-5),
    flowTSize: 512,
  };
}
