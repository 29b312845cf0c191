/**
 * Ceiling rows for the synthesis/decode groups: the best plain matMul / conv throughput the backend reaches on the
 * stages' dominant shapes, so a stage's GFLOP/s can be read against what the backend can do at all.
 *   dit.block      : FFN matMul 4096×1584 @ 1584×6336 (2/3 of the block's FLOPs), per-head QKᵀ 4096×72 @ 72×4096,
 *                    and the packed GEMM the linears use (bench/gemm.ts) on the FFN and the q/k/v/out shapes
 *   vae.decode     : 3×3 convs; every resolution level costs the same (channels halve as the area quadruples):
 *                    512→512 at 64×64 (a quarter of level 1) and 128→128 at 256×256 (a quarter of level 3)
 *   hifigan.generate: resblock conv1d at the wide levels: k11 768→768 on 600 frames, k11 192→192 on 12 000 frames,
 *                    by tf.conv1d (XNNPACK) and by the packed-GEMM conv the vocoder uses (bench/gemm.ts)
 * and in every group on wasm the FMA peak itself (bench/peak.ts: register-only relaxed_madd on every thread)
 */
import { initBackend } from '../src/backend.js';
import { wasmThreads } from '../src/workers/wasm_threads.js';
import { convGemmCeiling, gemmCeilings } from './gemm.js';
import { fmaPeakCeiling } from './peak.js';
import {
  conv1dCeiling, conv2dCeiling, loadAvg, machineInfo, matMulCeiling, measureCeiling, peakRssMb, type BenchRow, type CeilingSpec,
  fmtRow,
} from './common.js';

export const CEILINGS: Record<string, Array<{ of: string; spec: CeilingSpec }>> = {
  dit: [
    { of: 'dit.block', spec: matMulCeiling(4096, 1584, 6336) },
    { of: 'dit.block', spec: matMulCeiling(4096, 72, 4096) },
  ],
  vae: [
    { of: 'vae.decode', spec: conv2dCeiling(64, 64, 512, 512) },
    { of: 'vae.decode', spec: conv2dCeiling(256, 256, 128, 128) },
  ],
  vocoder: [
    { of: 'hifigan.generate', spec: conv1dCeiling(600, 768, 768, 11) },
    { of: 'hifigan.generate', spec: conv1dCeiling(12000, 192, 192, 11) },
  ],
};

/** the stage a group's FMA-peak row is filed under */
const OF_STAGE: Record<string, string> = { dit: 'dit.block', vae: 'vae.decode', vocoder: 'hifigan.generate', encode: 'muq.hidden6' };

export async function benchCeilings(group: string, opts: { backend?: string; runs?: number; log?: (l: string) => void } = {}): Promise<BenchRow[]> {
  const log = opts.log ?? console.log;
  const rep = await initBackend(opts.backend);
  const rows: BenchRow[] = [];
  const specs = [...(CEILINGS[group] ?? [])];
  // the packed GEMM rows need the backend (relaxed-SIMD detection): built here
  if (group === 'dit' && rep.chosen === 'wasm') {
    for (const [m, k, n] of [[4096, 1584, 6336], [4096, 1584, 1584]] as const) for (const spec of gemmCeilings(m, k, n)) specs.push({ of: 'dit.block', spec });
  }
  // the FMA ceiling itself, once per group, so every stage's row has it from the same run
  if (rep.chosen === 'wasm') specs.push({ of: OF_STAGE[group] ?? group, spec: fmaPeakCeiling() });
  if (group === 'vocoder' && rep.chosen === 'wasm') {
    for (const [len, c] of [[600, 768], [12000, 192]] as const) specs.push({ of: 'hifigan.generate', spec: convGemmCeiling(len, c, c, 11) });
  }
  for (const { of, spec } of specs) {
    const c = await measureCeiling(spec, opts.runs ?? 3);
    const r: BenchRow = {
      stage: `${of}.ceiling`, shape: spec.label, gflop: spec.gflop, ours_s: c.s, torch_s: null, ratio: null,
      threads: rep.chosen === 'wasm' ? (wasmThreads() ?? 1) : 1, backend: rep.chosen, peak_rss_mb: peakRssMb(),
      date: new Date().toISOString(), machine: machineInfo(), kind: 'ceiling', runs: c.runs, gflops_per_s: c.gflopsPerS,
      load: loadAvg(), of_stage: of, note: `best of ${c.runs.length}: ${c.gflopsPerS.toFixed(1)} GFLOP/s`,
    };
    rows.push(r);
    log(fmtRow(r));
  }
  return rows;
}
