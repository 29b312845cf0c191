/**
 * Shared pieces of the benchmarks (bench/run.ts drives them): the row format of bench/results/latest.json, the
 * PyTorch-CPU baselines, timing (median of N), machine/load information, seeded fillers, ceilings (the best plain
 * matMul / conv2d throughput the backend reaches on a stage's dominant shape) and the profilers (time per tfjs
 * kernel via tf.profile, time per layer type via wrapped class methods).
 */
import * as tf from '@tensorflow/tfjs-core';
import '../src/chained_ops.js';
import * as os from 'node:os';
import { readFileSync } from 'node:fs';
import type { Readable } from 'node:stream';

/** Call `f` with each complete line a child's output stream writes (the tagged-row protocol of the bench children). */
export function onLines(stream: Readable, f: (line: string) => void): void {
  let buf = '';
  stream.setEncoding('utf8');
  stream.on('data', (d: string) => {
    buf += d;
    let nl: number;
    while ((nl = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, nl);
      buf = buf.slice(nl + 1);
      f(line);
    }
  });
}

/** One row of bench/results/latest.json. */
export interface BenchRow {
  stage: string;
  shape: string;
  /** analytic GFLOP (2 × multiply-adds) of the stage */
  gflop: number;
  /** median seconds of `runs` */
  ours_s: number;
  /** PyTorch-CPU seconds for the same work (null where no baseline exists, e.g. ceilings) */
  torch_s: number | null;
  /** torch_s / ours_s (> 1: we are faster) */
  ratio: number | null;
  threads: number;
  backend: string;
  /** peak resident set of the benchmark process when the row was taken (MB) */
  peak_rss_mb: number;
  date: string;
  machine: string;
  /** bench group that produced the row (encode, dit, vae, vocoder) */
  group?: string;
  /** 'stage' (a target of issue 8), 'substage', or 'ceiling' (a plain op on the stage's dominant shape) */
  kind?: 'stage' | 'substage' | 'ceiling';
  /** every timed run (seconds) */
  runs?: number[];
  /** CPU seconds of the whole process (all threads) per timed run: ≈ threads × wall when the cores were free */
  cpu_s?: number[];
  gflops_per_s?: number;
  /** 1/5/15-minute load averages when the row was measured (other jobs on the machine skew timings) */
  load?: number[];
  /** for ceilings: the stage whose dominant shape this is */
  of_stage?: string;
  note?: string;
  /** where torch_s comes from: timed in this run (bench/torch/, `--torch`) or the table of bench/common.ts */
  torch_source?: 'same-run' | 'BASELINES.md';
  /** same-run torch seconds per OpenBLAS kernel setting (OPENBLAS_CORETYPE as set / SKYLAKEX) */
  torch_kernels?: Record<string, { s: number; runs: number[]; openblas_core: string | null; load: number[] }>;
  /** which upstream module (or plain-torch restatement) the torch side ran */
  torch_module?: string;
  torch_info?: string;
}

/** What the bench functions of the other families return (bench/dit.ts, bench/vae_vocoder.ts). */
export interface PlainRow {
  stage: string;
  shape: string;
  gflop: number;
  ours_s: number;
  torch_s: number;
  ratio: number;
  backend: string;
}

/**
 * PyTorch 1.13.1 CPU baselines on this machine kind (2 vCPUs, torch.set_num_threads(2), float32, random weights of
 * the real shapes, median of 3 after a warm-up), copied from ../shared/reference/BASELINES.md (encode, synthesis and
 * decode-latents tables) and ../shared/reference/encoder/NOTES.md §6; `derived` ones are computed from those numbers.
 */
export const TORCH_BASELINES = {
  'audio.resample': { shape: '(1, 1966560) → (1, 983280)', gflop: 0.055, torch_s: 0.010 },
  'muq.features': { shape: '(1, 983040) → (1, 128, 4096)', gflop: 1.55, torch_s: 0.44 },
  'muq.conv_subsampling': { shape: '(1, 128, 4096) → (1, 1024, 1024)', gflop: 1119.1, torch_s: 19.8 },
  /** derived: (MuQ to hidden state 6 − features − conv_subsampling) / 6 layers = (34.6 − 0.44 − 19.8) / 6 */
  'muq.conformer_layer': { shape: '(1, 1024, 1024)', gflop: 53.75, torch_s: (34.6 - 0.44 - 19.8) / 6, derived: true },
  'muq.hidden6': { shape: 'window (1, 983280) → (1, 1024, 1024)', gflop: 1443.2, torch_s: 34.6 },
  'muq.full': { shape: 'window → 13 hidden states', gflop: 1774.3, torch_s: 41.0 },
  'rvq.quantize': { shape: '(1, 1024, 1024) → (1, 1, 1024)', gflop: 1.21, torch_s: 1.23 },
  /** issue 8 target table: whole encode of a 3-minute stereo song, 5 windows (≈ 5 × 41 s) */
  'encode.song_3min': { shape: '(2, 8640000) @ 48 kHz → 4501 codes', gflop: 5 * (1443.2 + 1.55 + 1.21 + 0.055), torch_s: 205, derived: true },
  'dit.block': { shape: '(1, 4096, 1584)', gflop: 353, torch_s: 19.6 },
  'vae.decode': { shape: '(1,16,128,32) → (1,1,1024,256)', gflop: 3481, torch_s: 40.7 },
  'hifigan.generate': { shape: '(1,256,100) → (1,1,48016)', gflop: 692, torch_s: 4.9 },
} as const;

/** BASELINES.md "Raw ops on this machine": torch, 2 threads, GFLOP/s */
export const TORCH_RAW_OPS_GFLOPS = {
  'matMul 4096×1584 @ 1584×1584': 112,
  'matMul 4096×1584 @ 1584×6336': 136,
  'conv2d 3×3 128→128 on 512×32': 360,
  'conv1d k7 512→512 on 4096': 358,
} as const;

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const n = s.length;
  if (!n) return NaN;
  return n % 2 ? s[(n - 1) / 2]! : (s[n / 2 - 1]! + s[n / 2]!) / 2;
}

export function loadAvg(): number[] {
  try {
    return readFileSync('/proc/loadavg', 'utf8').trim().split(/\s+/).slice(0, 3).map(Number);
  } catch {
    return os.loadavg().map((x) => Math.round(x * 100) / 100);
  }
}

export function machineInfo(): string {
  const cpus = os.cpus();
  const model = (cpus[0]?.model ?? 'unknown CPU').replace(/\s+/g, ' ').trim();
  return `${model}, ${cpus.length} vCPU, ${Math.round(os.totalmem() / 2 ** 30)} GiB, ${os.platform()} ${os.release()}, node ${process.version}`;
}

/** peak RSS of this process so far (MB) */
export function peakRssMb(): number {
  return Math.round(process.resourceUsage().maxRSS / 1024);
}

/** Time `fn` `runs` times (after `warmup` untimed calls); fn returns seconds or is timed around. */
export async function timeRuns(fn: () => unknown | Promise<unknown>, runs: number, warmup = 0): Promise<{ median: number; runs: number[] }> {
  for (let i = 0; i < warmup; i++) await fn();
  const out: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now();
    await fn();
    out.push((performance.now() - t0) / 1000);
  }
  return { median: median(out), runs: out };
}

/** fast seeded uniform fill with a given standard deviation and mean (xorshift32) */
export function filler(seed: number): (n: number, std: number, mean?: number) => Float32Array {
  let s = (seed >>> 0) || 1;
  return (n, std, mean = 0) => {
    const a = std * Math.sqrt(3);
    const out = new Float32Array(n);
    for (let i = 0; i < n; i++) {
      s ^= s << 13; s ^= s >>> 17; s ^= s << 5;
      out[i] = mean + a * (((s >>> 0) / 4294967296) * 2 - 1);
    }
    return out;
  };
}

export function wasmHeapBytes(): number | null {
  const b = tf.backend() as unknown as { wasm?: { HEAPU8?: Uint8Array } };
  return b.wasm?.HEAPU8?.length ?? null;
}

// ---------------------------------------------------------------------------------------------------------------
// Ceilings: plain ops on a stage's dominant shape

export interface CeilingSpec {
  /** row label, e.g. 'conv2d 3×3 512→512 on (1, 256, 64, 512)' */
  label: string;
  gflop: number;
  /** builds inputs, returns the op to time and a disposer */
  make: () => { run: () => tf.Tensor; dispose: () => void };
}

export function matMulCeiling(m: number, k: number, n: number, seed = 7): CeilingSpec {
  return {
    label: `matMul ${m}×${k} @ ${k}×${n}`,
    gflop: (2 * m * k * n) / 1e9,
    make: () => {
      const f = filler(seed);
      const a = tf.tensor2d(f(m * k, 1), [m, k]);
      const b = tf.tensor2d(f(k * n, 1 / Math.sqrt(k)), [k, n]);
      return { run: () => tf.matMul(a, b), dispose: () => { a.dispose(); b.dispose(); } };
    },
  };
}

/** conv2d (NHWC, 'same' padding, stride 1) of a kh×kw kernel, cin → cout, on (1, h, w, cin) */
export function conv2dCeiling(h: number, w: number, cin: number, cout: number, kh = 3, kw = 3, seed = 9): CeilingSpec {
  return {
    label: `conv2d ${kh}×${kw} ${cin}→${cout} on (1, ${h}, ${w}, ${cin})`,
    gflop: (2 * h * w * cin * cout * kh * kw) / 1e9,
    make: () => {
      const f = filler(seed);
      const x = tf.tensor4d(f(h * w * cin, 1), [1, h, w, cin]);
      const k = tf.tensor4d(f(kh * kw * cin * cout, 1 / Math.sqrt(kh * kw * cin)), [kh, kw, cin, cout]);
      return { run: () => tf.conv2d(x, k, 1, 'same'), dispose: () => { x.dispose(); k.dispose(); } };
    },
  };
}

/** conv1d (NWC, 'same', stride 1) k taps, cin → cout on (1, len, cin) */
export function conv1dCeiling(len: number, cin: number, cout: number, k: number, seed = 11): CeilingSpec {
  return {
    label: `conv1d k${k} ${cin}→${cout} on (1, ${len}, ${cin})`,
    gflop: (2 * len * cin * cout * k) / 1e9,
    make: () => {
      const f = filler(seed);
      const x = tf.tensor3d(f(len * cin, 1), [1, len, cin]);
      const w = tf.tensor3d(f(k * cin * cout, 1 / Math.sqrt(k * cin)), [k, cin, cout]);
      return { run: () => tf.conv1d(x, w, 1, 'same'), dispose: () => { x.dispose(); w.dispose(); } };
    },
  };
}

/** Best (minimum) time of `runs` runs after one warm-up → seconds and GFLOP/s. */
export async function measureCeiling(spec: CeilingSpec, runs: number): Promise<{ s: number; gflopsPerS: number; runs: number[] }> {
  const { run, dispose } = spec.make();
  try {
    const warm = run();
    await warm.data();
    warm.dispose();
    const out: number[] = [];
    for (let i = 0; i < Math.max(1, runs); i++) {
      const t0 = performance.now();
      const y = run();
      await y.data();
      out.push((performance.now() - t0) / 1000);
      y.dispose();
    }
    const s = Math.min(...out);
    return { s, gflopsPerS: spec.gflop / s, runs: out };
  } finally {
    dispose();
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Profilers

export interface KernelStat { name: string; ms: number; count: number; share: number }

/** Time per tfjs kernel (tf.profile; the wasm backend times each synchronous kernel call). */
export async function profileKernels<T>(fn: () => T | Promise<T>): Promise<{ result: T; kernels: KernelStat[]; totalMs: number; byShape: Array<KernelStat & { shapes: string }> }> {
  let result: T | undefined;
  const info = await tf.profile(async () => {
    result = await fn();
    return [] as unknown as tf.Tensor;
  });
  const by = new Map<string, { ms: number; count: number }>();
  const byShape = new Map<string, { name: string; shapes: string; ms: number; count: number }>();
  let total = 0;
  for (const k of info.kernels) {
    // '<op>__op' records are op scopes around the real kernel (fused ops): counting them would time it twice
    if (k.name.endsWith('__op')) continue;
    const ms = Number(k.kernelTimeMs) || 0;
    total += ms;
    const e = by.get(k.name) ?? { ms: 0, count: 0 };
    e.ms += ms; e.count++;
    by.set(k.name, e);
    const shapes = `${k.inputShapes.map((s) => (s ? `(${s.join(',')})` : '-')).join(' ')} → ${k.outputShapes.map((s) => `(${s.join(',')})`).join(' ')}`;
    const key = `${k.name} ${shapes}`;
    const f = byShape.get(key) ?? { name: k.name, shapes, ms: 0, count: 0 };
    f.ms += ms; f.count++;
    byShape.set(key, f);
  }
  const kernels = [...by.entries()].map(([name, v]) => ({ name, ...v, share: v.ms / total })).sort((a, b) => b.ms - a.ms);
  const shapes = [...byShape.values()].map((v) => ({ ...v, share: v.ms / total })).sort((a, b) => b.ms - a.ms);
  return { result: result as T, kernels, totalMs: total, byShape: shapes };
}

interface Proto { prototype: object }

/**
 * Wrap `methods` of the given classes to accumulate wall time per class (inclusive, and self = minus time spent in
 * nested wrapped calls). Synchronous tfjs-wasm kernels make wall time the cost. `restore()` unwraps.
 */
export function instrumentLayers(classes: Record<string, Proto>, methods: string[] = ['apply', 'forward']): {
  report: () => Array<{ layer: string; calls: number; inclusive_s: number; self_s: number }>;
  restore: () => void;
} {
  const stats = new Map<string, { calls: number; incl: number; self: number }>();
  const stack: number[] = [];
  const undo: Array<() => void> = [];
  for (const [name, cls] of Object.entries(classes)) {
    const proto = cls.prototype as Record<string, unknown>;
    for (const m of methods) {
      const orig = proto[m];
      if (typeof orig !== 'function' || !Object.prototype.hasOwnProperty.call(proto, m)) continue;
      const key = `${name}.${m}`;
      const wrapped = function (this: unknown, ...args: unknown[]): unknown {
        const t0 = performance.now();
        stack.push(0);
        try {
          return (orig as (...a: unknown[]) => unknown).apply(this, args);
        } finally {
          const dt = performance.now() - t0;
          const nested = stack.pop()!;
          if (stack.length) stack[stack.length - 1]! += dt;
          const s = stats.get(key) ?? { calls: 0, incl: 0, self: 0 };
          s.calls++; s.incl += dt; s.self += dt - nested;
          stats.set(key, s);
        }
      };
      proto[m] = wrapped;
      undo.push(() => { proto[m] = orig; });
    }
  }
  return {
    report: () => [...stats.entries()].map(([layer, s]) => ({ layer, calls: s.calls, inclusive_s: s.incl / 1000, self_s: s.self / 1000 }))
      .sort((a, b) => b.self_s - a.self_s),
    restore: () => { for (const u of undo.reverse()) u(); },
  };
}

/** The --profile tables on the log: per kernel, per kernel and shape, per layer type (self / inclusive). */
export function logProfile(
  log: (l: string) => void, title: string, wall: number,
  prof: { kernels: KernelStat[]; totalMs: number; byShape: Array<KernelStat & { shapes: string }> },
  layers: Array<{ layer: string; calls: number; inclusive_s: number; self_s: number }>,
): void {
  log(`\nprofile (${title}): wall ${wall.toFixed(1)} s, kernels ${(prof.totalMs / 1000).toFixed(1)} s`);
  log('  per kernel:');
  for (const k of prof.kernels.slice(0, 20)) log(`    ${k.name.padEnd(22)} ${(k.ms / 1000).toFixed(2).padStart(8)} s  ${(100 * k.share).toFixed(1).padStart(5)} %  ×${k.count}`);
  log('  per kernel and shape (top 15):');
  for (const k of prof.byShape.slice(0, 15)) log(`    ${(k.ms / 1000).toFixed(2).padStart(8)} s  ${(100 * k.share).toFixed(1).padStart(5)} %  ×${String(k.count).padEnd(4)} ${k.name} ${k.shapes}`);
  log('  per layer type (self / inclusive):');
  for (const l of layers) log(`    ${l.layer.padEnd(28)} ${l.self_s.toFixed(2).padStart(8)} s ${l.inclusive_s.toFixed(2).padStart(8)} s  ×${l.calls}`);
}

export function fmtRow(r: BenchRow): string {
  const gfs = r.gflop > 0 && r.ours_s > 0 ? `${(r.gflop / r.ours_s).toFixed(1).padStart(6)} GFLOP/s` : ''.padStart(14);
  const tor = r.torch_s != null ? `torch ${r.torch_s.toFixed(2)} s  ratio ${r.ratio!.toFixed(2)}` : '';
  return `${r.stage.padEnd(24)} ${r.shape.padEnd(40)} ${r.gflop.toFixed(1).padStart(8)} GFLOP ${r.ours_s.toFixed(3).padStart(8)} s ${gfs}  ${tor}` +
    `  [threads ${r.threads}, ${r.backend}, rss ${r.peak_rss_mb} MB, load ${(r.load ?? []).join(' ')}` +
    `${r.cpu_s ? `, cpu ${r.cpu_s.map((c) => c.toFixed(0)).join('/')} s` : ''}]`;
}
