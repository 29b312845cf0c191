/**
 * A tensor held in plain JS memory (outside any tfjs backend): what checkpoint readers produce,
 * what fixtures hold, and what the parity runner compares. Layout is row-major (PyTorch's).
 */
import type * as tf from '@tensorflow/tfjs-core';
import { widenHalf } from './half.js';

export type DType = 'float32' | 'float16' | 'bfloat16' | 'float64' | 'int64' | 'int32' | 'int16' | 'int8' | 'uint8' | 'bool';

export type HostData = Float32Array | Float64Array | BigInt64Array | Int32Array | Int16Array | Int8Array | Uint8Array | Uint16Array;

export interface HostTensor {
  dtype: DType;
  shape: number[];
  /** float16/bfloat16 are kept as raw Uint16Array bits; bool as Uint8Array. */
  data: HostData;
}

export function numel(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

export function shapeStr(shape: readonly number[]): string {
  return `(${shape.join(', ')})`;
}

export function bytesPerElement(dtype: DType): number {
  switch (dtype) {
    case 'float64': case 'int64': return 8;
    case 'float32': case 'int32': return 4;
    case 'float16': case 'bfloat16': case 'int16': return 2;
    case 'int8': case 'uint8': case 'bool': return 1;
  }
}

const f32scratch = new Float32Array(1);
const u32scratch = new Uint32Array(f32scratch.buffer);

/** Any numeric host tensor as float32 values (int64 converted exactly when |v| < 2^24, else rounded). */
export function toFloat32(t: HostTensor): Float32Array {
  const n = t.data.length;
  if (t.dtype === 'float32') return t.data as Float32Array;
  const out = new Float32Array(t.dtype === 'float16' || t.dtype === 'bfloat16' ? n : n);
  if (t.dtype === 'float16') {
    widenHalf(t.data as Uint16Array, out); // a table lookup per value (half-size weights load through here)
  } else if (t.dtype === 'bfloat16') {
    const d = t.data as Uint16Array;
    for (let i = 0; i < n; i++) { u32scratch[0] = d[i]! << 16; out[i] = f32scratch[0]!; }
  } else if (t.dtype === 'int64') {
    const d = t.data as BigInt64Array;
    for (let i = 0; i < n; i++) out[i] = Number(d[i]!);
  } else {
    const d = t.data as ArrayLike<number>;
    for (let i = 0; i < n; i++) out[i] = d[i]!;
  }
  return out;
}

/** Any numeric host tensor as float64 values. */
export function toFloat64(t: HostTensor): Float64Array {
  if (t.dtype === 'float64') return t.data as Float64Array;
  if (t.dtype === 'int64') return Float64Array.from(t.data as BigInt64Array, (v) => Number(v));
  return Float64Array.from(toFloat32Like(t));
}

function toFloat32Like(t: HostTensor): ArrayLike<number> {
  if (t.dtype === 'float16' || t.dtype === 'bfloat16') return toFloat32(t);
  return t.data as ArrayLike<number>;
}

/** Integer tensor as Int32Array (codes are < 2^31); throws if a value does not fit. */
export function toInt32(t: HostTensor): Int32Array {
  if (t.dtype === 'int32') return t.data as Int32Array;
  const n = t.data.length;
  const out = new Int32Array(n);
  if (t.dtype === 'int64') {
    const d = t.data as BigInt64Array;
    for (let i = 0; i < n; i++) {
      const v = d[i]!;
      if (v > 2147483647n || v < -2147483648n) throw new Error(`int64 value ${v} does not fit in int32`);
      out[i] = Number(v);
    }
    return out;
  }
  const d = toFloat64(t);
  for (let i = 0; i < n; i++) out[i] = d[i]!;
  return out;
}

/**
 * A tfjs tensor's values read back into a new host tensor (float32, or int32 for codes). The one device → host
 * read of model outputs; the caller still owns (and disposes) `t`.
 */
export async function tensorToHost(t: tf.Tensor, dtype: 'float32' | 'int32' = 'float32'): Promise<HostTensor> {
  const values = await t.data();
  const data = dtype === 'int32' ? Int32Array.from(values as ArrayLike<number>) : Float32Array.from(values as ArrayLike<number>);
  return { dtype, shape: [...t.shape], data };
}

/** Model output that stopped being finite (NaN or ±Infinity): the message names the stage. */
export class NonFiniteError extends Error {}

/**
 * Throws a NonFiniteError `${what} (value i of n is NaN)` when `data` holds a NaN or an infinity: one pass over
 * values already on the host, so a stage's output is checked before anything is made from it.
 */
export function assertFinite(data: ArrayLike<number>, what: string): void {
  for (let i = 0; i < data.length; i++) {
    const v = data[i]!;
    if (v - v !== 0) throw new NonFiniteError(`${what} (value ${i} of ${data.length} is ${v})`); // NaN and ±Inf give NaN
  }
}
