/**
 * Half-size weights: which tensors become float16 and how (`mucodec convert --dtype f16`, also on a folder already
 * converted: `mucodec convert --from weights/ --dtype f16 -o weights-f16/`).
 *
 * Every tensor of the chosen files is stored as IEEE binary16 (round to nearest even, src/half.ts) except, kept
 * float32 per tensor and listed in config.json `converted.float32_kept` with the reason:
 *   - a tensor with a finite value that half precision cannot hold (|x| ≥ 65520 would round to Infinity): kept, not
 *     refused, since the rest of the file still halves (e.g. normfeat.counts, ≥ 100000 in the released checkpoint);
 *   - the normfeat running statistics (counts, sum_x, sum_x2): the latent mean and std are their quotients and
 *     std = sqrt(sum_x2 / counts − mean²) cancels, which would magnify their rounding (4 KiB each);
 *   - 0-d scalars (scale_factor): nothing to save;
 *   - rsq48tomuencoder.kernel (28 values, with --half-encoder): the loader checks it exactly against torchaudio's
 *     Resample(48000, 24000) kernel.
 * The loader widens float16 to float32 (a table lookup per value, src/hosttensor.ts toFloat32), so every backend
 * computes in float32 as with float32 files; only the weights' values are rounded (relative error ≤ 2^−11).
 *
 * By default the encoder file stays float32 (`dtype: 'float16'` halves decoder.safetensors and vae.safetensors):
 * the codes are an argmin over the RVQ codebook of MuQ's hidden state, and rounded MuQ / codebook weights move
 * that state enough to flip low-margin codes (measured in the README), while the codes must match upstream's.
 * `halfEncoder: true` halves it too.
 */
import { mkdir, readFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { writeFileAtomic } from '../src/atomic.js';
import { fitsHalf, maxAbsFinite, narrowToHalf } from '../src/half.js';
import { bytesPerElement, numel, toFloat32, type DType, type HostData } from '../src/hosttensor.js';
import { SafetensorsFile, writeSafetensors, type TensorSource } from './safetensors.js';

export type WeightsDtype = 'float32' | 'float16';

/** `--dtype f32|f16` (or the long names) → the dtype; anything else is refused naming the option. */
export function parseWeightsDtype(v: string | undefined, option = '--dtype'): WeightsDtype {
  if (v === undefined || v === 'f32' || v === 'float32') return 'float32';
  if (v === 'f16' || v === 'float16') return 'float16';
  throw new Error(`option ${option}: "${v}" is not a weights dtype (f32 or f16)`);
}

/** Why a tensor stays float32 in a float16 file (null: it becomes float16). */
export function keepFloat32Reason(name: string, shape: readonly number[], values: Float32Array): string | null {
  if (shape.length === 0) return 'a scalar';
  if (/(^|\.)normfeat\.(counts|sum_x|sum_x2)$/.test(name)) return 'normfeat running statistics (mean and std are their quotients)';
  if (name === 'rsq48tomuencoder.kernel') return 'the 48→24 kHz resampling kernel, checked exactly against torchaudio\'s at load';
  if (!fitsHalf(values)) return `|value| up to ${maxAbsFinite(values)} is beyond half precision (65504)`;
  return null;
}

/** A planned output tensor: its name and shape, and a reader of its float32 values (called once per pass). */
export interface FloatTensor {
  name: string;
  shape: number[];
  read: () => Promise<Float32Array>;
}

/**
 * Write one safetensors file of float tensors as `dtype`. For float16 a first pass reads every tensor to decide
 * which stay float32 (the header, written first, holds the dtypes); the second writes them, one tensor in memory
 * at a time. Returns the tensors kept float32 with their reasons.
 */
export async function writeFloatFile(
  path: string, tensors: FloatTensor[], dtype: WeightsDtype, metadata: Record<string, string>,
  onTensor?: (bytes: number, name: string) => void,
): Promise<{ bytes: number; kept: Record<string, string> }> {
  const kept: Record<string, string> = {};
  const dtypes = new Map<string, DType>();
  for (const t of tensors) {
    if (dtype === 'float32') { dtypes.set(t.name, 'float32'); continue; }
    const why = keepFloat32Reason(t.name, t.shape, await t.read());
    if (why) kept[t.name] = why;
    dtypes.set(t.name, why ? 'float32' : 'float16');
  }
  const srcs: TensorSource[] = tensors.map((t) => ({
    name: t.name, dtype: dtypes.get(t.name)!, shape: t.shape,
    load: async (): Promise<HostData> => {
      const v = await t.read();
      const data = dtypes.get(t.name) === 'float16' ? narrowToHalf(v) : v;
      onTensor?.(data.byteLength, t.name);
      return data;
    },
  }));
  await writeSafetensors(path, srcs, metadata);
  return { bytes: srcs.reduce((s, x) => s + numel(x.shape) * bytesPerElement(x.dtype), 0), kept };
}

export interface HalveFolderOptions {
  /** a folder written by `mucodec convert` */
  from: string;
  outDir: string;
  dtype: WeightsDtype;
  /** also halve encoder.safetensors (changes codes; see above) */
  halfEncoder?: boolean;
  onProgress?: (done: number, total: number, label: string) => void;
}

const FILE_KEYS = ['encoder', 'decoder', 'vae'] as const;

/** Rewrite a converted folder's weights as `dtype` (config.json updated; the model configuration unchanged). */
export async function convertFolderDtype(o: HalveFolderOptions): Promise<{ files: Array<{ path: string; bytes: number }>; kept: Record<string, string> }> {
  if (resolve(o.from) === resolve(o.outDir)) throw new Error(`convert: --from and -o are the same folder (${o.from}); write the new weights elsewhere`);
  const cfgPath = join(o.from, 'config.json');
  if (!existsSync(cfgPath)) throw new Error(`convert: ${o.from}: no config.json — not a folder written by \`mucodec convert\``);
  const cfg = JSON.parse(await readFile(cfgPath, 'utf8')) as { files?: Record<string, string>; converted?: Record<string, unknown> };
  const opened: SafetensorsFile[] = [];
  try {
    const files = FILE_KEYS.map((k) => ({ key: k, name: cfg.files?.[k] ?? `${k}.safetensors` }));
    for (const f of files) opened.push(await SafetensorsFile.open(join(o.from, f.name)));
    const total = opened.reduce((s, f) => s + [...f.tensors.values()].reduce((n, t) => n + numel(t.shape) * 4, 0), 0);
    await mkdir(o.outDir, { recursive: true });
    let done = 0;
    const out: Array<{ path: string; bytes: number }> = [];
    const kept: Record<string, string> = {};
    for (let i = 0; i < files.length; i++) {
      const src = opened[i]!;
      const path = join(o.outDir, files[i]!.name);
      const dt: WeightsDtype = files[i]!.key === 'encoder' && !o.halfEncoder ? 'float32' : o.dtype;
      const bad = [...src.tensors.values()].find((t) => !['float32', 'float16', 'bfloat16', 'float64'].includes(t.dtype));
      if (bad) throw new Error(`convert: ${src.path}: tensor "${bad.name}" is ${bad.dtype}, not a float tensor`);
      const tensors: FloatTensor[] = [...src.tensors.values()].map((t) => ({
        name: t.name, shape: [...t.shape], read: async () => toFloat32(await src.read(t.name)),
      }));
      const r = await writeFloatFile(path, tensors, dt, { format: 'pt', source: `mucodec-ts convert${dt === 'float16' ? ' --dtype f16' : ''}` },
        (_b, name) => { done += numel(src.info(name).shape) * 4; o.onProgress?.(done, total, `${files[i]!.name} ${name}`); });
      Object.assign(kept, r.kept);
      out.push({ path, bytes: r.bytes });
    }
    const converted = { ...(cfg.converted ?? {}), dtype: o.dtype, encoder_dtype: o.halfEncoder ? o.dtype : 'float32', float32_kept: o.dtype === 'float16' ? kept : undefined };
    await writeFileAtomic(join(o.outDir, 'config.json'), new TextEncoder().encode(`${JSON.stringify({ ...cfg, converted }, null, 1)}\n`));
    return { files: out, kept };
  } finally {
    for (const f of opened) await f.close().catch(() => undefined);
  }
}
