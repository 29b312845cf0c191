/**
 * Multi-threaded wasm (src/workers/wasm_threads.ts): with MUCODEC_THREADS=2 the backend really runs a 2-thread
 * XNNPACK pool, and every output (MuQ encoder fixture: frontend incl. Winograd, conformer; plain matMul /
 * strided conv2d / depthwise conv; GroupNorm's affine + swish and channel statistics; a Winograd conv whose filter transform is split) is bit-identical to the single-threaded run. Each count runs in its own child
 * process (a wasm backend's pool is fixed when it starts).
 */
import { describe, expect, it } from 'vitest';
import { parseThreads } from '../src/workers/wasm_threads.js';
import { runHelper } from './helpers/run_child.js';

async function probe(threads: number): Promise<{ threads: number; hashes: Record<string, string> }> {
  const r = await runHelper('threads_probe.ts', [], { MUCODEC_THREADS: String(threads), MUCODEC_BACKEND: 'wasm' }, 240_000);
  const line = r.stdout.split('\n').find((l) => l.startsWith('{'));
  if (r.status !== 0 || !line) throw new Error(`threads probe (${threads}) failed: status ${r.status}\n${r.stderr.slice(-2000)}`);
  return JSON.parse(line) as { threads: number; hashes: Record<string, string> };
}

describe('wasm threads', () => {
  it('parseThreads: numbers, "auto", errors', () => {
    expect(parseThreads('3')).toBe(3);
    expect(parseThreads(1)).toBe(1);
    expect(parseThreads('auto')).toBeGreaterThanOrEqual(1);
    expect(() => parseThreads('0')).toThrow(/1\.\.64/);
    expect(() => parseThreads('two')).toThrow(/whole number/);
  });

  it('2 threads run a 2-thread pool and give the 1-thread bytes', async () => {
    const one = await probe(1);
    const two = await probe(2);
    expect(one.threads).toBe(1);
    expect(two.threads).toBe(2);
    expect(Object.keys(two.hashes).length).toBeGreaterThanOrEqual(10);
    expect(two.hashes).toEqual(one.hashes);
  });
});
