/**
 * Checkpoint conversion: the three released PyTorch checkpoints -> the safetensors files the runtime loads.
 *
 *   ckpt/mucodec.pt          flat state dict of PromptCondAudioDiffusion
 *   muq_dev/muq.pt           fairseq checkpoint, MuQModel state dict under 'model'
 *   tools/audioldm_48k.pth   Lightning-style dict, AudioLDM LatentDiffusion under 'state_dict'
 * ->
 *   <outDir>/encoder.safetensors  muencoder.* (needed MuQ layers + buffers), rsq48tomuencoder.kernel, rvq_muencoder_emb.*
 *   <outDir>/decoder.safetensors  cfm_wrapper.estimator.*, cond_muencoder_emb.*, zero_cond_embedding1, normfeat.*,
 *                                 rvq_muencoder_emb.*
 *   <outDir>/vae.safetensors      first_stage_model.* (AutoencoderKL + vocoder), scale_factor (0-d)
 *   <outDir>/config.json          the model configuration + what was converted (see ConvertedConfig)
 *
 * Tensor names are the upstream state-dict names relative to each checkpoint's state-dict root, i.e. exactly
 * the names of the fixture containers (so a fixture's weights_prefix works on converted files too).
 * MuCodec's load order is reproduced: muq.pt is loaded first and every `muencoder.*` key present in mucodec.pt
 * overrides it, so each `muencoder.X` comes from mucodec.pt when present, else from muq.pt `model.X`.
 * Everything else in the checkpoints (the AudioLDM UNet/EMA/CLAP, optimizer state, MuQ training heads...) is
 * skipped without reading its storage.
 *
 * Choices: weight norm is NOT folded here (RVQ in_proj/out_proj keep weight_g / weight_v; loaders fold them, as
 * the fixture containers store them); the vocoder is already weight-norm-free in audioldm_48k.pth. MuQ
 * pos_conv_embed keys (whose names depend on the saving torch) are ignored. Float tensors stored as
 * float16/bfloat16/float64 are written as float32; every expected tensor is float32, or with `dtype: 'float16'`
 * float16 in the decoder and VAE files (convert/half_weights.ts says which tensors stay float32 and why).
 *
 * Every expected tensor (convert/manifest.ts) is checked by name and shape before anything is written; all
 * problems are reported together. Files are written to temporaries and renamed, so a failed conversion leaves
 * no partial file under a final name.
 */
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { writeFileAtomic } from '../src/atomic.js';
import { numel, shapeStr, toFloat32 } from '../src/hosttensor.js';
import { writeFloatFile, type FloatTensor, type WeightsDtype } from './half_weights.js';
import { loadTorchCheckpoint, stateDictRoot, type TensorEntry, type TorchCheckpoint } from './torch.js';
import {
  REAL_CONFIG, deriveExpected, expectedFromManifests, muqLayersNeeded, readConfigFile,
  type ExpectedTensor, type ModelConfig,
} from './manifest.js';

export interface ConvertOptions {
  /** ckpt/mucodec.pt */
  mucodec: string;
  /** muq_dev/muq.pt */
  muq: string;
  /** tools/audioldm_48k.pth */
  audioldm: string;
  outDir: string;
  /**
   * Model configuration: omitted = the released configuration, checked against convert/manifests/*.json;
   * an object or a JSON file path (a config, or a case.json whose "config" holds one) = expected tensors derived
   * from it (convert/manifest.ts deriveExpected).
   */
  config?: ModelConfig | string;
  /** 'float16': half-size files (convert/half_weights.ts: decoder and VAE files; a few tensors stay float32) */
  dtype?: WeightsDtype;
  /** with float16: halve encoder.safetensors too (the codes may change) */
  halfEncoder?: boolean;
  /** progress in bytes written over all files */
  onProgress?: (done: number, total: number, label: string) => void;
}

export type OutputFile = 'encoder' | 'decoder' | 'vae';

export interface ConvertResult {
  outDir: string;
  files: Array<{ file: string; path: string; tensors: number; bytes: number }>;
  /** which source each tensor came from (e.g. muencoder.* from "muq" when mucodec.pt lacks it) */
  sources: Record<string, number>;
  config: ConvertedConfig;
}

/** weights/config.json */
export interface ConvertedConfig {
  format: 'mucodec-ts-weights';
  version: 1;
  model: ModelConfig;
  files: Record<OutputFile, string>;
  converted: {
    /** MuQ conformer layers stored (the codes use layer_results[layer_num - 1]) */
    muq_layers_stored: number;
    muq_final_layer_norm_stored: boolean;
    weight_norm: string;
    /** the weights' dtype: 'float16' = half-size files (some tensors kept float32: float32_kept) */
    dtype: WeightsDtype;
    /** with float16: the encoder file's dtype (float32 unless halved on request) */
    encoder_dtype?: WeightsDtype;
    /** float16 files: the tensors kept float32, with the reason */
    float32_kept?: Record<string, string>;
    expected_from: 'manifests' | 'config';
    sources: { mucodec: string; muq: string; audioldm: string };
  };
}

interface Planned {
  out: ExpectedTensor;
  ckpt: TorchCheckpoint;
  src: TensorEntry;
  from: 'mucodec' | 'muq' | 'audioldm';
}

const FILES: Record<OutputFile, string> = { encoder: 'encoder.safetensors', decoder: 'decoder.safetensors', vae: 'vae.safetensors' };

function isFloat(dtype: string): boolean {
  return dtype === 'float32' || dtype === 'float16' || dtype === 'bfloat16' || dtype === 'float64';
}

export async function convert(opts: ConvertOptions): Promise<ConvertResult> {
  const cfg = opts.config === undefined ? REAL_CONFIG : typeof opts.config === 'string' ? readConfigFile(opts.config) : opts.config;
  const expected = opts.config === undefined ? expectedFromManifests(cfg) : deriveExpected(cfg);
  const opened: TorchCheckpoint[] = [];
  try {
    const mucodec = await loadTorchCheckpoint(opts.mucodec); opened.push(mucodec);
    const muq = await loadTorchCheckpoint(opts.muq); opened.push(muq);
    const audioldm = await loadTorchCheckpoint(opts.audioldm); opened.push(audioldm);
    const roots = { mucodec: stateDictRoot(mucodec), muq: stateDictRoot(muq), audioldm: stateDictRoot(audioldm) };
    const index = (c: TorchCheckpoint): Map<string, TensorEntry> => new Map(c.tensors().map((t) => [t.name, t]));
    const idx = { mucodec: index(mucodec), muq: index(muq), audioldm: index(audioldm) };

    const problems: string[] = [];
    const plan: Record<OutputFile, Planned[]> = { encoder: [], decoder: [], vae: [] };
    const sources: Record<string, number> = {};
    for (const file of ['encoder', 'decoder', 'vae'] as const) {
      for (const want of expected[file]) {
        // candidates in priority order: [checkpoint key, full dotted name]
        const cands: Array<['mucodec' | 'muq' | 'audioldm', string]> = [];
        if (file === 'vae') cands.push(['audioldm', roots.audioldm + want.name]);
        else {
          cands.push(['mucodec', roots.mucodec + want.name]);
          if (want.name.startsWith('muencoder.')) cands.push(['muq', roots.muq + want.name.slice('muencoder.'.length)]);
        }
        const hit = cands.find(([k, n]) => idx[k].has(n));
        if (!hit) {
          problems.push(`missing ${want.name} ${shapeStr(want.shape)} (looked for ${cands.map(([k, n]) => `${k}:${n}`).join(', ')})`);
          continue;
        }
        const [from, n] = hit;
        const src = idx[from].get(n)!;
        const ok = src.shape.length === want.shape.length && src.shape.every((d, i) => d === want.shape[i]);
        if (!ok) {
          problems.push(`mis-shaped ${want.name}: ${from}:${n} has ${shapeStr(src.shape)}, expected ${shapeStr(want.shape)}`);
          continue;
        }
        if (!isFloat(src.dtype)) {
          problems.push(`mis-typed ${want.name}: ${from}:${n} is ${src.dtype}, expected a float tensor`);
          continue;
        }
        sources[`${file}:${from}`] = (sources[`${file}:${from}`] ?? 0) + 1;
        plan[file].push({ out: want, ckpt: { mucodec, muq, audioldm }[from], src, from });
      }
    }
    if (problems.length) {
      throw new Error(`convert: ${problems.length} expected tensor${problems.length > 1 ? 's are' : ' is'} missing or mis-shaped ` +
        `(checkpoints: mucodec=${opts.mucodec}, muq=${opts.muq}, audioldm=${opts.audioldm}):\n  ${problems.join('\n  ')}`);
    }

    await mkdir(opts.outDir, { recursive: true });
    const total = Object.values(plan).flat().reduce((s, p) => s + numel(p.out.shape) * 4, 0);
    let done = 0;
    const result: ConvertResult['files'] = [];
    const dtype = opts.dtype ?? 'float32';
    const kept: Record<string, string> = {};
    for (const file of ['encoder', 'decoder', 'vae'] as const) {
      const path = join(opts.outDir, FILES[file]);
      const tensors: FloatTensor[] = plan[file].map((p) => ({
        name: p.out.name,
        shape: p.out.shape,
        read: async (): Promise<Float32Array> => toFloat32(await p.ckpt.read(p.src.name)),
      }));
      const dt: WeightsDtype = file === 'encoder' && !opts.halfEncoder ? 'float32' : dtype;
      const r = await writeFloatFile(path, tensors, dt, { format: 'pt', source: `mucodec-ts convert${dt === 'float16' ? ' --dtype f16' : ''}` }, (_b, name) => {
        done += numel(plan[file].find((p) => p.out.name === name)!.out.shape) * 4;
        opts.onProgress?.(done, total, `${FILES[file]} ${name}`);
      });
      Object.assign(kept, r.kept);
      result.push({ file: FILES[file], path, tensors: tensors.length, bytes: r.bytes });
    }
    const { layers, finalNorm } = muqLayersNeeded(cfg);
    const config: ConvertedConfig = {
      format: 'mucodec-ts-weights',
      version: 1,
      model: cfg,
      files: { ...FILES },
      converted: {
        muq_layers_stored: layers,
        muq_final_layer_norm_stored: finalNorm,
        weight_norm: 'not folded: rvq_muencoder_emb in_proj/out_proj keep weight_g/weight_v (fold at load); vocoder already plain',
        dtype,
        ...(dtype === 'float16' ? { encoder_dtype: opts.halfEncoder ? 'float16' as const : 'float32' as const, float32_kept: kept } : {}),
        expected_from: opts.config === undefined ? 'manifests' : 'config',
        sources: { mucodec: opts.mucodec, muq: opts.muq, audioldm: opts.audioldm },
      },
    };
    await writeFileAtomic(join(opts.outDir, 'config.json'), new TextEncoder().encode(`${JSON.stringify(config, null, 1)}\n`));
    return { outDir: opts.outDir, files: result, sources, config };
  } finally {
    for (const c of opened) await c.close().catch(() => undefined);
  }
}
