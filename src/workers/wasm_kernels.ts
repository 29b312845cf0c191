/**
 * Replacement wasm kernels for tfjs-backend-wasm 4.22 slow paths (performance only: the values are the same bytes).
 *
 *  - Slice / SplitV / Unpack: the stock kernels start with `backend.readSync(x)`, which copies the WHOLE input out
 *    of the wasm heap for every slice (splitting a 64 MB tensor into 16 parts copies 1 GB), and rank ≥ 5 slices
 *    then go through a generic element-by-element JS loop (a rank-5 split of 16 M floats took ~1.9 s). Here the
 *    output is written straight from a heap view: the innermost contiguous run (trailing dims taken whole merge into
 *    it) is copied with one TypedArray.set per outer index.
 *
 *  - Transpose that keeps the innermost axis in place (e.g. (m, m, th, tw, C) → (th, m, tw, m, C), or (B, T, H, dh)
 *    → (B, H, T, dh)): the stock C++ kernel moves element by element through a generic rank-5 path (0.7 s for
 *    8 M floats); here whole runs of the unchanged trailing axes are copied with TypedArray.set. Permutations that
 *    move the last axis, or leave runs shorter than 32 elements, keep the stock kernel.
 *
 * Installed by src/backend.ts right after the wasm backend initialises (and again whenever it is re-initialised).
 */
import * as tf from '@tensorflow/tfjs-core';

type Dtype = 'float32' | 'int32' | 'bool' | 'string' | 'complex64';
interface TensorInfoLike { dataId: object; shape: number[]; dtype: Dtype }
type TypedArray = Float32Array | Int32Array | Uint8Array;
interface WasmBackendLike {
  makeOutput(shape: number[], dtype: Dtype): TensorInfoLike;
  typedArrayFromHeap(t: TensorInfoLike): TypedArray;
}

/** Copy x[begin : begin + size] into a new output, heap to heap. */
function sliceHeap(backend: WasmBackendLike, x: TensorInfoLike, begin: number[], size: number[]): TensorInfoLike {
  const out = backend.makeOutput(size, x.dtype);
  const n = size.reduce((a, b) => a * b, 1);
  if (n === 0) return out;
  // views AFTER makeOutput: allocating may grow (and detach) the heap buffer
  const xv = backend.typedArrayFromHeap(x);
  const ov = backend.typedArrayFromHeap(out);
  const shape = x.shape;
  const rank = shape.length;
  if (rank === 0) { ov[0] = xv[0]!; return out; }
  const strides = new Array<number>(rank);
  let s = 1;
  for (let d = rank - 1; d >= 0; d--) { strides[d] = s; s *= shape[d]!; }
  // k = first axis of the contiguous inner run: every axis after k is taken whole
  let k = rank - 1;
  while (k > 0 && begin[k] === 0 && size[k] === shape[k]) k--;
  const run = size[k]! * strides[k]!;
  let base = 0;
  for (let d = 0; d < rank; d++) base += begin[d]! * strides[d]!;
  if (k === 0) { ov.set(xv.subarray(base, base + run)); return out; }
  const idx = new Array<number>(k).fill(0);
  let dst = 0;
  for (;;) {
    let src = base;
    for (let d = 0; d < k; d++) src += idx[d]! * strides[d]!;
    if (run >= 16) ov.set(xv.subarray(src, src + run), dst);
    else for (let i = 0; i < run; i++) ov[dst + i] = xv[src + i]!;
    dst += run;
    let d = k - 1;
    for (; d >= 0; d--) {
      if (++idx[d]! < size[d]!) break;
      idx[d] = 0;
    }
    if (d < 0) break;
  }
  return out;
}

function parseSlice(x: TensorInfoLike, begin: number | number[], size?: number | number[]): [number[], number[]] {
  // same rules as tfjs slice_util.parseSliceParams (size −1 = to the end)
  const [b, s] = tf.slice_util.parseSliceParams(x as unknown as tf.TensorInfo, begin, size);
  return [b, s];
}

/** Heap-to-heap transpose when the trailing axes stay in place (run ≥ 32 elements); null → use the stock kernel. */
function transposeRuns(backend: WasmBackendLike, x: TensorInfoLike, perm: number[]): TensorInfoLike | null {
  const shape = x.shape;
  const rank = shape.length;
  // drop size-1 axes (they do not move data)
  const keep: number[] = [];
  for (let i = 0; i < rank; i++) if (shape[i] !== 1) keep.push(i);
  const rs = keep.map((i) => shape[i]!);
  const rp = perm.filter((p) => shape[p] !== 1).map((p) => keep.indexOf(p));
  const r = rs.length;
  if (r < 2) return null;
  // trailing axes that stay in place, in order, form the contiguous run
  let t = r;
  while (t > 0 && rp[t - 1] === t - 1) t--;
  if (t === r) return null; // last axis moves
  if (t === 0) return null; // identity (the stock kernel clones)
  let run = 1;
  for (let i = t; i < r; i++) run *= rs[i]!;
  if (run < 32) return null;
  const outShape = perm.map((p) => shape[p]!);
  const out = backend.makeOutput(outShape, x.dtype);
  const xv = backend.typedArrayFromHeap(x);
  const ov = backend.typedArrayFromHeap(out);
  const inStrides = new Array<number>(r);
  let s = 1;
  for (let d = r - 1; d >= 0; d--) { inStrides[d] = s; s *= rs[d]!; }
  const outer = rp.slice(0, t); // output axis j (< t) reads input axis outer[j]
  const oShape = outer.map((a) => rs[a]!);
  const oStride = outer.map((a) => inStrides[a]!);
  const idx = new Array<number>(t).fill(0);
  let dst = 0;
  let src = 0;
  for (;;) {
    ov.set(xv.subarray(src, src + run), dst);
    dst += run;
    let d = t - 1;
    for (; d >= 0; d--) {
      src += oStride[d]!;
      if (++idx[d]! < oShape[d]!) break;
      src -= oStride[d]! * oShape[d]!;
      idx[d] = 0;
    }
    if (d < 0) break;
  }
  return out;
}

let installedOn: object | null = null;

/** (Re-)register the fast kernels for the 'wasm' backend; keeps the stock kernels for string tensors. */
export function installWasmKernelFixes(): void {
  const backendObj = tf.findBackend('wasm');
  if (!backendObj || installedOn === backendObj) return;
  const stock = new Map<string, tf.KernelConfig>();
  for (const name of ['Slice', 'SplitV', 'Unpack', 'Transpose']) {
    const k = tf.getKernel(name, 'wasm');
    if (k) stock.set(name, k);
  }
  const replace = (name: string, kernelFunc: tf.KernelFunc): void => {
    const orig = stock.get(name);
    if (!orig) return;
    tf.unregisterKernel(name, 'wasm');
    tf.registerKernel({ kernelName: name, backendName: 'wasm', kernelFunc });
  };
  replace('Slice', (args) => {
    const x = args.inputs.x as unknown as TensorInfoLike;
    if (x.dtype === 'string') return stock.get('Slice')!.kernelFunc(args);
    const { begin, size } = args.attrs as unknown as { begin: number | number[]; size?: number | number[] };
    const [b, s] = parseSlice(x, begin, size);
    return sliceHeap(args.backend as unknown as WasmBackendLike, x, b, s) as unknown as tf.TensorInfo;
  });
  replace('SplitV', (args) => {
    const x = args.inputs.x as unknown as TensorInfoLike;
    if (x.dtype === 'string') return stock.get('SplitV')!.kernelFunc(args);
    const { numOrSizeSplits, axis } = args.attrs as unknown as { numOrSizeSplits: number | number[]; axis: number | number[] };
    const ax = tf.util.parseAxisParam(axis, x.shape)[0]!;
    const sizes = tf.backend_util.prepareSplitSize(x as unknown as tf.Tensor, numOrSizeSplits, ax);
    const begin = new Array<number>(x.shape.length).fill(0);
    return sizes.map((n) => {
      const sz = x.shape.slice();
      sz[ax] = n;
      const o = sliceHeap(args.backend as unknown as WasmBackendLike, x, begin.slice(), sz);
      begin[ax] += n;
      return o as unknown as tf.TensorInfo;
    });
  });
  replace('Unpack', (args) => {
    const x = args.inputs.value as unknown as TensorInfoLike;
    if (x.dtype === 'string') return stock.get('Unpack')!.kernelFunc(args);
    const axis = tf.util.parseAxisParam((args.attrs as unknown as { axis: number }).axis, x.shape)[0]!;
    const outShape = x.shape.filter((_, i) => i !== axis);
    const size = x.shape.slice();
    size[axis] = 1;
    return Array.from({ length: x.shape[axis]! }, (_, i) => {
      const begin = new Array<number>(x.shape.length).fill(0);
      begin[axis] = i;
      const o = sliceHeap(args.backend as unknown as WasmBackendLike, x, begin, size);
      return { dataId: o.dataId, dtype: o.dtype, shape: outShape } as unknown as tf.TensorInfo;
    });
  });
  replace('Transpose', (args) => {
    const x = args.inputs.x as unknown as TensorInfoLike;
    const perm = (args.attrs as unknown as { perm: number[] }).perm;
    const fast = x.dtype === 'string' ? null : transposeRuns(args.backend as unknown as WasmBackendLike, x, perm);
    return fast ? (fast as unknown as tf.TensorInfo) : stock.get('Transpose')!.kernelFunc(args);
  });
  installedOn = backendObj;
}
