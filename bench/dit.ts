/**
 * Benchmark of the flow-matching DiT at the REAL width (random weights of the real shapes from a seeded
 * generator; timings do not depend on the values): one BasicTransformerBlock (D 1584, 22 heads × 72,
 * FF 6336) on 4096 tokens — the token count of one 40.96 s window — beside the PyTorch-CPU time of the same
 * block on this machine kind (reference/BASELINES.md: 19.6 s, 353 GFLOP).
 *
 *   node dist/bench/dit.js [--backend wasm] [--tokens 4096] [--full] [--no-cfg]
 *
 * By default it also times one classifier-free-guided Euler step of the whole real-configuration DiT (batch 2:
 * 2 × 24 blocks on 4096 tokens, ≈ 2 × 24 × the block time) through the decoder's own sampler code; --no-cfg skips it.
 *
 * --full (opt-in, long: ~24 × the block time) also runs a whole real-configuration Transformer2DModel forward
 * (24 blocks, random weights, 742 M parameters = 2.9 GB of host memory) on one window (1, 96, 512, 32) with
 * per-block weight upload, and reports the wasm heap size after it: the demonstration that the real DiT runs
 * on wasm without exhausting the 4 GiB heap.
 */
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../src/backend.js';
import type { HostTensor } from '../src/hosttensor.js';
import { Params } from '../src/params.js';
import { BasicTransformerBlock } from '../src/dit/block.js';
import { REAL_DIT_CONFIG, innerDim, type DiTConfig } from '../src/dit/config.js';
import { Transformer2DModel } from '../src/dit/transformer.js';
import { solveCfm } from '../src/sampler/cfm.js';

export interface BenchRow {
  stage: string;
  shape: string;
  gflop: number;
  ours_s: number;
  torch_s: number;
  ratio: number;
  backend: string;
}

export interface BenchDitOptions {
  /** tfjs backend (default: MUCODEC_BACKEND or auto) */
  backend?: string;
  /** tokens for the block row (default 4096 = one window); the torch baseline is for 4096 */
  tokens?: number;
  /** also run the full 24-block forward on one window, batch 1 (long) */
  full?: boolean;
  /** the one-block row (default true; false: only the CFG step / --full rows) */
  block?: boolean;
  /** one classifier-free-guided Euler step of the whole real DiT (batch 2, 4096 tokens; ~2 × 24 blocks: long). Default true */
  cfgStep?: boolean;
  seed?: number;
  log?: (line: string) => void;
}

/** reference/BASELINES.md, decode-latents table (torch 1.13.1, 2 threads, median of 3) */
const TORCH_BLOCK_S = 19.6;
const TORCH_BLOCK_GFLOP = 353;
/** issue 8's target table: one CFG Euler step of the full DiT (batch 2, 4096 tokens) ≈ 2 × 470 s (2 × 24 × the block) */
const TORCH_CFG_STEP_S = 940;

/** the random real-shape estimator, built once per process (2.9 GB of host memory; runs reuse it) */
let sharedEstimator: { seed: number; p: Params } | null = null;
function realEstimator(seed: number, log: (l: string) => void): Params {
  if (sharedEstimator?.seed !== seed) {
    sharedEstimator = null;
    const tg = performance.now();
    sharedEstimator = { seed, p: randomEstimator(REAL_DIT_CONFIG, seed) };
    log(`random 742 M-parameter estimator built in ${((performance.now() - tg) / 1000).toFixed(1)} s`);
  }
  return sharedEstimator.p;
}

/** analytic FLOPs (2 × multiply-adds) of one block on n tokens (batch 1) */
export function blockGflop(n: number, d = 1584): number {
  const linears = 2 * n * (4 * d * d + 2 * d * 4 * d);
  const attention = 2 * 2 * n * n * d;
  return (linears + attention) / 1e9;
}

/** analytic FLOPs of one Transformer2DModel forward on (1, 96, T, 32) */
export function transformerGflop(cfg: DiTConfig, frames: number): number {
  const d = innerDim(cfg);
  const n = (frames / cfg.patchSize) * (32 / cfg.patchSize);
  const patch = 2 * n * cfg.inChannels * cfg.patchSize * cfg.patchSize * d;
  const out = 2 * n * d * cfg.patchSize * cfg.patchSize * cfg.outChannels;
  return cfg.numLayers * blockGflop(n, d) + (patch + out) / 1e9;
}

/** fast seeded uniform fill with a given standard deviation (xorshift32) */
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

/** random tensors with the real names and shapes of the estimator (or only block 0 with `blocksOnly`) */
export function randomEstimator(cfg: DiTConfig, seed: number, opts: { layers?: number } = {}): Params {
  const fill = filler(seed);
  const d = innerDim(cfg);
  const map = new Map<string, HostTensor>();
  const put = (name: string, shape: number[], std: number, mean = 0): void => {
    map.set(name, { dtype: 'float32', shape, data: fill(shape.reduce((a, b) => a * b, 1), std, mean) });
  };
  const lin = (name: string, inF: number, outF: number): void => {
    put(`${name}.weight`, [outF, inF], 1 / Math.sqrt(inF));
    put(`${name}.bias`, [outF], 0.02);
  };
  const ps = cfg.patchSize;
  put('pos_embed.proj.weight', [d, cfg.inChannels, ps, ps], 1 / Math.sqrt(cfg.inChannels * ps * ps));
  put('pos_embed.proj.bias', [d], 0.02);
  lin('adaln_single.emb.timestep_embedder.linear_1', cfg.flowTSize, d);
  lin('adaln_single.emb.timestep_embedder.linear_2', d, d);
  lin('adaln_single.linear', d, 6 * d);
  const layers = opts.layers ?? cfg.numLayers;
  for (let i = 0; i < layers; i++) {
    const b = `transformer_blocks.${i}.`;
    put(`${b}scale_shift_table`, [6, d], 1 / Math.sqrt(d));
    for (const n of ['to_q', 'to_k', 'to_v', 'to_out.0']) lin(`${b}attn1.${n}`, d, d);
    lin(`${b}ff.net.0.proj`, d, 4 * d);
    lin(`${b}ff.net.2`, 4 * d, d);
  }
  put('scale_shift_table', [2, d], 1 / Math.sqrt(d));
  lin('proj_out', d, ps * ps * cfg.outChannels);
  return new Params(map, '', 'random real-shape DiT weights');
}

function wasmHeapBytes(): number | null {
  const b = tf.backend() as unknown as { wasm?: { HEAPU8?: Uint8Array } };
  return b.wasm?.HEAPU8?.length ?? null;
}

export async function benchDit(opts: BenchDitOptions = {}): Promise<BenchRow[]> {
  const log = opts.log ?? console.log;
  const rep = await initBackend(opts.backend);
  const backend = rep.chosen;
  const seed = opts.seed ?? 1234;
  const tokens = opts.tokens ?? 4096;
  const cfg = REAL_DIT_CONFIG;
  const d = innerDim(cfg);
  const rows: BenchRow[] = [];
  const fill = filler(seed + 1);
  const row = (stage: string, shape: string, gflop: number, s: number, torchS: number, extra = ''): void => {
    const r: BenchRow = { stage, shape, gflop, ours_s: s, torch_s: torchS, ratio: torchS / s, backend };
    rows.push(r);
    const heap = wasmHeapBytes();
    log(`${stage.padEnd(16)} ${shape.padEnd(20)} ${gflop.toFixed(0).padStart(6)} GFLOP ${s.toFixed(1).padStart(7)} s  ${(gflop / s).toFixed(1).padStart(6)} GFLOP/s  ` +
      `torch ${torchS.toFixed(1)} s  ratio ${r.ratio.toFixed(2)}  [${backend}${heap ? `, wasm heap ${(heap / 2 ** 30).toFixed(2)} GiB` : ''}, tensors ${tf.memory().numTensors}${extra}]`);
  };

  // --- one block, weights uploaded inside the timed region (as the per-block scheme runs it)
  if (opts.block ?? true) {
    const p = randomEstimator(cfg, seed, { layers: 1 });
    const block = new BasicTransformerBlock(p.sub('transformer_blocks.0.'), d, cfg.heads, cfg.headDim, cfg.normEps);
    const mod = tf.tensor2d(fill(6 * d, 0.1), [1, 6 * d]);
    // warm-up on a few tokens (kernel setup)
    const xw = tf.tensor3d(fill(64 * d, 1), [1, 64, d]);
    block.apply(xw, mod).dispose();
    xw.dispose();
    const x = tf.tensor3d(fill(tokens * d, 1), [1, tokens, d]);
    const t0 = performance.now();
    const w = block.upload();
    const tUp = (performance.now() - t0) / 1000;
    const y = block.apply(x, mod, w);
    await y.data();
    const s = (performance.now() - t0) / 1000;
    BasicTransformerBlock.dispose(w);
    y.dispose(); x.dispose(); mod.dispose();
    const g = blockGflop(tokens, d);
    row('dit.block', `(1, ${tokens}, ${d})`, g, s, tokens === 4096 ? TORCH_BLOCK_S : TORCH_BLOCK_S * g / TORCH_BLOCK_GFLOP,
      `, upload ${tUp.toFixed(2)} s${tokens === 4096 ? '' : ', torch scaled by GFLOP'}`);
  }

  // --- the whole real-configuration DiT on one window (opt-in)
  if (opts.full) {
    const model = new Transformer2DModel(realEstimator(seed + 2, log), cfg, { residency: 'per-block' });
    const frames = 512;
    const x = tf.tensor4d(fill(96 * frames * 32, 1), [1, 96, frames, 32]);
    let done = 0;
    const t0 = performance.now();
    const y = model.forward(x, [0.5], (name) => {
      if (name.startsWith('block')) {
        done++;
        if (done % 4 === 0) log(`  ${done}/24 blocks, ${((performance.now() - t0) / 1000).toFixed(0)} s, wasm heap ${((wasmHeapBytes() ?? 0) / 2 ** 30).toFixed(2)} GiB`);
      }
    });
    const data = await y.data();
    const s = (performance.now() - t0) / 1000;
    const finite = data.every((v) => Number.isFinite(v));
    y.dispose(); x.dispose(); model.dispose();
    row('dit.transformer', `(1, 96, ${frames}, 32)`, transformerGflop(cfg, frames), s, 24 * TORCH_BLOCK_S, `, output finite: ${finite}`);
  }

  // --- one CFG Euler step of the whole real DiT, exactly as the decoder runs it (sampler/cfm.ts solveCfm: batch
  // doubled to [uncond; cond], v = u + 1.5·(c − u), in-context frames re-imposed, x += dt·v), on one window with
  // the 128 in-context frames a later window has (3/4 hop). Peak RSS of the process is the row's peak_rss_mb.
  if (opts.cfgStep ?? true) {
    const model = new Transformer2DModel(realEstimator(seed + 2, log), cfg, { residency: 'per-block' });
    const frames = 512;
    const shape: [number, number, number, number] = [1, 32, frames, 32];
    const n = 32 * frames * 32;
    const x = tf.tensor4d(fill(n, 1), shape);
    const incontextX = tf.tensor4d(fill(n, 1), shape);
    const mu = tf.tensor4d(fill(n, 1), shape);
    let done = 0;
    const t0 = performance.now();
    const estimator = {
      forward: (h: tf.Tensor4D, t: ArrayLike<number>) => model.forward(h, t, (name) => {
        if (name.startsWith('block') && ++done % 8 === 0) {
          log(`  cfg step: ${done}/24 blocks (batch 2), ${((performance.now() - t0) / 1000).toFixed(0)} s, wasm heap ${((wasmHeapBytes() ?? 0) / 2 ** 30).toFixed(2)} GiB`);
        }
      }),
    };
    const y = solveCfm(estimator, { x, incontextX, incontextLength: 128, mu, guidanceScale: 1.5 }, { steps: 1 });
    const data = await y.data();
    const s = (performance.now() - t0) / 1000;
    const finite = data.every((v) => Number.isFinite(v));
    y.dispose(); x.dispose(); incontextX.dispose(); mu.dispose(); model.dispose();
    row('dit.cfg_euler_step', `(2, 96, ${frames}, 32)`, 2 * transformerGflop(cfg, frames), s, TORCH_CFG_STEP_S, `, output finite: ${finite}`);
  }
  return rows;
}

// run directly: node dist/bench/dit.js [--full] [--backend name] [--tokens n]
const isMain = process.argv[1] && import.meta.url === new URL(`file://${process.argv[1]}`).href;
if (isMain) {
  const args = process.argv.slice(2);
  const arg = (k: string): string | undefined => { const i = args.indexOf(k); return i >= 0 ? args[i + 1] : undefined; };
  const rows = await benchDit({
    full: args.includes('--full'), cfgStep: !args.includes('--no-cfg'), backend: arg('--backend'), tokens: arg('--tokens') ? Number(arg('--tokens')) : undefined,
  });
  console.log(JSON.stringify(rows));
}
