/**
 * Child process of tests/webgpu_kernels.test.ts: on webgpu (MUCODEC_WEBGPU_ADAPTER from the env), the fused attention
 * kernel against the plain tfjs-op attention on random inputs (several head dims, lengths off the tiles, Tk ≠ Tq, the
 * three scaling orders), and which form multiHeadAttention takes. One "RESULT {json}" line on stdout.
 * `-- matmul`: the DiT's `linear` on each of tfjs-webgpu's matMul programs (layers/webgpu/matmul_program.ts) against a
 * float64 host product, on shapes off every tile.
 * `-- bench`: bench/webgpu_kernels.ts on small shapes (that it runs and reports; the timings mean nothing here).
 * `-- parity <dir>...`: `mucodec parity` on those cases through the CLI's entry point, on webgpu, then a RESULT line
 * with the exit code and how many attention calls each form computed.
 */
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../../src/backend.js';
import { attentionCalls, attentionImplFor, multiHeadAttention } from '../../layers/attention.js';
import { main } from '../../src/cli.js';
import { linear } from '../../src/dit/weights.js';
import { MATMUL_PROGRAMS, setDitMatmulProgram } from '../../layers/webgpu/matmul_program.js';
import { benchWebGpuKernels } from '../../bench/webgpu_kernels.js';

const say = (o: unknown): void => { console.log(`RESULT ${JSON.stringify(o)}`); };

/** deterministic N(0, σ²)-ish values (sum of uniforms from an LCG), so a failure can be rerun */
function randn(n: number, seed: number, sigma: number): Float32Array {
  let s = seed >>> 0;
  const u = (): number => { s = (Math.imul(s, 1664525) + 1013904223) >>> 0; return s / 2 ** 32; };
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = (u() + u() + u() + u() - 2) * Math.sqrt(3) * sigma;
  return out;
}

/** float64 attention on the host: the yardstick both float32 forms are measured against */
function reference(q: Float32Array, k: Float32Array, v: Float32Array, c: Shape): Float64Array {
  const d = c.heads * c.dh, out = new Float64Array(c.b * c.tq * d), s = new Float64Array(c.tk);
  for (let b = 0; b < c.b; b++) for (let h = 0; h < c.heads; h++) for (let i = 0; i < c.tq; i++) {
    let m = -Infinity;
    for (let j = 0; j < c.tk; j++) {
      let dot = 0;
      for (let e = 0; e < c.dh; e++) dot += q[(b * c.tq + i) * d + h * c.dh + e]! * k[(b * c.tk + j) * d + h * c.dh + e]!;
      s[j] = c.mode === 'divide' ? dot / Math.sqrt(c.dh) : dot * c.dh ** -0.5;
      m = Math.max(m, s[j]!);
    }
    let l = 0;
    for (let j = 0; j < c.tk; j++) { s[j] = Math.exp(s[j]! - m); l += s[j]!; }
    for (let e = 0; e < c.dh; e++) {
      let acc = 0;
      for (let j = 0; j < c.tk; j++) acc += s[j]! * v[(b * c.tk + j) * d + h * c.dh + e]!;
      out[(b * c.tq + i) * d + h * c.dh + e] = acc / l;
    }
  }
  return out;
}

interface Shape { b: number; tq: number; tk: number; heads: number; dh: number; mode: 'query' | 'scores' | 'divide'; sigma: number }

await initBackend('webgpu');
const args = process.argv.slice(2).filter((a) => a !== '--');
if (args[0] === 'parity') {
  const code = await main(['parity', ...args.slice(1)]);
  say({ code, calls: attentionCalls() });
  process.exit(0);
}
if (args[0] === 'bench') {
  const start = tf.memory().numTensors;
  const r = await benchWebGpuKernels({ backend: 'webgpu', rows: 8, tokens: 40, runs: 1, programs: ['auto', 'packed'], log: () => {} });
  say({ ...r, leaked: tf.memory().numTensors - start });
  process.exit(0);
}
if (args[0] === 'matmul') {
  const start = tf.memory().numTensors;
  const out = [];
  // the programs tfjs runs, by class name (MatMulPackedProgram, …), to show which one each choice took
  const be = tf.backend() as unknown as { runWebGPUProgram: (p: { constructor: { name: string } }, ...r: unknown[]) => unknown };
  const ran: string[] = [];
  const run = be.runWebGPUProgram.bind(be);
  be.runWebGPUProgram = (p, ...r) => { ran.push(p.constructor.name); return run(p, ...r); };
  for (const [m, kk, n] of [[37, 72, 100], [130, 264, 40], [3, 2100, 24]] as Array<[number, number, number]>) {
    const a = randn(m * kk, m, 1), w = randn(kk * n, kk, 0.1), bias = randn(n, n, 0.1);
    const ref = new Float64Array(m * n);
    for (let i = 0; i < m; i++) for (let j = 0; j < n; j++) {
      let acc = bias[j]!;
      for (let e = 0; e < kk; e++) acc += a[i * kk + e]! * w[e * n + j]!;
      ref[i * n + j] = acc;
    }
    const x = tf.tensor2d(a, [m, kk]);
    const l = { wT: tf.tensor2d(w, [kk, n]), b: tf.tensor1d(bias) };
    for (const p of MATMUL_PROGRAMS) {
      setDitMatmulProgram(p);
      ran.length = 0;
      const y = linear(x, l);
      const programs = ran.filter((n) => n.startsWith('MatMul'));
      const v = (await y.data()) as Float32Array;
      y.dispose();
      let err = 0, peak = 0;
      for (let i = 0; i < v.length; i++) { err = Math.max(err, Math.abs(v[i]! - ref[i]!)); peak = Math.max(peak, Math.abs(ref[i]!)); }
      out.push({ program: p, programs, shape: [m, kk, n], err, peak });
    }
    setDitMatmulProgram(null);
    x.dispose(); l.wT.dispose(); l.b.dispose();
  }
  say({ cases: out, leaked: tf.memory().numTensors - start });
  process.exit(0);
}
const shapes: Shape[] = [
  { b: 2, tq: 100, tk: 100, heads: 22, dh: 72, mode: 'query', sigma: 2 }, // the DiT's heads and order, 100 = 64 + 36
  { b: 2, tq: 37, tk: 37, heads: 5, dh: 12, mode: 'divide', sigma: 2 }, // the MuQ fixture's conformer
  { b: 1, tq: 130, tk: 77, heads: 3, dh: 24, mode: 'scores', sigma: 3 }, // Tk ≠ Tq, neither a multiple of a tile
  { b: 1, tq: 70, tk: 300, heads: 2, dh: 64, mode: 'divide', sigma: 4 }, // MuQ's real head dim, many key tiles, peaked softmax
  { b: 1, tq: 1, tk: 1, heads: 1, dh: 4, mode: 'scores', sigma: 1 },
];
const start = tf.memory().numTensors;
const cases = [];
for (const [i, c] of shapes.entries()) {
  const d = c.heads * c.dh;
  const qa = randn(c.b * c.tq * d, 11 + i, c.sigma), ka = randn(c.b * c.tk * d, 23 + i, c.sigma), va = randn(c.b * c.tk * d, 37 + i, 1);
  const ref = reference(qa, ka, va, c);
  const q = tf.tensor3d(qa, [c.b, c.tq, d]), k = tf.tensor3d(ka, [c.b, c.tk, d]), v = tf.tensor3d(va, [c.b, c.tk, d]);
  const opts = c.mode === 'divide' ? { divideScores: Math.sqrt(c.dh) } : { scale: c.dh ** -0.5, scaleQuery: c.mode === 'query' };
  const chosen = attentionImplFor(q, k, v, c.heads);
  const fused = multiHeadAttention(q, k, v, c.heads, { ...opts, impl: 'fused' }).out;
  const plain = multiHeadAttention(q, k, v, c.heads, { ...opts, impl: 'plain' }).out;
  const [f, p] = await Promise.all([fused.data(), plain.data()]) as [Float32Array, Float32Array];
  let maxAbs = 0, fusedErr = 0, plainErr = 0, peak = 0, finite = true;
  for (let j = 0; j < p.length; j++) {
    if (!Number.isFinite(f[j]!)) finite = false;
    maxAbs = Math.max(maxAbs, Math.abs(f[j]! - p[j]!));
    fusedErr = Math.max(fusedErr, Math.abs(f[j]! - ref[j]!));
    plainErr = Math.max(plainErr, Math.abs(p[j]! - ref[j]!));
    peak = Math.max(peak, Math.abs(ref[j]!));
  }
  cases.push({ ...c, chosen, maxAbs, fusedErr, plainErr, peak, finite, shape: fused.shape });
  for (const t of [q, k, v, fused, plain]) t.dispose();
}
say({ backend: tf.getBackend(), cases, leaked: tf.memory().numTensors - start });
process.exit(0); // dawn.node keeps the process alive otherwise
