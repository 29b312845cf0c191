/**
 * The kernel choices of the webgpu backend, measured on the DiT's shapes:
 *  - each of tfjs-backend-webgpu's matMul programs (layers/webgpu/matmul_program.ts) on the DiT's linears
 *    (rows × 1584 @ 1584 × 1584 for to_q/to_k/to_v/to_out, 1584 × 6336 for ff.0, 6336 × 1584 for ff.2), through the
 *    DiT's own `linear` (bias included), and which program makes a block's six linears fastest;
 *  - the fused attention kernel against the plain tfjs-op attention (1, tokens, 22 × 72), the DiT's order of scaling.
 *
 *   node dist/bench/webgpu_kernels.js [--backend webgpu] [--rows 4096] [--tokens 4096] [--runs 3] [--reps N]
 *        [--programs auto,packed,splitk,small] [--no-attention] [--json out.json]
 *
 * Timing: `reps` calls queued back to back, then one element read back (the queue runs in order, so that read waits
 * for all of them); seconds per call = run time / reps, median of `runs` after a warm-up. On Dawn's software adapter
 * (MUCODEC_WEBGPU_ADAPTER=software, Mesa llvmpipe on the CPU) the numbers say nothing about a GPU: use small --rows
 * and --tokens there to check that the script works. 'reduce' (one workgroup per output element) is left out unless
 * named in --programs.
 */
import * as tf from '@tensorflow/tfjs-core';
import { writeFileSync } from 'node:fs';
import { initBackend } from '../src/backend.js';
import { webGpuAdapter } from '../src/webgpu.js';
import { linear, type LinearW } from '../src/dit/weights.js';
import { multiHeadAttention, type AttentionImpl } from '../layers/attention.js';
import { parseMatmulProgram, setDitMatmulProgram, type MatmulProgram } from '../layers/webgpu/matmul_program.js';
import { filler, machineInfo, median } from './common.js';

export interface KernelRow {
  what: 'linear' | 'attention';
  /** linear: 'to_q' etc.; attention: the form */
  name: string;
  program: MatmulProgram | AttentionImpl;
  shape: string;
  gflop: number;
  /** median seconds per call */
  s: number;
  gflops_per_s: number;
  runs: number[];
}

export interface KernelReport {
  date: string;
  machine: string;
  backend: string;
  adapter: ReturnType<typeof webGpuAdapter>;
  rows: KernelRow[];
  /** per linear shape, the fastest program */
  fastest: Record<string, MatmulProgram>;
  /** the program with the least time over one block's six linears (4 × to_*, ff.0, ff.2): MUCODEC_WEBGPU_MATMUL */
  best_for_block: MatmulProgram | null;
  note: string;
}

const D = 1584, FF = 6336, HEADS = 22;
const LINEARS: Array<{ name: string; inF: number; outF: number; perBlock: number }> = [
  { name: 'to_qkvo', inF: D, outF: D, perBlock: 4 },
  { name: 'ff.0', inF: D, outF: FF, perBlock: 1 },
  { name: 'ff.2', inF: FF, outF: D, perBlock: 1 },
];

async function timePerCall(make: () => tf.Tensor, reps: number, runs: number): Promise<{ s: number; runs: number[] }> {
  const once = async (): Promise<number> => {
    const t0 = performance.now();
    let last: tf.Tensor | null = null;
    for (let i = 0; i < reps; i++) {
      last?.dispose();
      last = make();
    }
    const one = tf.tidy(() => tf.slice(last!.reshape([-1]), [0], [1]));
    await one.data();
    one.dispose();
    last!.dispose();
    return (performance.now() - t0) / 1000 / reps;
  };
  await once(); // warm-up: shader compilation, buffer pool
  const out: number[] = [];
  for (let i = 0; i < runs; i++) out.push(await once());
  return { s: median(out), runs: out };
}

export async function benchWebGpuKernels(opts: {
  backend?: string; rows?: number; tokens?: number; runs?: number; reps?: number; programs?: MatmulProgram[];
  attention?: boolean; log?: (s: string) => void;
} = {}): Promise<KernelReport> {
  const log = opts.log ?? console.log;
  const backend = (await initBackend(opts.backend ?? 'webgpu')).chosen;
  const adapter = backend === 'webgpu' ? webGpuAdapter() : null;
  const software = adapter?.kind === 'software';
  const rowsN = opts.rows ?? (software ? 256 : 4096);
  const tokens = opts.tokens ?? (software ? 256 : 4096);
  const runs = opts.runs ?? 3;
  const reps = opts.reps ?? (software ? 1 : 10);
  const programs = opts.programs ?? ['auto', 'packed', 'splitk', 'small'];
  const fill = filler(4321);
  const rows: KernelRow[] = [];
  const fastest: Record<string, MatmulProgram> = {};
  const blockTime = new Map<MatmulProgram, number>();
  const x = tf.tensor2d(fill(rowsN * FF, 1), [rowsN, FF]);
  try {
    for (const l of LINEARS) {
      const w: LinearW = { wT: tf.tensor2d(fill(l.inF * l.outF, 0.02), [l.inF, l.outF]), b: tf.tensor1d(fill(l.outF, 0.02)) };
      const xin = x.slice([0, 0], [rowsN, l.inF]);
      const gflop = (2 * rowsN * l.inF * l.outF) / 1e9;
      let best: KernelRow | null = null;
      for (const p of programs) {
        setDitMatmulProgram(p);
        const t = await timePerCall(() => linear(xin, w), reps, runs);
        const r: KernelRow = { what: 'linear', name: l.name, program: p, shape: `(${rowsN}, ${l.inF}) @ (${l.inF}, ${l.outF})`, gflop, s: t.s, gflops_per_s: gflop / t.s, runs: t.runs };
        rows.push(r);
        blockTime.set(p, (blockTime.get(p) ?? 0) + l.perBlock * t.s);
        if (!best || r.s < best.s) best = r;
        log(`linear ${l.name.padEnd(8)} ${r.shape.padEnd(28)} ${p.padEnd(7)} ${(t.s * 1e3).toFixed(2).padStart(9)} ms ${r.gflops_per_s.toFixed(1).padStart(8)} GFLOP/s`);
      }
      fastest[l.name] = best!.program as MatmulProgram;
      setDitMatmulProgram(null);
      xin.dispose();
      w.wT!.dispose(); w.b!.dispose();
    }
    if (opts.attention ?? true) {
      const d = D;
      const q = tf.tensor3d(fill(tokens * d, 1), [1, tokens, d]);
      const k = tf.tensor3d(fill(tokens * d, 1), [1, tokens, d]);
      const v = tf.tensor3d(fill(tokens * d, 1), [1, tokens, d]);
      const gflop = (4 * tokens * tokens * d) / 1e9;
      for (const impl of (backend === 'webgpu' ? ['fused', 'plain'] : ['plain']) as AttentionImpl[]) {
        const t = await timePerCall(() => multiHeadAttention(q, k, v, HEADS, { scale: (d / HEADS) ** -0.5, scaleQuery: true, impl }).out, reps, runs);
        const r: KernelRow = { what: 'attention', name: 'attn1', program: impl, shape: `(1, ${tokens}, ${HEADS}×${d / HEADS})`, gflop, s: t.s, gflops_per_s: gflop / t.s, runs: t.runs };
        rows.push(r);
        log(`attention ${impl.padEnd(6)} ${r.shape.padEnd(24)} ${(t.s * 1e3).toFixed(2).padStart(9)} ms ${r.gflops_per_s.toFixed(1).padStart(8)} GFLOP/s`);
      }
      q.dispose(); k.dispose(); v.dispose();
    }
  } finally {
    x.dispose();
    setDitMatmulProgram(null);
  }
  let bestForBlock: MatmulProgram | null = null;
  for (const [p, s] of blockTime) if (bestForBlock === null || s < blockTime.get(bestForBlock)!) bestForBlock = p;
  const note = software
    ? 'software adapter (Mesa llvmpipe on the CPU): these timings say nothing about a GPU'
    : backend === 'webgpu' ? 'hardware adapter' : `backend ${backend}: the matMul program choice applies to webgpu only`;
  log(`fastest per linear: ${JSON.stringify(fastest)}; best for a block's six linears: ${bestForBlock} (MUCODEC_WEBGPU_MATMUL=${bestForBlock}); ${note}`);
  return { date: new Date().toISOString(), machine: machineInfo(), backend, adapter, rows, fastest, best_for_block: bestForBlock, note };
}

const isMain = process.argv[1] && import.meta.url === new URL(`file://${process.argv[1]}`).href;
if (isMain) {
  const args = process.argv.slice(2);
  const arg = (k: string): string | undefined => { const i = args.indexOf(k); return i >= 0 ? args[i + 1] : undefined; };
  const num = (k: string): number | undefined => (arg(k) === undefined ? undefined : Number(arg(k)));
  const report = await benchWebGpuKernels({
    backend: arg('--backend'), rows: num('--rows'), tokens: num('--tokens'), runs: num('--runs'), reps: num('--reps'),
    programs: arg('--programs')?.split(',').map((p) => parseMatmulProgram(p, '--programs')), attention: !args.includes('--no-attention'),
  });
  const out = arg('--json');
  if (out) writeFileSync(out, `${JSON.stringify(report, null, 2)}\n`);
  process.exit(0); // dawn.node keeps the process alive otherwise
}
