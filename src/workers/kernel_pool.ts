/**
 * Threads for our own heap kernels (src/simd/gemm.ts): N − 1 Node worker_threads that instantiate the same
 * run-time assembled modules on the SAME shared WebAssembly.Memory as the tfjs-wasm backend (the threaded build's
 * heap is a SharedArrayBuffer), so a kernel's row range can be split between the calling thread and the workers.
 * The caller posts each worker its part, runs its own part, then blocks in Atomics.wait until every worker has
 * stored its sequence number. N = the backend's thread count (`--threads` / MUCODEC_THREADS, src/workers/wasm_threads.ts);
 * no pool when the heap is not shared (one thread). Workers are unref'd: they never keep the process alive.
 */
import { Worker } from 'node:worker_threads';
import { assemble, type Fn } from '../simd/asm.js';
import { heapMemory, moduleFor, type WasmBackendLike } from '../simd/heap.js';
import { wasmThreads } from './wasm_threads.js';

const WORKER_SRC = `
const { parentPort, workerData } = require('node:worker_threads');
const { memory, ctl, slot } = workerData;
const flags = new Int32Array(ctl);
const mods = new Map();
parentPort.on('message', (msg) => {
  if (msg.module) mods.set(msg.key, new WebAssembly.Instance(msg.module, { e: { m: memory } }).exports);
  let err = 0;
  try { mods.get(msg.key)[msg.fn](...msg.args); } catch (e) { err = 1; parentPort.postMessage(String(e && e.stack || e)); }
  Atomics.store(flags, 2 * slot + 1, err);
  Atomics.store(flags, 2 * slot, msg.seq);
  Atomics.notify(flags, 2 * slot);
});
`;

export class KernelPool {
  private readonly workers: Array<{ w: Worker; keys: Set<string> }> = [];
  private readonly flags: Int32Array;
  private seq = 0;
  private readonly modules = new Map<string, WebAssembly.Module>();

  constructor(readonly memory: WebAssembly.Memory, readonly threads: number) {
    const ctl = new SharedArrayBuffer(8 * Math.max(1, threads));
    this.flags = new Int32Array(ctl);
    for (let i = 0; i < threads - 1; i++) {
      const w = new Worker(WORKER_SRC, { eval: true, workerData: { memory, ctl, slot: i } });
      w.on('message', (m: string) => process.stderr.write(`kernel pool worker ${i}: ${m}\n`));
      w.unref();
      this.workers.push({ w, keys: new Set() });
    }
  }

  private moduleOf(key: string, build: () => Fn[]): WebAssembly.Module {
    let m = this.modules.get(key);
    if (!m) { m = new WebAssembly.Module(assemble(build(), true)); this.modules.set(key, m); }
    return m;
  }

  /**
   * Split rows [0, m) in `threads` parts (multiples of `align` rows): worker i runs `run(...args, m0, m1, i)` of module
   * `key` (i: the part, for kernels that need a scratch of their own; others ignore it), this thread runs
   * `here(m0, m1, threads − 1)` on the last part; returns when all are done.
   */
  splitRows(key: string, build: () => Fn[], m: number, align: number, here: (m0: number, m1: number, part: number) => void, args: number[]): void {
    const parts = this.workers.length + 1;
    const chunk = Math.ceil(m / parts / align) * align;
    const seq = ++this.seq;
    const posted: number[] = [];
    this.workers.forEach((wk, i) => {
      const m0 = i * chunk, m1 = Math.min(m, (i + 1) * chunk);
      if (m0 >= m1) return;
      const first = !wk.keys.has(key);
      wk.w.postMessage({ key, seq, fn: 'run', args: [...args, m0, m1, i], ...(first ? { module: this.moduleOf(key, build) } : {}) });
      wk.keys.add(key);
      posted.push(i);
    });
    const h0 = Math.min(m, this.workers.length * chunk);
    if (h0 < m) here(h0, m, this.workers.length);
    for (const i of posted) {
      for (;;) {
        const v = Atomics.load(this.flags, 2 * i);
        if (v === seq) break;
        Atomics.wait(this.flags, 2 * i, v, 1000);
      }
      if (Atomics.load(this.flags, 2 * i + 1)) throw new Error(`kernel pool: worker ${i} failed in ${key}`);
    }
  }
}

const pools = new WeakMap<WebAssembly.Memory, KernelPool>();

/** the pool for this backend's heap (null when single-threaded or the heap is not shared) */
export function kernelPool(b: WasmBackendLike): KernelPool | null {
  const n = wasmThreads() ?? 1;
  if (n <= 1) return null;
  const mem = heapMemory(b);
  if (!mem || !(mem.buffer instanceof SharedArrayBuffer)) return null;
  let p = pools.get(mem);
  if (!p) { p = new KernelPool(mem, n); pools.set(mem, p); }
  return p;
}

/**
 * `run(...args, m0, m1, part)` of the module `key` over rows [0, m): split between this thread and the pool (chunks a
 * multiple of `align`) when the heap is shared and m ≥ `minRows`, else in one call here (part 0). `part` < splitParts()
 * indexes a per-call scratch slot for kernels that need one (src/simd/attention.ts); the others take no such parameter
 * and wasm ignores the extra argument. The kernels' row ranges
 * must be independent (each output row written by one call), so the result does not depend on the split.
 */
export function runSplit(b: WasmBackendLike, key: string, build: () => Fn[], args: number[], m: number, minRows: number, align = 1): void {
  const ex = moduleFor(b, key, build);
  const pool = kernelPool(b);
  if (pool && m >= minRows) pool.splitRows(key, build, m, align, (m0, m1, part) => ex.run!(...args, m0, m1, part), args);
  else ex.run!(...args, 0, m, 0);
}

/** how many parts runSplit may run at once (each `run` gets its part index below this: one scratch slot each) */
export function splitParts(b: WasmBackendLike): number {
  return kernelPool(b)?.threads ?? 1;
}
