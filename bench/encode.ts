/**
 * Encode benchmark at the REAL configuration (random weights of the real shapes from a seeded generator; timings do
 * not depend on the values): MuQ up to hidden state 6 on one 40.96 s window (what MuCodec's codes need) with its
 * sub-stages, the RVQ codebook search, and the whole encode of a 3-minute stereo song (file2code + sound2code +
 * .mcodes file). Seconds, GFLOP/s and torch_s / ours_s beside the PyTorch-CPU baselines (bench/common.ts).
 *
 * Sub-stage times (muq.features, muq.conv_subsampling, muq.conformer_layer) are taken INSIDE the timed MuQ runs
 * (wrapped methods; the wasm kernels are synchronous, so wall time is cost), so one window run gives them all.
 *
 *   node dist/bench/run.js encode [--runs 3] [--threads N] [--profile] [--no-song]
 */
import * as tf from '@tensorflow/tfjs-core';
import '../src/chained_ops.js';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { encoderExpected, REAL_CONFIG } from '../convert/manifest.js';
import { initBackend } from '../src/backend.js';
import { encodeCodesFile, writeCodesFile, type CodesMeta } from '../src/codesfile.js';
import { FRAME_RATE, MuCodecEncoder, WINDOW_SAMPLES, prepareStereo48k } from '../src/encoder.js';
import { RVQ } from '../src/rvq/rvq.js';
import type { HostTensor } from '../src/hosttensor.js';
import { Params } from '../src/params.js';
import { resample48kTo24k } from '../src/audio/resample.js';
import { MuQEncoder, MUCODEC_MUQ_LAYER, muqConfigFromDicts } from '../src/muq/muq.js';
import { Conv2dSubsampling, Res2dModule } from '../src/muq/conv_subsampling.js';
import { ConformerLayer, rotaryInvFreq } from '../src/muq/conformer.js';
import { Linear } from '../layers/linear.js';
import { Conv1d } from '../layers/conv.js';
import { wasmThreads } from '../src/workers/wasm_threads.js';
import { gemmCeilings } from './gemm.js';
import { fmaPeakCeiling } from './peak.js';
import {
  TORCH_BASELINES, conv2dCeiling, filler, fmtRow, instrumentLayers, loadAvg, machineInfo, matMulCeiling, measureCeiling,
  median, peakRssMb, profileKernels, logProfile, type BenchRow,
} from './common.js';

export interface BenchEncodeOptions {
  backend?: string;
  /** timed runs per row (median), default 3 */
  runs?: number;
  /** runs of the 3-minute song row (default 1: it is five windows) */
  songRuns?: number;
  /** skip the 3-minute song row */
  song?: boolean;
  /** also time per tfjs kernel and per layer type (one extra window run) */
  profile?: boolean;
  /** measure the ceilings (plain conv2d / matMul on the dominant shapes) */
  ceilings?: boolean;
  seed?: number;
  log?: (line: string) => void;
  /** receives the profile tables when `profile` is set */
  onProfile?: (p: unknown) => void;
}

/** Random tensors with the real names and shapes of encoder.safetensors (mucodec.pt names). */
export function randomEncoderParams(seed: number): Params {
  const fill = filler(seed);
  const map = new Map<string, HostTensor>();
  const cfg = REAL_CONFIG;
  const head = cfg.muq.encoder_dim / cfg.muq.conformer.num_attention_heads;
  for (const t of encoderExpected(cfg)) {
    const n = t.shape.reduce((a, b) => a * b, 1);
    const name = t.name;
    // the mel window / filterbank buffers are left out: MelFeatures computes them exactly (a random dense
    // filterbank would also make the mel projection dense)
    if (name.includes('preprocessor_melspec_2048.')) continue;
    let data: Float32Array;
    if (name.endsWith('inv_freq')) data = rotaryInvFreq(head, 10000);
    else if (name.endsWith('running_var')) data = fill(n, 0.2, 1);
    else if (name.endsWith('running_mean')) data = fill(n, 0.1);
    else if (/(norm|bn\d)\.weight$/.test(name) || name.endsWith('layer_norm.weight')) data = fill(n, 0.1, 1);
    else if (name.endsWith('.bias')) data = fill(n, 0.02);
    else if (name.endsWith('weight_g')) data = fill(n, 0.1, 1);
    else if (name === 'rsq48tomuencoder.kernel') continue; // optional; the encoder builds the kernel itself
    else {
      const fanIn = t.shape.slice(1).reduce((a, b) => a * b, 1) || 1;
      data = fill(n, 1 / Math.sqrt(fanIn));
    }
    map.set(name, { dtype: 'float32', shape: t.shape, data });
  }
  return new Params(map, '', 'random real-shape encoder weights');
}

/** a deterministic music-like stereo signal (a few partials + noise), peak ≈ 0.9 */
export function syntheticStereo(samples: number, rate: number, seed: number): [Float32Array, Float32Array] {
  const noise = filler(seed);
  const out: [Float32Array, Float32Array] = [noise(samples, 0.05), noise(samples, 0.05)];
  const partials = [110, 220, 331, 440, 587, 880, 1320];
  for (let c = 0; c < 2; c++) {
    const x = out[c]!;
    for (let i = 0; i < samples; i++) {
      const t = i / rate;
      let v = 0;
      for (let k = 0; k < partials.length; k++) v += Math.sin(2 * Math.PI * partials[k]! * t * (1 + 0.001 * c) + k) / (k + 2);
      x[i] = x[i]! + 0.35 * v * (0.6 + 0.4 * Math.sin(2 * Math.PI * 0.5 * t));
    }
  }
  return out;
}

const LAYER_CLASSES = { MuQEncoder, Conv2dSubsampling, Res2dModule, ConformerLayer, Linear, Conv1d };

export async function benchEncode(opts: BenchEncodeOptions = {}): Promise<BenchRow[]> {
  const log = opts.log ?? console.log;
  const rep = await initBackend(opts.backend);
  const backend = rep.chosen;
  const threads = backend === 'wasm' ? (wasmThreads() ?? 1) : 1;
  const runs = Math.max(1, opts.runs ?? 3);
  const seed = opts.seed ?? 1234;
  const machine = machineInfo();
  const rows: BenchRow[] = [];
  const push = (stage: keyof typeof TORCH_BASELINES | string, kind: BenchRow['kind'], s: number, runsS: number[], extra: Partial<BenchRow> = {}): BenchRow => {
    const b = (TORCH_BASELINES as Record<string, { shape: string; gflop: number; torch_s: number; derived?: boolean }>)[stage];
    const torch = extra.torch_s !== undefined ? extra.torch_s : b ? b.torch_s : null;
    const gflop = extra.gflop ?? b?.gflop ?? 0;
    const r: BenchRow = {
      stage, shape: extra.shape ?? b?.shape ?? '', gflop, ours_s: s, torch_s: torch, ratio: torch != null ? torch / s : null,
      threads, backend, peak_rss_mb: peakRssMb(), date: new Date().toISOString(), machine, kind, runs: runsS,
      gflops_per_s: gflop > 0 ? gflop / s : undefined, load: loadAvg(),
      ...(b?.derived ? { note: 'torch_s derived from BASELINES.md numbers' } : {}),
      ...extra,
    };
    if (r.note === undefined) delete r.note;
    rows.push(r);
    log(fmtRow(r));
    return r;
  };

  const cfg = REAL_CONFIG;
  const tb = performance.now();
  const params = randomEncoderParams(seed);
  // what MuCodec.fromParams builds for encoding: MuQ up to layer_num − 1, RVQ in_proj + codebook
  const muq = new MuQEncoder(params.sub('muencoder.model.'), muqConfigFromDicts(cfg.muq, cfg.muq.conformer), { maxLayerIndex: cfg.layer_num - 1 });
  const enc = new MuCodecEncoder(muq, RVQ.fromParams(params.sub('rvq_muencoder_emb.'), cfg.rvq_muencoder_emb, 'encode'), cfg.layer_num);
  log(`encode bench: real-shape MuQ (6 layers) + RVQ built in ${((performance.now() - tb) / 1000).toFixed(1)} s; backend ${backend}, threads ${threads}`);

  // one 40.96 s window as MuCodec feeds it: 48 kHz stereo → per-row 0.9 peak, mono, 24 kHz
  const [l48, r48] = syntheticStereo(WINDOW_SAMPLES, 48000, seed + 1);
  const t48 = performance.now();
  const row24 = enc.muqInput(l48, r48);
  const resampleS = (performance.now() - t48) / 1000;
  log(`window: ${WINDOW_SAMPLES} samples @ 48 kHz → ${row24.length} @ 24 kHz (peak-normalise + mono + resample ${resampleS.toFixed(3)} s)`);

  // warm-up, as the PyTorch baselines were taken (median of 3 timed runs after one warm-up run of the same shape):
  // one whole window through every layer (kernel/operator set-up, transformed filters, wasm heap growth not timed)
  muq.forward([row24], MUCODEC_MUQ_LAYER).dispose();

  // --- resample alone (48 k → 24 k of one window's mono row)
  {
    const mono = new Float32Array(WINDOW_SAMPLES);
    for (let i = 0; i < mono.length; i++) mono[i] = (l48[i]! + r48[i]!) / 2;
    const ts: number[] = [];
    for (let i = 0; i < runs; i++) { const t0 = performance.now(); resample48kTo24k(mono); ts.push((performance.now() - t0) / 1000); }
    push('audio.resample', 'substage', median(ts), ts);
  }

  // --- MuQ up to hidden state 6, with sub-stages measured inside the same runs
  const inst = instrumentLayers({ MuQEncoder, Conv2dSubsampling, ConformerLayer }, ['features', 'apply']);
  const tot: number[] = [];
  const cpu: number[] = [];
  const feats: number[] = [];
  const front: number[] = [];
  const layer: number[] = [];
  let h6: tf.Tensor3D | null = null;
  try {
    for (let i = 0; i < runs; i++) {
      const before = new Map(inst.report().map((r) => [r.layer, r]));
      const c0 = process.cpuUsage();
      const t0 = performance.now();
      const h = muq.forward([row24], MUCODEC_MUQ_LAYER);
      await h.data();
      tot.push((performance.now() - t0) / 1000);
      const c1 = process.cpuUsage(c0);
      cpu.push((c1.user + c1.system) / 1e6);
      const after = inst.report();
      const d = (k: string): { s: number; calls: number } => {
        const a = after.find((r) => r.layer === k);
        const b = before.get(k);
        return { s: (a?.inclusive_s ?? 0) - (b?.inclusive_s ?? 0), calls: (a?.calls ?? 0) - (b?.calls ?? 0) };
      };
      feats.push(d('MuQEncoder.features').s);
      front.push(d('Conv2dSubsampling.apply').s);
      const cl = d('ConformerLayer.apply');
      layer.push(cl.s / Math.max(1, cl.calls));
      if (h6) h6.dispose();
      h6 = h;
    }
  } finally {
    inst.restore();
  }
  push('muq.features', 'substage', median(feats), feats);
  push('muq.conv_subsampling', 'substage', median(front), front);
  push('muq.conformer_layer', 'substage', median(layer), layer, { note: 'mean of the 6 layers per run; torch_s derived: (34.6 − 0.44 − 19.8) / 6' });
  push('muq.hidden6', 'stage', median(tot), tot, { cpu_s: cpu });

  // --- RVQ codebook search on the hidden state
  {
    const ts: number[] = [];
    for (let i = 0; i < runs; i++) {
      const t0 = performance.now();
      const codes = await enc.rvq.codesChannelsLast(h6!);
      ts.push((performance.now() - t0) / 1000);
      if (codes.length !== 1024) throw new Error(`rvq gave ${codes.length} codes`);
    }
    push('rvq.quantize', 'substage', median(ts), ts);
  }
  h6!.dispose();

  // --- profile: per kernel and per layer type, one more window
  if (opts.profile) {
    const li = instrumentLayers(LAYER_CLASSES, ['features', 'apply', 'forward']);
    let layers: ReturnType<typeof li.report> = [];
    const t0 = performance.now();
    const prof = await profileKernels(async () => {
      const h = muq.forward([row24], MUCODEC_MUQ_LAYER);
      await h.data();
      h.dispose();
    }).finally(() => { layers = li.report(); li.restore(); });
    const wall = (performance.now() - t0) / 1000;
    logProfile(log, `one window, threads ${threads}`, wall, prof, layers);
    opts.onProfile?.({ stage: 'muq.hidden6', threads, wall_s: wall, kernels: prof.kernels, by_shape: prof.byShape.slice(0, 40), layers });
  }

  // --- ceilings: the dominant shapes (res0.conv2: 3×3 512→512 at 2048 × 64; conformer FFN matMul)
  if (opts.ceilings !== false) {
    const specs = [
      { of: 'muq.conv_subsampling', spec: conv2dCeiling(256, 64, 512, 512) },
      { of: 'muq.conv_subsampling', spec: matMulCeiling(256 * 64, 9 * 512, 512) },
      { of: 'muq.conformer_layer', spec: matMulCeiling(1024, 1024, 4096) },
      // the packed GEMM the conformer linears use (src/simd/gemm.ts), FMA and SIMD128
      ...gemmCeilings(1024, 1024, 4096).map((spec) => ({ of: 'muq.conformer_layer', spec })),
      // the wasm FMA peak itself (bench/peak.ts)
      ...(tf.getBackend() === 'wasm' ? [{ of: 'muq.hidden6', spec: fmaPeakCeiling() }] : []),
    ];
    for (const { of, spec } of specs) {
      const c = await measureCeiling(spec, runs);
      push(`${of}.ceiling`, 'ceiling', c.s, c.runs, {
        shape: spec.label, gflop: spec.gflop, torch_s: null, of_stage: of,
        note: `best of ${c.runs.length}: ${c.gflopsPerS.toFixed(1)} GFLOP/s`,
      });
    }
  }

  // --- the whole encode of a 3-minute stereo song (5 windows), codes written to a .mcodes file
  if (opts.song !== false) {
    const L = 3 * 60 * 48000;
    const song = syntheticStereo(L, 48000, seed + 2);
    const dir = mkdtempSync(join(tmpdir(), 'mucodec-bench-'));
    const ts: number[] = [];
    const cs: number[] = [];
    try {
      for (let i = 0; i < Math.max(1, opts.songRuns ?? 1); i++) {
        const c0 = process.cpuUsage();
        const t0 = performance.now();
        // MuCodec.encode: file2code input handling + sound2code, then the .mcodes file
        const codes = await enc.sound2code(prepareStereo48k({ sampleRate: 48000, channels: song }), {
          onProgress: (p) => { if (p.window) log(`  song: window ${p.window}/${p.windows} at ${((performance.now() - t0) / 1000).toFixed(1)} s`); },
        });
        const meta: CodesMeta = {
          sampleRate: 48000, originalLength: L, channels: 2, frameRate: FRAME_RATE, codebookSize: cfg.rvq_muencoder_emb.codebook_size,
          muqLayer: cfg.layer_num, nCodebooks: cfg.rvq_muencoder_emb.n_codebooks,
        };
        await writeCodesFile(join(dir, 'song.mcodes'), { ...meta, codes });
        ts.push((performance.now() - t0) / 1000);
        const c1 = process.cpuUsage(c0);
        cs.push((c1.user + c1.system) / 1e6);
        if (codes.length !== 4501) throw new Error(`song gave ${codes.length} codes, expected 4501`);
        if (i === 0) log(`  song: ${codes.length} codes, ${encodeCodesFile({ ...meta, codes }).length} bytes`);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    const s = median(ts);
    push('encode.song_3min', 'stage', s, ts, { cpu_s: cs, note: `real-time factor ${(s / 180).toFixed(2)}; torch_s ≈ 205 s (issue 8: 5 windows)` });
  }
  enc.dispose();
  if (tf.memory().numTensors > 0) log(`(tensors still allocated after the encode bench: ${tf.memory().numTensors})`);
  return rows;
}
