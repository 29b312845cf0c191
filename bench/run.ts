/**
 * `npm run bench -- [encode] [dit] [vae] [vocoder] [--runs N] [--threads N] [--profile] [--backend B] [--full]
 *                   [--no-song] [--no-cfg] [--out FILE] [--no-merge] [--quick] [--torch] [--torch-kernels env,SKYLAKEX]`
 *                   and, opt-in: `window [--steps N] [--tiny]`
 *
 * Runs the chosen stage groups (default: all four), each in its own child process (so peak RSS is per group and the
 * thread count is fixed before the backend starts), takes the median of N runs per row, and writes
 * bench/results/latest.json: { date, machine, threads, backend, rows: BenchRow[] } (rows of groups not run this time
 * are kept from the previous file unless --no-merge). Then regenerate the README table with
 * `node dist/scripts/update-readme-bench.js`.
 *
 *   --runs N      timed runs per row (median; default 3)
 *   --threads N   wasm XNNPACK threads (default: MUCODEC_THREADS, else the number of cores; 1 = the single-threaded path)
 *   --profile     time per tfjs kernel and per layer type (written to bench/results/profile-<group>.json)
 *   --no-song     encode: skip the 3-minute song row;  --no-cfg  dit: skip the CFG Euler step of the whole DiT
 *                 (each ~10 min per run on 2 cores)
 *   --torch       after each group, time the upstream PyTorch stages on the same shapes (bench/torch/anchor.ts)
 *   --full        the long rows as well (dit: the whole 24-block DiT; vae/vocoder: 512 frames / 10 s; encode: all
 *                 song runs instead of one)
 *   --no-block    dit: the CFG step without the block row;  --no-ceilings  no plain-op ceiling rows
 *   --quick       a smoke run for slow backends (the software webgpu adapter): dit.block on 1024 tokens without the CFG
 *                 step, vae.decode on 4 frames, hifigan on 10 frames, no ceilings, no song; window: the tiny model
 *   window        one whole 40.96 s window of decode (bench/window.ts; not in the default groups: hours on a CPU);
 *                 --steps N CFG Euler steps (default 20), --tiny with weights/tiny
 * Rows of a backend other than wasm go to bench/results/latest-<backend>.json unless --out is given, so a webgpu run
 * never replaces the wasm rows of latest.json.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync, renameSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseThreads, requestWasmThreads, wasmThreads } from '../src/workers/wasm_threads.js';
import { parseTorchArg, torchEstimateS, torchForGroup, torchStagesFor, type TorchOptions } from './torch/anchor.js';
import { instrumentLayers, loadAvg, onLines, logProfile, machineInfo, median, peakRssMb, profileKernels, type BenchRow, type PlainRow, fmtRow } from './common.js';

export const GROUPS = ['encode', 'dit', 'vae', 'vocoder'] as const;
/** groups run only when named */
export const EXTRA_GROUPS = ['window'] as const;
export type Group = (typeof GROUPS)[number] | (typeof EXTRA_GROUPS)[number];

export interface RunArgs {
  groups: Group[];
  runs: number;
  threads: number;
  profile: boolean;
  full: boolean;
  song: boolean;
  /** dit: time one CFG Euler step of the whole real DiT (long: ~2 × 24 blocks per run) */
  cfg: boolean;
  backend?: string;
  out: string;
  /** --out was given (else a backend other than wasm writes latest-<backend>.json) */
  outGiven?: boolean;
  merge: boolean;
  quick?: boolean;
  /** dit: skip the block row (--no-block: the CFG step alone); any group: skip the ceilings (--no-ceilings) */
  block?: boolean;
  ceilings?: boolean;
  /** window: CFG Euler steps; --tiny: the tiny model */
  steps?: number;
  tiny?: boolean;
  /** --torch: time the upstream PyTorch stages in the same run (bench/torch/anchor.ts) */
  torch: TorchOptions;
}

const here = dirname(fileURLToPath(import.meta.url));
/** repository root: dist/bench/run.js → ../..; bench/run.ts (vite-node) → .. */
const ROOT = existsSync(join(here, '..', 'package.json')) ? resolve(here, '..') : resolve(here, '..', '..');
export const RESULTS_DIR = join(ROOT, 'bench', 'results');

export function parseArgs(argv: string[]): RunArgs & { child?: Group } {
  const a: RunArgs & { child?: Group } = {
    groups: [], runs: 3, threads: parseThreads(process.env.MUCODEC_THREADS), profile: false, full: false, song: true, cfg: true, out: join(RESULTS_DIR, 'latest.json'), merge: true,
    torch: { enabled: false, kernels: ['env', 'SKYLAKEX'] },
  };
  for (let i = 0; i < argv.length; i++) {
    const x = argv[i]!;
    const val = (): string => {
      const eq = x.indexOf('=');
      if (eq >= 0) return x.slice(eq + 1);
      const v = argv[++i];
      if (v === undefined) throw new Error(`option ${x} needs a value`);
      return v;
    };
    if (parseTorchArg(x, val, a.torch)) continue;
    if (x === '--runs' || x.startsWith('--runs=')) a.runs = Math.max(1, Number(val()));
    else if (x === '--threads' || x.startsWith('--threads=')) a.threads = parseThreads(val());
    else if (x === '--backend' || x.startsWith('--backend=')) a.backend = val();
    else if (x === '--out' || x.startsWith('--out=')) { a.out = resolve(val()); a.outGiven = true; }
    else if (x === '--steps' || x.startsWith('--steps=')) a.steps = Math.max(1, Math.floor(Number(val())));
    else if (x === '--quick') a.quick = true;
    else if (x === '--tiny') a.tiny = true;
    else if (x === '--no-block') a.block = false;
    else if (x === '--no-ceilings') a.ceilings = false;
    else if (x === '--child' || x.startsWith('--child=')) a.child = val() as Group;
    else if (x === '--profile') a.profile = true;
    else if (x === '--full') a.full = true;
    else if (x === '--no-song') a.song = false;
    else if (x === '--no-cfg') a.cfg = false;
    else if (x === '--no-merge') a.merge = false;
    else if ((GROUPS as readonly string[]).includes(x) || (EXTRA_GROUPS as readonly string[]).includes(x)) a.groups.push(x as Group);
    else if (x === 'all') a.groups.push(...GROUPS);
    else throw new Error(`bench: unknown argument "${x}" (groups: ${GROUPS.join(', ')}; options: --runs N --threads N --profile --full --no-song --no-cfg --backend B --out F --no-merge --quick --no-block --no-ceilings; opt-in group window [--steps N] [--tiny])`);
  }
  if (!Number.isFinite(a.runs)) throw new Error('--runs needs a number');
  if (a.steps !== undefined && !Number.isFinite(a.steps)) throw new Error('--steps needs a number');
  if (!a.groups.length) a.groups = [...GROUPS];
  a.groups = [...new Set(a.groups)];
  return a;
}

const FAMILY_BENCH: Record<'dit' | 'vae', string> = { dit: './dit.js', vae: './vae_vocoder.js' };

const ROW_TAG = 'BENCH_ROW ';
const PROFILE_TAG = 'BENCH_PROFILE ';

/** Child: run one group in this process and print its rows as tagged JSON lines. */
async function runChild(group: Group, a: RunArgs): Promise<void> {
  requestWasmThreads(a.threads);
  const log = (l: string): void => { process.stderr.write(l + '\n'); };
  const emit = (r: BenchRow): void => { process.stdout.write(ROW_TAG + JSON.stringify(r) + '\n'); };
  const emitProfile = (p: unknown): void => { process.stdout.write(PROFILE_TAG + JSON.stringify({ group, ...(p as object) }) + '\n'); };
  if (group === 'window') {
    const { benchWindow } = await import('./window.js');
    (await benchWindow({ backend: a.backend, steps: a.steps, tiny: a.tiny || a.quick, root: ROOT, log })).forEach(emit);
    return;
  }
  if (group === 'encode') {
    const { benchEncode } = await import('./encode.js');
    const rows = await benchEncode({
      backend: a.backend, runs: a.runs, profile: a.profile, song: a.song && !a.quick, songRuns: a.full ? a.runs : 1, log, onProfile: emitProfile,
      ceilings: !a.quick && a.ceilings !== false,
    });
    rows.forEach(emit);
    return;
  }
  // the other families' benches return plain rows from one timed run: run them N times, take medians
  const { benchCeilings } = await import('./ceilings.js');
  const runsByStage = new Map<string, { rows: PlainRow[] }>();
  // bench/dit.ts and bench/vae_vocoder.ts belong to the decode/synthesis families; loaded by a computed specifier so
  // this file builds whichever of them exist yet
  const runOnce = async (full: boolean, cfgStep: boolean): Promise<PlainRow[]> => {
    if (group === 'dit') {
      const m = (await import(FAMILY_BENCH.dit)) as { benchDit: (o: object) => Promise<PlainRow[]> };
      return m.benchDit({ backend: a.backend, full, cfgStep: cfgStep && !a.quick, block: a.block, tokens: a.quick ? 1024 : undefined, log });
    }
    const m = (await import(FAMILY_BENCH.vae)) as { benchVaeVocoder: (o: object) => Promise<PlainRow[]> };
    return m.benchVaeVocoder({ backend: a.backend, full, parts: [group === 'vae' ? 'vae' : 'vocoder'], frames: a.quick ? [group === 'vae' ? 4 : 10] : undefined, log });
  };
  for (let i = 0; i < a.runs; i++) {
    const rows = await runOnce(group === 'dit' ? a.full && i === 0 : a.full, a.cfg);
    for (const r of rows) {
      const key = `${r.stage} ${r.shape}`;
      const e = runsByStage.get(key) ?? { rows: [] };
      e.rows.push(r);
      runsByStage.set(key, e);
    }
  }
  const threads = wasmThreads() ?? 1;
  for (const { rows } of runsByStage.values()) {
    const r0 = rows[0]!;
    const ts = rows.map((r) => r.ours_s);
    const s = median(ts);
    emit({
      stage: r0.stage, shape: r0.shape, gflop: r0.gflop, ours_s: s, torch_s: r0.torch_s, ratio: r0.torch_s / s, threads,
      backend: r0.backend, peak_rss_mb: peakRssMb(), date: new Date().toISOString(), machine: machineInfo(), kind: 'stage',
      runs: ts, gflops_per_s: r0.gflop / s, load: loadAvg(),
    });
  }
  if (!a.quick && a.ceilings !== false) for (const r of await benchCeilings(group, { backend: a.backend, runs: a.runs, log })) emit(r);
  // --profile: one more run of the group's stages (for dit without the CFG step: 48 more block passes add nothing)
  // with every tfjs kernel timed and the model's layer classes wrapped
  if (a.profile) {
    const li = instrumentLayers(await profiledClasses(group), PROFILED_METHODS);
    let layers: ReturnType<typeof li.report> = [];
    const t0 = performance.now();
    const prof = await profileKernels(() => runOnce(false, false)).finally(() => { layers = li.report(); li.restore(); });
    const wall = (performance.now() - t0) / 1000;
    logProfile(log, `${group}: one run of its stages${group === 'dit' ? ' without the CFG step' : ''}, threads ${threads}`, wall, prof, layers);
    emitProfile({ stage: group, threads, wall_s: wall, kernels: prof.kernels, by_shape: prof.byShape.slice(0, 40), layers });
  }
}

/** methods wrapped by the layer profiler (whichever a class has) */
const PROFILED_METHODS = ['apply', 'forward', 'decode', 'conv', 'forwardNWC', 'generateNWC'];

/** the layer types timed by --profile in each decode-side group */
async function profiledClasses(group: string): Promise<Record<string, { prototype: object }>> {
  if (group === 'dit') {
    const [{ Transformer2DModel, PatchEmbed }, { BasicTransformerBlock }, { AdaLayerNormSingleFlow }] = await Promise.all([
      import('../src/dit/transformer.js'), import('../src/dit/block.js'), import('../src/dit/timestep.js'),
    ]);
    return { Transformer2DModel, PatchEmbed, BasicTransformerBlock, AdaLayerNormSingleFlow };
  }
  if (group === 'vae') {
    const [{ AutoencoderKL, Decoder }, { ResnetBlock, AttnBlock }, { WinogradConv }] = await Promise.all([
      import('../src/vae/autoencoder.js'), import('../src/vae/blocks.js'), import('../src/simd/winograd.js'),
    ]);
    return { AutoencoderKL, Decoder, ResnetBlock, AttnBlock, WinogradConv };
  }
  const { HifiGanGenerator, ResBlock1, Conv1dCore, ConvTranspose1dPolyphase } = await import('../src/vocoder/hifigan.js');
  return { HifiGanGenerator, ResBlock1, Conv1dCore, ConvTranspose1dPolyphase };
}

/** Parent: spawn one child per group, collect rows, write latest.json. */
async function runParent(a: RunArgs): Promise<void> {
  const script = fileURLToPath(import.meta.url);
  const rows: BenchRow[] = [];
  const profiles: Record<string, unknown[]> = {};
  if (a.torch.enabled) {
    const est = a.groups.reduce((s, g) => s + torchEstimateS(torchStagesFor(g, { song: a.song }), a.runs, new Set(a.torch.kernels).size), 0);
    process.stderr.write(`bench --torch: the PyTorch side adds about ${Math.ceil(est / 60)} min (${a.torch.kernels.join(', ')} kernels) on 2 free cores\n`);
  }
  for (const g of a.groups) {
    const args = [...process.execArgv, script, '--child', g, '--runs', String(a.runs), '--threads', String(a.threads)];
    if (a.profile) args.push('--profile');
    if (a.full) args.push('--full');
    if (!a.song) args.push('--no-song');
    if (!a.cfg) args.push('--no-cfg');
    if (a.backend) args.push('--backend', a.backend);
    if (a.quick) args.push('--quick');
    if (a.tiny) args.push('--tiny');
    if (a.block === false) args.push('--no-block');
    if (a.ceilings === false) args.push('--no-ceilings');
    if (a.steps !== undefined) args.push('--steps', String(a.steps));
    process.stderr.write(`\n== bench ${g} (runs ${a.runs}, threads ${a.threads}, load ${loadAvg().join(' ')})\n`);
    const got = await new Promise<{ rows: BenchRow[]; prof: unknown[]; code: number | null }>((res, rej) => {
      const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'inherit'], env: process.env });
      const out: BenchRow[] = [];
      const prof: unknown[] = [];
      onLines(child.stdout, (line) => {
        if (line.startsWith(ROW_TAG)) out.push(JSON.parse(line.slice(ROW_TAG.length)) as BenchRow);
        else if (line.startsWith(PROFILE_TAG)) prof.push(JSON.parse(line.slice(PROFILE_TAG.length)));
        else if (line.trim()) process.stderr.write(line + '\n');
      });
      child.on('error', rej);
      child.on('close', (code) => res({ rows: out, prof, code }));
    });
    if (got.code !== 0) process.stderr.write(`bench ${g}: child exited with code ${got.code} (${got.rows.length} rows kept)\n`);
    const groupRows = got.rows.map((r) => ({ group: g, ...r }));
    await torchForGroup(g, groupRows, { runs: a.runs, threads: a.threads, song: a.song, torch: a.torch, log: (l) => process.stderr.write(l + '\n') });
    rows.push(...groupRows);
    if (got.prof.length) profiles[g] = got.prof;
  }
  const backend = rows[0]?.backend ?? a.backend;
  if (!a.outGiven && backend && backend !== 'wasm') a.out = join(RESULTS_DIR, `latest-${backend}.json`);
  mkdirSync(dirname(a.out), { recursive: true });
  let keep: BenchRow[] = [];
  if (a.merge && existsSync(a.out)) {
    try {
      const prev = JSON.parse(readFileSync(a.out, 'utf8')) as { rows?: BenchRow[] };
      const ran = new Set<string>(a.groups);
      keep = (prev.rows ?? []).filter((r) => !ran.has(r.group ?? ''));
    } catch { /* unreadable: start afresh */ }
  }
  const all = [...keep, ...rows];
  const doc = {
    date: new Date().toISOString(), machine: machineInfo(), threads: a.threads, backend: rows[0]?.backend ?? a.backend ?? 'auto',
    command: `npm run bench -- ${process.argv.slice(2).join(' ')}`.trim(), rows: all,
  };
  const tmp = `${a.out}.${process.pid}.tmp`;
  writeFileSync(tmp, JSON.stringify(doc, null, 1) + '\n');
  renameSync(tmp, a.out);
  for (const [g, p] of Object.entries(profiles)) writeFileSync(join(dirname(a.out), `profile-${g}.json`), JSON.stringify(p, null, 1) + '\n');
  process.stderr.write(`\n${rows.length} rows → ${a.out}\n`);
  for (const r of rows) process.stderr.write(fmtRow(r) + '\n');
}

const isMain = process.argv[1] !== undefined && resolve(process.argv[1]) === fileURLToPath(import.meta.url);
if (isMain) {
  const a = parseArgs(process.argv.slice(2));
  try {
    if (a.child) await runChild(a.child, a);
    else await runParent(a);
    process.exit(0);
  } catch (e) {
    process.stderr.write(`bench: ${(e as Error).stack ?? e}\n`);
    process.exit(1);
  }
}
