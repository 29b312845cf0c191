/**
 * What the converted weights must contain: the model configuration (upstream hyper-parameter names, the same
 * shape as the e2e fixture's case.json "config") and the expected tensor names + shapes derived from it.
 *
 * Derivation follows the upstream module trees (names are upstream state-dict names):
 *  - MuQ (muq_dev MuQModel + transformers Wav2Vec2Conformer encoder), under `muencoder.`
 *  - RVQ (descript-audio-codec style ResidualVectorQuantize, weight-normed in/out_proj), `rvq_muencoder_emb.`
 *  - torchaudio Resample(48000, 24000) kernel, `rsq48tomuencoder.kernel`
 *  - Transformer2DModel (ada_norm_single, patch 2; MuCodec transformer_2d_flow.py), `cfm_wrapper.estimator.`
 *  - cond_muencoder_emb, zero_cond_embedding1, normfeat (model.py PromptCondAudioDiffusion)
 *  - AudioLDM AutoencoderKL (LDM Encoder/Decoder) + HiFi-GAN Generator_old, `first_stage_model.`, + `scale_factor`
 * `convert/manifests/*.json` (built from the upstream modules at the real configuration) list every tensor of
 * the released checkpoints; tests check that deriveExpected(REAL_CONFIG) agrees with them exactly.
 *
 * Only what inference needs is expected (and converted): see isNeeded().
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { packagePath } from '../src/package_files.js';

export interface ExpectedTensor {
  name: string;
  shape: number[];
  /** 'F32' for every converted float tensor */
  dtype: 'F32' | 'I64';
}

export interface MuqConfig {
  encoder_dim: number;
  encoder_depth: number;
  conv_dim: number;
  n_mels: number;
  conformer: { num_attention_heads: number; intermediate_size: number; conv_depthwise_kernel_size: number; [k: string]: unknown };
  [k: string]: unknown;
}
export interface RvqConfig { input_dim: number; n_codebooks: number; codebook_size: number; codebook_dim: number; [k: string]: unknown }
export interface EstimatorConfig {
  num_attention_heads: number; attention_head_dim: number; in_channels: number; out_channels: number;
  num_layers: number; patch_size: number; attention_bias?: boolean; [k: string]: unknown;
}
export interface VaeConfig {
  ddconfig: {
    ch: number; ch_mult: number[]; num_res_blocks: number; attn_resolutions: number[]; in_channels: number;
    out_ch: number; z_channels: number; double_z: boolean; resolution: number; [k: string]: unknown;
  };
  embed_dim: number;
  vocoder: {
    resblock: string; upsample_rates: number[]; upsample_kernel_sizes: number[]; upsample_initial_channel: number;
    resblock_kernel_sizes: number[]; resblock_dilation_sizes: number[][]; num_mels: number;
  };
  [k: string]: unknown;
}

/** The model configuration (same layout as the e2e fixture case.json "config"). */
export interface ModelConfig {
  muq: MuqConfig;
  /** MuCodec layer_num: codes come from MuQ layer_results[layer_num - 1] */
  layer_num: number;
  rvq_muencoder_emb: RvqConfig;
  cond_muencoder_emb: { in_features: number; out_features: number };
  normfeat: { dim: number; [k: string]: unknown };
  num_channels: number;
  estimator: EstimatorConfig;
  vae: VaeConfig;
  [k: string]: unknown;
}

/** The released MuCodec configuration (generate.py / model.py / muq_dev / tools/get_melvaehifigan48k.py). */
export const REAL_CONFIG: ModelConfig = {
  muq: {
    encoder_dim: 1024, encoder_depth: 12, conv_dim: 512, n_mels: 128, hop_length: 240, label_rate: 25,
    codebook_size: 4096, codebook_dim: 16, num_codebooks: 1,
    conformer: {
      hidden_size: 1024, num_hidden_layers: 12, num_attention_heads: 16, intermediate_size: 4096, hidden_act: 'swish',
      conv_depthwise_kernel_size: 31, position_embeddings_type: 'rotary', rotary_embedding_base: 10000,
      layer_norm_eps: 1e-5, num_conv_pos_embeddings: 128, num_conv_pos_embedding_groups: 16,
    },
  },
  layer_num: 7,
  rvq_muencoder_emb: { input_dim: 1024, n_codebooks: 1, codebook_size: 16384, codebook_dim: 32, quantizer_dropout: 0.0, stale_tolerance: 200 },
  cond_muencoder_emb: { in_features: 1024, out_features: 512 },
  normfeat: { dim: 32, num_samples: 100000, power_std: 1.0 },
  num_channels: 32,
  estimator: {
    activation_fn: 'gelu-approximate', attention_bias: true, attention_head_dim: 72, attention_type: 'default',
    cross_attention_dim: null, double_self_attention: false, dropout: 0.0, in_channels: 96, norm_elementwise_affine: false,
    norm_eps: 1e-6, norm_num_groups: 32, norm_type: 'ada_norm_single', num_attention_heads: 22, num_embeds_ada_norm: 1000,
    num_layers: 24, num_vector_embeds: null, only_cross_attention: false, out_channels: 32, patch_size: 2, sample_size: 384,
    upcast_attention: false, use_linear_projection: false,
  },
  vae: {
    ddconfig: {
      double_z: true, mel_bins: 256, z_channels: 16, resolution: 256, downsample_time: false, in_channels: 1, out_ch: 1,
      ch: 128, ch_mult: [1, 2, 4, 8], num_res_blocks: 2, attn_resolutions: [], dropout: 0,
    },
    embed_dim: 16,
    image_key: 'fbank',
    vocoder: {
      resblock: '1', upsample_rates: [6, 5, 4, 2, 2], upsample_kernel_sizes: [12, 10, 8, 4, 4], upsample_initial_channel: 1536,
      resblock_kernel_sizes: [3, 7, 11, 15], resblock_dilation_sizes: [[1, 3, 5], [1, 3, 5], [1, 3, 5], [1, 3, 5]], num_mels: 256,
    },
  },
  stft: { filter_length: 2048, hop_length: 480, win_length: 2048, n_mel_channels: 256, sampling_rate: 48000, mel_fmin: 20, mel_fmax: 24000 },
  sample_rate: 48000,
};

/** Number of MuQ conformer layers the codes depend on: layer_results[layer_num - 1] is the output of layer
 *  layer_num - 2 (hidden_states[i] is the input of layer i), or the final-LayerNorm output when it is the last. */
export function muqLayersNeeded(cfg: ModelConfig): { layers: number; finalNorm: boolean } {
  const idx = cfg.layer_num - 1;
  const depth = cfg.muq.encoder_depth;
  if (idx < 0 || idx > depth) throw new Error(`layer_num ${cfg.layer_num} is outside 1..${depth + 1}`);
  return idx === depth ? { layers: depth, finalNorm: true } : { layers: idx, finalNorm: false };
}

/**
 * Whether a full checkpoint key (mucodec.pt naming) is needed for inference. Dropped: training-only state
 * (num_batches_tracked, RVQ stale_counter), MuQ parts the encode path never runs (pos_conv_embed — its key names
 * depend on the torch that saved the file —, the BEST-RQ quantizer targets, the logits head `model.linear`,
 * cls_token, conformer layers after the one the codes come from and the final LayerNorm unless used), and the
 * unused resamplers rsp48toclap / rsq48towav2vec.
 */
export function isNeeded(name: string, cfg: ModelConfig): boolean {
  if (name.endsWith('.num_batches_tracked') || name.endsWith('.stale_counter')) return false;
  if (name.startsWith('rsp48toclap.') || name.startsWith('rsq48towav2vec.')) return false;
  if (name.startsWith('muencoder.')) {
    const k = name.slice('muencoder.'.length);
    if (k.startsWith('model.conformer.pos_conv_embed.') || k.startsWith('model.quantizer_') ||
        k.startsWith('model.linear.') || k === 'model.cls_token') return false;
    const { layers, finalNorm } = muqLayersNeeded(cfg);
    const m = /^model\.conformer\.layers\.(\d+)\./.exec(k);
    if (m && Number(m[1]) >= layers) return false;
    if (k.startsWith('model.conformer.layer_norm.') && !finalNorm) return false;
  }
  return true;
}

const F = (name: string, shape: number[]): ExpectedTensor => ({ name, shape, dtype: 'F32' });

function batchNorm(p: string, c: number): ExpectedTensor[] {
  return [F(`${p}.weight`, [c]), F(`${p}.bias`, [c]), F(`${p}.running_mean`, [c]), F(`${p}.running_var`, [c])];
}
function linear(p: string, out: number, inp: number, bias = true): ExpectedTensor[] {
  return bias ? [F(`${p}.weight`, [out, inp]), F(`${p}.bias`, [out])] : [F(`${p}.weight`, [out, inp])];
}
function layerNorm(p: string, c: number): ExpectedTensor[] {
  return [F(`${p}.weight`, [c]), F(`${p}.bias`, [c])];
}
function conv(p: string, out: number, inp: number, k: number[], bias = true): ExpectedTensor[] {
  return bias ? [F(`${p}.weight`, [out, inp, ...k]), F(`${p}.bias`, [out])] : [F(`${p}.weight`, [out, inp, ...k])];
}

/** MuQ tensors needed by the encode path, names relative to the MuQ module (`model.…`). */
export function muqExpected(cfg: ModelConfig): ExpectedTensor[] {
  const q = cfg.muq;
  const h = q.encoder_dim, c = q.conv_dim, cf = q.conformer;
  const head = h / cf.num_attention_heads;
  const out: ExpectedTensor[] = [
    // MelSTFT buffers of the melspec_2048 feature (n_fft 2048)
    F('model.preprocessor_melspec_2048.mel_stft.spectrogram.window', [2048]),
    F('model.preprocessor_melspec_2048.mel_stft.mel_scale.fb', [1025, q.n_mels]),
  ];
  // Conv2dSubsampling: two Res2d blocks (stride 2: conv3 shortcut present), then Linear(c * n_mels/4 -> h)
  for (const [i, cin] of [[0, 1], [1, c]] as const) {
    const p = `model.conv.conv.${i}`;
    out.push(...conv(`${p}.conv1`, c, cin, [3, 3]), ...batchNorm(`${p}.bn1`, c),
      ...conv(`${p}.conv2`, c, c, [3, 3]), ...batchNorm(`${p}.bn2`, c),
      ...conv(`${p}.conv3`, c, cin, [3, 3]), ...batchNorm(`${p}.bn3`, c));
  }
  out.push(...linear('model.conv.linear', h, c * (q.n_mels / 4)));
  out.push(F('model.conformer.embed_positions.inv_freq', [head / 2]));
  const { layers, finalNorm } = muqLayersNeeded(cfg);
  for (let l = 0; l < layers; l++) {
    const p = `model.conformer.layers.${l}`;
    const ffn = (n: string): ExpectedTensor[] => [
      ...layerNorm(`${p}.${n}_layer_norm`, h),
      ...linear(`${p}.${n}.intermediate_dense`, cf.intermediate_size, h), ...linear(`${p}.${n}.output_dense`, h, cf.intermediate_size),
    ];
    out.push(...ffn('ffn1'), ...layerNorm(`${p}.self_attn_layer_norm`, h));
    for (const n of ['linear_q', 'linear_k', 'linear_v', 'linear_out']) out.push(...linear(`${p}.self_attn.${n}`, h, h));
    out.push(...layerNorm(`${p}.conv_module.layer_norm`, h),
      ...conv(`${p}.conv_module.pointwise_conv1`, 2 * h, h, [1], false),
      ...conv(`${p}.conv_module.depthwise_conv`, h, 1, [cf.conv_depthwise_kernel_size], false),
      ...batchNorm(`${p}.conv_module.batch_norm`, h),
      ...conv(`${p}.conv_module.pointwise_conv2`, h, h, [1], false),
      ...ffn('ffn2'), ...layerNorm(`${p}.final_layer_norm`, h));
  }
  if (finalNorm) out.push(...layerNorm('model.conformer.layer_norm', h));
  return out;
}

/** RVQ (weight_g / weight_v kept as stored: weight norm is folded by the loader, not here). */
export function rvqExpected(r: RvqConfig, prefix: string): ExpectedTensor[] {
  const out: ExpectedTensor[] = [];
  for (let i = 0; i < r.n_codebooks; i++) {
    const p = `${prefix}quantizers.${i}`;
    out.push(F(`${p}.in_proj.bias`, [r.codebook_dim]), F(`${p}.in_proj.weight_g`, [r.codebook_dim, 1, 1]),
      F(`${p}.in_proj.weight_v`, [r.codebook_dim, r.input_dim, 1]),
      F(`${p}.out_proj.bias`, [r.input_dim]), F(`${p}.out_proj.weight_g`, [r.input_dim, 1, 1]),
      F(`${p}.out_proj.weight_v`, [r.input_dim, r.codebook_dim, 1]),
      F(`${p}.codebook.weight`, [r.codebook_size, r.codebook_dim]));
  }
  return out;
}

function gcd(a: number, b: number): number { return b ? gcd(b, a % b) : a; }

/** torchaudio Resample kernel shape (sinc_interp_hann, lowpass_filter_width 6, rolloff 0.99). */
export function resampleKernelShape(orig: number, target: number, lowpassFilterWidth = 6, rolloff = 0.99): number[] {
  const g = gcd(orig, target);
  const o = orig / g, n = target / g;
  const width = Math.ceil((lowpassFilterWidth * o) / (Math.min(o, n) * rolloff));
  return [n, 1, 2 * width + o];
}

export function encoderExpected(cfg: ModelConfig): ExpectedTensor[] {
  return [
    ...muqExpected(cfg).map((t) => ({ ...t, name: `muencoder.${t.name}` })),
    F('rsq48tomuencoder.kernel', resampleKernelShape(48000, 24000)),
    ...rvqExpected(cfg.rvq_muencoder_emb, 'rvq_muencoder_emb.'),
  ];
}

/** Transformer2DModel with norm_type ada_norm_single (MuCodec transformer_2d_flow.py; flow_t_size 512). */
export function estimatorExpected(e: EstimatorConfig, prefix = 'cfm_wrapper.estimator.'): ExpectedTensor[] {
  const d = e.num_attention_heads * e.attention_head_dim;
  const p = e.patch_size;
  const bias = e.attention_bias !== false;
  const out: ExpectedTensor[] = [F(`${prefix}scale_shift_table`, [2, d]), ...conv(`${prefix}pos_embed.proj`, d, e.in_channels, [p, p])];
  for (let l = 0; l < e.num_layers; l++) {
    const b = `${prefix}transformer_blocks.${l}`;
    out.push(F(`${b}.scale_shift_table`, [6, d]));
    for (const n of ['to_q', 'to_k', 'to_v']) out.push(...linear(`${b}.attn1.${n}`, d, d, bias));
    out.push(...linear(`${b}.attn1.to_out.0`, d, d), ...linear(`${b}.ff.net.0.proj`, 4 * d, d), ...linear(`${b}.ff.net.2`, d, 4 * d));
  }
  out.push(...linear(`${prefix}proj_out`, p * p * e.out_channels, d),
    ...linear(`${prefix}adaln_single.emb.timestep_embedder.linear_1`, d, 512),
    ...linear(`${prefix}adaln_single.emb.timestep_embedder.linear_2`, d, d),
    ...linear(`${prefix}adaln_single.linear`, 6 * d, d));
  return out;
}

export function decoderExpected(cfg: ModelConfig): ExpectedTensor[] {
  const nf = cfg.normfeat.dim, nc = cfg.num_channels;
  return [
    ...estimatorExpected(cfg.estimator),
    ...linear('cond_muencoder_emb', cfg.cond_muencoder_emb.out_features, cfg.cond_muencoder_emb.in_features),
    F('zero_cond_embedding1', [32 * 32]), // model.py: nn.Parameter(torch.randn(32*32,))
    F('normfeat.counts', [1]), F('normfeat.sum_x', [nc, nf]), F('normfeat.sum_x2', [nc, nf]), F('normfeat.sum_target_x2', [nc, nf]),
    ...rvqExpected(cfg.rvq_muencoder_emb, 'rvq_muencoder_emb.'),
  ];
}

function resnetBlock(p: string, cin: number, cout: number): ExpectedTensor[] {
  const out = [...layerNorm(`${p}.norm1`, cin), ...conv(`${p}.conv1`, cout, cin, [3, 3]),
    ...layerNorm(`${p}.norm2`, cout), ...conv(`${p}.conv2`, cout, cout, [3, 3])];
  if (cin !== cout) out.push(...conv(`${p}.nin_shortcut`, cout, cin, [1, 1]));
  return out;
}
function attnBlock(p: string, c: number): ExpectedTensor[] {
  return [...layerNorm(`${p}.norm`, c), ...['q', 'k', 'v', 'proj_out'].flatMap((n) => conv(`${p}.${n}`, c, c, [1, 1]))];
}

/** AutoencoderKL (AudioLDM LDM Encoder/Decoder) + HiFi-GAN Generator_old after remove_weight_norm, names
 *  relative to first_stage_model. */
export function vaeExpected(v: VaeConfig): ExpectedTensor[] {
  const dd = v.ddconfig;
  const nres = dd.ch_mult.length;
  const out: ExpectedTensor[] = [...conv('encoder.conv_in', dd.ch, dd.in_channels, [3, 3])];
  const inMult = [1, ...dd.ch_mult];
  let curRes = dd.resolution;
  let blockIn = dd.ch;
  for (let i = 0; i < nres; i++) {
    blockIn = dd.ch * inMult[i]!;
    const blockOut = dd.ch * dd.ch_mult[i]!;
    for (let j = 0; j < dd.num_res_blocks; j++) {
      out.push(...resnetBlock(`encoder.down.${i}.block.${j}`, blockIn, blockOut));
      blockIn = blockOut;
      if (dd.attn_resolutions.includes(curRes)) out.push(...attnBlock(`encoder.down.${i}.attn.${j}`, blockIn));
    }
    if (i !== nres - 1) { out.push(...conv(`encoder.down.${i}.downsample.conv`, blockIn, blockIn, [3, 3])); curRes = Math.floor(curRes / 2); }
  }
  out.push(...resnetBlock('encoder.mid.block_1', blockIn, blockIn), ...attnBlock('encoder.mid.attn_1', blockIn),
    ...resnetBlock('encoder.mid.block_2', blockIn, blockIn), ...layerNorm('encoder.norm_out', blockIn),
    ...conv('encoder.conv_out', dd.double_z ? 2 * dd.z_channels : dd.z_channels, blockIn, [3, 3]));
  // decoder
  blockIn = dd.ch * dd.ch_mult[nres - 1]!;
  curRes = Math.floor(dd.resolution / 2 ** (nres - 1));
  out.push(...conv('decoder.conv_in', blockIn, dd.z_channels, [3, 3]),
    ...resnetBlock('decoder.mid.block_1', blockIn, blockIn), ...attnBlock('decoder.mid.attn_1', blockIn),
    ...resnetBlock('decoder.mid.block_2', blockIn, blockIn));
  const up: ExpectedTensor[][] = [];
  for (let i = nres - 1; i >= 0; i--) {
    const lvl: ExpectedTensor[] = [];
    const blockOut = dd.ch * dd.ch_mult[i]!;
    for (let j = 0; j < dd.num_res_blocks + 1; j++) {
      lvl.push(...resnetBlock(`decoder.up.${i}.block.${j}`, blockIn, blockOut));
      blockIn = blockOut;
      if (dd.attn_resolutions.includes(curRes)) lvl.push(...attnBlock(`decoder.up.${i}.attn.${j}`, blockIn));
    }
    if (i !== 0) { lvl.push(...conv(`decoder.up.${i}.upsample.conv`, blockIn, blockIn, [3, 3])); curRes *= 2; }
    up[i] = lvl;
  }
  for (const lvl of up) out.push(...lvl); // state-dict order: up.0 first (upstream inserts levels at the front)
  out.push(...layerNorm('decoder.norm_out', blockIn), ...conv('decoder.conv_out', dd.out_ch, blockIn, [3, 3]));
  out.push(...conv('quant_conv', 2 * v.embed_dim, 2 * dd.z_channels, [1, 1]), ...conv('post_quant_conv', dd.z_channels, v.embed_dim, [1, 1]));
  // vocoder (bias listed before weight: remove_weight_norm re-registers weight)
  const h = v.vocoder;
  const bw = (p: string, shape: number[]): ExpectedTensor[] => [F(`${p}.bias`, [shape[0]!]), F(`${p}.weight`, shape)];
  const uic = h.upsample_initial_channel;
  out.push(...bw('vocoder.conv_pre', [uic, h.num_mels, 7]));
  h.upsample_rates.forEach((_, i) => {
    const [bias, weight] = bw(`vocoder.ups.${i}`, [uic / 2 ** i, uic / 2 ** (i + 1), h.upsample_kernel_sizes[i]!]);
    // ConvTranspose1d weight is (in, out, k); its bias has `out` entries
    out.push({ ...bias!, shape: [uic / 2 ** (i + 1)] }, weight!);
  });
  let r = 0;
  let ch = uic;
  for (let i = 0; i < h.upsample_rates.length; i++) {
    ch = uic / 2 ** (i + 1);
    for (let j = 0; j < h.resblock_kernel_sizes.length; j++, r++) {
      const k = h.resblock_kernel_sizes[j]!;
      const p = `vocoder.resblocks.${r}`;
      if (h.resblock === '1') {
        for (const s of ['convs1', 'convs2']) for (let m = 0; m < 3; m++) out.push(...bw(`${p}.${s}.${m}`, [ch, ch, k]));
      } else {
        for (let m = 0; m < 2; m++) out.push(...bw(`${p}.convs.${m}`, [ch, ch, k]));
      }
    }
  }
  out.push(...bw('vocoder.conv_post', [1, ch, 7]));
  return out;
}

export function vaeFileExpected(cfg: ModelConfig): ExpectedTensor[] {
  return [F('scale_factor', []), ...vaeExpected(cfg.vae).map((t) => ({ ...t, name: `first_stage_model.${t.name}` }))];
}

/** The three converted files and what each must hold. */
export function deriveExpected(cfg: ModelConfig): Record<'encoder' | 'decoder' | 'vae', ExpectedTensor[]> {
  return { encoder: encoderExpected(cfg), decoder: decoderExpected(cfg), vae: vaeFileExpected(cfg) };
}

export interface ManifestFile {
  container?: string;
  prefix?: string;
  tensors: Array<{ name: string; shape: number[]; dtype: string }>;
  [k: string]: unknown;
}

/** convert/manifests/ of the package (shipped as is: the build compiles only the .ts files beside it) */
export const MANIFEST_DIR = packagePath('convert', 'manifests');

function readManifest(dir: string, file: string): ManifestFile {
  const path = join(dir, file);
  try {
    return JSON.parse(readFileSync(path, 'utf8')) as ManifestFile;
  } catch (e) {
    throw new Error(`${path}: cannot read manifest (${(e as Error).message})`);
  }
}

/**
 * Expected tensors from the released-checkpoint manifests (convert/manifests/*.json), filtered by isNeeded()
 * for `cfg` (its layer_num): the real-configuration check used by `mucodec convert`.
 */
export function expectedFromManifests(cfg: ModelConfig = REAL_CONFIG, dir = MANIFEST_DIR): Record<'encoder' | 'decoder' | 'vae', ExpectedTensor[]> {
  const pick = (m: ManifestFile, prefix = ''): ExpectedTensor[] => m.tensors
    .map((t) => ({ name: prefix + t.name, shape: t.shape, dtype: 'F32' as const }))
    .filter((t) => isNeeded(t.name, cfg));
  const enc = readManifest(dir, 'mucodec_encoder.json');
  const dec = readManifest(dir, 'decoder.json');
  const vae = readManifest(dir, 'audioldm_48k_first_stage.json');
  const vaeOther = (vae.other_tensors as Array<{ full_key: string; shape: number[] }> | undefined) ?? [];
  return {
    encoder: pick(enc),
    decoder: pick(dec),
    vae: [...vaeOther.map((t) => ({ name: t.full_key, shape: t.shape, dtype: 'F32' as const })), ...pick(vae, 'first_stage_model.')],
  };
}

/** Read a configuration: a JSON file holding either the config itself or a case.json with a "config" field. */
export function readConfigFile(path: string): ModelConfig {
  let j: Record<string, unknown>;
  try {
    j = JSON.parse(readFileSync(path, 'utf8')) as Record<string, unknown>;
  } catch (e) {
    throw new Error(`${path}: cannot read configuration (${(e as Error).message})`);
  }
  const cfg = (j.model ?? (j.config && typeof j.config === 'object' && 'muq' in (j.config as object) ? j.config : j)) as ModelConfig;
  for (const k of ['muq', 'layer_num', 'rvq_muencoder_emb', 'cond_muencoder_emb', 'normfeat', 'num_channels', 'estimator', 'vae']) {
    if (!(k in cfg)) throw new Error(`${path}: configuration lacks "${k}"`);
  }
  return cfg;
}
