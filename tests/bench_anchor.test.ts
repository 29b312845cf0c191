/**
 * bench --torch bookkeeping (bench/torch/anchor.ts, bench/update_readme.ts): same-run torch rows set torch_source,
 * torch_kernels and the ratio; rows left with the table's torch seconds are marked "BASELINES.md" and the README tables
 * show no ratio for them. Pure data: no PyTorch needed.
 */
import { describe, expect, it } from 'vitest';
import { attachTorch, parseTorchArg, torchEstimateS, torchStagesFor, type TorchRow } from '../bench/torch/anchor.js';
import { renderTable } from '../bench/update_readme.js';
import type { BenchRow } from '../bench/common.js';

const row = (stage: string, ours: number, torch: number | null, kind: BenchRow['kind'] = 'stage'): BenchRow => ({
  stage, shape: 's', gflop: 100, ours_s: ours, torch_s: torch, ratio: torch == null ? null : torch / ours, threads: 2, backend: 'wasm',
  peak_rss_mb: 1, date: '2026-12-04T00:00:00Z', machine: 'm', kind,
});
const trow = (stage: string, s: number, core: string): TorchRow => ({
  stage, torch_s: s, runs: [s], module: 'upstream: x', shape: 's', load: [1, 1, 1], torch_version: '1.13.1', threads: 2,
  openblas_coretype_env: null, openblas_core: core, shimmed: [],
});

describe('bench --torch anchor', () => {
  it('attaches same-run times per kernel; other rows are marked BASELINES.md', () => {
    const rows = [row('dit.block', 8, 19.6), row('vae.decode', 20, 40.7), row('dit.block.ceiling', 1, null, 'ceiling')];
    const t = new Map([['dit.block', new Map([['auto', trow('dit.block', 4, 'Haswell')], ['SKYLAKEX', trow('dit.block', 3, 'SkylakeX')]])]]);
    attachTorch(rows, t, ['env', 'SKYLAKEX']);
    expect(rows[0]).toMatchObject({ torch_s: 4, ratio: 0.5, torch_source: 'same-run' });
    expect(rows[0]!.torch_kernels!.SKYLAKEX!.s).toBe(3);
    expect(rows[1]!.torch_source).toBe('BASELINES.md');
    expect(rows[2]!.torch_source).toBeUndefined();
    const md = renderTable({ rows });
    expect(md).toContain('| dit.block at 4096 tokens | 8.00 | 4.00 | 3.00 | 0.50 |');
    expect(md).toMatch(/vae\.decode, 128 latent frames \| 20\.0 \| 40\.7 \(BASELINES\.md, not same-run\) \| – \| – \(no same-run torch\)/);
  });

  it('the targets table divides by the FMA peak measured in the run (bench/peak.ts row) and shows torch GFLOP/s', () => {
    const peak: BenchRow = { ...row('dit.block.ceiling', 1, null, 'ceiling'), shape: 'wasm FMA (f32x4.relaxed_madd) peak', gflops_per_s: 120, of_stage: 'dit.block' };
    const plain: BenchRow = { ...row('dit.block.ceiling', 1, null, 'ceiling'), shape: 'gemm FMA', gflops_per_s: 50, of_stage: 'dit.block' };
    const rows = [{ ...row('dit.block', 8, 4), torch_source: 'same-run' as const }, peak, plain];
    const md = renderTable({ rows });
    // stage 100/8 = 12.5 GFLOP/s, torch 100/4 = 25.0, best plain op 50 (the peak row is not a plain op): 4/(100/50) = 2.00,
    // at the measured peak 4/(100/120) = 4.80
    expect(md).toContain('| dit.block at 4096 tokens | 8.00 | 4.00 | 0.50 | ≥ 1 | no | 12.5 | 25.0 | 50.0 | 2.00 | 4.80 |');
    expect(md).toContain('120.0 GFLOP/s, the wasm FMA peak measured in this run');
    // without a peak row: the assumed 110
    expect(renderTable({ rows: [rows[0]!] })).toContain('(assumed: no peak row in this run)');
  });

  it('options, stage lists and the time estimate', () => {
    const t = { enabled: false, kernels: ['env', 'SKYLAKEX'] };
    expect(parseTorchArg('--torch', () => '', t)).toBe(true);
    expect(t.enabled).toBe(true);
    expect(parseTorchArg('--torch-kernels=Haswell', () => 'Haswell', t)).toBe(true);
    expect(t.kernels).toEqual(['Haswell']);
    expect(parseTorchArg('--runs', () => '3', t)).toBe(false);
    expect(torchStagesFor('encode', { song: false })).toEqual(['muq.hidden6', 'rvq.quantize']);
    expect(torchStagesFor('encode', { song: true })).toContain('encode.song_3min');
    expect(torchEstimateS(['dit.block'], 3, 2)).toBe(2 * (4 * 4.5 + 10));
  });
});
