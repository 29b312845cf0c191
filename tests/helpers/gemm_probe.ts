/**
 * Child process of tests/gemm.test.ts: runs the packed GEMM (src/simd/gemm.ts) on shapes big enough to be split
 * between threads (and the Winograd transforms of src/simd/winograd.ts / winograd1d.ts, whose tile rows are split too, and the fused attention of src/simd/attention.ts, whose (head, query block) items are), as a conv1d (conv1dGemm, batched and dilated) and as a 3×3 conv2d (conv2dValidGemm), on both paths (FMA where relaxed SIMD exists, SIMD128), with the wasm thread count from
 * MUCODEC_THREADS; prints one JSON line { threads, fma, hashes } (SHA-256 of the output bytes).
 */
import * as tf from '@tensorflow/tfjs-core';
import { createHash } from 'node:crypto';
import { initBackend } from '../../src/backend.js';
import { conv1dGemm, conv2dValidGemm, gemm, packB } from '../../src/simd/gemm.js';
import { relaxedSimdSupported } from '../../src/simd/relaxed.js';
import { Winograd3x3 } from '../../src/simd/winograd.js';
import { Conv1dWinogradGemm } from '../../src/simd/winograd1d.js';
import { wasmAttention } from '../../src/simd/attention.js';
import { wasmThreads } from '../../src/workers/wasm_threads.js';

await initBackend('wasm');
let s = 11;
const rnd = (n: number): Float32Array => Float32Array.from({ length: n }, () => { s ^= s << 13; s ^= s >>> 17; s ^= s << 5; return ((s >>> 0) / 4294967296) - 0.5; });
const hash = (t: tf.Tensor): string => createHash('sha256').update(new Uint8Array((t.dataSync() as Float32Array).buffer)).digest('hex');
const fma = relaxedSimdSupported();
const hashes: Record<string, string> = {};
for (const [m, k, n] of [[301, 300, 203], [97, 1000, 64], [1000, 64, 13]] as const) {
  const a = tf.tensor2d(rnd(m * k), [m, k]);
  const p = packB(rnd(k * n), k, n, rnd(n));
  for (const path of fma ? [true, false] : [false]) {
    const y = gemm(a, p, path);
    hashes[`${m}x${k}x${n}.${path ? 'fma' : 'simd128'}`] = hash(y);
    y.dispose();
  }
  a.dispose(); p.packed.dispose();
}
for (const [n, len, cin, cout, taps, d] of [[1, 400, 96, 48, 7, 1], [2, 150, 300, 20, 3, 5]] as const) {
  const x = tf.tensor3d(rnd(n * len * cin), [n, len, cin]);
  const p = packB(rnd(taps * cin * cout), taps * cin, cout, rnd(cout));
  const pad = ((taps - 1) * d) / 2;
  for (const path of fma ? [true, false] : [false]) {
    const y = conv1dGemm(x, p, taps, d, pad, pad, path);
    hashes[`conv${n}x${len}x${cin}x${cout}k${taps}d${d}.${path ? 'fma' : 'simd128'}`] = hash(y);
    y.dispose();
  }
  x.dispose(); p.packed.dispose();
}
{
  const x = tf.tensor4d(rnd(18 * 34 * 64), [1, 18, 34, 64]);
  const p = packB(rnd(9 * 64 * 40), 9 * 64, 40, rnd(40));
  for (const path of fma ? [true, false] : [false]) {
    const y = conv2dValidGemm(x, p, 3, 3, path);
    hashes[`conv2d18x34x64x40.${path ? 'fma' : 'simd128'}`] = hash(y);
    y.dispose();
  }
  x.dispose(); p.packed.dispose();
}
{ // Winograd F(4×4, 3×3): transforms and products over the threads
  const x = tf.tensor4d(rnd(40 * 36 * 16), [1, 40, 36, 16]);
  const g = tf.tensor4d(rnd(9 * 16 * 24), [3, 3, 16, 24]), bias = tf.tensor1d(rnd(24));
  const w = new Winograd3x3(g, bias);
  const y = w.conv(x, null);
  hashes['wino3x3'] = hash(y);
  tf.dispose([x, g, bias, y]); w.dispose();
}
{ // the vocoder conv1d: F(4,4) on kernel chunks × F(3, q) across them (both transforms and the products split)
  const x = tf.tensor3d(rnd(2 * 300 * 32), [2, 300, 32]);
  const c = new Conv1dWinogradGemm(rnd(11 * 32 * 24), 11, 32, 24, rnd(24), 15, 15, 3);
  const y = c.apply(x, 0.1);
  hashes['wino1d'] = hash(y);
  tf.dispose([x, y]); c.dispose();
}
{ // fused attention: (head, query block) items over the threads, each with its own score scratch
  const q = tf.tensor3d(rnd(100 * 48), [1, 100, 48]), k = tf.tensor3d(rnd(77 * 48), [1, 77, 48]);
  const v = tf.tensor3d(rnd(77 * 48), [1, 77, 48]);
  for (const path of fma ? [true, false] : [false]) {
    const y = wasmAttention(q, k, v, 3, { mode: 'mul', by: 0.25 }, path);
    hashes[`attention.${path ? 'fma' : 'simd128'}`] = hash(y);
    y.dispose();
  }
  tf.dispose([q, k, v]);
}
process.stdout.write(JSON.stringify({ threads: wasmThreads(), fma, hashes, tensors: tf.memory().numTensors }) + '\n');
process.exit(0);
