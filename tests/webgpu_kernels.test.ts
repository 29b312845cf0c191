/**
 * The WGSL kernels of layers/webgpu/ on Dawn's software adapter (MUCODEC_WEBGPU_ADAPTER=software; see
 * tests/webgpu.test.ts for the set-up and the skip rule: skipped only where the adapter cannot be created, never under
 * CI=true). Each check runs in a child process (the backend is process-global).
 *
 * Fused attention: against a float64 host reference and the plain tfjs-op attention on random inputs (the DiT's 22
 * heads × 72, MuQ's head dims, lengths off the tiles, Tk ≠ Tq, each scaling order), and the parity cases whose stages
 * use attention (DiT block and transformer, the sampler with CFG and in-context, MuQ conformer layer and encoder) on
 * webgpu with the fused kernel taking every attention.
 */
import { join } from 'node:path';
import { describe, expect } from 'vitest';
import { runHelper } from './helpers/run_child.js';
import { resultOf, SOFT, softwareAdapter } from './helpers/software_adapter.js';

const ROOT = join(import.meta.dirname, '..');
const { run } = await softwareAdapter('tests/webgpu_kernels.test.ts');

interface AttentionCase { dh: number; heads: number; tq: number; tk: number; mode: string; chosen: string; maxAbs: number; fusedErr: number; plainErr: number; peak: number; finite: boolean; shape: number[]; b: number }

describe('WGSL kernels on the software adapter', () => {
  run('fused attention equals float64 attention within float32 accumulation, as close as the plain form', async () => {
    const r = resultOf(await runHelper('webgpu_kernels_probe.ts', [], SOFT, 300_000));
    expect(r.backend).toBe('webgpu');
    const cases = r.cases as AttentionCase[];
    expect(cases.map((c) => c.dh)).toEqual([72, 12, 24, 64, 4]);
    for (const c of cases) {
      const what = `dh ${c.dh} × ${c.heads} heads, Tq ${c.tq}, Tk ${c.tk}, ${c.mode}: fused ${c.fusedErr}, plain ${c.plainErr}`;
      expect(c.chosen, what).toBe('fused'); // what multiHeadAttention takes on webgpu by default
      expect(c.finite, what).toBe(true);
      expect(c.shape, what).toEqual([c.b, c.tq, c.heads * c.dh]);
      expect(c.fusedErr, what).toBeLessThanOrEqual(4e-6 * Math.max(1, c.peak));
      expect(c.fusedErr, what).toBeLessThanOrEqual(2 * c.plainErr + 1e-7);
    }
    expect(r.leaked).toBe(0);
  }, 320_000);

  run('each matMul program the DiT can be given runs that program and computes the linear within float32 accumulation', async () => {
    const r = resultOf(await runHelper('webgpu_kernels_probe.ts', ['matmul'], SOFT, 300_000));
    const cases = r.cases as Array<{ program: string; programs: string[]; shape: number[]; err: number; peak: number }>;
    const cls: Record<string, string> = { packed: 'MatMulPackedProgram', splitk: 'MatMulSplitKProgram', small: 'MatMulSmallOutputSizeProgram', reduce: 'MatMulReduceProgram' };
    expect(cases.length).toBe(15);
    for (const c of cases) {
      const what = `${c.program} on ${c.shape.join('×')}: ${c.programs.join(', ')}, err ${c.err}`;
      expect(c.programs.length, what).toBe(1);
      if (c.program !== 'auto') expect(c.programs[0], what).toBe(cls[c.program]);
      expect(c.err, what).toBeLessThanOrEqual(4e-6 * Math.max(1, c.peak));
    }
    expect(r.leaked).toBe(0);
  }, 320_000);

  run('bench/webgpu_kernels.ts runs on webgpu and names the fastest program (small shapes; timings meaningless here)', async () => {
    const r = resultOf(await runHelper('webgpu_kernels_probe.ts', ['bench'], SOFT, 300_000));
    expect(r.backend).toBe('webgpu');
    const rows = r.rows as Array<{ what: string; program: string; s: number }>;
    expect(rows.filter((x) => x.what === 'linear').length).toBe(6); // 3 shapes × 2 programs
    expect(rows.filter((x) => x.what === 'attention').map((x) => x.program)).toEqual(['fused', 'plain']);
    for (const x of rows) expect(x.s).toBeGreaterThan(0);
    expect(['auto', 'packed']).toContain(r.best_for_block);
    expect(String(r.note)).toMatch(/software adapter/);
    expect(r.leaked).toBe(0);
  }, 320_000);

  run('parity cases that use attention pass on webgpu with the fused kernel', async () => {
    const cases = ['decoder/dit.block', 'decoder/dit.transformer', 'decoder/cfm.solve_euler.g15_inc', 'encoder/muq.conformer_layer', 'encoder/muq.encoder'];
    const r = await runHelper('webgpu_kernels_probe.ts', ['parity', ...cases.map((c) => join(ROOT, 'tests', 'fixtures', c))], SOFT, 600_000);
    const res = resultOf(r);
    expect(r.stdout.split('\n').filter((l) => l.startsWith('FAIL')), r.stdout).toEqual([]);
    expect(r.stdout).toMatch(/5 passed, 0 failed/);
    expect(res.code).toBe(0);
    // every attention of those stages (each case has at least one) computed by the fused kernel, none by the plain form
    const calls = res.calls as { fused: number; plain: number };
    expect(calls.plain).toBe(0);
    expect(calls.fused).toBeGreaterThanOrEqual(cases.length);
  }, 620_000);
});
