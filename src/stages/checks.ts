/**
 * Shared pieces of the parity stages' case handling: reading config values (through the case's tracked view, so the
 * runner knows they were read), refusing values a stage supports only at the reference's setting, and the
 * "deliberately unused" key lists of the upstream configurations several stages share (one reason per key).
 */
import type { FixtureCase } from '../fixtures.js';

type Rec = Record<string, unknown>;

/** The sub-object at `key` of a (tracked) config object; throws naming the key when it is not an object. */
export function sub(obj: Rec, key: string, label: string): Rec {
  const v = obj[key];
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new Error(`${label}.${key} is missing or not an object`);
  return v as Rec;
}

export function num(obj: Rec, key: string, label: string): number {
  const v = obj[key];
  if (typeof v !== 'number' || !Number.isFinite(v)) throw new Error(`${label}.${key} is missing or not a number (got ${JSON.stringify(v)})`);
  return v;
}

export function cfgNum(c: FixtureCase, key: string): number {
  return num(c.config, key, `${c.name}: config`);
}

/**
 * Settings the implementation has only at one value: each key present is read and must equal its value (JSON
 * equality), else a clear error names the key — a changed case fails instead of being silently ignored.
 */
export function supportOnly(obj: Rec, label: string, rules: Record<string, unknown>): void {
  for (const [k, want] of Object.entries(rules)) {
    if (!Object.prototype.hasOwnProperty.call(obj, k)) continue;
    const got = obj[k];
    if (JSON.stringify(got) !== JSON.stringify(want)) {
      throw new Error(`${label}.${k} = ${JSON.stringify(got)} is not supported (only ${JSON.stringify(want)})`);
    }
  }
}

/** A derived value the case records (a shape, a count): must equal what the stage computed. */
export function expectDerived(obj: Rec, key: string, label: string, computed: unknown): void {
  if (!Object.prototype.hasOwnProperty.call(obj, key)) return;
  const v = obj[key];
  if (JSON.stringify(v) !== JSON.stringify(computed)) {
    throw new Error(`${label}.${key} = ${JSON.stringify(v)}, but the stage computed ${JSON.stringify(computed)}`);
  }
}

/** keys of `m` prefixed with `p.` (for the shared lists below, used under a parent key) */
export function under(p: string, m: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.entries(m).map(([k, v]) => [`${p}.${k}`, v]));
}

const EVAL_DROPOUT = 'inference (eval mode): dropout is the identity';
export const DESCRIPTION = 'a description of the reference computation (text), not a setting';
export const SHAPE = 'derived from the input tensors\' shapes; the output comparison checks the result\'s shape';

/** diffusers Transformer2DModel / BasicTransformerBlock settings (upstream estimator config). */
export const DIT_FIXED: Record<string, unknown> = {
  num_vector_embeds: null, use_linear_projection: false, only_cross_attention: false, double_self_attention: false,
  upcast_attention: false, attention_type: 'default',
};
export const DIT_UNUSED: Record<string, string> = {
  dropout: EVAL_DROPOUT,
  norm_num_groups: 'patched input: diffusers builds no GroupNorm (only for continuous input)',
  num_embeds_ada_norm: 'only for norm_type ada_norm / ada_norm_zero; ada_norm_single has no class embedding table',
};

/** The MuQ conformer (transformers Wav2Vec2Conformer) settings. */
export const CONFORMER_FIXED: Record<string, unknown> = { hidden_act: 'swish', position_embeddings_type: 'rotary' };
export const CONFORMER_UNUSED: Record<string, string> = {
  head_size: 'hidden_size / num_attention_heads (the weights\' shapes give the same)',
  num_conv_pos_embeddings: 'pos_conv_embed is built by upstream but never used in forward',
  num_conv_pos_embedding_groups: 'pos_conv_embed is built by upstream but never used in forward',
  note: DESCRIPTION,
};

/** AudioLDM AutoencoderKL ddconfig keys with no effect at this configuration. */
export const DDCONFIG_UNUSED: Record<string, string> = {
  mel_bins: 'AudioLDM\'s Encoder/Decoder take the mel width from the input; only the shapes depend on it',
  resolution: 'only sets the attention resolutions\' scale, and attn_resolutions is [] (checked)',
  dropout: EVAL_DROPOUT,
};
export const VAE_UNUSED: Record<string, string> = {
  ...under('ddconfig', DDCONFIG_UNUSED),
  image_key: 'names the LatentDiffusion batch entry; no effect on the VAE',
};
/** a stage that only decodes builds no VAE encoder, one that only encodes no decoder */
export const VAE_DECODE_UNUSED: Record<string, string> = { ...VAE_UNUSED, 'ddconfig.in_channels': 'the VAE encoder\'s input channels; decoding builds no encoder' };
export const VAE_ENCODE_UNUSED: Record<string, string> = { ...VAE_UNUSED, 'ddconfig.out_ch': 'the VAE decoder\'s output channels; encoding builds no decoder' };

/** RVQ settings used only in training. */
export const RVQ_UNUSED: Record<string, string> = {
  quantizer_dropout: 'training only (random codebook dropout)',
  stale_tolerance: 'training only (codebook refresh)',
  weight_norm: DESCRIPTION,
  search: DESCRIPTION,
};
