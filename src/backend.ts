/**
 * Backend choice. Order (unless MUCODEC_BACKEND / --backend names one): tensorflow-gpu (tfjs-node-gpu, CUDA)
 * → tensorflow (tfjs-node, native CPU) → webgpu (Dawn via the `webgpu` package; hardware adapters only)
 * → wasm (SIMD, one thread in Node) → cpu (pure JS). The native and webgpu backends are optional
 * dependencies: when their install failed (no libtensorflow download here) they are skipped with a reason.
 */
import * as tf from '@tensorflow/tfjs-core';
import './chained_ops.js';
import '@tensorflow/tfjs-backend-cpu';
// one instance of the wasm backend: through this ESM import only (a require() of it as well loads its CJS build a
// second time under ESM-first loaders such as vite-node, registering every kernel twice)
import { setWasmPaths } from '@tensorflow/tfjs-backend-wasm';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { existsSync } from 'node:fs';
import { prepareWasmBackend, wasmThreads } from './workers/wasm_threads.js';
import { installWasmKernelFixes } from './workers/wasm_kernels.js';

export type BackendName = 'tensorflow-gpu' | 'tensorflow' | 'webgpu' | 'wasm' | 'cpu';
export const BACKEND_ORDER: BackendName[] = ['tensorflow-gpu', 'tensorflow', 'webgpu', 'wasm', 'cpu'];

export interface BackendReport {
  chosen: BackendName;
  /** the tfjs backend name registered (tensorflow-gpu registers as 'tensorflow') */
  tfName: string;
  skipped: Array<{ name: BackendName; reason: string }>;
}

const require = createRequire(import.meta.url);
let current: BackendReport | null = null;

function errMsg(e: unknown): string {
  const m = e instanceof Error ? e.message : String(e);
  return m.split('\n')[0]!.slice(0, 200);
}

/** Dawn needs the Vulkan loader on Linux; probing without it only prints a native warning. */
function hasVulkanLoader(): boolean {
  const dirs = [...(process.env.LD_LIBRARY_PATH ?? '').split(':').filter(Boolean),
    '/usr/lib/x86_64-linux-gnu', '/usr/lib/aarch64-linux-gnu', '/usr/lib64', '/usr/lib', '/usr/local/lib', '/lib/x86_64-linux-gnu'];
  return dirs.some((d) => existsSync(join(d, 'libvulkan.so.1')));
}

async function tryBackend(name: BackendName): Promise<string> {
  switch (name) {
    case 'tensorflow-gpu': {
      require('@tensorflow/tfjs-node-gpu');
      if (!(await tf.setBackend('tensorflow'))) throw new Error('tfjs-node-gpu loaded but its backend did not initialise');
      return 'tensorflow';
    }
    case 'tensorflow': {
      require('@tensorflow/tfjs-node');
      if (!(await tf.setBackend('tensorflow'))) throw new Error('tfjs-node loaded but its backend did not initialise');
      return 'tensorflow';
    }
    case 'webgpu': {
      if (process.platform === 'linux' && !hasVulkanLoader()) throw new Error('no Vulkan loader (libvulkan.so.1) for Dawn');
      const webgpu = require('webgpu') as { create: (o: string[]) => unknown; globals: Record<string, unknown> };
      Object.assign(globalThis, webgpu.globals);
      const gpu = webgpu.create([]) as { requestAdapter: () => Promise<unknown> };
      const adapter = (await gpu.requestAdapter()) as { isFallbackAdapter?: boolean; info?: { vendor?: string; architecture?: string; description?: string } } | null;
      if (!adapter) throw new Error('no WebGPU adapter');
      const desc = `${adapter.info?.vendor ?? ''} ${adapter.info?.architecture ?? ''} ${adapter.info?.description ?? ''}`;
      if (adapter.isFallbackAdapter || /swiftshader|llvmpipe|software/i.test(desc)) {
        throw new Error(`only a software adapter (${desc.trim() || 'fallback'})`);
      }
      (globalThis as Record<string, unknown>).navigator ??= {};
      Object.defineProperty((globalThis as unknown as { navigator: object }).navigator, 'gpu', { value: gpu, configurable: true });
      require('@tensorflow/tfjs-backend-webgpu');
      if (!(await tf.setBackend('webgpu'))) throw new Error('webgpu backend did not initialise');
      return 'webgpu';
    }
    case 'wasm': {
      const dir = dirname(require.resolve('@tensorflow/tfjs-backend-wasm/package.json'));
      setWasmPaths(join(dir, 'dist') + '/');
      const threadsReady = prepareWasmBackend(); // XNNPACK threads (src/workers/wasm_threads.ts; MUCODEC_THREADS)
      let ok: boolean;
      try { ok = await tf.setBackend('wasm'); } finally { threadsReady(); }
      if (!ok) throw new Error('wasm backend did not initialise');
      installWasmKernelFixes(); // heap-to-heap Slice/SplitV/Unpack (src/workers/wasm_kernels.ts)
      return 'wasm';
    }
    case 'cpu': {
      if (!(await tf.setBackend('cpu'))) throw new Error('cpu backend did not initialise');
      return 'cpu';
    }
  }
}

/**
 * Choose and initialise the backend. `requested` (or env MUCODEC_BACKEND) may be 'auto' or a BackendName;
 * a named backend that fails to load is an error (never a silent fallback).
 */
export async function initBackend(requested?: string, log?: (line: string) => void): Promise<BackendReport> {
  const want = (requested ?? process.env.MUCODEC_BACKEND ?? 'auto').trim();
  if (current && (want === 'auto' || want === current.chosen)) return current;
  tf.env().set('IS_TEST', false);
  const skipped: BackendReport['skipped'] = [];
  let candidates: BackendName[];
  if (want === 'auto') candidates = BACKEND_ORDER;
  else if ((BACKEND_ORDER as string[]).includes(want)) candidates = [want as BackendName];
  else throw new Error(`unknown backend "${want}" (choose one of: auto, ${BACKEND_ORDER.join(', ')})`);
  for (const name of candidates) {
    try {
      const tfName = await tryBackend(name);
      current = { chosen: name, tfName, skipped };
      if (log) {
        for (const s of skipped) log(`backend ${s.name}: skipped (${s.reason})`);
        log(`backend ${name}: chosen${name === 'wasm' ? ` (${wasmThreads() ?? 1} thread${wasmThreads() === 1 ? '' : 's'})` : ''}`);
      }
      return current;
    } catch (e) {
      skipped.push({ name, reason: errMsg(e) });
    }
  }
  const why = skipped.map((s) => `${s.name}: ${s.reason}`).join('; ');
  throw new Error(want === 'auto' ? `no tfjs backend could be loaded (${why})` : `backend "${want}" could not be loaded (${why})`);
}

export function currentBackend(): BackendReport | null {
  return current;
}
