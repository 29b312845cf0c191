/**
 * Regenerates bench/README.md's benchmark tables from bench/results/latest.json, between the markers
 * `<!-- bench:begin -->` and `<!-- bench:end -->` (added under a "## Benchmarks" heading when absent; nothing
 * outside the markers is touched).
 *
 *   npm run bench:readme            (node dist/bench/update_readme.js [results.json] [bench/README.md])
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

/**
 * Issue 15's targets (ratio = torch s / ours s, both measured in the same run, median of 3, threads 2, torch with the
 * OpenBLAS kernel the environment sets). `ceilingOf`: the stages whose ceiling rows
 * bound this one; `close`: what the measurements say would close the gap when the target is not met.
 */
export interface Target { stage: string; label: string; min: number; rtfMax?: number; ceilingOf: string[]; close: string }
export const TARGETS: Target[] = [
  {
    stage: 'muq.hidden6', label: 'MuQ to hidden state 6, one 40.96 s window', min: 1.0, ceilingOf: ['muq.conv_subsampling', 'muq.conformer_layer', 'muq.hidden6'],
    close: 'The frontend\'s 3×3 convs run as Winograd F(4×4,3×3) products (the stride-2 ones as F(4×4,2×2) on the space-to-depth ' +
      'image, skipping the phases the zero taps leave: 5.06 instead of 9 multiply-adds per output; F(6×6,3×3) measured only ' +
      '0.12 s faster and fails the conv_subsampling fixture), the conformer\'s linears as plain products and its ' +
      'attention as the fused kernel (src/simd/attention.ts), all on the packed GEMM of src/simd/gemm.ts, which runs at 85–95 % of the measured wasm FMA peak (ceiling ' +
      'rows). PyTorch\'s kernels use 256/512-bit vectors (AVX2/AVX-512), 2–4× the lanes of wasm SIMD128, so at the peak the ' +
      'ratio cannot pass the "ratio at FMA ceiling" column; what is left above it needs fewer multiplies (the conformer has no ' +
      'Winograd-like saving) or a wider-vector backend (tfjs-node, a GPU).',
  },
  {
    stage: 'encode.song_3min', label: 'whole encode of a 3-minute stereo song', min: 1.0, rtfMax: 0.3, ceilingOf: ['muq.conv_subsampling', 'muq.conformer_layer', 'muq.hidden6'],
    close: 'Five MuQ windows are ≈ 99 % of the time: the same bound as the MuQ row.',
  },
  {
    stage: 'dit.block', label: 'dit.block at 4096 tokens', min: 1.0, ceilingOf: ['dit.block'],
    close: 'The six linears run on the packed FMA GEMM (src/simd/gemm.ts) at 115–120 GFLOP/s and the attention as one fused ' +
      'kernel (src/simd/attention.ts: scores per block of query rows in cache, SIMD exp, P·V on the same micro-kernel; ' +
      '1.0 s of the block at 4096 tokens, ≈ 105 GFLOP/s with its softmax); --profile shows ≈ 97 % of the kernel time in ' +
      'those two: the block is within ~15 % of the measured wasm FMA peak. Tried on 2026-12-07 without a measurable change ' +
      '(machine noise ±5 %): 12 / 24 / 48 query rows per attention block, a padded score stride, loop constants in ' +
      'locals and a 2-way interleaved exp, column blocking and a 2×/4× unrolled micro-kernel (slower). Beyond that only ' +
      'wider vectors (tfjs-node, a GPU).',
  },
  {
    stage: 'vae.decode', label: 'vae.decode, 128 latent frames', min: 1.2, ceilingOf: ['vae.decode'],
    close: 'The 3×3 convs run as Winograd F(4×4,3×3) products (transforms split over the threads), the small-image and 1×1 ' +
      'convs and the attention as direct products, all on the packed FMA GEMM (--profile: ≈ 70 % of the kernel time in it, ' +
      'at ≈ 110 GFLOP/s; the filter transform written straight in its packed layout, GroupNorm\'s affine + swish split over ' +
      'the threads). Left: the memory-bound GroupNorm passes and the band copies between host images and the heap. ' +
      'PyTorch\'s convs reach 2–3× the wasm FMA peak here (AVX-512), so 1.2 needs fewer multiplies than F(4×4, 3×3) ' +
      'already saves — F(6×6, 3×3) (21 % fewer products) measured slower here (its U is made per call at 512 and 1024 ' +
      'channels) and used 86 % of the vae.decode fixture\'s tolerance — or a wider-vector backend (tfjs-node, a GPU).',
  },
  {
    stage: 'hifigan.generate', label: 'hifigan.generate, 1 s of mel', min: 0.7, ceilingOf: ['hifigan.generate'],
    close: 'The resblock convs run as a nested Winograd (src/simd/winograd1d.ts: F(4,4) on 4-tap kernel chunks and F(3, q) ' +
      'across the chunks, 2.3–3.5 products per output for k = 7, 11, 15 instead of 7–15) whose products, like every other ' +
      'conv1d, run on the packed FMA GEMM without im2col (conv1dGemm, ≈ 90 % of the measured wasm FMA peak: ceiling rows), ' +
      'so the stage runs far above the direct-convolution ceiling. PyTorch runs the direct convs with AVX-512 at 2–2.5× the ' +
      'wasm peak on this machine; larger tiles would lose float32 accuracy (F(5,5) measured 4× the error of F(4,4)).',
  },
];

/**
 * The wasm FMA ceiling when the run has no measured peak row (bench/peak.ts): 2 cores × 4 lanes × 2 FLOP × 2 FMA
 * ports × ≈ 3.4 GHz (BASELINES.md)
 */
export const WASM_FMA_CEILING_GFLOPS = 110;

/** the FMA peak measured in the run (bench/peak.ts rows), else null */
function measuredPeak(doc: ResultsDoc): number | null {
  const p = doc.rows.filter((r) => r.kind === 'ceiling' && /peak/.test(r.shape)).map((r) => r.gflops_per_s ?? r.gflop / r.ours_s);
  return p.length ? Math.max(...p) : null;
}

const sameRun = (r: BenchRow): boolean => r.torch_source === 'same-run';

/** torch s as a cell: same-run seconds, or the table's seconds marked as not comparable */
function torchCell(r: BenchRow, kernel?: string): string {
  if (kernel) { const k = r.torch_kernels?.[kernel]; return k ? sig(k.s) : '–'; }
  if (r.torch_s == null) return '–';
  return sameRun(r) ? sig(r.torch_s) : `${sig(r.torch_s)} (BASELINES.md, not same-run)`;
}
const ratioCell = (r: BenchRow): string => (sameRun(r) ? num(r.ratio) : '– (no same-run torch)');

/** the OpenBLAS kernel labels found in the rows, the environment's first */
function kernelLabels(doc: ResultsDoc): string[] {
  const ks: string[] = [];
  for (const r of doc.rows) for (const k of Object.keys(r.torch_kernels ?? {})) if (!ks.includes(k)) ks.push(k);
  return ks;
}

export function renderTargets(doc: ResultsDoc): string {
  const out: string[] = [];
  const ks = kernelLabels(doc);
  const peak = measuredPeak(doc);
  const fmaCeil = peak ?? WASM_FMA_CEILING_GFLOPS;
  out.push('Targets of issue 15 (ratio = torch s / ours s, only where torch ran in the same run: `npm run bench -- --torch`; ' +
    `torch s = OpenBLAS kernel as the environment sets it${ks.length > 1 ? `, beside it ${ks.slice(1).join(', ')}` : ''}; stage GFLOP/s ` +
    '(ours and torch\'s) counts the direct-convolution FLOPs, so Winograd stages can exceed the plain-op ceiling; "ratio at ceiling" = ' +
    'the ratio if every FLOP ran at the best plain op measured beside it; "ratio at FMA ceiling" = the same at ' +
    (peak ? `${peak.toFixed(1)} GFLOP/s, the wasm FMA peak measured in this run (bench/peak.ts: register-only relaxed_madd on every thread)):`
      : `${WASM_FMA_CEILING_GFLOPS} GFLOP/s, the most wasm SIMD128 with relaxed-SIMD FMA can give on 2 cores (assumed: no peak row in this run)):`));
  out.push('');
  out.push(`| target (issue 15) | ours s | torch s${ks.slice(1).map((k) => ` | torch s ${k}`).join('')} | ratio | target | met | stage GFLOP/s | torch GFLOP/s | best plain-op GFLOP/s | ratio at ceiling | ratio at FMA ceiling |`);
  out.push(`|---|---:|---:|${ks.slice(1).map(() => '---:|').join('')}---:|---:|:-:|---:|---:|---:|---:|---:|`);
  const notes: string[] = [];
  for (const t of TARGETS) {
    const r = doc.rows.find((x) => x.stage === t.stage && x.kind !== 'ceiling');
    if (!r) { out.push(`| ${t.label} | not measured | |${ks.slice(1).map(() => ' |').join('')} | ≥ ${t.min} | | | | | | |`); continue; }
    const ceil = doc.rows.filter((x) => x.kind === 'ceiling' && t.ceilingOf.includes(x.of_stage ?? '') && !/peak/.test(x.shape))
      .map((x) => x.gflops_per_s ?? x.gflop / x.ours_s);
    const best = ceil.length ? Math.max(...ceil) : null;
    const gps = r.gflop / r.ours_s;
    const rtf = r.ours_s / 180;
    const met = sameRun(r) ? ((r.ratio ?? 0) >= t.min && (t.rtfMax === undefined || rtf <= t.rtfMax) ? 'yes' : 'no') : '–';
    const atCeil = best && r.torch_s && sameRun(r) ? r.torch_s / (r.gflop / best) : null;
    const atFma = r.torch_s && sameRun(r) ? r.torch_s / (r.gflop / fmaCeil) : null;
    const torchGps = r.torch_s && sameRun(r) ? r.gflop / r.torch_s : null;
    out.push(`| ${t.label} | ${sig(r.ours_s)} | ${torchCell(r)}${ks.slice(1).map((k) => ` | ${torchCell(r, k)}`).join('')} | ${ratioCell(r)} | ≥ ${t.min}` +
      `${t.rtfMax !== undefined ? `, RTF ≤ ${t.rtfMax} (ours ${rtf.toFixed(2)})` : ''} | ${met} | ${num(gps, 1)} | ${num(torchGps, 1)} | ` +
      `${best == null ? '–' : num(best, 1)} | ${atCeil == null ? '–' : num(atCeil)} | ${atFma == null ? '–' : num(atFma)} |`);
    if (met === 'no') notes.push(`- **${t.stage}** (${num(r.ratio)} of ≥ ${t.min}): ${t.close}`);
  }
  if (notes.length) out.push('', 'Where a target is not met, what the measurements say would close it:', '', ...notes);
  return out.join('\n');
}

function torchSummary(doc: ResultsDoc): string {
  const same = doc.rows.filter(sameRun);
  const other = doc.rows.filter((r) => r.torch_source !== 'same-run' && r.torch_s != null);
  const info = [...new Set(same.map((r) => r.torch_info).filter(Boolean))];
  const parts: string[] = [];
  if (same.length) parts.push(`PyTorch timed in the same run on ${same.length} rows (\`--torch\`: upstream modules, bench/torch/stages.py; ${info.join('; ')}).`);
  if (other.length) parts.push(`${other.length} rows only have torch seconds from BASELINES.md's earlier tables (another machine of this kind, ` +
    'which ran PyTorch 2.5–4.4× slower): no ratio is shown for them.');
  return parts.join(' ') || 'No PyTorch times.';
}

export function renderTable(doc: ResultsDoc): string {
  const stages = doc.rows.filter((r) => r.kind !== 'ceiling');
  const ceilings = doc.rows.filter((r) => r.kind === 'ceiling');
  const dates = doc.rows.map((r) => r.date).filter(Boolean).sort();
  const machines = [...new Set(doc.rows.map((r) => r.machine).filter(Boolean))];
  const loads = doc.rows.map((r) => r.load?.[0]).filter((x): x is number => typeof x === 'number');
  const out: string[] = [];
  out.push(`Generated from \`bench/results/latest.json\` by \`npm run bench:readme\` (run \`npm run bench\` to measure; ` +
    `median of the runs listed there). Measured ${dates.length ? `${dates[0]!.slice(0, 16).replace('T', ' ')} – ${dates[dates.length - 1]!.slice(0, 16).replace('T', ' ')} UTC` : '–'} ` +
    `on ${machines.join('; ') || '–'}. ${torchSummary(doc)} ratio = torch s / ours s (> 1: faster than PyTorch), shown only ` +
    `where torch ran in the same run.` +
    (loads.length ? ` 1-minute load average while measuring: ${Math.min(...loads).toFixed(1)}–${Math.max(...loads).toFixed(1)} on ` +
      `${machines.length ? 'this' : 'the'} machine (the benchmark's own threads account for up to ${doc.threads ?? 2}; more means other ` +
      `jobs ran beside it and slowed these numbers down; every run is in latest.json).` : '') +
    ` Threads: the wasm backend runs XNNPACK and our kernels (src/workers/kernel_pool.ts) on N threads sharing one heap ` +
    `(\`--threads N\` / \`MUCODEC_THREADS\`, default: one per core; src/workers/wasm_threads.ts).`);
  out.push('');
  out.push(renderTargets(doc));
  out.push('');
  out.push('All rows:');
  out.push('');
  out.push('| stage | shape | GFLOP | ours s | GFLOP/s | torch s | ratio | threads | backend | peak RSS MB |');
  out.push('|---|---|---:|---:|---:|---:|---:|---:|---|---:|');
  for (const r of stages) {
    const label = r.kind === 'substage' ? `↳ ${r.stage}` : `**${r.stage}**`;
    out.push(`| ${label} | ${r.shape} | ${sig(r.gflop)} | ${sig(r.ours_s)} | ${r.gflop > 0 ? num(r.gflop / r.ours_s, 1) : '–'} | ` +
      `${torchCell(r)} | ${r.torch_source === 'same-run' ? num(r.ratio) : '–'} | ${r.threads} | ${r.backend} | ${r.peak_rss_mb} |`);
  }
  if (ceilings.length) {
    out.push('');
    out.push('Ceilings: the best plain op throughput the backend gives on each stage\'s dominant shape (best of the runs):');
    out.push('');
    out.push('| for stage | op | GFLOP/s | threads | torch GFLOP/s, same run |');
    out.push('|---|---|---:|---:|---:|');
    for (const r of ceilings) {
      const tk = Object.entries(r.torch_kernels ?? {}).map(([k, v]) => `${num(r.gflop / v.s, 0)} (${k})`).join(', ');
      out.push(`| ${r.of_stage ?? r.stage} | ${r.shape} | ${num(r.gflops_per_s ?? r.gflop / r.ours_s, 1)} | ${r.threads} | ${tk || '–'} |`);
    }
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
  const readmePath = resolve(process.argv[3] ?? join(ROOT, 'bench', 'README.md'));
  const doc = JSON.parse(readFileSync(results, 'utf8')) as ResultsDoc;
  const next = updateReadme(readFileSync(readmePath, 'utf8'), renderTable(doc));
  const tmp = `${readmePath}.${process.pid}.tmp`;
  writeFileSync(tmp, next);
  renameSync(tmp, readmePath);
  console.log(`${readmePath}: benchmark table updated from ${results} (${doc.rows.length} rows)`);
}
