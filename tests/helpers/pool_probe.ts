/**
 * Child process of tests/kernel_pool.test.ts (MUCODEC_THREADS=2): drives src/workers/kernel_pool.ts directly with two
 * small run-time assembled modules on the shared wasm heap — `mark` writes tag·16 + part + 1 into each row it is
 * given, `trap` does the same but faults (an out-of-bounds load) in the worker's part — and prints one JSON line:
 * how many back-to-back splits (two modules interleaved) wrote every row exactly as split, the error a faulting
 * worker part gives, and whether the pool still works after that fault and after its worker has gone to sleep.
 */
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../../src/backend.js';
import { Fn, I32 } from '../../src/simd/asm.js';
import { heapMemory, offsetOf, wasmBackend } from '../../src/simd/heap.js';
import { kernelPool } from '../../src/workers/kernel_pool.js';
import { wasmThreads } from '../../src/workers/wasm_threads.js';

await initBackend('wasm');
const b = wasmBackend()!;
const pool = kernelPool(b);
if (!pool) throw new Error('pool probe: no kernel pool (needs the threaded wasm backend and MUCODEC_THREADS=2)');

/** run(out, tag, m0, m1, part): out[row] = tag·16 + part + 1 for rows [m0, m1); with `trap`, part 0 faults first */
function module(trap: boolean): Fn[] {
  const f = new Fn('run', [I32, I32, I32, I32, I32]);
  const [out, tag, m0, m1, part] = [0, 1, 2, 3, 4];
  const row = f.local(I32);
  if (trap) f.get(part).eqz().if_().i32(-1).i32load(16).drop().end(); // address 2^32 + 15: always out of bounds
  f.get(m0).set(row);
  f.loopUntil(() => f.get(row).get(m1).geS(), () => {
    f.get(out).get(row).i32(4).mul().add();
    f.get(tag).i32(16).mul().get(part).add().i32(1).add().f64cvtI32().f32demote().f32store();
    f.get(row).i32(1).add().set(row);
  });
  return [f];
}

const rows = 64;
const t = tf.zeros([rows]);
const at = offsetOf(b, t);
const view = (): Float32Array => new Float32Array(heapMemory(b)!.buffer, at, rows);
/** one split of `key`; true when every row carries the tag and the part it was given (worker 0: the first half) */
const split = (key: string, trap: boolean, tag: number): boolean => {
  view().fill(0);
  pool.splitRows(key, () => module(trap), rows, 1, (r0, r1, part) => {
    const v = view();
    for (let r = r0; r < r1; r++) v[r] = tag * 16 + part + 1;
  }, [at, tag]);
  const v = view(), half = Math.ceil(rows / 2);
  for (let r = 0; r < rows; r++) if (v[r] !== tag * 16 + (r < half ? 0 : 1) + 1) return false;
  return true;
};

let ok = 0;
const splits = 2000;
for (let i = 0; i < splits; i++) if (split(i % 2 ? 'pool-probe:mark-a' : 'pool-probe:mark-b', false, i % 7)) ok++;
let trapError = '';
try { split('pool-probe:trap', true, 3); } catch (e) { trapError = (e as Error).message; }
const afterTrap = split('pool-probe:mark-a', false, 5);
await new Promise((r) => setTimeout(r, 50)); // the worker stops spinning and sleeps in Atomics.wait
const afterSleep = split('pool-probe:mark-b', false, 6);
t.dispose();
process.stdout.write(JSON.stringify({ threads: wasmThreads(), splits, ok, trapError, afterTrap, afterSleep }) + '\n');
process.exit(0);
