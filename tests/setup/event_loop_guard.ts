/**
 * Guard (every test file): no synchronous stretch may hold the event loop for 45 s or more. vitest's worker
 * reports to the main process over an RPC channel whose calls time out after 60 s; a longer block (a whole
 * decode run without an await that yields, or a spawnSync of a long child) fails the CI run with "Timeout
 * calling onTaskUpdate" at a random place. The codec hands the loop back after every DiT block, sampler step,
 * VAE block and vocoder ResBlock (src/steps.ts, solveCfmAsync, LatentsToAudio.pushAsync): a tiny-model decode's
 * longest stretch is ≈ 3 s; the longest of the whole suite (a parity case run synchronously, two test files at once) ≈ 6 s.
 */
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { afterAll } from 'vitest';

const LIMIT_S = 45;
const h = monitorEventLoopDelay({ resolution: 50 });
h.enable();

afterAll(() => {
  h.disable();
  const worst = h.max / 1e9;
  if (worst >= LIMIT_S) {
    throw new Error(`event loop blocked for ${worst.toFixed(1)} s in one synchronous stretch (limit ${LIMIT_S} s): yield to the event loop (await yieldToEventLoop()) or run long children asynchronously`);
  }
});
