/**
 * Backend choice. Order (unless MUCODEC_BACKEND / --backend names one): tensorflow-gpu (tfjs-node-gpu, CUDA)
 * → tensorflow (tfjs-node, native CPU) → webgpu (Dawn via the `webgpu` package: a hardware adapter, or with
 * MUCODEC_WEBGPU_ADAPTER=software its OpenGL ES software adapter; src/webgpu.ts)
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
import { prepareWasmBackend, wasmThreads } from './workers/wasm_threads.js';
import { installWasmKernelFixes } from './workers/wasm_kernels.js';
import { describeAdapter, initWebGpu, webGpuAdapter } from './webgpu.js';

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
      await initWebGpu(); // src/webgpu.ts: adapter choice (MUCODEC_WEBGPU_ADAPTER), Node quirks, guards
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
        const gpu = name === 'webgpu' ? webGpuAdapter() : null;
        if (gpu) for (const l of describeAdapter(gpu)) log(l);
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
