/**
 * Checks of a model configuration (weights/config.json's "model", or `config` given to MuCodec.load) before any
 * module is built from it: the JSON must be an object, the sections the codec needs must be there, and every key the
 * released configuration (convert/manifest.ts REAL_CONFIG) has must hold the same kind of value — a number where it
 * has a number (a string "64" would otherwise reach a shape check as `expected (64, 32)`), an array of numbers where
 * it has one, and so on. Keys it does not know are left alone (configs carry notes and extras).
 */
import { REAL_CONFIG } from '../convert/manifest.js';
import type { MuCodecConfig } from './codec.js';

/** weights/config.json as `mucodec convert` writes it (src/codec.ts reads `model` and `files`). */
export interface ConvertedConfigJson {
  format?: string;
  model?: unknown;
  files?: Record<string, string>;
}

function kind(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  if (typeof v === 'string') return `the string ${JSON.stringify(v)}`;
  if (typeof v === 'object') return 'an object';
  return `${typeof v === 'number' ? 'the number' : `the ${typeof v}`} ${String(v)}`;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** config.json's outer object: an object, format mucodec-ts-weights (when given), files a map of names. */
export function checkConfigJson(json: unknown, path: string): ConvertedConfigJson {
  if (!isObject(json)) throw new Error(`${path}: expected a JSON object with a "model" configuration, got ${kind(json)}`);
  if (json.format !== undefined && json.format !== 'mucodec-ts-weights') throw new Error(`${path}: format ${kind(json.format)} is not "mucodec-ts-weights"`);
  if (json.model === undefined) throw new Error(`${path}: no "model" configuration`);
  const files = json.files;
  if (files !== undefined && !(isObject(files) && Object.values(files).every((f) => typeof f === 'string'))) {
    throw new Error(`${path}: "files" must map part names to file names, got ${kind(files)}`);
  }
  return json as ConvertedConfigJson;
}

/** Keys whose value sizes a tensor or a loop: positive integers (dotted paths below the model config). */
const POSITIVE_INTEGERS = [
  'layer_num', 'num_channels',
  'muq.encoder_dim', 'muq.encoder_depth', 'muq.conv_dim', 'muq.n_mels', 'muq.hop_length',
  'muq.conformer.hidden_size', 'muq.conformer.num_hidden_layers', 'muq.conformer.num_attention_heads',
  'muq.conformer.intermediate_size', 'muq.conformer.conv_depthwise_kernel_size',
  'rvq_muencoder_emb.input_dim', 'rvq_muencoder_emb.n_codebooks', 'rvq_muencoder_emb.codebook_size', 'rvq_muencoder_emb.codebook_dim',
  'estimator.num_attention_heads', 'estimator.attention_head_dim', 'estimator.in_channels', 'estimator.out_channels',
  'estimator.num_layers', 'estimator.patch_size', 'estimator.sample_size',
  'vae.embed_dim', 'vae.ddconfig.ch', 'vae.ddconfig.z_channels', 'vae.ddconfig.num_res_blocks', 'vae.ddconfig.in_channels',
  'vae.ddconfig.out_ch', 'vae.ddconfig.mel_bins', 'vae.vocoder.upsample_initial_channel', 'vae.vocoder.num_mels',
  'stft.filter_length', 'stft.hop_length', 'stft.win_length', 'stft.n_mel_channels', 'stft.sampling_rate', 'sample_rate',
];

function at(o: unknown, path: string): unknown {
  let v: unknown = o;
  for (const k of path.split('.')) v = isObject(v) ? v[k] : undefined;
  return v;
}

/** `value` has the kind of `ref` (recursively for objects and arrays); throws naming the key. */
function sameKind(value: unknown, ref: unknown, key: string, source: string): void {
  const bad = (want: string): never => { throw new Error(`${source}: "${key}" is ${kind(value)}, expected ${want}`); };
  if (ref === null || ref === undefined) return; // no type to compare with (e.g. cross_attention_dim: null)
  if (typeof ref === 'number') {
    if (typeof value !== 'number' || !Number.isFinite(value)) bad('a number');
  } else if (typeof ref === 'string' || typeof ref === 'boolean') {
    if (typeof value !== typeof ref) bad(`a ${typeof ref}`);
  } else if (Array.isArray(ref)) {
    if (!Array.isArray(value)) bad('an array');
    const el = ref[0];
    if (el !== undefined) (value as unknown[]).forEach((v, i) => sameKind(v, el, `${key}[${i}]`, source));
    else (value as unknown[]).forEach((v, i) => { if (typeof v !== 'number' || !Number.isFinite(v)) sameKind(v, 0, `${key}[${i}]`, source); });
  } else if (isObject(ref)) {
    if (!isObject(value)) bad('an object');
    for (const [k, r] of Object.entries(ref)) {
      const v = (value as Record<string, unknown>)[k];
      if (v !== undefined) sameKind(v, r, `${key}.${k}`, source);
    }
  }
}

/**
 * A model configuration as the codec reads it: an object with `muq` (an object), `layer_num` and
 * `rvq_muencoder_emb`, and every key REAL_CONFIG knows holding the same kind of value. `source` names the file or
 * the argument in messages ("weights/config.json: \"model\"").
 */
export function checkModelConfig(cfg: unknown, source: string): MuCodecConfig {
  if (!isObject(cfg)) throw new Error(`${source}: expected the model configuration (an object), got ${kind(cfg)}`);
  for (const k of ['muq', 'layer_num', 'rvq_muencoder_emb']) {
    if (cfg[k] === undefined) throw new Error(`${source}: "${k}" is missing`);
  }
  for (const [k, r] of Object.entries(REAL_CONFIG)) if (cfg[k] !== undefined) sameKind(cfg[k], r, k, source);
  for (const path of POSITIVE_INTEGERS) {
    const v = at(cfg, path);
    if (v !== undefined && !(typeof v === 'number' && Number.isSafeInteger(v) && v >= 1)) {
      throw new Error(`${source}: "${path}" is ${kind(v)}, expected a positive integer`);
    }
  }
  for (const k of ['input_dim', 'n_codebooks', 'codebook_size', 'codebook_dim']) {
    if (at(cfg, `rvq_muencoder_emb.${k}`) === undefined) throw new Error(`${source}: "rvq_muencoder_emb.${k}" is missing`);
  }
  const size = cfg.rvq_muencoder_emb as Record<string, unknown>;
  if ((size.codebook_size as number) < 2) throw new Error(`${source}: "rvq_muencoder_emb.codebook_size" is ${String(size.codebook_size)}, expected at least 2`);
  return cfg as MuCodecConfig;
}
