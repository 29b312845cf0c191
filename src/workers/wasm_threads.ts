/**
 * Multi-threaded tfjs-wasm in Node: XNNPACK's pthreadpool on emscripten pthreads (Node worker_threads), so every
 * XNNPACK kernel (matMul, conv2d, depthwise conv, most element-wise ops) uses N cores while tensors and weights
 * live ONCE, in one shared wasm heap (a SharedArrayBuffer-backed WebAssembly.Memory that every pthread maps).
 *
 * tfjs-backend-wasm 4.22 ships the threaded SIMD binary and its emscripten loader already supports Node
 * (worker_threads + fs), but three browser-only details keep it off in Node; this module works around exactly those,
 * before the backend initialises:
 *  1. the flag WASM_HAS_MULTITHREAD_SUPPORT is hard-wired to false under Node (tfjs issue 3830) → set it to true;
 *  2. the pthread worker script and the main script are handed over as Blob URLs (`URL.createObjectURL`), which a
 *     Node Worker / `importScripts` (fs.readFileSync) cannot open → `URL.createObjectURL` returns the path of
 *     src/workers/pthread_worker.cjs for the worker Blob (only while the backend initialises): a file shipped with
 *     this package that runs tfjs's own `wasm-out/…worker.js` contents behind a prelude mapping the main-script
 *     Blob to tfjs's `wasm-out/tfjs-backend-wasm-threaded-simd.js` (nothing is written to a temp or cache folder);
 *  3. the C++ side caps the pool at emscripten_num_logical_cores() / 2 (it assumes 2 hyper-threads per core;
 *     = 1 on a 2-vCPU machine) → `os.cpus()` reports 2·N entries while the backend initialises, and
 *     `setThreadsCount(N)` asks for N.
 * Results do not depend on N: XNNPACK splits the output tiles between threads, every output element is
 * computed by the same micro-kernel in the same order (bit-identical; tests/threads.test.ts checks it).
 *
 * Use: `requestWasmThreads(n)` (or env MUCODEC_THREADS) before the first `initBackend()`; `wasmThreads()` tells
 * what the running backend uses. n = 1 keeps the plain single-threaded SIMD binary (no worker threads at all).
 */
import * as tf from '@tensorflow/tfjs-core';
// the same module instance that registered the 'wasm' backend (under vite-node the ESM build, under Node the CJS one)
import { getThreadsCount, setThreadsCount } from '@tensorflow/tfjs-backend-wasm';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { existsSync } from 'node:fs';
import * as os from 'node:os';
import { packagePath } from '../package_files.js';

const require = createRequire(import.meta.url);

/** default when neither requestWasmThreads() nor MUCODEC_THREADS says: one thread per core */
const DEFAULT_THREADS = 'auto';

let requested: number | null = null;
let applied: number | null = null;

/** Number of cores Node sees (os.availableParallelism when present). */
export function coreCount(): number {
  const ap = (os as unknown as { availableParallelism?: () => number }).availableParallelism;
  return Math.max(1, ap ? ap() : os.cpus().length);
}

/** Parse a thread count ('auto' / undefined → cores). */
export function parseThreads(v: string | number | undefined | null): number {
  if (v === undefined || v === null || v === '' || v === 'auto') return coreCount();
  const n = typeof v === 'number' ? v : Number(v);
  if (!Number.isInteger(n) || n < 1 || n > 64) throw new Error(`threads: expected a whole number 1..64 or "auto", got "${v}"`);
  return n;
}

/**
 * Ask for N XNNPACK threads in the wasm backend. Must happen before the wasm backend initialises; later calls
 * with a different N throw (a wasm backend cannot change its pool once built).
 */
export function requestWasmThreads(n: number | string | undefined): number {
  const t = parseThreads(n);
  if (applied !== null && applied !== t) {
    throw new Error(`threads: the wasm backend already runs with ${applied} thread(s); ${t} must be chosen before it initialises`);
  }
  requested = t;
  return t;
}

/** The thread count that will be (or was) used: requested → MUCODEC_THREADS → number of cores. */
export function wantedWasmThreads(): number {
  if (applied !== null) return applied;
  if (requested !== null) return requested;
  return parseThreads(process.env.MUCODEC_THREADS ?? DEFAULT_THREADS);
}

/** Threads the initialised wasm backend runs with (null before it initialises / for other backends). */
export function wasmThreads(): number | null {
  return applied;
}

/** The pthread worker script that ships with the package (no copy in a temp or cache folder). */
function pthreadWorkerFile(pkgDir: string): string {
  for (const f of ['tfjs-backend-wasm-threaded-simd.js', 'tfjs-backend-wasm-threaded-simd.worker.js']) {
    if (!existsSync(join(pkgDir, 'wasm-out', f))) throw new Error(`threads: ${pkgDir}/wasm-out lacks the threaded SIMD loader (${f})`);
  }
  const file = packagePath('src', 'workers', 'pthread_worker.cjs');
  if (!existsSync(file)) throw new Error(`threads: ${file} is missing`);
  return file;
}

/**
 * Called by src/backend.ts right before `tf.setBackend('wasm')`; returns a function to call once the backend is
 * up (restores the patched globals and records the thread count).
 */
export function prepareWasmBackend(): () => void {
  const n = wantedWasmThreads();
  if (n <= 1) {
    tf.env().set('WASM_HAS_MULTITHREAD_SUPPORT', false);
    setThreadsCount(1);
    return () => { applied = 1; };
  }
  const pkgDir = dirname(require.resolve('@tensorflow/tfjs-backend-wasm/package.json'));
  let workerFile: string;
  try {
    workerFile = pthreadWorkerFile(pkgDir);
  } catch (e) {
    // no threaded loader: run single-threaded rather than lose the wasm backend
    process.emitWarning(`mucodec: wasm threads unavailable (${(e as Error).message}); running single-threaded`);
    tf.env().set('WASM_HAS_MULTITHREAD_SUPPORT', false);
    setThreadsCount(1);
    return () => { applied = 1; };
  }
  tf.env().set('WASM_HAS_MULTITHREAD_SUPPORT', true);
  setThreadsCount(n);
  const urlCtor = URL as unknown as { createObjectURL: (b: unknown) => string };
  const origCreate = urlCtor.createObjectURL;
  urlCtor.createObjectURL = (b: unknown) =>
    (b && (b as { type?: string }).type === 'application/javascript' ? workerFile : origCreate.call(URL, b));
  const osMod = require('node:os') as { cpus: typeof os.cpus };
  const origCpus = osMod.cpus;
  osMod.cpus = () => {
    const c = origCpus.call(osMod);
    return Array.from({ length: 2 * n }, (_, i) => c[i % c.length]!);
  };
  return () => {
    urlCtor.createObjectURL = origCreate;
    osMod.cpus = origCpus;
    let got = 1;
    try { got = getThreadsCount(); } catch { /* not initialised */ }
    applied = got;
    // pthreadpool's threads run for the process's lifetime: do not let them keep Node alive at exit
    const mod = (tf.findBackend('wasm') as unknown as { wasm?: { PThread?: { runningWorkers?: Array<{ unref?: () => void }> } } } | null)?.wasm;
    for (const w of mod?.PThread?.runningWorkers ?? []) w.unref?.();
  };
}
