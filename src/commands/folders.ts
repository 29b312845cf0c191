/**
 * Folder mode of `mucodec encode|decode|reconstruct <dir> -o <dir>` (issue 14): every input below the folder
 * (src/batch_files.ts planFolder: audio by content or name; .mcodes for decode), the layout mirrored under the
 * output folder, outputs that exist skipped (a stopped run resumes), a failing file reported and the rest done,
 * one progress bar per file titled with its place in the list, a summary at the end; exit 1 when a file failed.
 * The model loads only when some file still has to be done.
 */
import { mkdir, stat } from 'node:fs/promises';
import { relative } from 'node:path';
import { extensionFor, type OutputFormat } from '../audio/audio_out.js';
import { decodeFiles, encodeFiles, planFolder, reconstructFiles, type FileProgress, type FileResult } from '../batch_files.js';
import { MuCodec } from '../codec.js';
import type { DecodeOptions } from '../codec_types.js';
import type { CommandContext } from './context.js';
import { watchInterrupts } from './interrupt.js';
import { makeProgress, type ProgressReporter } from './progress.js';

const files = (n: number): string => `${n} file${n === 1 ? '' : 's'}`;

export type FolderKind = 'encode' | 'decode' | 'reconstruct';

export interface FolderRun {
  kind: FolderKind;
  input: string;
  output: string | undefined;
  weightsDir: string;
  quiet: boolean;
  /** decode / reconstruct: the options and the output format */
  decode?: DecodeOptions;
  format?: OutputFormat;
  batchSize?: number;
}

/** Is `path` an existing folder? (Anything else goes the single-file way, with its own errors.) */
export async function isFolder(path: string): Promise<boolean> {
  return (await stat(path).catch(() => null))?.isDirectory() ?? false;
}

export async function runFolder(r: FolderRun, ctx: CommandContext): Promise<number> {
  const log = ctx.log ?? ((l: string) => console.log(l));
  const stderr = ctx.stderr ?? process.stderr;
  const fail = (why: string): never => { throw new Error(`${r.kind}: ${why}`); };
  if (r.output === undefined) fail(`a folder input needs an output folder: -o <dir>`);
  const output = r.output!;
  const inStat = await stat(r.input);
  const outStat = await stat(output).catch(() => null);
  if (outStat && !outStat.isDirectory()) fail(`output ${output}: is a file; a folder input needs an output folder`);
  if (outStat && outStat.dev === inStat.dev && outStat.ino === inStat.ino) fail(`output ${output}: is the input folder; give another folder (it may lie inside the input folder)`);
  await mkdir(output, { recursive: true }).catch((e: Error) => fail(`output ${output}: cannot create the folder (${e.message})`));
  const ext = r.kind === 'encode' ? '.mcodes' : extensionFor(r.format ?? 'pcm16');
  const plan = await planFolder(r.input, output, r.kind === 'decode' ? 'codes' : 'audio', ext);
  const what = r.kind === 'decode' ? '.mcodes' : 'audio';
  if (!plan.jobs.length) fail(`no ${what} files below ${r.input}${plan.ignored.length ? ` (${files(plan.ignored.length)} ignored)` : ''}`);
  if (ctx.verbose) for (const p of plan.ignored) log(`ignored (not ${what}): ${relative(r.input, p)}`);

  const todo = (await Promise.all(plan.jobs.map((j) => stat(j.output).then(() => false, () => true)))).filter(Boolean).length;
  const codec = todo > 0 ? await MuCodec.load({ weightsDir: r.weightsDir, backend: ctx.backend, parts: r.kind === 'encode' ? ['encoder'] : undefined }) : null;
  const interrupts = watchInterrupts();
  let bar: ProgressReporter | null = null;
  let barFile = -1;
  const results: FileResult[] = [];
  const rel = (p: string): string => relative(r.input, p);
  const onProgress = (p: FileProgress): void => {
    if (p.file !== barFile) {
      bar?.done();
      bar = makeProgress(`${r.kind} [${p.file + 1}/${p.files}] ${rel(p.input)}`, stderr, r.quiet);
      barFile = p.file;
    }
    bar!.update(Math.round(p.fraction * 1000), 1000, p.label);
  };
  const onResult = (res: FileResult): void => {
    results.push(res);
    bar?.done(); bar = null; barFile = -1;
    const o = relative(output, res.output);
    if (res.status === 'done') log(`done ${rel(res.input)} → ${o} (${res.seconds!.toFixed(2)} s)`);
    else if (res.status === 'skipped') log(`skipped ${rel(res.input)} (${o} exists)`);
    else log(`failed ${rel(res.input)}: ${res.reason}`);
  };
  const summary = (): string => {
    const n = (s: FileResult['status']): number => results.filter((x) => x.status === s).length;
    return `${r.kind} ${r.input} → ${output}: ${files(plan.jobs.length)}: ${n('done')} done, ${n('skipped')} skipped (output exists), ${n('failed')} failed` +
      (plan.ignored.length ? `; ${files(plan.ignored.length)} ignored (not ${what})` : '');
  };
  const opts = { signal: interrupts.signal, onProgress, onResult };
  try {
    if (codec === null) plan.jobs.forEach((j) => onResult({ ...j, status: 'skipped', reason: 'output exists' }));
    else if (r.kind === 'encode') await encodeFiles(codec, plan.jobs, { ...opts, batchSize: r.batchSize });
    else if (r.kind === 'decode') await decodeFiles(codec, plan.jobs, { ...r.decode, ...opts, format: r.format });
    else await reconstructFiles(codec, plan.jobs, { ...r.decode, ...opts, format: r.format, batchSize: r.batchSize });
  } catch (e) {
    log(`${summary()}; stopped at file ${results.length + 1} (the files done are kept: run again to resume)`);
    throw e;
  } finally {
    (bar as ProgressReporter | null)?.done();
    interrupts.dispose();
    codec?.dispose();
  }
  log(summary());
  const failed = results.filter((x) => x.status === 'failed');
  for (const f of failed) log(`  failed: ${rel(f.input)}: ${f.reason}`);
  return failed.length ? 1 : 0;
}
