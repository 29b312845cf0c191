/**
 * Child process of tests/webgpu_resident.test.ts (webgpu on Dawn's software adapter owns its process).
 * `-- pool <windows>`: the tiny model's decode stages in a loop of short windows (codes of 32 → 16 latent frames through
 *    inference_codes with CFG, then LatentsToAudio: VAE decoder + vocoder + cross-fade, as decode drives them), the
 *    backend's buffer bytes after each window; prints { perWindow: [{ usedBytes, allocatedBytes, freeBuffers }], peak }.
 * `-- batch`: batchLatentWindows of two short sequences (one window of 1024 codes each, 1 step) against
 *    code2soundLatents of each alone; prints the max differences.
 * `-- muq-real`: MuQ's conv frontend at the real width (random weights) on one window under the adapter's limit.
 * Every result is one JSON line on stdout, prefixed with "RESULT ".
 */
import * as tf from '@tensorflow/tfjs-core';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { readSafetensors } from '../../convert/safetensors.js';
import { initBackend } from '../../src/backend.js';
import { batchLatentWindows } from '../../src/batch_decode.js';
import { MuCodecDecoder, decoderConfigFromUpstream } from '../../src/decoder.js';
import { makeNoise, SeededNoise } from '../../src/noise.js';
import { Params } from '../../src/params.js';
import { bindingLimit } from '../../src/device.js';
import { Conv2dSubsampling } from '../../src/muq/conv_subsampling.js';
import { filler } from '../../bench/common.js';
import { encoderExpected, REAL_CONFIG } from '../../convert/manifest.js';
import type { HostTensor } from '../../src/hosttensor.js';
import { LatentsToAudio } from '../../src/synthesis.js';
import { AUDIOLDM_48K_VAE, AutoencoderKL } from '../../src/vae/autoencoder.js';
import { HIFIGAN_48K, HifiGanGenerator } from '../../src/vocoder/hifigan.js';
import { devicePoolStats, webGpuSyncReads, type DevicePoolStats } from '../../src/webgpu.js';

const say = (o: unknown): void => { console.log(`RESULT ${JSON.stringify(o)}`); };
const [mode, ...rest] = process.argv.slice(2).filter((a) => a !== '--');
const TINY = join(import.meta.dirname, '..', '..', 'weights', 'tiny');

await initBackend('webgpu');
const cfg = JSON.parse(readFileSync(join(TINY, 'config.json'), 'utf8')) as { model: Record<string, unknown> & { vae: { ddconfig: never; embed_dim: number; vocoder: never } } };
const params = async (f: string): Promise<Params> => { const p = join(TINY, f); return new Params(await readSafetensors(p), '', p); };
const decoder = mode === 'muq-real' ? null! : new MuCodecDecoder(await params('decoder.safetensors'), decoderConfigFromUpstream(cfg.model));

if (mode === 'muq-real') {
  // MuQ's conv frontend at the real width (random weights of the real shapes, as bench/encode.ts) on one 40.96 s
  // window (4097 mel frames) under the adapter's own limit: unsplit its first activation is 256 MiB
  const fill = filler(1);
  const map = new Map<string, HostTensor>();
  for (const t of encoderExpected(REAL_CONFIG)) {
    if (!t.name.startsWith('muencoder.model.conv.')) continue;
    const n = t.shape.reduce((a, b) => a * b, 1);
    const data = t.name.endsWith('running_var') ? fill(n, 0.2, 1) : /(bn\d)\.weight$/.test(t.name) ? fill(n, 0.1, 1)
      : t.name.endsWith('.bias') || t.name.endsWith('running_mean') ? fill(n, 0.02) : fill(n, 1 / Math.sqrt(t.shape.slice(1).reduce((a, b) => a * b, 1) || 1));
    map.set(t.name, { dtype: 'float32', shape: t.shape, data });
  }
  const p = new Params(map, '', 'random real-shape MuQ conv frontend').sub('muencoder.model.conv.');
  const fe = new Conv2dSubsampling(p, { convDim: 512, encoderDim: 1024, nMels: 128, strides: [2, 2], batchNormEps: 1e-5 });
  const x = tf.randomNormal([1, 4097, 128], 0, 1, 'float32', 3) as tf.Tensor3D;
  const t0 = Date.now();
  let error: string | null = null, shape: number[] = [], finite = false;
  try {
    const y = fe.apply(x);
    const v = (await y.data()) as Float32Array;
    shape = y.shape; finite = v.every(Number.isFinite);
    y.dispose();
  } catch (e) { error = (e as Error).message; }
  say({ limit: bindingLimit(), error, shape, finite, seconds: (Date.now() - t0) / 1000 });
} else if (mode === 'pool') {
  const windows = Number(rest[0] ?? 3);
  const pv = await params('vae.safetensors');
  const vc = cfg.model.vae;
  const vae = new AutoencoderKL(pv.sub('first_stage_model.'), { ddconfig: vc.ddconfig ?? AUDIOLDM_48K_VAE.ddconfig, embed_dim: vc.embed_dim });
  const vocoder = new HifiGanGenerator(pv.sub('first_stage_model.vocoder.'), vc.vocoder ?? HIFIGAN_48K);
  const frames = 16, codesN = 2 * frames;
  const minSamples = frames * 8 * 480; // latent frame → 8 mel frames → 480 samples
  const synth = new LatentsToAudio(vae, vocoder, { minSamples });
  const noise = new SeededNoise(3);
  const perWindow: DevicePoolStats[] = [];
  let peak = 0;
  for (let w = 0; w < windows; w++) {
    const codes = Int32Array.from({ length: codesN }, (_, i) => (i * 5 + w) % 64);
    const lat = await decoder.inferenceCodesAsync({
      codes: { data: codes, shape: [1, 1, codesN] }, trueLatents: { dtype: 'float32', shape: [1, 32, frames, 32], data: noise.randn([1, 32, frames, 32]) },
      latentLength: frames, incontextLength: w === 0 ? 0 : 4, guidanceScale: 1.5, scenario: 'other_seg', noise, numSteps: 1,
    });
    peak = Math.max(peak, devicePoolStats()!.allocatedBytes);
    const data = (await lat.data()) as Float32Array;
    lat.dispose();
    await synth.pushAsync({ dtype: 'float32', shape: [1, 32, frames, 32], data });
    perWindow.push(devicePoolStats()!);
  }
  synth.finish();
  say({ perWindow, peak, syncReads: webGpuSyncReads(), tensors: tf.memory().numTensors });
} else if (mode === 'batch') {
  const a = Int32Array.from({ length: 60 }, (_, i) => (i * 7) % 64);
  const b = Int32Array.from({ length: 900 }, (_, i) => (i * 13 + 5) % 64); // one window each (the drop-out of shorter ones: tests/resident.test.ts)
  const alone: Float32Array[][] = [];
  for (const c of [a, b]) {
    const ws: Float32Array[] = [];
    for await (const w of decoder.code2soundLatents({ data: c, shape: [1, 1, c.length] }, { numSteps: 1, seed: 5 })) ws.push(w.latents.data as Float32Array);
    alone.push(ws);
  }
  const got: Float32Array[][] = [[], []];
  for await (const w of batchLatentWindows(decoder, [a, b], [makeNoise(5), makeNoise(5)], { steps: 1 })) got[w.item]!.push(w.latents.data as Float32Array);
  const diffs = alone.map((ws, i) => ws.map((x, w) => {
    const y = got[i]![w]!;
    let m = x.length === y.length ? 0 : Infinity;
    for (let k = 0; k < x.length; k++) m = Math.max(m, Math.abs(x[k]! - y[k]!));
    return m;
  }));
  say({ windows: got.map((g) => g.length), diffs, syncReads: webGpuSyncReads() });
} else {
  throw new Error(`resident_probe: unknown mode "${mode}"`);
}
process.exit(0); // dawn.node keeps the process alive otherwise
