/**
 * `mucodec sweep <in.audio|in.mcodes> --sampler euler,heun,midpoint --steps 5,10,20 [--seed N] [--ref-steps 50]
 *  [--guidance 1.5] [--weights DIR] [--quiet] --out <dir>`
 *
 * Decodes every (sampler, steps) combination with one seed, scores each against a reference decode (Euler at
 * --ref-steps) and, for a WAV input, against the original, and writes into <dir>: results.json (`rows`), table.md
 * and plot.png (mel distance against DiT evaluations per sampler). All three are rewritten after every row, so
 * Ctrl-C keeps the rows already finished.
 */
import { mkdir, open } from 'node:fs/promises';
import { join } from 'node:path';
import { readAudio } from '../audio/open.js';
import type { Audio } from '../audio/wav.js';
import { writeFileAtomic } from '../atomic.js';
import { MuCodec } from '../codec.js';
import { readCodesFile } from '../codesfile.js';
import { runSweep, sweepCombinations, sweepTable, type SweepResult, type SweepRow } from '../metrics/sweep.js';
import { sweepPlot } from '../metrics/sweep_plot.js';
import { checkKnown, optFlag, optNumber, optString, parseArgs } from './args.js';
import type { CommandContext } from './context.js';
import { watchInterrupts } from './interrupt.js';
import { makeProgress } from './progress.js';
import { resolveWeightsDir } from './weights.js';

export const SWEEP_USAGE = 'usage: mucodec sweep <in.audio|in.mcodes> --sampler euler,heun,midpoint --steps 5,10,20 [--seed N] [--ref-steps 50] [--guidance 1.5] --out <dir>';

const list = (v: string | undefined, what: string): string[] => {
  const items = (v ?? '').split(',').map((s) => s.trim()).filter(Boolean);
  if (!items.length) throw new Error(`sweep: --${what} needs a comma-separated list\n${SWEEP_USAGE}`);
  return items;
};

async function isCodesFile(path: string): Promise<boolean> {
  const fh = await open(path, 'r').catch((e: Error) => { throw new Error(`sweep: cannot read ${path} (${e.message})`); });
  try {
    const b = Buffer.alloc(4);
    await fh.read(b, 0, 4, 0);
    return b.toString('latin1') === 'MCDC';
  } finally { await fh.close(); }
}

export async function sweepCommand(argv: string[], ctx: CommandContext & { signal?: AbortSignal } = {}): Promise<number> {
  const a = parseArgs(argv, ['quiet']);
  checkKnown(a, ['sampler', 'steps', 'seed', 'ref-steps', 'guidance', 'out', 'output', 'weights', 'quiet']);
  if (a.positionals.length !== 1) throw new Error(`sweep: give exactly one input (.wav or .mcodes)\n${SWEEP_USAGE}`);
  const input = a.positionals[0]!;
  const outDir = optString(a, 'out') ?? optString(a, 'output');
  if (!outDir) throw new Error(`sweep: give the output folder with --out\n${SWEEP_USAGE}`);
  const samplers = list(optString(a, 'sampler') ?? 'euler', 'sampler');
  const steps = list(optString(a, 'steps'), 'steps').map((s) => {
    const n = Number(s);
    if (!(Number.isInteger(n) && n >= 1 && n <= 1000)) throw new Error(`option --steps: "${s}" is not an integer from 1 to 1000`);
    return n;
  });
  sweepCombinations(samplers, steps); // unknown samplers fail here, before any work
  const seed = optNumber(a, 'seed', (n) => Number.isInteger(n) && n >= 0, 'a non-negative integer') ?? 0;
  const refSteps = optNumber(a, 'ref-steps', (n) => Number.isInteger(n) && n >= 1 && n <= 1000, 'an integer from 1 to 1000') ?? 50;
  const guidanceScale = optNumber(a, 'guidance', (n) => n >= 0, 'a number ≥ 0') ?? 1.5;
  const log = ctx.log ?? ((l: string) => console.log(l));
  const stderr = ctx.stderr ?? process.stderr;

  const codesIn = await isCodesFile(input);
  const original: Audio | undefined = codesIn ? undefined : await readAudio(input);
  const file = codesIn ? await readCodesFile(input) : null;
  await mkdir(outDir, { recursive: true });
  const weightsDir = resolveWeightsDir(optString(a, 'weights'), (l) => stderr.write(`${l}\n`));
  const codec = await MuCodec.load({ weightsDir, backend: ctx.backend });
  const ac = new AbortController();
  const interrupts = watchInterrupts(); // Ctrl-C, SIGTERM, SIGHUP: stop after keeping the finished rows
  interrupts.signal.addEventListener('abort', () => ac.abort(interrupts.signal.reason), { once: true });
  ctx.signal?.addEventListener('abort', () => ac.abort(ctx.signal!.reason), { once: true }); // API callers' own stop
  const bar = makeProgress('sweep', stderr, optFlag(a, 'quiet'));
  let kept: SweepRow[] = [];
  let reference: SweepResult['reference'] | null = null;
  const save = async (r: SweepResult): Promise<void> => {
    const plot = sweepPlot(r);
    const doc = { input, seed, guidance: guidanceScale, samplers, steps, reference: r.reference, rows: r.rows, plot: { file: 'plot.png', width: plot.width, height: plot.height } };
    await writeFileAtomic(join(outDir, 'plot.png'), plot.png);
    await writeFileAtomic(join(outDir, 'table.md'), new TextEncoder().encode(sweepTable(r)));
    await writeFileAtomic(join(outDir, 'results.json'), new TextEncoder().encode(`${JSON.stringify(doc, null, 2)}\n`));
  };
  try {
    const codes = file ? file.codes : (await codec.encode(original!, { signal: ac.signal })).codes;
    const r = await runSweep(codec, codes, {
      samplers, steps, seed, refSteps, guidanceScale, original, signal: ac.signal,
      onProgress: (f, label) => bar.update(Math.round(f * 1000), 1000, label),
      onRow: async (_row, rows) => {
        kept = rows;
        await save({ reference: reference!, rows });
      },
      onReference: (ref) => { reference = ref; },
    });
    bar.done();
    await save(r);
    log(sweepTable(r));
    log(`${outDir}: results.json, table.md, plot.png (${r.rows.length} rows)`);
    return 0;
  } catch (e) {
    bar.done();
    if (ac.signal.aborted) {
      log(`sweep interrupted: ${kept.length} finished row(s) kept in ${outDir}`);
      return 1;
    }
    throw e;
  } finally {
    bar.done();
    interrupts.dispose();
    codec.dispose();
  }
}
