/**
 * Benchmark of the synthesis half at the REAL widths (random weights of the real shapes from a seeded
 * generator; timings do not depend on the values): AudioLDM-48k VAE decoder (ch 128, ch_mult [1, 2, 4, 8])
 * and HiFi-GAN Generator_old (upsample_initial_channel 1536). Prints seconds, GFLOP/s and torch_s / ours_s
 * beside the PyTorch-CPU baselines of reference/BASELINES.md (same machine kind, 2 threads).
 *
 *   node dist/bench/vae_vocoder.js [--full] [--backend wasm] [vae] [vocoder] [tiny] [ceiling]
 *
 * Default rows: vae.decode on 128 latent frames, hifigan.generate on 1 s (100 frames). --full adds 512 latent
 * frames (one channel of a 40.96 s window) and 10 s of mel (1000 frames). `tiny` (run directly only): the audio
 * phase of ONE real-length window with the tiny test model (weights/tiny: latent (1, 32, 512, 32) → 2 × 4096 mel
 * frames → vocoder_chunk_infer), the cost the codec tests pay per window. `ceiling`: plain tf.conv2d / tf.conv1d on
 * the stages' dominant shapes in the same process, so GFLOP/s can be read against what the backend does at all.
 * Every line also gives the process CPU seconds and the load average (the machine is shared).
 */
import * as tf from '@tensorflow/tfjs-core';
import { existsSync, readFileSync } from 'node:fs';
import { vaeExpected } from '../convert/manifest.js';
import { readSafetensors } from '../convert/safetensors.js';
import { LatentsToAudio } from '../src/synthesis.js';
import { initBackend } from '../src/backend.js';
import type { HostTensor } from '../src/hosttensor.js';
import { Params } from '../src/params.js';
import { drainStepsAsync } from '../src/steps.js';
import { AUDIOLDM_48K_VAE, AutoencoderKL } from '../src/vae/autoencoder.js';
import { HIFIGAN_48K, HifiGanGenerator } from '../src/vocoder/hifigan.js';

export interface BenchRow {
  stage: string;
  shape: string;
  gflop: number;
  ours_s: number;
  torch_s: number;
  ratio: number;
  backend: string;
}

export interface BenchVaeVocoderOptions {
  /** tfjs backend (default: MUCODEC_BACKEND or auto) */
  backend?: string;
  /** also run the 512-frame decode and the 10 s vocoder rows */
  full?: boolean;
  /** which parts to run (default vae and vocoder; 'tiny' and 'ceiling' only when asked) */
  parts?: Array<'vae' | 'vocoder' | 'tiny' | 'ceiling'>;
  /** the frame counts to time instead (vae: latent frames, vocoder: mel frames; e.g. small ones for a smoke run on a slow
   *  backend); the PyTorch time is then scaled by frames from the nearest baseline */
  frames?: number[];
  seed?: number;
  log?: (line: string) => void;
}

/** reference/BASELINES.md, synthesis table (torch 1.13.1, 2 threads, median of 3) */
const BASELINE = {
  vae128: { shape: '(1,16,128,32) → (1,1,1024,256)', gflop: 3481, torch_s: 40.7 },
  vae512: { shape: '(1,16,512,32) → (1,1,4096,256)', gflop: 14748, torch_s: 214 },
  voc100: { shape: '(1,256,100) → (1,1,48016)', gflop: 692, torch_s: 4.9 },
  voc1000: { shape: '(1,256,1000) → (1,1,480016)', gflop: 6916, torch_s: 133 },
};

/** fast seeded uniform fill, scaled to a given standard deviation */
function filler(seed: number): (n: number, std: number, mean?: number) => Float32Array {
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

/** random parameters with the real names and shapes (first_stage_model subtree), only `keep` prefixes */
export function randomFirstStage(keep: string[], seed: number): Params {
  const fill = filler(seed);
  const map = new Map<string, HostTensor>();
  const cfg = { ...AUDIOLDM_48K_VAE, vocoder: HIFIGAN_48K } as unknown as Parameters<typeof vaeExpected>[0];
  for (const t of vaeExpected(cfg)) {
    if (!keep.some((k) => t.name.startsWith(k))) continue;
    const n = t.shape.reduce((a, b) => a * b, 1);
    let data: Float32Array;
    if (/norm[^.]*\.weight$/.test(t.name)) data = fill(n, 0.1, 1);
    else if (t.name.endsWith('.bias')) data = fill(n, 0.02);
    else {
      // fan-in scaled (ConvTranspose1d weights are (in, out, k): fan-in = in·k / stride ≈ in)
      const fanIn = t.name.includes('vocoder.ups.') ? t.shape[0]! : t.shape.slice(1).reduce((a, b) => a * b, 1);
      data = fill(n, 1 / Math.sqrt(fanIn));
    }
    map.set(`first_stage_model.${t.name}`, { dtype: 'float32', shape: t.shape, data });
  }
  map.set('scale_factor', { dtype: 'float32', shape: [], data: Float32Array.of(0.5) });
  return new Params(map, 'first_stage_model.', 'random real-shape weights');
}

const loadStr = (): string => {
  try { return readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' '); } catch { return '?'; }
};

/** run fn, return wall and process-CPU seconds */
function timed<T>(fn: () => T): { value: T; s: number; cpu: number } {
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  const value = fn();
  const s = (performance.now() - t0) / 1000;
  const c = process.cpuUsage(c0);
  return { value, s, cpu: (c.user + c.system) / 1e6 };
}

/** timed for a promise (the stage's step generator read back with `await data()`: what every backend runs, webgpu too) */
async function timedAsync<T>(fn: () => Promise<T>): Promise<{ value: T; s: number; cpu: number }> {
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  const value = await fn();
  const s = (performance.now() - t0) / 1000;
  const c = process.cpuUsage(c0);
  return { value, s, cpu: (c.user + c.system) / 1e6 };
}

/** a baseline row for another frame count: GFLOP and the PyTorch time scaled by frames from `b` (`per` frames) */
function scaled(b: { shape: string; gflop: number; torch_s: number }, per: number, frames: number, shape: string): { shape: string; gflop: number; torch_s: number } {
  return frames === per ? b : { shape, gflop: b.gflop * frames / per, torch_s: b.torch_s * frames / per };
}

function wasmHeapBytes(): number | null {
  const b = tf.backend() as unknown as { wasm?: { HEAPU8?: Uint8Array } };
  return b.wasm?.HEAPU8?.length ?? null;
}

export async function benchVaeVocoder(opts: BenchVaeVocoderOptions = {}): Promise<BenchRow[]> {
  const log = opts.log ?? console.log;
  const rep = await initBackend(opts.backend);
  const backend = rep.chosen;
  const seed = opts.seed ?? 1234;
  const parts = opts.parts ?? ['vae', 'vocoder'];
  const rows: BenchRow[] = [];
  const fill = filler(seed + 1);
  const row = (stage: string, b: { shape: string; gflop: number; torch_s: number }, s: number, cpu: number): void => {
    const r: BenchRow = { stage, shape: b.shape, gflop: b.gflop, ours_s: s, torch_s: b.torch_s, ratio: b.torch_s / s, backend };
    rows.push(r);
    const heap = wasmHeapBytes();
    log(`${stage.padEnd(17)} ${b.shape.padEnd(32)} ${s.toFixed(1).padStart(7)} s (cpu ${cpu.toFixed(1)} s)  ${(b.gflop / s).toFixed(1).padStart(6)} GFLOP/s  ` +
      `torch ${b.torch_s} s  ratio ${r.ratio.toFixed(2)}  [${backend}${heap ? `, wasm heap ${(heap / 2 ** 30).toFixed(2)} GiB` : ''}, tensors ${tf.memory().numTensors}, load ${loadStr()}]`);
  };

  if (parts.includes('vae')) {
    const p = randomFirstStage(['decoder.', 'post_quant_conv.'], seed);
    const vae = new AutoencoderKL(p, AUDIOLDM_48K_VAE);
    try {
      void vae.decoder; // upload the weights outside the timed region
      // warm-up (kernel setup)
      await drainStepsAsync(vae.decodeSteps({ dtype: 'float32', shape: [1, 16, 4, 32], data: fill(16 * 4 * 32, 1) }));
      const frames = opts.frames ?? (opts.full ? [128, 512] : [128]);
      for (const T of frames) {
        const z: HostTensor = { dtype: 'float32', shape: [1, 16, T, 32], data: fill(16 * T * 32, 1) };
        const { value: mel, s, cpu } = await timedAsync(async () => (await drainStepsAsync(vae.decodeSteps(z)))!);
        if (mel.shape[2] !== 8 * T || mel.shape[3] !== 256) throw new Error(`vae.decode gave ${mel.shape}`);
        row('vae.decode', T === 512 ? BASELINE.vae512 : scaled(BASELINE.vae128, 128, T, `(1,16,${T},32) → (1,1,${8 * T},256)`), s, cpu);
      }
    } finally {
      vae.dispose();
    }
  }

  if (parts.includes('vocoder')) {
    const p = randomFirstStage(['vocoder.'], seed + 7);
    const voc = new HifiGanGenerator(p.sub('vocoder.'), HIFIGAN_48K);
    try {
      await drainStepsAsync(voc.generateSteps({ dtype: 'float32', shape: [1, 256, 4], data: fill(256 * 4, 1, -5) })); // warm-up
      const frames = opts.frames ?? (opts.full ? [100, 1000] : [100]);
      for (const F of frames) {
        const mel: HostTensor = { dtype: 'float32', shape: [1, 256, F], data: fill(256 * F, 2, -5) };
        const { value: y, s, cpu } = await timedAsync(() => drainStepsAsync(voc.generateSteps(mel)));
        if (y.shape[1] !== F * 480 + 16) throw new Error(`hifigan gave ${y.shape}`);
        row('hifigan.generate', F === 1000 ? BASELINE.voc1000 : scaled(BASELINE.voc100, 100, F, `(1,256,${F}) → (1,1,${F * 480 + 16})`), s, cpu);
      }
    } finally {
      voc.dispose();
    }
  }
  if (parts.includes('tiny')) await benchTinyWindow(log);
  if (parts.includes('ceiling')) benchCeilingsHere(log);
  return rows;
}

/** plain tfjs convs on the dominant shapes (same process, same load): what the backend reaches without our kernels */
function benchCeilingsHere(log: (l: string) => void): void {
  const fill = filler(99);
  const best = (fn: () => tf.Tensor, runs = 3): number => {
    fn().dispose();
    let b = Infinity;
    for (let i = 0; i < runs; i++) { const t = timed(() => { const y = fn(); y.dataSync(); y.dispose(); }); b = Math.min(b, t.s); }
    return b;
  };
  for (const [h, w, c] of [[256, 256, 128], [64, 64, 512]] as const) {
    const x = tf.tensor4d(fill(h * w * c, 1), [1, h, w, c]), k = tf.tensor4d(fill(9 * c * c, 1 / Math.sqrt(9 * c)), [3, 3, c, c]);
    const gf = (2 * 9 * h * w * c * c) / 1e9;
    const s = best(() => tf.conv2d(x, k, 1, 'same'));
    log(`ceiling conv2d 3×3 ${c}→${c} on ${h}×${w}: ${(gf / s).toFixed(1)} GFLOP/s  [load ${loadStr()}]`);
    x.dispose(); k.dispose();
  }
  for (const [len, c, kk] of [[600, 768, 11], [12000, 192, 11]] as const) {
    const x = tf.tensor3d(fill(len * c, 1), [1, len, c]), k = tf.tensor3d(fill(kk * c * c, 1 / Math.sqrt(kk * c)), [kk, c, c]);
    const gf = (2 * kk * len * c * c) / 1e9;
    const s = best(() => tf.conv1d(x, k, 1, 'same'));
    log(`ceiling conv1d k${kk} ${c}→${c} on ${len}: ${(gf / s).toFixed(1)} GFLOP/s  [load ${loadStr()}]`);
    x.dispose(); k.dispose();
  }
}

/**
 * The audio phase of one real-length window with the tiny model (what the codec tests pay per window): VAE decode of
 * both stereo rows, then vocoder_chunk_infer over 4096 frames per row. Needs weights/tiny (vae.safetensors).
 */
async function benchTinyWindow(log: (l: string) => void): Promise<void> {
  const dir = 'weights/tiny';
  if (!existsSync(`${dir}/vae.safetensors`)) { log(`tiny window: ${dir}/vae.safetensors not found (run from the repository root)`); return; }
  const cfg = (JSON.parse(readFileSync(`${dir}/config.json`, 'utf8')) as { model: { vae: { ddconfig: never; embed_dim: number; vocoder: never } } }).model.vae;
  const pv = new Params(await readSafetensors(`${dir}/vae.safetensors`), '', dir);
  const vae = new AutoencoderKL(pv.sub('first_stage_model.'), { ddconfig: cfg.ddconfig, embed_dim: cfg.embed_dim });
  const voc = new HifiGanGenerator(pv.sub('first_stage_model.vocoder.'), cfg.vocoder);
  try {
    const T = 512;
    const l2a = new LatentsToAudio(vae, voc, { residency: 'both' });
    const latent: HostTensor = { dtype: 'float32', shape: [1, 32, T, 32], data: filler(5)(32 * T * 32, 1) };
    const a = timed(() => l2a.decodeMels(latent));
    const b = timed(() => l2a.vocodeMels(a.value));
    log(`tiny window (1,32,${T},32) → 2 × ${b.value[0]!.length} samples: VAE ${a.s.toFixed(1)} s (cpu ${a.cpu.toFixed(1)}), ` +
      `vocoder ${b.s.toFixed(1)} s (cpu ${b.cpu.toFixed(1)}), total ${(a.s + b.s).toFixed(1)} s  [load ${loadStr()}]`);
  } finally {
    vae.dispose();
    voc.dispose();
  }
}

// run directly: node dist/bench/vae_vocoder.js [--full] [--backend name] [vae] [vocoder]
const isMain = /[\\/]vae_vocoder\.(js|ts)$/.test(process.argv[1] ?? '') && import.meta.url.endsWith(process.argv[1]!.split(/[\\/]/).pop()!);
if (isMain) {
  const args = process.argv.slice(2);
  const bi = args.indexOf('--backend');
  const parts = args.filter((a) => ['vae', 'vocoder', 'tiny', 'ceiling'].includes(a)) as Array<'vae' | 'vocoder' | 'tiny' | 'ceiling'>;
  const rows = await benchVaeVocoder({
    full: args.includes('--full'), backend: bi >= 0 ? args[bi + 1] : undefined, parts: parts.length ? parts : undefined,
  });
  console.log(JSON.stringify(rows));
}
