/**
 * `mucodec fetch-weights [--dir weights/] [--base-url URL] [--keep]`: download the three released checkpoints
 * (resumable, SHA-256 checked) and convert them into `--dir`.
 */
import { mkdir, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { convert } from '../../convert/convert.js';
import { parseWeightsDtype } from '../../convert/half_weights.js';
import { downloadFile } from '../download.js';
import { checkKnown, optFlag, optString, parseArgs } from './args.js';
import { makeProgress } from './progress.js';

/** MuCodec's Hugging Face repository (upstream readme: huggingface.co/yaoxunxu/mucodec). */
export const DEFAULT_WEIGHTS_URL = 'https://huggingface.co/yaoxunxu/mucodec/resolve/main';

export const RELEASED_CHECKPOINTS = [
  { key: 'mucodec', file: 'mucodec.pt', sha256: '52ad6c046d2c67246899ea5b45cc91680b417ceab37ca150993c5f00d73b2f6e' },
  { key: 'muq', file: 'muq.pt', sha256: '324f7c944607c4c3d199aa9bf404bda8b9883c545cf5dd18a2e775c6089fefe3' },
  { key: 'audioldm', file: 'audioldm_48k.pth', sha256: '3f7beb1cfa40ff6ebd1e8925088ca626ec831225899d85493da0b646548f510c' },
] as const;

export interface FetchWeightsOptions {
  dir: string;
  baseUrl?: string;
  /** checkpoints to fetch (default: the released three); tests pass their own */
  checkpoints?: ReadonlyArray<{ key: string; file: string; sha256: string }>;
  /** keep the downloaded .pt files after conversion (default: keep; they are the resume point) */
  convert?: boolean;
  onProgress?: (file: string, done: number, total: number) => void;
  signal?: AbortSignal;
}

export async function fetchWeights(opts: FetchWeightsOptions): Promise<Record<string, string>> {
  const base = (opts.baseUrl ?? process.env.MUCODEC_WEIGHTS_URL ?? DEFAULT_WEIGHTS_URL).replace(/\/$/, '');
  const ckDir = join(opts.dir, 'checkpoints');
  await mkdir(ckDir, { recursive: true });
  const paths: Record<string, string> = {};
  for (const c of opts.checkpoints ?? RELEASED_CHECKPOINTS) {
    const dest = join(ckDir, c.file);
    await downloadFile(`${base}/${c.file}`, dest, {
      sha256: c.sha256, signal: opts.signal, onProgress: (d, t) => opts.onProgress?.(c.file, d, t),
    });
    paths[c.key] = dest;
  }
  return paths;
}

export async function fetchWeightsCommand(argv: string[]): Promise<number> {
  const a = parseArgs(argv, ['keep', 'no-convert']);
  checkKnown(a, ['dir', 'base-url', 'keep', 'no-convert', 'dtype']);
  const dtype = parseWeightsDtype(optString(a, 'dtype')); // checked before the download
  const dir = optString(a, 'dir') ?? 'weights';
  const bar = makeProgress('download');
  const paths = await fetchWeights({
    dir, baseUrl: optString(a, 'base-url'),
    onProgress: (file, d, t) => bar.update(d, t, file),
  });
  bar.done('downloaded and verified: ' + Object.values(paths).join(', '));
  if (optFlag(a, 'no-convert')) return 0;
  const cbar = makeProgress('convert');
  const r = await convert({
    mucodec: paths.mucodec!, muq: paths.muq!, audioldm: paths.audioldm!, outDir: dir, dtype,
    onProgress: (d, t, label) => cbar.update(d, t, label),
  });
  cbar.done(`converted: ${r.files.map((f) => f.path).join(', ')}`);
  if (!optFlag(a, 'keep')) for (const p of Object.values(paths)) await unlink(p).catch(() => undefined);
  return 0;
}
