/**
 * Child process of tests/threads.test.ts: runs the MuQ encoder fixture (conv frontend with Winograd, conformer)
 * and a few big XNNPACK ops with the wasm thread count from MUCODEC_THREADS, prints one JSON line
 * { threads, hashes } (SHA-256 of the output bytes).
 */
import * as tf from '@tensorflow/tfjs-core';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { initBackend } from '../../src/backend.js';
import '../../src/chained_ops.js';
import { loadCase } from '../../src/fixtures.js';
import { toFloat32 } from '../../src/hosttensor.js';
import { MuQEncoder, muqConfigFromDicts } from '../../src/muq/muq.js';
import { wasmThreads } from '../../src/workers/wasm_threads.js';
import { affineSwish } from '../../src/simd/swish.js';
import { channelStats } from '../../src/simd/stats.js';
import { WinogradConv } from '../../src/simd/winograd.js';

await initBackend('wasm');
const hash = (t: tf.Tensor): string => createHash('sha256').update(new Uint8Array((t.dataSync() as Float32Array).buffer)).digest('hex');
const c = await loadCase(join(import.meta.dirname, '..', 'fixtures', 'encoder', 'muq.encoder'));
const p = await c.weights();
const cfg = c.json.config as Record<string, Record<string, unknown>>;
const enc = new MuQEncoder(p.sub('model.'), muqConfigFromDicts(cfg.muq!, cfg.conformer!));
const x = c.tensors.get('in.source')!;
const rows = Array.from({ length: x.shape[0]! }, (_, i) => toFloat32(x).subarray(i * x.shape[1]!, (i + 1) * x.shape[1]!));
const hashes: Record<string, string> = {};
const hs = enc.hiddenStates(rows, enc.maxLayerIndex);
hs.forEach((h, i) => { hashes[`muq.h${i}`] = hash(h); h.dispose(); });
enc.dispose();
// plain ops big enough for XNNPACK to split them between threads
let s = 7;
const rnd = (n: number): Float32Array => Float32Array.from({ length: n }, () => { s ^= s << 13; s ^= s >>> 17; s ^= s << 5; return ((s >>> 0) / 4294967296) - 0.5; });
tf.tidy(() => {
  hashes.matMul = hash(tf.matMul(tf.tensor2d(rnd(300 * 256), [300, 256]), tf.tensor2d(rnd(256 * 200), [256, 200])));
  hashes.conv2d = hash(tf.conv2d(tf.tensor4d(rnd(40 * 24 * 32), [1, 40, 24, 32]), tf.tensor4d(rnd(9 * 32 * 48), [3, 3, 32, 48]), [2, 2], 'same'));
  hashes.depthwise = hash(tf.depthwiseConv2d(tf.tensor4d(rnd(64 * 64 * 16), [1, 64, 64, 16]), tf.tensor4d(rnd(25 * 16), [5, 5, 16, 1]), 1, 'same'));
  // GroupNorm's kernels (affine + swish split over the pool by positions)
  const g = tf.tensor4d(rnd(3 * 50 * 44 * 128), [3, 50, 44, 128]);
  hashes.affineSwish = hash(affineSwish(g, tf.tensor1d(rnd(128)), tf.tensor1d(rnd(128))));
  // a Winograd conv big enough that its filter transform (written in the GEMM layout) is split by channel too
  const wc = new WinogradConv(tf.tensor4d(rnd(9 * 64 * 128), [3, 3, 64, 128]), tf.tensor1d(rnd(128)), { pad: 1 });
  hashes.winograd = hash(wc.conv(tf.tensor4d(rnd(20 * 24 * 64), [1, 20, 24, 64])));
  wc.dispose();
  const st = channelStats(g);
  hashes.channelStats = hash(tf.tensor1d(Float32Array.from([...st.mean, ...st.m2])));
});
process.stdout.write(JSON.stringify({ threads: wasmThreads(), hashes }) + '\n');
process.exit(0);
