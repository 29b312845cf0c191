/**
 * Custom kernels on the tfjs-wasm heap: WebAssembly SIMD modules assembled at run time (./asm.ts) import the wasm
 * backend's own memory, so they read and write tfjs tensors in place (no copies, no host round trip). Each kernel
 * is registered as a tfjs kernel for the 'wasm' backend and run through the engine (`runCustom`), so its outputs
 * are ordinary tensors: tidy, dispose and tf.memory() work as for built-in ops.
 *
 * `simdAvailable()` is false on other backends (cpu, tensorflow, webgpu); callers then use plain tfjs ops.
 */
import * as tf from '@tensorflow/tfjs-core';
import { assemble, type Fn } from './asm.js';

interface DataInfo { memoryOffset: number; shape: number[]; dtype: string }
export interface WasmBackendLike {
  wasm: { asm: { memory?: WebAssembly.Memory }; wasmMemory?: WebAssembly.Memory; HEAPU8: Uint8Array };
  dataIdMap: { get(id: object): DataInfo | undefined };
  makeOutput(shape: number[], dtype: string): tf.TensorInfo;
}

/** the wasm backend object when it is the active backend, else null */
export function wasmBackend(): WasmBackendLike | null {
  if (tf.getBackend() !== 'wasm') return null;
  const b = tf.backend() as unknown as WasmBackendLike;
  return b.wasm && heapMemory(b) ? b : null;
}

/** the backend's WebAssembly.Memory: exported by the single-threaded build, created in JS (shared) by the threaded one */
export function heapMemory(b: WasmBackendLike): WebAssembly.Memory | null {
  const m = b.wasm.asm?.memory ?? b.wasm.wasmMemory;
  return m instanceof WebAssembly.Memory ? m : null;
}

export function simdAvailable(): boolean {
  return wasmBackend() !== null && typeof WebAssembly.validate === 'function';
}

/** byte offset of a tensor's data in the wasm heap */
export function offsetOf(b: WasmBackendLike, t: tf.TensorInfo): number {
  const d = b.dataIdMap.get(t.dataId);
  if (!d) throw new Error('simd: tensor is not on the wasm backend');
  return d.memoryOffset;
}

type Exports = Record<string, (...a: number[]) => number | void>;
const modules = new WeakMap<WebAssembly.Memory, Map<string, Exports>>();

/** Instantiate (once per key and heap) the module made of `build()`'s functions; returns its exports. */
export function moduleFor(b: WasmBackendLike, key: string, build: () => Fn[]): Exports {
  const mem = heapMemory(b);
  if (!mem) throw new Error('simd: the wasm backend exposes no memory');
  let m = modules.get(mem);
  if (!m) { m = new Map(); modules.set(mem, m); }
  const hit = m.get(key);
  if (hit) return hit;
  const shared = typeof SharedArrayBuffer !== 'undefined' && mem.buffer instanceof SharedArrayBuffer;
  const bytes = assemble(build(), shared);
  const inst = new WebAssembly.Instance(new WebAssembly.Module(bytes), { e: { m: mem } });
  const ex = inst.exports as unknown as Exports;
  m.set(key, ex);
  return ex;
}

export type CustomKernel = (b: WasmBackendLike, inputs: tf.TensorInfo[], attrs: Record<string, unknown>) => tf.TensorInfo | tf.TensorInfo[];

const defined = new Map<string, { inputs: string[]; fn: CustomKernel }>();

/** Declare a custom kernel (registered with tfjs for 'wasm' on first use). `inputs`: the names of its inputs, in order. */
export function defineKernel(name: string, inputs: string[], fn: CustomKernel): void {
  defined.set(name, { inputs, fn });
}

/** Run a custom kernel through the tfjs engine (its outputs are tracked tensors). */
export function runCustom<T extends tf.Tensor = tf.Tensor>(name: string, inputs: tf.Tensor[], attrs: Record<string, unknown> = {}): T {
  const d = defined.get(name);
  if (!d) throw new Error(`simd: unknown kernel ${name}`);
  if (!tf.getKernel(name, 'wasm')) {
    tf.registerKernel({
      kernelName: name, backendName: 'wasm',
      kernelFunc: ({ inputs: ins, backend, attrs: at }) =>
        d.fn(backend as unknown as WasmBackendLike, d.inputs.map((n) => ins[n] as tf.TensorInfo), (at ?? {}) as Record<string, unknown>),
    });
  }
  const named: Record<string, tf.Tensor> = {};
  d.inputs.forEach((n, i) => { named[n] = inputs[i]!; });
  return tf.engine().runKernel(name, named as unknown as tf.NamedTensorMap, attrs as unknown as tf.NamedAttrMap) as unknown as T;
}

const scratches = new WeakMap<object, { at: number; bytes: number }>();

/**
 * A scratch area in the wasm heap for a kernel's intermediates (Winograd tile blocks, attention score slots): one per
 * heap, grown (doubling) as needed, never shrunk. Kernels run one at a time, so they share it; a kernel split over
 * threads gives each part a slot of its own inside it.
 */
export function heapScratch(be: WasmBackendLike, bytes: number): number {
  const mod = be.wasm as unknown as { _malloc: (n: number) => number; _free: (p: number) => void };
  let t = scratches.get(be.wasm);
  if (!t || t.bytes < bytes) {
    if (t) mod._free(t.at);
    const n = Math.max(bytes, 2 * (t?.bytes ?? 0), 1 << 16);
    t = { at: mod._malloc(n), bytes: n };
    if (!t.at) throw new Error(`simd: no ${n} bytes of wasm heap for a kernel scratch`);
    scratches.set(be.wasm, t);
  }
  return t.at;
}
