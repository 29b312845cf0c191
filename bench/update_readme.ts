/**
 * Regenerates README.md's benchmark table from bench/results/latest.json, between the markers
 * `<!-- bench:begin -->` and `<!-- bench:end -->` (added under a "## Benchmarks" heading when absent; nothing
 * outside the markers is touched).
 *
 *   npm run bench:readme            (node dist/bench/update_readme.js [results.json] [README.md])
 */
import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { BenchRow } from './common.js';

const BEGIN = '<!-- bench:begin -->';
const END = '<!-- bench:end -->';

interface ResultsDoc { date?: string; machine?: string; threads?: number; backend?: string; command?: string; rows: BenchRow[] }

const num = (x: number | null | undefined, d = 2): string => (x == null || !Number.isFinite(x) ? '–' : x.toFixed(d));
const sig = (x: number): string => (x >= 100 ? x.toFixed(0) : x >= 10 ? x.toFixed(1) : x >= 1 ? x.toFixed(2) : x.toFixed(3));

export function renderTable(doc: ResultsDoc): string {
  const stages = doc.rows.filter((r) => r.kind !== 'ceiling');
  const ceilings = doc.rows.filter((r) => r.kind === 'ceiling');
  const dates = doc.rows.map((r) => r.date).filter(Boolean).sort();
  const machines = [...new Set(doc.rows.map((r) => r.machine).filter(Boolean))];
  const loads = doc.rows.map((r) => r.load?.[0]).filter((x): x is number => typeof x === 'number');
  const out: string[] = [];
  out.push(`Generated from \`bench/results/latest.json\` by \`npm run bench:readme\` (run \`npm run bench\` to measure; ` +
    `median of the runs listed there). Measured ${dates.length ? `${dates[0]!.slice(0, 16).replace('T', ' ')} – ${dates[dates.length - 1]!.slice(0, 16).replace('T', ' ')} UTC` : '–'} ` +
    `on ${machines.join('; ') || '–'}. PyTorch: 1.13 CPU, 2 threads, same machine kind (reference/BASELINES.md). ` +
    `ratio = torch s / ours s (> 1: faster than PyTorch).` +
    (loads.length ? ` 1-minute load average while measuring: ${Math.min(...loads).toFixed(1)}–${Math.max(...loads).toFixed(1)} on ` +
      `${machines.length ? 'this' : 'the'} machine (other jobs running beside the benchmark slow these numbers down; every run is in ` +
      `latest.json).` : '') +
    ` Threads: the wasm backend runs XNNPACK on N threads sharing one heap (\`--threads N\` / \`MUCODEC_THREADS\`, default: one ` +
    `per core; src/workers/wasm_threads.ts).`);
  out.push('');
  out.push('| stage | shape | GFLOP | ours s | GFLOP/s | torch s | ratio | threads | backend | peak RSS MB |');
  out.push('|---|---|---:|---:|---:|---:|---:|---:|---|---:|');
  for (const r of stages) {
    const label = r.kind === 'substage' ? `↳ ${r.stage}` : `**${r.stage}**`;
    out.push(`| ${label} | ${r.shape} | ${sig(r.gflop)} | ${sig(r.ours_s)} | ${r.gflop > 0 ? num(r.gflop / r.ours_s, 1) : '–'} | ` +
      `${r.torch_s == null ? '–' : sig(r.torch_s)} | ${num(r.ratio)} | ${r.threads} | ${r.backend} | ${r.peak_rss_mb} |`);
  }
  if (ceilings.length) {
    out.push('');
    out.push('Ceilings: the best plain op throughput the backend gives on each stage\'s dominant shape (best of the runs):');
    out.push('');
    out.push('| for stage | op | GFLOP/s | threads |');
    out.push('|---|---|---:|---:|');
    for (const r of ceilings) out.push(`| ${r.of_stage ?? r.stage} | ${r.shape} | ${num(r.gflops_per_s ?? r.gflop / r.ours_s, 1)} | ${r.threads} |`);
  }
  const notes = stages.filter((r) => r.note).map((r) => `${r.stage}: ${r.note}`);
  if (notes.length) {
    out.push('');
    for (const n of notes) out.push(`- ${n}`);
  }
  return out.join('\n');
}

export function updateReadme(readme: string, table: string): string {
  const block = `${BEGIN}\n${table}\n${END}`;
  const b = readme.indexOf(BEGIN);
  const e = readme.indexOf(END);
  if (b >= 0 && e > b) return readme.slice(0, b) + block + readme.slice(e + END.length);
  if (b >= 0 || e >= 0) throw new Error(`README: found only one of ${BEGIN} / ${END}`);
  const sep = readme.endsWith('\n') ? '' : '\n';
  return `${readme}${sep}\n## Benchmarks\n\n${block}\n`;
}

const here = dirname(fileURLToPath(import.meta.url));
const ROOT = existsSync(join(here, '..', 'package.json')) ? resolve(here, '..') : resolve(here, '..', '..');

const isMain = process.argv[1] !== undefined && resolve(process.argv[1]) === fileURLToPath(import.meta.url);
if (isMain) {
  const results = resolve(process.argv[2] ?? join(ROOT, 'bench', 'results', 'latest.json'));
  const readmePath = resolve(process.argv[3] ?? join(ROOT, 'README.md'));
  const doc = JSON.parse(readFileSync(results, 'utf8')) as ResultsDoc;
  const next = updateReadme(readFileSync(readmePath, 'utf8'), renderTable(doc));
  const tmp = `${readmePath}.${process.pid}.tmp`;
  writeFileSync(tmp, next);
  renameSync(tmp, readmePath);
  console.log(`${readmePath}: benchmark table updated from ${results} (${doc.rows.length} rows)`);
}
