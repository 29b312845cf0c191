/**
 * Weight upload for the DiT. Weights stay as host Float32Arrays in Params (outside the wasm heap); a module
 * turns them into tfjs tensors only while it runs. On wasm (src/simd/gemm.ts enabled) a Linear's weight and bias are
 * packed once, on the host, for the FMA GEMM; elsewhere nn.Linear weights (out, in) are uploaded as they are and
 * transposed ON THE DEVICE to (in, out), so the product is a plain 2-D matMul (transpose-flagged matMul is ~10×
 * slower on tfjs-wasm) and no second host copy of the 2.9 GB model is ever made.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { Params } from '../params.js';
import { ditMatmulProgram, withMatmulProgram } from '../../layers/webgpu/matmul_program.js';
import { roundToHalf } from '../../layers/f16.js';
import { gemm, gemmEnabled, packB, type PackedB } from '../simd/gemm.js';
import { ditPrecision } from './precision.js';

export interface LinearW {
  /** (in, out); null while the weight is only packed for src/simd/gemm.ts */
  wT: tf.Tensor2D | null;
  b: tf.Tensor1D | null;
  /** weight and bias packed for the wasm GEMM (src/simd/gemm.ts), packed on the host from the (out, in) weight */
  packed?: PackedB;
  /** where the weight comes from: the f16 emulation needs the plain (in, out) weight even when a packed one exists */
  source?: { p: Params; name: string; inF: number; outF: number; bias: boolean };
}

function uploadPlain(p: Params, name: string, inF: number, outF: number, bias: boolean): { wT: tf.Tensor2D; b: tf.Tensor1D | null } {
  const w = p.f32(`${name}.weight`, [outF, inF]);
  const wT = tf.tidy(() => tf.transpose(tf.tensor2d(w, [outF, inF])) as tf.Tensor2D);
  const b = bias ? (tf.tensor1d(p.f32(`${name}.bias`, [outF]))) : null;
  return { wT, b };
}

export function uploadLinear(p: Params, name: string, inF: number, outF: number, bias = true): LinearW {
  if (gemmEnabled() && ditPrecision() === 'f32') {
    const packed = packB(p.f32(`${name}.weight`, [outF, inF]), inF, outF, bias ? p.f32(`${name}.bias`, [outF]) : null, true);
    tf.keep(packed.packed);
    return { wT: null, b: null, packed, source: { p, name, inF, outF, bias } };
  }
  return uploadPlain(p, name, inF, outF, bias);
}

/** y = x Wᵀ + b over the last axis of x (any rank). */
export function linear(x: tf.Tensor, l: LinearW): tf.Tensor {
  // src/dit/precision.ts: half-precision rounding points of fp16 autocast, when asked for (research)
  const half = ditPrecision() === 'f16-emulated';
  if (half && !l.wT && l.source) {
    // the emulation rounds the weight itself: upload the plain form beside the packed one (kept until disposeLinear)
    const s = l.source;
    const plain = uploadPlain(s.p, s.name, s.inF, s.outF, s.bias);
    l.wT = tf.keep(plain.wT); // kept past any enclosing tidy, like the packed weight
    l.b = plain.b ? tf.keep(plain.b) : null;
  }
  return tf.tidy(() => {
    if (l.packed && !half) return gemm(x.reshape([-1, l.packed.k]) as tf.Tensor2D, l.packed).reshape([...x.shape.slice(0, -1), l.packed.n]);
    const [inF, outF] = l.wT!.shape;
    const lead = x.shape.slice(0, -1);
    const r = half ? roundToHalf : (t: tf.Tensor) => t;
    // on webgpu, on the matMul program chosen for the DiT (layers/webgpu/matmul_program.ts; auto by default)
    let y: tf.Tensor = withMatmulProgram(ditMatmulProgram(), () => tf.matMul(r(x.reshape([-1, inF])) as tf.Tensor2D, r(l.wT!) as tf.Tensor2D));
    if (l.b) y = tf.add(y, r(l.b));
    return r(y).reshape([...lead, outF]);
  });
}

export function disposeLinear(l: LinearW): void {
  l.wT?.dispose();
  l.b?.dispose();
  l.packed?.packed.dispose();
}
