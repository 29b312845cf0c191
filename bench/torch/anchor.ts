/**
 * The anchor in the same run (`npm run bench -- --torch`): after each bench group, bench/torch/stages.py times the
 * upstream PyTorch modules of that group's rows on the same shapes, once per OpenBLAS kernel setting
 * (`OPENBLAS_CORETYPE` as the environment sets it, and `SKYLAKEX`), and the rows get `torch_source: "same-run"`,
 * `torch_s` (the environment's kernel), `torch_kernels` (both) and `ratio = torch_s / ours_s`. Rows left with a
 * torch time from bench/common.ts's table are marked `torch_source: "BASELINES.md"`.
 *
 *   --torch                 run the PyTorch side (needs /usr/bin/python3 with torch, numpy, scipy, torchaudio and
 *                           bench/.upstream/ from bench/torch/fetch_upstream.sh; MUCODEC_TORCH_PYTHON overrides)
 *   --torch-kernels A,B     OPENBLAS_CORETYPE settings to time (default "env,SKYLAKEX"; "env" = as set)
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { onLines, type BenchRow } from '../common.js';

const here = dirname(fileURLToPath(import.meta.url));
/** repository root: dist/bench/torch/anchor.js → ../../..; bench/torch/anchor.ts → ../.. */
const ROOT = [resolve(here, '..', '..'), resolve(here, '..', '..', '..')].find((d) => existsSync(join(d, 'bench', 'torch', 'stages.py'))) ?? resolve(here, '..', '..');
export const STAGES_PY = join(ROOT, 'bench', 'torch', 'stages.py');
export const UPSTREAM_DIR = join(ROOT, 'bench', '.upstream');

export interface TorchOptions { enabled: boolean; kernels: string[] }

/** what one stages.py row carries (TORCH_ROW lines) */
export interface TorchRow {
  stage: string; torch_s: number; runs: number[]; module: string; shape: string; load: number[];
  torch_version: string; threads: number; openblas_coretype_env: string | null; openblas_core: string | null; shimmed: string[];
  gflops_per_s?: number; note?: string;
}

/** one kernel's time of a stage, as a row records it */
export interface TorchKernelTime { s: number; runs: number[]; openblas_core: string | null; load: number[] }

/** the torch rows each group's bench rows are matched with (stage names are the same on both sides) */
export function torchStagesFor(group: string, opts: { song: boolean }): string[] {
  if (group === 'encode') return ['muq.hidden6', 'rvq.quantize', ...(opts.song ? ['encode.song_3min'] : [])];
  if (group === 'dit') return ['dit.block', 'raw.matmul'];
  if (group === 'vae') return ['vae.decode'];
  if (group === 'vocoder') return ['hifigan.generate'];
  return [];
}

/**
 * Seconds one torch pass takes on this machine kind (BASELINES.md side-by-side section, 2 threads), for the
 * estimate printed before the run: (runs + 1 warm-up) × stage, song once.
 */
const TORCH_EST_S: Record<string, number> = {
  'muq.hidden6': 9, 'rvq.quantize': 0.3, 'encode.song_3min': 45, 'dit.block': 4.5, 'raw.matmul': 0.5, 'vae.decode': 16, 'hifigan.generate': 4.2,
};
export function torchEstimateS(stages: string[], runs: number, kernels: number): number {
  const per = stages.reduce((a, s) => a + (s === 'encode.song_3min' ? 1 : runs + 1) * (TORCH_EST_S[s] ?? 5), 0);
  return kernels * (per + 10 /* imports and model set-up */);
}

export function parseTorchArg(x: string, next: () => string, t: TorchOptions): boolean {
  if (x === '--torch') { t.enabled = true; return true; }
  if (x === '--torch-kernels' || x.startsWith('--torch-kernels=')) {
    t.enabled = true;
    t.kernels = next().split(',').map((k) => k.trim()).filter(Boolean);
    return true;
  }
  return false;
}

/** the label of a kernel setting: "env" → the environment's value (or "auto" where unset) */
export function kernelLabel(k: string): string {
  return k === 'env' ? (process.env.OPENBLAS_CORETYPE ? process.env.OPENBLAS_CORETYPE : 'auto') : k;
}

/** Run stages.py once per kernel setting; rows by stage, then by kernel label. Failures are logged, not thrown. */
export async function runTorch(stages: string[], o: { runs: number; threads: number; kernels: string[]; log: (l: string) => void }): Promise<Map<string, Map<string, TorchRow>>> {
  const out = new Map<string, Map<string, TorchRow>>();
  if (!stages.length) return out;
  if (!existsSync(join(UPSTREAM_DIR, 'MuCodec'))) {
    o.log(`bench --torch: ${UPSTREAM_DIR} is missing: run bench/torch/fetch_upstream.sh [MIRROR_DIR] first (torch side skipped)`);
    return out;
  }
  const python = process.env.MUCODEC_TORCH_PYTHON ?? '/usr/bin/python3';
  for (const k of [...new Set(o.kernels)]) {
    const label = kernelLabel(k);
    const env = { ...process.env };
    if (k !== 'env') env.OPENBLAS_CORETYPE = k;
    const est = torchEstimateS(stages, o.runs, 1);
    o.log(`  torch (OPENBLAS_CORETYPE ${label}): ${stages.join(', ')} — about ${Math.ceil(est / 60)} min on 2 free cores`);
    const args = [STAGES_PY, '--stages', stages.join(','), '--runs', String(o.runs), '--threads', String(o.threads)];
    const code = await new Promise<number | null>((res) => {
      const child = spawn(python, args, { stdio: ['ignore', 'pipe', 'pipe'], env });
      onLines(child.stdout, (line) => {
        if (!line.startsWith('TORCH_ROW ')) return;
        const r = JSON.parse(line.slice('TORCH_ROW '.length)) as TorchRow;
        const m = out.get(r.stage) ?? new Map<string, TorchRow>();
        m.set(label, r);
        out.set(r.stage, m);
      });
      child.stderr.setEncoding('utf8');
      child.stderr.on('data', (d: string) => {
        for (const l of d.split('\n')) if (l.trim() && !/FutureWarning|deprecate\(|Ratio of unused vector/.test(l)) o.log(`    ${l}`);
      });
      child.on('error', (e) => { o.log(`bench --torch: cannot start ${python}: ${e.message}`); res(null); });
      child.on('close', (c) => res(c));
    });
    if (code !== 0) o.log(`bench --torch: ${python} ${STAGES_PY} exited with code ${code} (rows it printed are kept)`);
  }
  return out;
}

/**
 * Attach the same-run torch times to the rows of a group (matched by stage name); the first kernel of `kernels` is the
 * row's `torch_s` (the issue's targets use the kernel the environment sets). Rows without a same-run time keep the
 * table's torch time, marked "BASELINES.md".
 */
export function attachTorch(rows: BenchRow[], torch: Map<string, Map<string, TorchRow>>, kernels: string[]): void {
  const first = kernelLabel(kernels[0] ?? 'env');
  for (const r of rows) {
    const t = r.kind === 'ceiling' ? undefined : torch.get(r.stage);
    const main = t?.get(first) ?? (t ? [...t.values()][0] : undefined);
    if (t && main) {
      r.torch_s = main.torch_s;
      r.ratio = main.torch_s / r.ours_s;
      r.torch_source = 'same-run';
      r.torch_module = main.module;
      r.torch_kernels = Object.fromEntries([...t.entries()].map(([k, v]) => [k, { s: v.torch_s, runs: v.runs, openblas_core: v.openblas_core, load: v.load }]));
      r.torch_info = `torch ${main.torch_version}, ${main.threads} threads; OpenBLAS ${[...t.entries()].map(([k, v]) => `${k} → ${v.openblas_core ?? '?'}`).join(', ')}`;
    } else if (r.torch_s != null) {
      r.torch_source = 'BASELINES.md';
    }
  }
  // the plain torch matMul on the DiT FFN shape: a ceiling row beside ours
  const mm = torch.get('raw.matmul');
  const ceil = rows.find((r) => r.kind === 'ceiling' && r.shape === 'matMul 4096×1584 @ 1584×6336');
  if (mm && ceil) {
    ceil.torch_s = mm.get(first)?.torch_s ?? [...mm.values()][0]!.torch_s;
    ceil.ratio = ceil.torch_s / ceil.ours_s;
    ceil.torch_source = 'same-run';
    ceil.torch_kernels = Object.fromEntries([...mm.entries()].map(([k, v]) => [k, { s: v.torch_s, runs: v.runs, openblas_core: v.openblas_core, load: v.load }]));
  }
}

/** one group's torch side, run right after our side of the group (same machine, minutes apart) */
export async function torchForGroup(group: string, rows: BenchRow[], o: { runs: number; threads: number; song: boolean; torch: TorchOptions; log: (l: string) => void }): Promise<void> {
  if (o.torch.enabled) {
    const t = await runTorch(torchStagesFor(group, { song: o.song }), { runs: o.runs, threads: o.threads, kernels: o.torch.kernels, log: o.log });
    attachTorch(rows, t, o.torch.kernels);
  } else {
    attachTorch(rows, new Map(), o.torch.kernels);
  }
}
