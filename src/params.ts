/**
 * A parameter tree: upstream state-dict names → host tensors. Weights stay in JS memory (outside the
 * wasm heap) and become tfjs tensors only when a module asks for them, so a model larger than the wasm
 * heap can run block by block. Every lookup checks the name and the expected shape and fails naming both.
 */
import * as tf from '@tensorflow/tfjs-core';
import './chained_ops.js';
import { shapeStr, toFloat32, type HostTensor } from './hosttensor.js';

export class Params {
  constructor(
    readonly map: Map<string, HostTensor>,
    readonly prefix = '',
    readonly source = 'weights',
  ) {}

  private full(name: string): string {
    return this.prefix + name;
  }

  has(name: string): boolean {
    return this.map.has(this.full(name));
  }

  /** Host tensor by name; `shape` (use -1 for "any") is checked when given. */
  get(name: string, shape?: readonly number[]): HostTensor {
    const full = this.full(name);
    const t = this.map.get(full);
    if (!t) throw new Error(`${this.source}: missing tensor "${full}"`);
    if (shape) {
      // an expected dimension that is not an integer comes from a mis-typed configuration value, not from the file
      const odd = shape.findIndex((d) => typeof d !== 'number' || !Number.isInteger(d));
      if (odd >= 0) throw new Error(`${this.source}: tensor "${full}": the expected shape's dimension ${odd} is ${typeof shape[odd] === 'string' ? `the string ${JSON.stringify(shape[odd])}` : String(shape[odd])}, not an integer (check the model configuration)`);
      const ok = shape.length === t.shape.length && shape.every((d, i) => d < 0 || d === t.shape[i]);
      if (!ok) throw new Error(`${this.source}: tensor "${full}" has shape ${shapeStr(t.shape)}, expected ${shapeStr(shape)}`);
    }
    return t;
  }

  /** float32 values of a tensor (converted from f16/bf16/f64/int when needed). */
  f32(name: string, shape?: readonly number[]): Float32Array {
    return toFloat32(this.get(name, shape));
  }

  /** A new float32 tfjs tensor (caller disposes, or creates it inside tf.tidy). */
  tensor(name: string, shape?: readonly number[]): tf.Tensor {
    const t = this.get(name, shape);
    return tf.tensor(toFloat32(t), t.shape, 'float32');
  }

  /** The subtree under `prefix` (a '.' is NOT added automatically). */
  sub(prefix: string): Params {
    return new Params(this.map, this.prefix + prefix, this.source);
  }

  /** Names (relative to this subtree's prefix) of every tensor under it. */
  names(): string[] {
    const out: string[] = [];
    for (const k of this.map.keys()) if (k.startsWith(this.prefix)) out.push(k.slice(this.prefix.length));
    return out;
  }

  /** Scalar value (e.g. scale_factor) as a JS number (float32 value, like PyTorch's .item()). */
  scalar(name: string): number {
    const t = this.get(name);
    if (t.data.length !== 1) throw new Error(`${this.source}: tensor "${this.full(name)}" is not a scalar (shape ${shapeStr(t.shape)})`);
    return toFloat32(t)[0]!;
  }
}
