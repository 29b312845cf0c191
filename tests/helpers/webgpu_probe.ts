/**
 * Child process of tests/webgpu.test.ts (the webgpu backend must own its process: tfjs has one global backend).
 * `-- probe`: initialise webgpu (MUCODEC_WEBGPU_ADAPTER from the env) and print { ok, adapter } or { ok: false, reason }.
 * `-- guard`: on webgpu, an op over the binding limit and a synchronous read of a device tensor; prints the errors.
 * `-- audio <backend>`: the audio family's model cases (vae.encode, vae.decode, hifigan.generate, vae.decode_to_waveform,
 *    mucodec.latents_to_audio) through the codec's asynchronous API (drainStepsAsync: what runs on webgpu), each output
 *    compared with the reference within the case's tolerance; prints [{ case, output, pass, maxAbs, relL2 }] and syncReads.
 * `-- reconstruct <backend> <wav> <out.f32>`: the tiny model's reconstruct (2 steps, seed 1) on that backend; writes the
 *    channels (L then R) as raw float32 and prints { samples, syncReads }.
 * Every result is one JSON line on stdout, prefixed with "RESULT ".
 */
import * as tf from '@tensorflow/tfjs-core';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { initBackend } from '../../src/backend.js';
import { readWav } from '../../src/audio/wav.js';
import { MuCodec } from '../../src/codec.js';
import { webGpuAdapter, webGpuSyncReads } from '../../src/webgpu.js';
import { compareTensor, loadCase, toleranceFor, type FixtureCase } from '../../src/fixtures.js';
import type { HostTensor } from '../../src/hosttensor.js';
import { ReplayNoise } from '../../src/noise.js';
import { drainStepsAsync } from '../../src/steps.js';
import { latentsToAudioAsync } from '../../src/synthesis.js';
import { AutoencoderKL, type VaeConfig } from '../../src/vae/autoencoder.js';
import { vocoderChunkInferNCLSteps } from '../../src/vocoder/chunk_infer.js';
import { HifiGanGenerator, type HifiganConfig } from '../../src/vocoder/hifigan.js';

const say = (o: unknown): void => { console.log(`RESULT ${JSON.stringify(o)}`); };
const [mode, ...rest] = process.argv.slice(2).filter((a) => a !== '--');

async function errorOf(f: () => Promise<unknown> | unknown): Promise<string> {
  try { await f(); return 'no error'; } catch (e) { return (e as Error).message; }
}

if (mode === 'probe') {
  try {
    await initBackend('webgpu');
    say({ ok: true, adapter: webGpuAdapter() });
  } catch (e) {
    say({ ok: false, reason: (e as Error).message });
  }
} else if (mode === 'guard') {
  await initBackend('webgpu');
  const limit = webGpuAdapter()!.limits.maxStorageBufferBindingSize;
  const n = limit / 4 + 4 * 1024 * 1024; // 16 MiB over the limit
  const big = tf.tensor1d(new Float32Array(n).fill(1)); // uploaded (a copy, no kernel binds it)
  const over = await errorOf(async () => { const y = tf.mul(big, 2); try { return await y.data(); } finally { y.dispose(); } });
  big.dispose();
  // the same op under the limit computes right
  const ok = tf.fill([limit / 8], 1.5);
  const y = tf.mul(ok, 2);
  const v = (await y.data()) as Float32Array;
  const underOk = v.every((x) => x === 3);
  ok.dispose(); y.dispose();
  const d = tf.add(tf.ones([64, 64]), 1);
  const sync = await errorOf(() => d.dataSync());
  const asyncOk = ((await d.data()) as Float32Array).every((x) => x === 2);
  d.dispose();
  say({ limit, over, underOk, sync, asyncOk, syncReads: webGpuSyncReads() });
} else if (mode === 'audio') {
  await initBackend(rest[0]);
  const FIX = join(import.meta.dirname, '..', 'fixtures', 'audio');
  const f32 = (shape: number[], data: Float32Array): HostTensor => ({ dtype: 'float32', shape, data });
  const vaeOf = async (c: FixtureCase, p = undefined as Awaited<ReturnType<FixtureCase['weights']>> | undefined) => {
    const cfg = c.json.config as { ddconfig: VaeConfig['ddconfig']; embed_dim: number };
    const vae = new AutoencoderKL(p ?? await c.weights(), { ddconfig: cfg.ddconfig, embed_dim: cfg.embed_dim });
    vae.tile = { tileRows: 5 }; // small bands, as the parity stages use: the seams are exercised
    return vae;
  };
  const vocOf = (c: FixtureCase, p: Awaited<ReturnType<FixtureCase['weights']>>) => {
    const cfg = c.json.config as Record<string, unknown>;
    return new HifiGanGenerator(p, (cfg.vocoder ?? cfg) as HifiganConfig);
  };
  const runs: Record<string, (c: FixtureCase) => Promise<Record<string, HostTensor>>> = {
    'vae.encode': async (c) => {
      const vae = await vaeOf(c);
      try {
        const r = await drainStepsAsync(vae.encodeSteps(c.t(c.json.inputs!.mel!), new ReplayNoise(c.noise(), 'noise')));
        return { 'out.z': r.z, 'mid.mean': r.mean, 'mid.logvar': r.logvar };
      } finally { vae.dispose(); }
    },
    'vae.decode': async (c) => {
      const vae = await vaeOf(c);
      try { return { 'out.mel': (await drainStepsAsync(vae.decodeSteps(c.t(c.json.inputs!.z!))))! }; } finally { vae.dispose(); }
    },
    'hifigan.generate': async (c) => {
      const voc = vocOf(c, await c.weights());
      try {
        const y = await drainStepsAsync(voc.generateSteps(c.t(c.json.inputs!.mel!)));
        return { 'out.wav': f32([y.shape[0], 1, y.shape[1]], y.data) };
      } finally { voc.dispose(); }
    },
    'vae.decode_to_waveform': async (c) => {
      const p = await c.weights();
      const vae = await vaeOf(c, p), voc = vocOf(c, p.sub('vocoder.'));
      try {
        const mel = (await drainStepsAsync(vae.decodeSteps(c.t(c.json.inputs!.z!))))!;
        const [B, , F, M] = mel.shape as [number, number, number, number];
        const ncl = new Float32Array(B * M * F);
        const md = mel.data as Float32Array;
        for (let b = 0; b < B; b++) for (let t = 0; t < F; t++) for (let m = 0; m < M; m++) ncl[(b * M + m) * F + t] = md[(b * F + t) * M + m]!;
        const wav = await drainStepsAsync(vocoderChunkInferNCLSteps(voc, f32([B, M, F], ncl)));
        return { 'out.wav': f32(wav.shape, wav.data), 'mid.mel': mel };
      } finally { vae.dispose(); voc.dispose(); }
    },
    'mucodec.latents_to_audio': async (c) => {
      const cfg = c.json.config as Record<string, number>;
      const p = await c.weights();
      const vae = await vaeOf(c, p), voc = vocOf(c, p.sub('vocoder.'));
      try {
        const out = await latentsToAudioAsync(vae, voc, Object.values(c.json.inputs!).map((n) => c.t(n)), {
          minSamples: cfg.min_samples, hopSamples: cfg.hop_samples, ovlpSamples: cfg.ovlp_samples,
          targetLen: cfg.target_len, firstLatentLength: cfg.first_latent_length,
        });
        return { 'out.wav': out };
      } finally { vae.dispose(); voc.dispose(); }
    },
  };
  const results: unknown[] = [];
  for (const [name, fn] of Object.entries(runs)) {
    const c = await loadCase(join(FIX, name));
    const before = tf.memory().numTensors;
    const t0 = Date.now();
    const outs = await fn(c);
    for (const [k, got] of Object.entries(outs)) {
      const cmp = compareTensor(k, got, c.t(k), toleranceFor(c.json, k));
      results.push({ case: name, output: k, pass: cmp.pass, maxAbs: cmp.maxAbs, relL2: cmp.relL2, seconds: (Date.now() - t0) / 1000 });
    }
    results.push({ case: name, output: 'tensors left', pass: tf.memory().numTensors === before, maxAbs: tf.memory().numTensors - before, relL2: 0 });
  }
  say({ results, syncReads: rest[0] === 'webgpu' ? webGpuSyncReads() : 0 });
} else if (mode === 'reconstruct') {
  const [backend, wav, out] = rest as [string, string, string];
  await initBackend(backend);
  const codec = await MuCodec.load({ weightsDir: join(import.meta.dirname, '..', '..', 'weights', 'tiny'), backend });
  const audio = await codec.reconstruct(await readWav(wav), { steps: 2, seed: 1 });
  codec.dispose();
  const n = audio.channels[0]!.length;
  const all = new Float32Array(2 * n);
  all.set(audio.channels[0]!, 0);
  all.set(audio.channels[1]!, n);
  writeFileSync(out, new Uint8Array(all.buffer));
  say({ samples: n, syncReads: backend === 'webgpu' ? webGpuSyncReads() : 0, backend: tf.getBackend() });
} else {
  throw new Error(`webgpu_probe: unknown mode "${mode}"`);
}
process.exit(0); // dawn.node keeps the process alive otherwise
