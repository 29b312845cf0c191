/**
 * Which execution path the models take. The host path (wasm, cpu, tfjs-node) is the one the codec was built on:
 * VAE activations in JS memory, reads with dataSync where a value is needed. The device path (webgpu) keeps
 * activations on the device through a stage and reads back with `await data()` only where host code needs the
 * values (src/steps.ts HostRead), because tfjs-backend-webgpu cannot read synchronously in Node.
 */
import * as tf from '@tensorflow/tfjs-core';

let forced: boolean | null = null;

/** true when the current backend takes the device path */
export function devicePath(): boolean {
  return forced ?? tf.getBackend() === 'webgpu';
}

/** force the device path on (true) or off (false) whatever the backend, or back to automatic (null); for tests */
export function forceDevicePath(v: boolean | null): void {
  forced = v;
}

/** the largest tensor one kernel may bind on the current backend (webgpu: the adapter's limit; else unbounded) */
export function bindingLimit(): number {
  if (tf.getBackend() !== 'webgpu') return Infinity;
  const be = tf.backend() as unknown as { device?: { limits?: { maxStorageBufferBindingSize?: number } } };
  return be.device?.limits?.maxStorageBufferBindingSize ?? Infinity;
}
