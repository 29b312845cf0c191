/**
 * Host-side (plain JS) weight re-layouts from PyTorch's layout to the one tfjs kernels want. Done once
 * when a module is built, so the hot path never transposes weights.
 */
import { numel, shapeStr, toFloat32, type HostTensor } from '../src/hosttensor.js';

/** General permutation of a row-major array. */
export function permute(data: Float32Array, shape: readonly number[], perm: readonly number[]): { data: Float32Array; shape: number[] } {
  const nd = shape.length;
  const outShape = perm.map((p) => shape[p]!);
  const inStrides = new Array<number>(nd);
  let s = 1;
  for (let i = nd - 1; i >= 0; i--) { inStrides[i] = s; s *= shape[i]!; }
  const out = new Float32Array(numel(shape));
  const idx = new Array<number>(nd).fill(0);
  const permStrides = perm.map((p) => inStrides[p]!);
  if (nd >= 2 && nd <= 4) { // nested loops (the weight re-layouts: ~10× the general loop below)
    const os = [1, 1, 1, 1], ps = [0, 0, 0, 0];
    for (let d = 0; d < nd; d++) { os[4 - nd + d] = outShape[d]!; ps[4 - nd + d] = permStrides[d]!; }
    const [n0, n1, n2, n3] = os as [number, number, number, number];
    const [s0, s1, s2, s3] = ps as [number, number, number, number];
    let o = 0;
    for (let a = 0; a < n0; a++) {
      for (let b = 0; b < n1; b++) {
        for (let c = 0; c < n2; c++) {
          let off = a * s0 + b * s1 + c * s2;
          for (let e = 0; e < n3; e++, off += s3) out[o++] = data[off]!;
        }
      }
    }
    return { data: out, shape: outShape };
  }
  for (let o = 0; o < out.length; o++) {
    let off = 0;
    for (let d = 0; d < nd; d++) off += idx[d]! * permStrides[d]!;
    out[o] = data[off]!;
    for (let d = nd - 1; d >= 0; d--) {
      if (++idx[d]! < outShape[d]!) break;
      idx[d] = 0;
    }
  }
  return { data: out, shape: outShape };
}

function f32(t: HostTensor, rank: number, what: string): Float32Array {
  if (t.shape.length !== rank) throw new Error(`${what}: expected a rank-${rank} weight, got ${shapeStr(t.shape)}`);
  return toFloat32(t);
}

/** nn.Linear weight (out, in) → (in, out) for a plain x @ W matMul. */
export function linearWeightT(w: HostTensor): { data: Float32Array; shape: number[] } {
  return permute(f32(w, 2, 'linear'), w.shape, [1, 0]);
}

/** nn.Conv2d weight (out, in/groups, kh, kw) → tfjs conv2d filter (kh, kw, in, out). */
export function conv2dFilter(w: HostTensor): { data: Float32Array; shape: number[] } {
  return permute(f32(w, 4, 'conv2d'), w.shape, [2, 3, 1, 0]);
}

/** nn.Conv1d weight (out, in/groups, k) → tfjs conv1d filter (k, in, out). */
export function conv1dFilter(w: HostTensor): { data: Float32Array; shape: number[] } {
  return permute(f32(w, 3, 'conv1d'), w.shape, [2, 1, 0]);
}

/** nn.ConvTranspose1d weight (in, out, k) → tfjs conv2dTranspose filter (1, k, out, in). */
export function convTranspose1dFilter(w: HostTensor): { data: Float32Array; shape: number[] } {
  const p = permute(f32(w, 3, 'convTranspose1d'), w.shape, [2, 1, 0]);
  return { data: p.data, shape: [1, ...p.shape] };
}

/**
 * torch.nn.utils.weight_norm folded: weight = g · v / ‖v‖, the norm over every dim but 0 (dim=0 default),
 * computed in float64 and rounded once. Matches PyTorch's _weight_norm up to float32 rounding.
 */
export function foldWeightNorm(g: HostTensor, v: HostTensor): HostTensor {
  const gv = toFloat32(g);
  const vv = toFloat32(v);
  const out = v.shape[0]!;
  const per = vv.length / out;
  if (gv.length !== out) throw new Error(`weight_norm: weight_g ${shapeStr(g.shape)} does not match weight_v ${shapeStr(v.shape)}`);
  const w = new Float32Array(vv.length);
  for (let o = 0; o < out; o++) {
    let ss = 0;
    for (let i = 0; i < per; i++) { const x = vv[o * per + i]!; ss += x * x; }
    const scale = gv[o]! / Math.sqrt(ss);
    for (let i = 0; i < per; i++) w[o * per + i] = vv[o * per + i]! * scale;
  }
  return { dtype: 'float32', shape: [...v.shape], data: w };
}
