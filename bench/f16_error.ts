/**
 * The error a half-precision DiT would add, measured against the float32 PyTorch fixtures: each DiT/sampler parity
 * case run twice through the parity runner, at 'f32' (the reference path) and at 'f16-emulated' (src/dit/precision.ts:
 * fp16 autocast's rounding points in float32 arithmetic). Reports max_abs and rel_l2 of the case's outputs for both.
 * The fixtures use small random weights, so the numbers show the size of half-precision rounding through these
 * layers, not the real model's audible error.
 *
 *   node dist/bench/f16_error.js [--backend wasm] [--json out.json] [case dir ...]   (default: the DiT cases)
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { initBackend } from '../src/backend.js';
import { runCase } from '../src/parity.js';
import { setDitPrecision, type DitPrecision } from '../src/dit/precision.js';
import '../src/stages/index.js';

export const F16_CASES = ['dit.block', 'dit.transformer', 'cfm.solve_euler', 'cfm.solve_euler.g15_inc', 'cfm.solve_euler.g1_inc', 'mucodec.inference_codes', 'mucodec.code2sound_latents'];

export interface F16ErrorRow {
  case: string;
  precision: DitPrecision;
  /** every output within the case's (float32) tolerance */
  pass: boolean;
  max_abs: number;
  rel_l2: number;
  /** peak |value| of the reference outputs is not in the fixtures' comparison; max_abs is absolute */
  outputs: number;
}

export async function measureF16Error(dirs: string[]): Promise<F16ErrorRow[]> {
  const rows: F16ErrorRow[] = [];
  try {
    for (const dir of dirs) {
      for (const precision of ['f32', 'f16-emulated'] as DitPrecision[]) {
        setDitPrecision(precision);
        const r = await runCase(dir);
        if (r.error) throw new Error(`${r.name} (${precision}): ${r.error}`);
        const outs = r.comparisons.filter((c) => c.kind !== 'intermediate');
        rows.push({
          case: r.name, precision, pass: outs.every((c) => c.pass), outputs: outs.length,
          max_abs: Math.max(...outs.map((c) => c.maxAbs)), rel_l2: Math.max(...outs.map((c) => c.relL2)),
        });
      }
    }
  } finally {
    setDitPrecision('f32');
  }
  return rows;
}

const isMain = process.argv[1] && import.meta.url === new URL(`file://${process.argv[1]}`).href;
if (isMain) {
  const args = process.argv.slice(2);
  const arg = (k: string): string | undefined => { const i = args.indexOf(k); return i >= 0 ? args[i + 1] : undefined; };
  const flagged = new Set(['--backend', '--json'].flatMap((k) => [k, arg(k)]));
  const dirs = args.filter((a) => !flagged.has(a));
  const backend = (await initBackend(arg('--backend') ?? 'wasm')).chosen;
  const fixtures = join(import.meta.dirname, '..', '..', 'tests', 'fixtures', 'decoder');
  const rows = await measureF16Error(dirs.length ? dirs : F16_CASES.map((c) => join(fixtures, c)));
  console.log(`backend ${backend}; outputs against the float32 fixtures (max over each case's outputs)`);
  console.log('| case | precision | max_abs | rel_l2 | within the f32 tolerance |\n|---|---|---:|---:|:-:|');
  for (const r of rows) console.log(`| ${r.case} | ${r.precision} | ${r.max_abs.toExponential(2)} | ${r.rel_l2.toExponential(2)} | ${r.pass ? 'yes' : 'no'} |`);
  const out = arg('--json');
  if (out) writeFileSync(out, `${JSON.stringify({ date: new Date().toISOString(), backend, rows }, null, 2)}\n`);
  process.exit(0);
}
