/**
 * Which execution path the models take. The host path (wasm, cpu, tfjs-node) is the one the codec was built on:
 * VAE activations in JS memory, reads with dataSync where a value is needed. The device path (webgpu) keeps
 * activations on the device through a stage and reads back with `await data()` only where host code needs the
 * values (src/steps.ts HostRead), because tfjs-backend-webgpu cannot read synchronously in Node.
 *
 * The device path also keeps every model's weights resident while the codec lives (src/synthesis.ts residency), and
 * plans its splits from `bindingLimit()`: the adapter's maxStorageBufferBindingSize, lowered for tests by the env
 * MUCODEC_MAX_BINDING_BYTES (or setBindingLimitForTests) so the splits happen with the tiny model too; the guard in
 * src/webgpu.ts refuses a binding over the same lowered limit.
 */
import * as tf from '@tensorflow/tfjs-core';

let forced: boolean | null = null;
let testLimit: number | null = null;

/** true when the current backend takes the device path */
export function devicePath(): boolean {
  return forced ?? tf.getBackend() === 'webgpu';
}

/** force the device path on (true) or off (false) whatever the backend, or back to automatic (null); for tests */
export function forceDevicePath(v: boolean | null): void {
  forced = v;
}

/** the binding limit asked for by tests: setBindingLimitForTests, else env MUCODEC_MAX_BINDING_BYTES (bytes), else none */
export function bindingLimitOverride(): number | null {
  if (testLimit !== null) return testLimit;
  const v = process.env.MUCODEC_MAX_BINDING_BYTES;
  if (v === undefined || v.trim() === '') return null;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 4096) throw new Error(`MUCODEC_MAX_BINDING_BYTES="${v}" is not an integer number of bytes ≥ 4096`);
  return n;
}

/**
 * Lower the binding limit (bytes) for tests, whatever the backend (on wasm too, so the split plans can be checked
 * there), or back to the adapter's with null.
 */
export function setBindingLimitForTests(bytes: number | null): void {
  testLimit = bytes;
}

/**
 * The largest tensor one kernel may bind on the current backend: on webgpu the adapter's maxStorageBufferBindingSize
 * (or the test override, when lower); elsewhere unbounded unless a test lowered it.
 */
export function bindingLimit(): number {
  const o = bindingLimitOverride();
  if (tf.getBackend() !== 'webgpu') return o ?? Infinity;
  const be = tf.backend() as unknown as { device?: { limits?: { maxStorageBufferBindingSize?: number } } };
  const a = be.device?.limits?.maxStorageBufferBindingSize ?? Infinity;
  return o === null ? a : Math.min(a, o);
}

/** bytes of a float32 (or int32) tensor of `shape`, as the device stores it */
export function tensorBytes(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1) * 4;
}
