/**
 * Benchmark of the synthesis half at the REAL widths (random weights of the real shapes from a seeded
 * generator; timings do not depend on the values): AudioLDM-48k VAE decoder (ch 128, ch_mult [1, 2, 4, 8])
 * and HiFi-GAN Generator_old (upsample_initial_channel 1536). Prints seconds, GFLOP/s and torch_s / ours_s
 * beside the PyTorch-CPU baselines of reference/BASELINES.md (same machine kind, 2 threads).
 *
 *   node dist/bench/vae_vocoder.js [--full] [--backend wasm]
 *
 * Default rows: vae.decode on 128 latent frames, hifigan.generate on 1 s (100 frames). --full adds 512 latent
 * frames (one channel of a 40.96 s window) and 10 s of mel (1000 frames).
 */
import * as tf from '@tensorflow/tfjs-core';
import { vaeExpected } from '../convert/manifest.js';
import { initBackend } from '../src/backend.js';
import type { HostTensor } from '../src/hosttensor.js';
import { Params } from '../src/params.js';
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
  /** which parts to run (default both) */
  parts?: Array<'vae' | 'vocoder'>;
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
  const row = (stage: string, b: { shape: string; gflop: number; torch_s: number }, s: number): void => {
    const r: BenchRow = { stage, shape: b.shape, gflop: b.gflop, ours_s: s, torch_s: b.torch_s, ratio: b.torch_s / s, backend };
    rows.push(r);
    const heap = wasmHeapBytes();
    log(`${stage.padEnd(17)} ${b.shape.padEnd(32)} ${s.toFixed(1).padStart(7)} s  ${(b.gflop / s).toFixed(1).padStart(6)} GFLOP/s  ` +
      `torch ${b.torch_s} s  ratio ${r.ratio.toFixed(2)}  [${backend}${heap ? `, wasm heap ${(heap / 2 ** 30).toFixed(2)} GiB` : ''}, tensors ${tf.memory().numTensors}]`);
  };

  if (parts.includes('vae')) {
    const p = randomFirstStage(['decoder.', 'post_quant_conv.'], seed);
    const vae = new AutoencoderKL(p, AUDIOLDM_48K_VAE);
    try {
      void vae.decoder; // upload the weights outside the timed region
      vae.decode({ dtype: 'float32', shape: [1, 16, 4, 32], data: fill(16 * 4 * 32, 1) }); // warm-up (kernel setup)
      const frames = opts.full ? [128, 512] : [128];
      for (const T of frames) {
        const z: HostTensor = { dtype: 'float32', shape: [1, 16, T, 32], data: fill(16 * T * 32, 1) };
        const t0 = performance.now();
        const mel = vae.decode(z);
        const s = (performance.now() - t0) / 1000;
        if (mel.shape[2] !== 8 * T || mel.shape[3] !== 256) throw new Error(`vae.decode gave ${mel.shape}`);
        row('vae.decode', T === 128 ? BASELINE.vae128 : BASELINE.vae512, s);
      }
    } finally {
      vae.dispose();
    }
  }

  if (parts.includes('vocoder')) {
    const p = randomFirstStage(['vocoder.'], seed + 7);
    const voc = new HifiGanGenerator(p.sub('vocoder.'), HIFIGAN_48K);
    try {
      voc.generate({ dtype: 'float32', shape: [1, 256, 4], data: fill(256 * 4, 1, -5) }); // warm-up
      const frames = opts.full ? [100, 1000] : [100];
      for (const F of frames) {
        const mel: HostTensor = { dtype: 'float32', shape: [1, 256, F], data: fill(256 * F, 2, -5) };
        const t0 = performance.now();
        const y = voc.generate(mel);
        const s = (performance.now() - t0) / 1000;
        if (y.shape[1] !== F * 480 + 16) throw new Error(`hifigan gave ${y.shape}`);
        row('hifigan.generate', F === 100 ? BASELINE.voc100 : BASELINE.voc1000, s);
      }
    } finally {
      voc.dispose();
    }
  }
  return rows;
}

// run directly: node dist/bench/vae_vocoder.js [--full] [--backend name] [vae] [vocoder]
const isMain = /[\\/]vae_vocoder\.(js|ts)$/.test(process.argv[1] ?? '') && import.meta.url.endsWith(process.argv[1]!.split(/[\\/]/).pop()!);
if (isMain) {
  const args = process.argv.slice(2);
  const bi = args.indexOf('--backend');
  const parts = args.filter((a) => a === 'vae' || a === 'vocoder') as Array<'vae' | 'vocoder'>;
  const rows = await benchVaeVocoder({
    full: args.includes('--full'), backend: bi >= 0 ? args[bi + 1] : undefined, parts: parts.length ? parts : undefined,
  });
  console.log(JSON.stringify(rows));
}
