/**
 * One whole 40.96 s window of decode, as `mucodec decode` runs it: 1024 codes → RVQ.fromCodes → the DiT's CFG Euler
 * steps (20 by default) → the VAE decoder on both rows → the vocoder → 2 × 1 966 080 samples at 48 kHz. Real widths,
 * random weights of the real shapes (timings do not depend on the values), through MuCodec.fromParams + decode, so the
 * row measures the codec's own path on the chosen backend. One cold run: shader compilation / weight upload included;
 * the log gives the time of every phase (the first DiT step against the later ones shows the warm-up).
 *
 *   npm run bench -- window [--steps N] [--backend B] [--tiny]     (not in the default groups: hours on a CPU)
 *
 * --tiny decodes with weights/tiny instead (the same code path at test width: a quick smoke run).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { decoderExpected, REAL_CONFIG } from '../convert/manifest.js';
import { initBackend } from '../src/backend.js';
import { MuCodec } from '../src/codec.js';
import type { MuCodecConfig } from '../src/codec_types.js';
import type { HostTensor } from '../src/hosttensor.js';
import { Params } from '../src/params.js';
import { REAL_DIT_CONFIG } from '../src/dit/config.js';
import { wasmThreads } from '../src/workers/wasm_threads.js';
import { filler, loadAvg, machineInfo, peakRssMb, type BenchRow } from './common.js';
import { transformerGflop } from './dit.js';
import { randomFirstStage } from './vae_vocoder.js';

export interface BenchWindowOptions {
  backend?: string;
  /** CFG Euler steps (default 20, decode's default) */
  steps?: number;
  /** the tiny test model (weights/tiny) instead of the real widths */
  tiny?: boolean;
  /** repository root (weights/tiny) */
  root?: string;
  seed?: number;
  log?: (line: string) => void;
}

/** Random real-shape decoder.safetensors (decoderExpected names) + the VAE file's decoder and vocoder. */
export function randomDecodeParams(seed: number): Params {
  const fill = filler(seed);
  const map = new Map<string, HostTensor>();
  const counts = 1e6; // ≥ normfeat.num_samples: the statistics are not updated (as in the released checkpoint)
  for (const t of decoderExpected(REAL_CONFIG)) {
    const n = t.shape.reduce((a, b) => a * b, 1);
    let data: Float32Array;
    if (t.name === 'normfeat.counts') data = Float32Array.of(counts);
    else if (t.name === 'normfeat.sum_x') data = new Float32Array(n);
    else if (t.name.startsWith('normfeat.')) data = new Float32Array(n).fill(counts); // mean 0, std 1
    else if (t.name.endsWith('.bias')) data = fill(n, 0.02);
    else if (t.name.endsWith('scale_shift_table')) data = fill(n, 1 / Math.sqrt(t.shape[1]!));
    else data = fill(n, 1 / Math.sqrt(t.shape.slice(1).reduce((a, b) => a * b, 1) || 1));
    map.set(t.name, { dtype: 'float32', shape: t.shape, data });
  }
  for (const [k, v] of randomFirstStage(['decoder.', 'post_quant_conv.', 'vocoder.'], seed + 1).map) map.set(k, v);
  return new Params(map, '', 'random real-shape decode weights');
}

/** analytic GFLOP of one window: steps × the CFG pair through the DiT, the VAE on 2 × 512 frames, the vocoder on 2 × 4096 */
export function windowGflop(steps: number): number {
  const vae = 2 * (14748 / 512) * 512; // bench/vae_vocoder.ts BASELINE.vae512: 14 748 GFLOP per 512-frame row
  const vocoder = 2 * (6916 / 1000) * 4096; // BASELINE.voc1000: 6 916 GFLOP per 1000 mel frames
  return steps * 2 * transformerGflop(REAL_DIT_CONFIG, 512) + vae + vocoder;
}

export async function benchWindow(opts: BenchWindowOptions = {}): Promise<BenchRow[]> {
  const log = opts.log ?? console.log;
  const rep = await initBackend(opts.backend);
  const steps = opts.steps ?? 20;
  const seed = opts.seed ?? 1234;
  const t0 = performance.now();
  let codec: MuCodec;
  let codebook: number;
  if (opts.tiny) {
    const dir = join(opts.root ?? process.cwd(), 'weights', 'tiny');
    codec = await MuCodec.load({ weightsDir: dir });
    codebook = (JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8')) as { model: MuCodecConfig }).model.rvq_muencoder_emb.codebook_size;
  } else {
    codec = MuCodec.fromParams(randomDecodeParams(seed), REAL_CONFIG as unknown as MuCodecConfig);
    codebook = REAL_CONFIG.rvq_muencoder_emb.codebook_size;
  }
  const fill = filler(seed + 5);
  const codes = Int32Array.from(fill(1024, 0.5 / Math.sqrt(3), 0.5), (u) => Math.max(0, Math.min(codebook - 1, Math.floor(u * codebook)))); // uniform
  log(`window bench: ${opts.tiny ? 'tiny model' : 'random real-shape model'} ready in ${((performance.now() - t0) / 1000).toFixed(1)} s, backend ${rep.chosen}, ${steps} steps`);
  const phases: string[] = [];
  let last = performance.now();
  let lastKey = '';
  const start = performance.now();
  try {
    const c0 = process.cpuUsage();
    const audio = await codec.decode(codes, {
      steps, seed: 1,
      onProgress: (p) => {
        const key = p.phase === 'sample' ? `step ${p.step}/${p.steps}` : p.phase;
        if (key === lastKey) return;
        const now = performance.now();
        if (lastKey) phases.push(`${lastKey} ${((now - last) / 1000).toFixed(2)} s`);
        log(`  ${key} at ${((now - start) / 1000).toFixed(1)} s`);
        last = now;
        lastKey = key;
      },
    });
    const s = (performance.now() - start) / 1000;
    if (lastKey) phases.push(`${lastKey} (to the end) ${((performance.now() - last) / 1000).toFixed(2)} s`);
    const c = process.cpuUsage(c0);
    const n = audio.channels[0]!.length;
    if (audio.channels.length !== 2 || n !== 1966080) throw new Error(`window decode gave ${audio.channels.length} × ${n} samples`);
    if (!audio.channels.every((ch) => ch.every((v) => Number.isFinite(v)))) throw new Error('window decode gave non-finite audio');
    const gflop = opts.tiny ? 0 : windowGflop(steps);
    return [{
      stage: opts.tiny ? 'decode.window_tiny' : 'decode.window', shape: `1024 codes → 2 × ${n} samples (40.96 s), ${steps} CFG Euler steps`,
      gflop, ours_s: s, torch_s: null, ratio: null, threads: rep.chosen === 'wasm' ? (wasmThreads() ?? 1) : 1, backend: rep.chosen, peak_rss_mb: peakRssMb(),
      date: new Date().toISOString(), machine: machineInfo(), kind: 'stage', runs: [s], cpu_s: [(c.user + c.system) / 1e6],
      gflops_per_s: gflop > 0 ? gflop / s : undefined, load: loadAvg(),
      note: `one cold run (shader compilation and weight uploads included); real-time factor ${(s / 40.96).toFixed(2)}; phases: ${phases.join(', ')}`,
    }];
  } finally {
    codec.dispose();
  }
}
