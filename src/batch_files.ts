/**
 * Many files with one loaded codec (issue 14, folders): `encodeFiles`, `decodeFiles`, `reconstructFiles` take a
 * list of { input, output } and return one result per file — 'done', 'skipped' (its output exists: every output
 * is written atomically, so an existing one is complete, and a stopped run resumes where it stopped) or 'failed'
 * with the reason (the other files go on). An abort (`signal`, the CLI's Ctrl-C) stops the whole run and throws.
 * `planFolder` lists the jobs of a folder tree, the relative layout mirrored under an output folder (the CLI's
 * `mucodec encode|decode|reconstruct <dir> -o <dir>`, src/commands/folders.ts).
 */
import type { Dirent, Stats } from 'node:fs';
import { mkdir, open, readdir, stat } from 'node:fs/promises';
import { dirname, extname, join, relative, resolve } from 'node:path';
import { withWriteSignal } from './atomic.js';
import { writeAudioFile, type OutputFormat } from './audio/audio_out.js';
import { detectFormat, openAudioSource, readAudio } from './audio/open.js';
import type { Audio } from './audio/wav.js';
import type { MuCodec } from './codec.js';
import type { DecodeOptions, DecodeProgress } from './codec_types.js';
import type { EncodeProgress } from './encoder.js';
import { MCODES_MAGIC, readCodesFile, writeCodesFile } from './codesfile.js';

export interface FileJob { input: string; output: string }

export interface FileResult extends FileJob {
  status: 'done' | 'skipped' | 'failed';
  /** why it was skipped or failed */
  reason?: string;
  /** seconds of audio written or encoded ('done') */
  seconds?: number;
}

export interface FileProgress {
  /** 0-based index of the current file in the list, and the list's length */
  file: number;
  files: number;
  input: string;
  /** fraction of the current file done, and a label (window / step) */
  fraction: number;
  label: string;
}

export interface BatchOptions {
  signal?: AbortSignal;
  /** called when a file starts (before any work on it) and as its work progresses */
  onProgress?: (p: FileProgress) => void;
  /** called with each file's result as soon as it is known */
  onResult?: (r: FileResult) => void;
}

async function exists(path: string): Promise<boolean> {
  return stat(path).then(() => true, () => false);
}

/** Runs `work` per job that has no output yet; its errors (not an abort) make that job 'failed'. */
async function runJobs(jobs: readonly FileJob[], opts: BatchOptions,
  work: (job: FileJob, progress: (fraction: number, label: string) => void) => Promise<number>): Promise<FileResult[]> {
  const results: FileResult[] = [];
  const seen = new Map<string, string>();
  for (let i = 0; i < jobs.length; i++) {
    const job = jobs[i]!;
    const out = resolve(job.output);
    const report = (r: FileResult): void => { results.push(r); opts.onResult?.(r); };
    if (opts.signal?.aborted) throw opts.signal.reason;
    if (seen.has(out)) { report({ ...job, status: 'failed', reason: `same output as ${seen.get(out)} (rename one of them)` }); continue; }
    seen.set(out, job.input);
    if (resolve(job.input) === out) { report({ ...job, status: 'failed', reason: 'the output is the input' }); continue; }
    if (await exists(job.output)) { report({ ...job, status: 'skipped', reason: 'output exists' }); continue; }
    const progress = (fraction: number, label: string): void => opts.onProgress?.({ file: i, files: jobs.length, input: job.input, fraction, label });
    progress(0, '');
    try {
      await mkdir(dirname(out), { recursive: true });
      const seconds = await work(job, progress);
      report({ ...job, status: 'done', seconds });
    } catch (e) {
      if (opts.signal?.aborted) throw opts.signal.reason;
      const msg = (e as Error).message;
      report({ ...job, status: 'failed', reason: msg.startsWith(`${job.input}: `) ? msg.slice(job.input.length + 2) : msg });
    }
  }
  return results;
}

const windowLabel = (p: EncodeProgress): string => `window ${p.window}/${p.windows}`;

function decodeLabel(p: DecodeProgress): string {
  const w = `window ${p.window + 1}/${p.windows}`;
  return p.phase === 'sample' ? `${w} step ${p.step}/${p.steps}` : p.phase === 'audio' ? `${w} VAE + vocoder` : 'prompt';
}

/** Audio files (any supported format) → .mcodes files. */
export function encodeFiles(codec: MuCodec, jobs: readonly FileJob[], opts: BatchOptions & { batchSize?: number } = {}): Promise<FileResult[]> {
  return runJobs(jobs, opts, async (job, progress) => {
    const source = await openAudioSource(job.input);
    try {
      const r = await codec.encodeSource(source, {
        batchSize: opts.batchSize, signal: opts.signal,
        onProgress: (p) => progress(p.window / p.windows, windowLabel(p)),
      });
      await withWriteSignal(opts.signal ?? new AbortController().signal, () => writeCodesFile(job.output, { ...r.meta, codes: r.codes }));
      return source.frames / source.sampleRate;
    } finally {
      await source.close();
    }
  });
}

type DecodeBatchOptions = BatchOptions & Omit<DecodeOptions, 'onProgress' | 'signal'> & { format?: OutputFormat };

async function writeOut(path: string, audio: Audio, opts: DecodeBatchOptions): Promise<number> {
  await withWriteSignal(opts.signal ?? new AbortController().signal, () => writeAudioFile(path, audio, opts.format ?? 'pcm16'));
  return audio.channels[0]!.length / audio.sampleRate;
}

/** .mcodes files → audio files (`format`: 16-bit WAV by default, float WAV or FLAC). */
export function decodeFiles(codec: MuCodec, jobs: readonly FileJob[], opts: DecodeBatchOptions = {}): Promise<FileResult[]> {
  const { onProgress: _p, onResult: _r, signal, format: _f, ...decodeOpts } = opts;
  return runJobs(jobs, opts, async (job, progress) => {
    const file = await readCodesFile(job.input);
    codec.checkCodesMeta(file, job.input);
    const audio = await codec.decode(file.codes, { ...decodeOpts, signal, onProgress: (p) => progress(p.fraction, decodeLabel(p)) });
    return writeOut(job.output, audio, opts);
  });
}

/** Audio files → encoded and decoded again (50 steps by default, as upstream sound2sound) → audio files. */
export function reconstructFiles(codec: MuCodec, jobs: readonly FileJob[], opts: DecodeBatchOptions & { batchSize?: number } = {}): Promise<FileResult[]> {
  const { onProgress: _p, onResult: _r, signal, format: _f, ...decodeOpts } = opts;
  return runJobs(jobs, opts, async (job, progress) => {
    const audio = await readAudio(job.input);
    const out = await codec.reconstruct(audio, {
      ...decodeOpts, signal,
      onEncodeProgress: (p) => progress(0, `encode ${windowLabel(p)}`),
      onProgress: (p) => progress(p.fraction, decodeLabel(p)),
    });
    return writeOut(job.output, out, opts);
  });
}

/** What planFolder looks for: audio files (by content, or by an audio extension) or .mcodes files. */
export type FolderInputs = 'audio' | 'codes';

/** Names that make a file an input even when its content is not recognised (it is then reported as failed). */
export const AUDIO_EXTENSIONS = ['.wav', '.wave', '.rf64', '.bw64', '.flac', '.mp3', '.ogg', '.oga', '.opus'];

export interface FolderPlan {
  jobs: FileJob[];
  /** files below the folder that are not inputs (neither recognised by content nor named as one) */
  ignored: string[];
}

async function head(path: string): Promise<Uint8Array> {
  const fh = await open(path, 'r');
  try {
    const b = new Uint8Array(512);
    const { bytesRead } = await fh.read(b, 0, 512, 0);
    return b.subarray(0, bytesRead);
  } finally {
    await fh.close();
  }
}

async function isInput(path: string, kind: FolderInputs): Promise<boolean> {
  const ext = extname(path).toLowerCase();
  if (kind === 'codes' ? ext === '.mcodes' : AUDIO_EXTENSIONS.includes(ext)) return true;
  const h = await head(path).catch(() => null);
  if (!h) return false;
  return kind === 'codes' ? String.fromCharCode(...h.subarray(0, 4)) === MCODES_MAGIC : detectFormat(h).format !== 'unknown';
}

const sameFile = (a: Stats, b: Stats | null): boolean => !!b && a.dev === b.dev && a.ino === b.ino;

/**
 * Every input file below `inputDir` (sorted, depth first), each with its output under `outputDir` at the same
 * relative path, the extension replaced by `outExt`. Skipped while walking: names starting with "." (hidden files,
 * macOS "._" companions), symbolic links to folders (no loops), and `outputDir` itself when it lies inside
 * `inputDir` (its outputs are never read back as inputs).
 */
export async function planFolder(inputDir: string, outputDir: string, kind: FolderInputs, outExt: string): Promise<FolderPlan> {
  const outStat = await stat(outputDir).catch(() => null);
  const plan: FolderPlan = { jobs: [], ignored: [] };
  const walk = async (dir: string): Promise<void> => {
    const entries: Dirent[] = (await readdir(dir, { withFileTypes: true })).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    for (const e of entries) {
      if (e.name.startsWith('.')) continue;
      const path = join(dir, e.name);
      const st = e.isSymbolicLink() ? await stat(path).catch(() => null) : null;
      if (e.isDirectory()) {
        if (!sameFile(await stat(path), outStat)) await walk(path);
      } else if (e.isFile() || st?.isFile()) {
        const rel = relative(inputDir, path);
        if (await isInput(path, kind)) plan.jobs.push({ input: path, output: join(outputDir, rel.slice(0, rel.length - extname(rel).length) + outExt) });
        else plan.ignored.push(path);
      }
    }
  };
  await walk(inputDir);
  return plan;
}
