/**
 * Parity runner: every case.json below the given folders → the stage implementation registered for its
 * "stage" → each output compared with the reference within the case's tolerance.
 */
import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { compareTensor, loadCase, toleranceFor, type Comparison, type FixtureCase } from './fixtures.js';
import type { HostTensor } from './hosttensor.js';

/** A stage implementation: runs the case and returns its outputs keyed by tensor name (e.g. "out.mel"). */
export type StageFn = (c: FixtureCase) => Promise<Record<string, HostTensor>>;

const registry = new Map<string, StageFn>();

export function registerStage(stage: string, fn: StageFn): void {
  registry.set(stage, fn);
}

export function stageFor(stage: string): StageFn | undefined {
  return registry.get(stage);
}

export function registeredStages(): string[] {
  return [...registry.keys()].sort();
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
  comparisons: Comparison[];
  error?: string;
  seconds: number;
}

export async function runCase(dir: string): Promise<CaseResult> {
  const t0 = performance.now();
  let c: FixtureCase;
  try {
    c = await loadCase(dir);
  } catch (e) {
    return { dir, stage: '?', name: dir, pass: false, comparisons: [], error: `cannot load case: ${(e as Error).message}`, seconds: 0 };
  }
  const stage = c.json.stage;
  const fn = registry.get(stage);
  if (!fn) return { dir, stage, name: c.name, pass: false, comparisons: [], error: 'not implemented', seconds: 0 };
  const before = tf.memory().numTensors;
  try {
    const outs = await fn(c);
    const comparisons: Comparison[] = [];
    for (const [key, tname] of Object.entries(c.json.outputs)) {
      const got = outs[tname] ?? outs[key];
      if (!got) { comparisons.push({ name: tname, pass: false, maxAbs: NaN, relL2: NaN, detail: 'output not produced' }); continue; }
      const ref = c.t(tname);
      const cm = c.json.code_match && (ref.dtype === 'int64' || ref.dtype === 'int32')
        ? { rule: c.json.code_match, margin: c.json.code_match.margin_tensor ? c.tensors.get(c.json.code_match.margin_tensor) : undefined }
        : undefined;
      comparisons.push(compareTensor(tname, got, ref, toleranceFor(c.json, tname), cm));
    }
    const leaked = tf.memory().numTensors - before;
    const pass = comparisons.every((x) => x.pass) && leaked === 0;
    return { dir, stage, name: c.name, pass, comparisons, error: leaked ? `${leaked} tensors leaked` : undefined, seconds: (performance.now() - t0) / 1000 };
  } catch (e) {
    return { dir, stage, name: c.name, pass: false, comparisons: [], error: (e as Error).message, seconds: (performance.now() - t0) / 1000 };
  }
}

export function formatResult(r: CaseResult): string {
  const worst = r.comparisons.reduce((m, x) => Math.max(m, Number.isNaN(x.maxAbs) ? Infinity : x.maxAbs), 0);
  const worstRel = r.comparisons.reduce((m, x) => Math.max(m, Number.isNaN(x.relL2) ? Infinity : x.relL2), 0);
  const head = `${r.pass ? 'PASS' : 'FAIL'} ${r.stage} ${r.name}`;
  if (r.error && !r.comparisons.length) return `${head} ${r.error}`;
  const fails = r.comparisons.filter((x) => !x.pass).map((x) => `${x.name}${x.detail ? ` (${x.detail})` : ''} max_abs=${x.maxAbs.toExponential(2)} rel_l2=${x.relL2.toExponential(2)}`);
  const details = r.comparisons.filter((x) => x.detail && x.pass).map((x) => `${x.name}: ${x.detail}`);
  return `${head} max_abs=${worst.toExponential(2)} rel_l2=${worstRel.toExponential(2)} (${r.seconds.toFixed(1)} s)` +
    (fails.length ? ` FAILED: ${fails.join('; ')}` : '') + (details.length ? ` [${details.join('; ')}]` : '') + (r.error ? ` ${r.error}` : '');
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
