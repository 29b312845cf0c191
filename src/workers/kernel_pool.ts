/**
 * Threads for our own heap kernels (src/simd/gemm.ts): N − 1 Node worker_threads that instantiate the same
 * run-time assembled modules on the SAME shared WebAssembly.Memory as the tfjs-wasm backend (the threaded build's
 * heap is a SharedArrayBuffer), so a kernel's row range can be split between the calling thread and the workers.
 * N = the backend's thread count (`--threads` / MUCODEC_THREADS, src/workers/wasm_threads.ts); no pool when the heap
 * is not shared (one thread). Workers are unref'd: they never keep the process alive.
 *
 * Dispatch goes through shared memory, not messages: each worker owns a command slot (sequence number, module id,
 * arguments) in a SharedArrayBuffer and loops on it — spinning for SPIN_MS after each part (kernels come back to
 * back: a layer is dozens of calls) and sleeping in Atomics.wait after that; the caller stores the command, notifies,
 * runs its own part, then spins (then waits) on each worker's done sequence. A module a worker has not instantiated
 * yet travels once over a MessageChannel the worker reads synchronously (receiveMessageOnPort). A postMessage per
 * part cost ≈ 60–80 µs of wake-up per split (measured on 2 cores); the vocoder splits ≈ 4000 kernels per second of
 * audio.
 */
import { MessageChannel, Worker, receiveMessageOnPort, type MessagePort } from 'node:worker_threads';
import { assemble, type Fn } from '../simd/asm.js';
import { heapMemory, moduleFor, type WasmBackendLike } from '../simd/heap.js';
import { wasmThreads } from './wasm_threads.js';

/** Int32 words per worker slot: [seq, done, err, module id, nargs, args…] (256 bytes: no two slots share a cache line) */
const SLOT = 64;
const MAX_ARGS = SLOT - 5;
/** how long a worker spins for the next command, and the caller for a worker's part, before sleeping */
const SPIN_MS = 0.25;

const WORKER_SRC = `
const { workerData, receiveMessageOnPort, parentPort } = require('node:worker_threads');
const { memory, ctl, slot, port, SLOT, SPIN_MS } = workerData;
const f = new Int32Array(ctl), base = slot * SLOT;
const mods = [];
let last = 0;
for (;;) {
  let seq = Atomics.load(f, base);
  if (seq === last) {
    const t0 = performance.now();
    for (let i = 0; (seq = Atomics.load(f, base)) === last; i++) {
      if ((i & 255) === 255 && performance.now() - t0 > SPIN_MS) { Atomics.wait(f, base, last); }
    }
  }
  last = seq;
  const id = f[base + 3], n = f[base + 4];
  let err = 0;
  try {
    while (!mods[id]) {
      const m = receiveMessageOnPort(port);
      if (m) mods[m.message.id] = new WebAssembly.Instance(m.message.module, { e: { m: memory } }).exports;
    }
    const args = new Array(n);
    for (let i = 0; i < n; i++) args[i] = f[base + 5 + i];
    mods[id].run(...args);
  } catch (e) { err = 1; parentPort.postMessage(String(e && e.stack || e)); }
  Atomics.store(f, base + 2, err);
  Atomics.store(f, base + 1, seq);
  Atomics.notify(f, base + 1);
}
`;

export class KernelPool {
  private readonly workers: Array<{ w: Worker; port: MessagePort; ids: Set<number> }> = [];
  private readonly flags: Int32Array;
  private seq = 0;
  private readonly modules = new Map<string, { id: number; module: WebAssembly.Module }>();

  constructor(readonly memory: WebAssembly.Memory, readonly threads: number) {
    const ctl = new SharedArrayBuffer(4 * SLOT * Math.max(1, threads));
    this.flags = new Int32Array(ctl);
    for (let i = 0; i < threads - 1; i++) {
      const { port1, port2 } = new MessageChannel();
      const w = new Worker(WORKER_SRC, { eval: true, workerData: { memory, ctl, slot: i, port: port2, SLOT, SPIN_MS }, transferList: [port2] });
      w.on('message', (m: string) => process.stderr.write(`kernel pool worker ${i}: ${m}\n`));
      w.unref();
      port1.unref();
      this.workers.push({ w, port: port1, ids: new Set() });
    }
  }

  private moduleOf(key: string, build: () => Fn[]): { id: number; module: WebAssembly.Module } {
    let m = this.modules.get(key);
    if (!m) { m = { id: this.modules.size, module: new WebAssembly.Module(assemble(build(), true)) }; this.modules.set(key, m); }
    return m;
  }

  /**
   * Split rows [0, m) in `threads` parts (multiples of `align` rows): worker i runs `run(...args, m0, m1, i)` of module
   * `key` (i: the part, for kernels that need a scratch of their own; others ignore it), this thread runs
   * `here(m0, m1, threads − 1)` on the last part; returns when all are done. Arguments are int32 (heap offsets, sizes).
   */
  splitRows(key: string, build: () => Fn[], m: number, align: number, here: (m0: number, m1: number, part: number) => void, args: number[]): void {
    if (args.length + 3 > MAX_ARGS) throw new Error(`kernel pool: ${args.length} arguments for ${key} (at most ${MAX_ARGS - 3})`);
    const parts = this.workers.length + 1;
    const chunk = Math.ceil(m / parts / align) * align;
    const seq = ++this.seq;
    const posted: number[] = [];
    const f = this.flags;
    this.workers.forEach((wk, i) => {
      const m0 = i * chunk, m1 = Math.min(m, (i + 1) * chunk);
      if (m0 >= m1) return;
      const mod = this.moduleOf(key, build);
      if (!wk.ids.has(mod.id)) { wk.port.postMessage({ id: mod.id, module: mod.module }); wk.ids.add(mod.id); }
      const base = i * SLOT, all = [...args, m0, m1, i];
      f[base + 3] = mod.id;
      f[base + 4] = all.length;
      for (let j = 0; j < all.length; j++) f[base + 5 + j] = all[j]!;
      Atomics.store(f, base, seq);
      Atomics.notify(f, base);
      posted.push(i);
    });
    const h0 = Math.min(m, this.workers.length * chunk);
    if (h0 < m) here(h0, m, this.workers.length);
    for (const i of posted) {
      const at = i * SLOT + 1;
      const t0 = performance.now();
      for (let n = 0; Atomics.load(f, at) !== seq; n++) {
        if ((n & 255) === 255 && performance.now() - t0 > SPIN_MS) Atomics.wait(f, at, Atomics.load(f, at), 1000);
      }
      if (Atomics.load(f, i * SLOT + 2)) throw new Error(`kernel pool: worker ${i} failed in ${key}`);
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
