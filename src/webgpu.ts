/**
 * The WebGPU backend in Node: tfjs-backend-webgpu 4.22 on Dawn (the `webgpu` package's dawn.node). Every Node
 * quirk of that pairing is handled here, in one place:
 *  - Dawn's WebGPU globals (GPUBufferUsage, …) and `navigator.gpu` must exist before tfjs-backend-webgpu is
 *    imported (it registers its backend only when it sees `navigator.gpu`);
 *  - tfjs calls `navigator.gpu.requestAdapter()` itself, so the adapter options are injected there: with
 *    MUCODEC_WEBGPU_ADAPTER=software, Dawn's OpenGL ES backend (`backend=opengles`, EGL surfaceless, Mesa llvmpipe:
 *    Debian packages libegl1, libegl-mesa0, libgl1-mesa-dri) at featureLevel 'compatibility';
 *  - tfjs reads `adapter.info` (Dawn has it; no requestAdapterInfo);
 *  - `dataSync()` on this backend goes through an OffscreenCanvas, which Node lacks: a synchronous read of a
 *    device tensor is turned into a clear error (and counted, for the tests); the codec reads with `await data()`;
 *  - a kernel binding a tensor over the adapter's maxStorageBufferBindingSize computes garbage without any
 *    exception on Dawn: every program's bindings are checked against the limit first (a clear error instead),
 *    and Dawn's uncaptured errors are raised at the next kernel or read (the limit is src/device.ts bindingLimit():
 *    the adapter's, or lower under MUCODEC_MAX_BINDING_BYTES for tests);
 *  - tfjs-webgpu's BufferManager keeps every freed buffer in a pool for reuse, without bound (GBs after a tiny-model
 *    window): the pool is capped (MUCODEC_WEBGPU_POOL_BYTES, default 1 GiB of free buffers; the oldest sizes are
 *    destroyed first) and emptied between windows and stages (releaseDevicePool), so GPU memory does not grow with
 *    the number of windows.
 */
import * as tf from '@tensorflow/tfjs-core';
import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { requestedAttention } from '../layers/attention.js';
import { ditMatmulProgram } from '../layers/webgpu/matmul_program.js';
import { bindingLimit, bindingLimitOverride } from './device.js';

const require = createRequire(import.meta.url);

export type WebGpuAdapterKind = 'hardware' | 'software';

export interface WebGpuAdapterReport {
  kind: WebGpuAdapterKind;
  /** vendor / architecture / device / description, as Dawn reports them */
  description: string;
  limits: { maxBufferSize: number; maxStorageBufferBindingSize: number; maxComputeWorkgroupStorageSize: number };
  features: string[];
}

interface DawnAdapterInfo { vendor?: string; architecture?: string; device?: string; description?: string; isFallbackAdapter?: boolean }
interface DawnAdapter { info?: DawnAdapterInfo; isFallbackAdapter?: boolean; limits: Record<string, number>; features: Iterable<string> }
interface DawnGpu { requestAdapter(o?: Record<string, unknown>): Promise<DawnAdapter | null> }

/** the adapter kind asked for: MUCODEC_WEBGPU_ADAPTER = hardware (default) | software */
export function requestedAdapterKind(): WebGpuAdapterKind {
  const v = (process.env.MUCODEC_WEBGPU_ADAPTER ?? 'hardware').trim().toLowerCase() || 'hardware';
  if (v !== 'hardware' && v !== 'software') throw new Error(`MUCODEC_WEBGPU_ADAPTER="${v}" is not one of: hardware, software`);
  return v;
}

/** Dawn needs the Vulkan loader on Linux for hardware adapters; probing without it only prints a native warning. */
function hasVulkanLoader(): boolean {
  const dirs = [...(process.env.LD_LIBRARY_PATH ?? '').split(':').filter(Boolean),
    '/usr/lib/x86_64-linux-gnu', '/usr/lib/aarch64-linux-gnu', '/usr/lib64', '/usr/lib', '/usr/local/lib', '/lib/x86_64-linux-gnu'];
  return dirs.some((d) => existsSync(join(d, 'libvulkan.so.1')));
}

function describe(a: DawnAdapter): string {
  const i = a.info ?? {};
  return [i.vendor, i.architecture, i.device, i.description].filter((s) => s && s.trim()).join(' ').trim() || 'unnamed adapter';
}

function isSoftware(a: DawnAdapter): boolean {
  return !!(a.isFallbackAdapter || a.info?.isFallbackAdapter) || /swiftshader|llvmpipe|lavapipe|softpipe|software/i.test(describe(a));
}

let report: WebGpuAdapterReport | null = null;

/**
 * Find the adapter MUCODEC_WEBGPU_ADAPTER asks for, then import tfjs-backend-webgpu and initialise it on that
 * adapter. Throws (with the reason) when there is none: no Vulkan loader, no adapter, only a software adapter
 * without MUCODEC_WEBGPU_ADAPTER=software, the EGL/Mesa packages missing for the software one.
 */
export async function initWebGpu(): Promise<WebGpuAdapterReport> {
  const kind = requestedAdapterKind();
  requestedAttention(); // MUCODEC_ATTENTION and MUCODEC_WEBGPU_MATMUL checked before any work
  ditMatmulProgram();
  if (kind === 'hardware' && process.platform === 'linux' && !hasVulkanLoader()) {
    throw new Error('no Vulkan loader (libvulkan.so.1) for Dawn (MUCODEC_WEBGPU_ADAPTER=software uses its OpenGL ES software adapter)');
  }
  if (kind === 'software') process.env.EGL_PLATFORM ??= 'surfaceless'; // read by EGL when Dawn opens its display
  const webgpu = require('webgpu') as { create: (o: string[]) => DawnGpu; globals: Record<string, unknown> };
  Object.assign(globalThis, webgpu.globals);
  const gpu = webgpu.create(kind === 'software' ? ['backend=opengles'] : []);
  const options = kind === 'software' ? { featureLevel: 'compatibility' } : { powerPreference: 'high-performance' };
  const adapter = await gpu.requestAdapter(options);
  if (!adapter) {
    throw new Error(kind === 'software'
      ? 'no WebGPU software adapter (Dawn OpenGL ES on Mesa: install libegl1 libegl-mesa0 libgl1-mesa-dri)'
      : 'no WebGPU adapter');
  }
  const software = isSoftware(adapter);
  if (software && kind === 'hardware') throw new Error(`only a software adapter (${describe(adapter)}; MUCODEC_WEBGPU_ADAPTER=software uses it)`);
  // tfjs asks navigator.gpu for its adapter with its own options: give it ours
  const injected = { requestAdapter: (o?: Record<string, unknown>) => gpu.requestAdapter({ ...o, ...options }) };
  (globalThis as Record<string, unknown>).navigator ??= {};
  Object.defineProperty((globalThis as unknown as { navigator: object }).navigator, 'gpu', { value: injected, configurable: true });
  await import('@tensorflow/tfjs-backend-webgpu');
  if (!(await tf.setBackend('webgpu'))) throw new Error('webgpu backend did not initialise');
  const limits = {
    maxBufferSize: adapter.limits.maxBufferSize!,
    maxStorageBufferBindingSize: adapter.limits.maxStorageBufferBindingSize!,
    maxComputeWorkgroupStorageSize: adapter.limits.maxComputeWorkgroupStorageSize!,
  };
  installGuards(tf.backend() as unknown as WebGpuBackendLike);
  boundPool(tf.backend() as unknown as WebGpuBackendLike);
  report = { kind: software ? 'software' : 'hardware', description: describe(adapter), limits, features: [...adapter.features].sort() };
  return report;
}

/** the adapter the webgpu backend runs on (null before initWebGpu succeeded) */
export function webGpuAdapter(): WebGpuAdapterReport | null {
  return report;
}

/** lines for `mucodec backend`: which adapter, its limits and features, whether it is software */
export function describeAdapter(r: WebGpuAdapterReport): string[] {
  const mib = (n: number) => `${(n / 2 ** 20).toFixed(0)} MiB`;
  return [
    `webgpu adapter: ${r.description} (${r.kind === 'software' ? 'software: for tests, not for speed' : 'hardware'})`,
    `webgpu limits: maxBufferSize ${mib(r.limits.maxBufferSize)}, maxStorageBufferBindingSize ${mib(r.limits.maxStorageBufferBindingSize)}, maxComputeWorkgroupStorageSize ${r.limits.maxComputeWorkgroupStorageSize} B`,
    `webgpu features: ${r.features.length ? r.features.join(', ') : 'none'}${r.features.includes('shader-f16') ? '' : ' (no shader-f16)'}`,
  ];
}

// --- guards -------------------------------------------------------------------------------------------------------

interface TensorInfoLike { dataId: object; shape: number[]; dtype: string }
interface WebGpuBackendLike {
  device: { addEventListener(type: 'uncapturederror', fn: (e: { error: { message: string } }) => void): void; lost?: Promise<{ message: string }> };
  tensorMap: { get(id: object): { values: unknown; dtype: string; shape: number[] } | undefined };
  runWebGPUProgram(program: { constructor: { name: string }; outputShape: number[] }, inputs: TensorInfoLike[], outputDtype: string, ...rest: unknown[]): TensorInfoLike;
  readSync(dataId: object): unknown;
  read(dataId: object): Promise<unknown>;
  bufferManager: BufferManagerLike;
  __mucodecGuarded?: boolean;
}

let syncReads = 0;
let pendingError: string | null = null;

/** synchronous reads of device data attempted on the webgpu backend since start (each one threw) */
export function webGpuSyncReads(): number {
  return syncReads;
}

function bytesOf(shape: readonly number[], dtype: string): number {
  return shape.reduce((a, b) => a * b, 1) * (dtype === 'complex64' ? 8 : 4); // tfjs-webgpu stores f32/i32/bool as 4 bytes
}

function raisePending(): void {
  if (pendingError === null) return;
  const m = pendingError;
  pendingError = null;
  throw new Error(`webgpu: the device reported an error, results since are not valid: ${m}`);
}

/** the binding check, exported for tests: throws when a tensor of `shape` would be bound over `limit` bytes */
export function checkBinding(what: string, shape: readonly number[], dtype: string, limit: number): void {
  const bytes = bytesOf(shape, dtype);
  if (bytes > limit) {
    throw new Error(`webgpu: ${what} would bind a (${shape.join(', ')}) ${dtype} tensor of ${(bytes / 2 ** 20).toFixed(1)} MiB, over this adapter's ` +
      `maxStorageBufferBindingSize (${(limit / 2 ** 20).toFixed(1)} MiB${bindingLimitOverride() === limit ? ', lowered by MUCODEC_MAX_BINDING_BYTES' : ''}); ` +
      'Dawn would compute garbage, so it is refused');
  }
}

function installGuards(be: WebGpuBackendLike): void {
  if (be.__mucodecGuarded) return;
  be.__mucodecGuarded = true;
  be.device.addEventListener('uncapturederror', (e) => { pendingError ??= e.error.message.split('\n')[0]!.slice(0, 300); });
  void be.device.lost?.then((i) => { pendingError ??= `device lost: ${i.message}`; });
  const run = be.runWebGPUProgram.bind(be);
  be.runWebGPUProgram = (program, inputs, outputDtype, ...rest) => {
    raisePending();
    const name = program.constructor.name.replace(/Program$/, '');
    const limit = bindingLimit();
    checkBinding(`${name}'s output`, program.outputShape, outputDtype, limit);
    for (const x of inputs) checkBinding(`${name}'s input`, x.shape, x.dtype, limit);
    return run(program, inputs, outputDtype, ...rest);
  };
  const readSync = be.readSync.bind(be);
  be.readSync = (dataId) => {
    const d = be.tensorMap.get(dataId);
    // values still on the host (small tensors tfjs computes on the CPU, data not yet uploaded) are no device read
    if (d && d.values == null && d.dtype !== 'string') {
      syncReads++;
      throw new Error(`webgpu: synchronous read (dataSync/arraySync) of a (${d.shape.join(', ')}) device tensor: ` +
        'tfjs-backend-webgpu cannot read synchronously in Node; read it with `await tensor.data()`');
    }
    return readSync(dataId);
  };
  const read = be.read.bind(be);
  be.read = async (dataId) => {
    raisePending();
    const v = await read(dataId);
    raisePending();
    return v;
  };
}

// --- buffer pool ---------------------------------------------------------------------------------------------------

interface GpuBufferLike { size: number; destroy(): void }
/** tfjs-backend-webgpu 4.22 buffer_manager.ts BufferManager (the fields used here) */
interface BufferManagerLike {
  freeBuffers: Map<string, GpuBufferLike[]>;
  numFreeBuffers: number;
  numBytesUsed: number;
  numBytesAllocated: number;
  releaseBuffer(buffer: GpuBufferLike, reuse?: boolean): void;
  __mucodecBounded?: boolean;
}

/** the cap on pooled free buffers: MUCODEC_WEBGPU_POOL_BYTES (bytes), default 1 GiB */
export function poolCapBytes(): number {
  const v = process.env.MUCODEC_WEBGPU_POOL_BYTES;
  if (v === undefined || v.trim() === '') return 2 ** 30;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) throw new Error(`MUCODEC_WEBGPU_POOL_BYTES="${v}" is not a non-negative integer number of bytes`);
  return n;
}

/** destroy pooled free buffers (oldest sizes first) until at most `keep` bytes of them remain */
function trimPool(bm: BufferManagerLike, keep: number): void {
  for (const [key, list] of bm.freeBuffers) {
    while (list.length && bm.numBytesAllocated - bm.numBytesUsed > keep) {
      const b = list.pop()!;
      b.destroy(); // WebGPU defers the destruction until the work already submitted with it is done
      bm.numBytesAllocated -= b.size;
      bm.numFreeBuffers--;
    }
    // the key is kept (tfjs's releaseBuffer returns early when the map is empty: it must stay non-empty)
    if (bm.numBytesAllocated - bm.numBytesUsed <= keep) return;
    void key;
  }
}

function boundPool(be: WebGpuBackendLike): void {
  const bm = be.bufferManager;
  if (bm.__mucodecBounded) return;
  bm.__mucodecBounded = true;
  const cap = poolCapBytes();
  const release = bm.releaseBuffer.bind(bm);
  bm.releaseBuffer = (buffer, reuse = true) => {
    release(buffer, reuse);
    if (bm.numBytesAllocated - bm.numBytesUsed > cap) trimPool(bm, cap);
  };
}

export interface DevicePoolStats {
  /** bytes of buffers tensors hold */
  usedBytes: number;
  /** bytes of every buffer the backend holds (used + pooled free) */
  allocatedBytes: number;
  /** pooled free buffers */
  freeBuffers: number;
}

/** the webgpu backend's buffer bytes (null on another backend) */
export function devicePoolStats(): DevicePoolStats | null {
  if (tf.getBackend() !== 'webgpu') return null;
  const bm = (tf.backend() as unknown as WebGpuBackendLike).bufferManager;
  return { usedBytes: bm.numBytesUsed, allocatedBytes: bm.numBytesAllocated, freeBuffers: bm.numFreeBuffers };
}

/**
 * Destroy every pooled free buffer of the webgpu backend (a no-op on other backends): called between windows and
 * stages, so what a window allocated for its temporaries is not carried into the next. Buffers tensors hold stay.
 */
export function releaseDevicePool(): void {
  if (tf.getBackend() !== 'webgpu') return;
  trimPool((tf.backend() as unknown as WebGpuBackendLike).bufferManager, 0);
}
