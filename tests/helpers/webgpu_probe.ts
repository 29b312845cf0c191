/**
 * Child process of tests/webgpu.test.ts (the webgpu backend must own its process: tfjs has one global backend).
 * `-- probe`: initialise webgpu (MUCODEC_WEBGPU_ADAPTER from the env) and print { ok, adapter } or { ok: false, reason }.
 * `-- guard`: on webgpu, an op over the binding limit and a synchronous read of a device tensor; prints the errors.
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
