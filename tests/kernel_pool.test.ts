/**
 * src/workers/kernel_pool.ts: the shared-memory dispatch of split kernels to the worker threads (command slots, spin,
 * Atomics.wait), in a child process with two threads (tests/helpers/pool_probe.ts): thousands of back-to-back splits
 * of two interleaved modules write every row as split, a fault in a worker's part surfaces as an error naming the
 * worker and the kernel (not a hang), and the pool keeps working after a fault and after its worker went to sleep.
 */
import { describe, expect, it } from 'vitest';
import { runHelper } from './helpers/run_child.js';

describe('kernel pool (2 threads)', () => {
  it('dispatches back-to-back splits exactly, reports a faulting worker part, recovers after it and after sleeping', async () => {
    const r = await runHelper('pool_probe.ts', [], { MUCODEC_THREADS: '2' }, 120_000);
    const line = r.stdout.trim().split('\n').pop() ?? '';
    if (r.status !== 0 || !line.startsWith('{')) throw new Error(`pool probe failed (${r.status}): ${r.stderr.slice(-2000)}`);
    const got = JSON.parse(line) as { threads: number; splits: number; ok: number; trapError: string; afterTrap: boolean; afterSleep: boolean };
    expect(got.threads).toBe(2);
    expect(got.ok).toBe(got.splits);
    expect(got.trapError).toMatch(/kernel pool: worker 0 failed in pool-probe:trap/);
    expect(r.stderr).toMatch(/kernel pool worker 0: RuntimeError: memory access out of bounds/);
    expect(got.afterTrap).toBe(true);
    expect(got.afterSleep).toBe(true);
  }, 150_000);
});
