/**
 * Parity runner: every case.json below the given folders → the stage implementation registered for its
 * "stage" → the whole case checked:
 *  - each output and each intermediate the stage produces compared with the reference within the case's tolerance
 *    (intermediates in case.json order, so a FAIL names the first layer that goes wrong);
 *  - every declared input read, the weights read, every recorded draw consumed;
 *  - every config / scalars leaf read by the stage — or listed in its registration as deliberately unused, with the
 *    reason — and every declared intermediate produced or listed as one the stage cannot produce, with the reason.
 */
import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { compareTensor, leafPaths, loadCase, toleranceFor, type Comparison, type FixtureCase, type Tolerance } from './fixtures.js';
import { toFloat64, type HostTensor } from './hosttensor.js';

/** A stage implementation: runs the case and returns its outputs and intermediates keyed by their case.json names
 *  (the keys of `outputs` / `intermediates`, not the tensor names: a case that maps a name to another tensor fails). */
export type StageFn = (c: FixtureCase) => Promise<Record<string, HostTensor>>;

/** What a stage deliberately leaves aside, each with a one-line reason. */
export interface StageSpec {
  /** config leaves (dotted paths; a path covers everything below it) the stage does not use */
  unusedConfig?: Record<string, string>;
  /** scalars (dotted paths) the stage does not use */
  unusedScalars?: Record<string, string>;
  /** case.json `intermediates` keys the stage cannot produce */
  unproduced?: Record<string, string>;
}

interface Stage { fn: StageFn; spec: StageSpec }

const registry = new Map<string, Stage>();

export function registerStage(stage: string, fn: StageFn, spec: StageSpec = {}): void {
  registry.set(stage, { fn, spec });
}

/** The registered implementation of a stage (bench/f16_weights_error.ts runs stages on rounded weights). */
export function stageFn(stage: string): StageFn | undefined {
  return registry.get(stage)?.fn;
}

export async function findCases(dirs: string[]): Promise<string[]> {
  const out: string[] = [];
  async function walk(d: string): Promise<void> {
    let entries: string[];
    try {
      entries = await readdir(d);
    } catch (e) {
      throw new Error(`${d}: cannot read folder (${(e as Error).message})`);
    }
    if (entries.includes('case.json')) out.push(d);
    for (const e of entries.sort()) {
      const p = join(d, e);
      if ((await stat(p)).isDirectory()) await walk(p);
    }
  }
  for (const d of dirs) await walk(d);
  return out;
}

export interface CaseResult {
  dir: string;
  stage: string;
  name: string;
  pass: boolean;
  /** outputs first, then the intermediates compared (`kind` tells which) */
  comparisons: Comparison[];
  /** declared intermediates the stage lists as not producible */
  notProduced: string[];
  /** what the case declares but the stage left unused (each fails the case) */
  problems: string[];
  error?: string;
  seconds: number;
}

const covered = (path: string, listed: Record<string, string> | undefined): boolean =>
  Object.keys(listed ?? {}).some((p) => path === p || path.startsWith(`${p}.`));

/** What the case declares but the stage never used, one message per field. */
function unusedFields(c: FixtureCase, spec: StageSpec): string[] {
  const r = c.reads;
  const problems: string[] = [];
  for (const [arg, tname] of Object.entries(c.json.inputs ?? {})) {
    if (!r.inputs.has(arg)) problems.push(`input "${arg}" (${tname}) was never read by the stage`);
  }
  if (c.json.weights && !r.weights) problems.push(`weights (${c.json.weights}) were never read by the stage`);
  const draws = c.json.noise?.length ?? [...c.tensors.keys()].filter((k) => k.startsWith('noise.')).length;
  if (draws && !r.noises.length) problems.push(`noise: the ${draws} recorded draws were never drawn`);
  for (const n of r.noises) if (n.remaining > 0) problems.push(`noise: ${n.remaining} of ${n.used + n.remaining} recorded draws were never consumed`);
  for (const [section, read, listed] of [
    ['config', r.config, spec.unusedConfig], ['scalars', r.scalars, spec.unusedScalars],
  ] as const) {
    for (const path of leafPaths(c.json[section] as Record<string, unknown> | undefined)) {
      if (!read.has(path) && !covered(path, listed)) {
        problems.push(`${section}.${path} was never read by the stage (honour it, or list it as unused with the reason)`);
      }
    }
  }
  return problems;
}

const FLOAT_DTYPES = new Set(['float32', 'float64', 'float16', 'bfloat16']);

function peak(t: HostTensor): number {
  let m = 0;
  for (const v of toFloat64(t)) if (Math.abs(v) > m) m = Math.abs(v);
  return m;
}

/**
 * The tolerance an intermediate is compared at: the case's. Its max_abs is calibrated on the outputs' range (e.g.
 * a ±1 waveform); an intermediate whose values are larger (a pre-tanh layer peaking at 18) gets that bound times the
 * ratio of the peaks (float32 rounding grows with the values), never a smaller one; rel_l2 is unchanged.
 */
function intermediateTolerance(c: FixtureCase, tname: string, ref: HostTensor): { tol: Tolerance; scale: number } {
  const tol = toleranceFor(c.json, tname);
  if (!FLOAT_DTYPES.has(ref.dtype)) return { tol, scale: 1 };
  const outPeak = Math.max(0, ...Object.values(c.json.outputs).map((n) => c.t(n)).filter((t) => FLOAT_DTYPES.has(t.dtype)).map(peak));
  const scale = outPeak > 0 ? Math.max(1, peak(ref) / outPeak) : 1;
  return { tol: { max_abs: tol.max_abs * scale, rel_l2: tol.rel_l2 }, scale };
}

function compare(c: FixtureCase, tname: string, got: HostTensor, kind: 'output' | 'intermediate'): Comparison {
  const ref = c.t(tname);
  if (kind === 'intermediate') {
    const { tol, scale } = intermediateTolerance(c, tname, ref);
    const r = compareTensor(tname, got, ref, tol);
    const note = scale > 1 && !r.pass && !r.detail ? `max_abs bound ${tol.max_abs.toExponential(2)}: the case's × ${scale.toFixed(1)}, its peak over the outputs'` : r.detail;
    return { ...r, kind, detail: note };
  }
  const cm = c.json.code_match && (ref.dtype === 'int64' || ref.dtype === 'int32')
    ? { rule: c.json.code_match, margin: c.json.code_match.margin_tensor ? c.t(c.json.code_match.margin_tensor) : undefined }
    : undefined;
  return { ...compareTensor(tname, got, ref, toleranceFor(c.json, tname), cm), kind };
}

export async function runCase(dir: string): Promise<CaseResult> {
  const t0 = performance.now();
  let c: FixtureCase;
  const fail = (stage: string, name: string, error: string): CaseResult =>
    ({ dir, stage, name, pass: false, comparisons: [], notProduced: [], problems: [], error, seconds: (performance.now() - t0) / 1000 });
  try {
    c = await loadCase(dir);
  } catch (e) {
    return fail('?', dir, `cannot load case: ${(e as Error).message}`);
  }
  const stage = c.json.stage;
  const impl = registry.get(stage);
  if (!impl) return fail(stage, c.name, 'not implemented');
  const before = tf.memory().numTensors;
  try {
    const outs = await impl.fn(c);
    const comparisons: Comparison[] = [];
    const notProduced: string[] = [];
    for (const [key, tname] of Object.entries(c.json.outputs)) {
      const got = outs[key];
      comparisons.push(got ? compare(c, tname, got, 'output')
        : { name: tname, kind: 'output', pass: false, maxAbs: NaN, relL2: NaN, detail: `output "${key}" not produced` });
    }
    for (const [key, tname] of Object.entries(c.json.intermediates ?? {})) {
      const got = outs[key];
      if (got) comparisons.push(compare(c, tname, got, 'intermediate'));
      else if (impl.spec.unproduced?.[key] !== undefined) notProduced.push(key);
      else comparisons.push({ name: tname, kind: 'intermediate', pass: false, maxAbs: NaN, relL2: NaN, detail: `intermediate "${key}" not produced (and not listed as one the stage cannot produce)` });
    }
    const problems = unusedFields(c, impl.spec);
    const leaked = tf.memory().numTensors - before;
    const pass = comparisons.every((x) => x.pass) && !problems.length && leaked === 0;
    return {
      dir, stage, name: c.name, pass, comparisons, notProduced, problems,
      error: leaked ? `${leaked} tensors leaked` : undefined, seconds: (performance.now() - t0) / 1000,
    };
  } catch (e) {
    // a stage that fails before reading a declared input (e.g. a prompt it ignores) says so beside its error
    const unread = Object.keys(c.json.inputs ?? {}).filter((a) => !c.reads.inputs.has(a));
    return fail(stage, c.name, (e as Error).message + (unread.length ? ` (declared inputs not read before the failure: ${unread.join(', ')})` : ''));
  }
}

export function formatResult(r: CaseResult): string {
  const outs = r.comparisons.filter((x) => x.kind !== 'intermediate');
  const mids = r.comparisons.filter((x) => x.kind === 'intermediate');
  const worst = outs.reduce((m, x) => Math.max(m, Number.isNaN(x.maxAbs) ? Infinity : x.maxAbs), 0);
  const worstRel = outs.reduce((m, x) => Math.max(m, Number.isNaN(x.relL2) ? Infinity : x.relL2), 0);
  const head = `${r.pass ? 'PASS' : 'FAIL'} ${r.stage} ${r.name}`;
  if (r.error && !r.comparisons.length) return `${head} ${r.error}`;
  const fmt = (x: Comparison): string => `${x.name}${x.detail ? ` (${x.detail})` : ''} max_abs=${x.maxAbs.toExponential(2)} rel_l2=${x.relL2.toExponential(2)}`;
  const fails = r.comparisons.filter((x) => !x.pass).map(fmt);
  const firstMid = mids.find((x) => !x.pass);
  const details = r.comparisons.filter((x) => x.detail && x.pass).map((x) => `${x.name}: ${x.detail}`);
  const midNote = ` ${mids.length} intermediate${mids.length === 1 ? '' : 's'} compared` +
    (r.notProduced.length ? ` (${r.notProduced.length} not producible)` : '');
  return `${head} max_abs=${worst.toExponential(2)} rel_l2=${worstRel.toExponential(2)}${midNote} (${r.seconds.toFixed(1)} s)` +
    (firstMid ? ` first intermediate off: ${firstMid.name};` : '') +
    (fails.length ? ` FAILED: ${fails.join('; ')}` : '') +
    (r.problems.length ? ` UNUSED: ${r.problems.join('; ')}` : '') +
    (details.length ? ` [${details.join('; ')}]` : '') + (r.error ? ` ${r.error}` : '');
}

/** Run every case below dirs, printing one line each and a final "N passed, M failed". Returns failures. */
export async function runParity(dirs: string[], print: (s: string) => void = console.log): Promise<{ passed: number; failed: number }> {
  const cases = await findCases(dirs);
  let passed = 0, failed = 0;
  for (const d of cases) {
    const r = await runCase(d);
    print(formatResult(r));
    if (r.pass) passed++; else failed++;
  }
  print(`${passed} passed, ${failed} failed`);
  return { passed, failed };
}
