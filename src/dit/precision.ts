/**
 * The DiT's arithmetic precision. 'f32' (the default) is the reference. 'f16-emulated' is for research: float32
 * arithmetic with the rounding points of upstream's fp16 autocast (MuCodec generate.py wraps inference_codes in
 * torch.autocast("cuda", float16)) placed by layers/f16.ts roundToHalf: every linear (nn.Linear and the patch
 * Conv2d run as one) rounds its input, weight and bias to half and its output to half (cuBLAS accumulates in float32,
 * writes half); attention rounds its scores (baddbmm in half), its softmax probabilities (computed in float32, cast
 * back to the query's half dtype: diffusers Attention.get_attention_scores) and its output (bmm in half); GELU
 * writes half. LayerNorm, softmax, the adaLN modulation, residuals and the sampler stay float32 (autocast's float32
 * list and type promotion). It measures the error a half-precision DiT would add; it is slower, not faster.
 *
 * Real half-precision kernels ('f16') are not offered: tfjs-backend-webgpu 4.22 has no float16 dtype and creates its
 * device without the shader-f16 feature, and no adapter reachable here has that feature to test them on.
 */
export const DIT_PRECISIONS = ['f32', 'f16-emulated'] as const;
export type DitPrecision = (typeof DIT_PRECISIONS)[number];

let current: DitPrecision = 'f32';

/** parse a --precision / API value; 'f16' is refused with the reason */
export function parseDitPrecision(v: string, what = 'precision'): DitPrecision {
  const s = v.trim().toLowerCase();
  if (s === 'f16' || s === 'fp16' || s === 'float16') {
    throw new Error(`${what} "${v}": half-precision kernels are not available (tfjs-backend-webgpu 4.22 has no float16 dtype ` +
      'and does not enable shader-f16); "f16-emulated" measures the error of half-precision rounding in float32 arithmetic, on any backend');
  }
  if (!(DIT_PRECISIONS as readonly string[]).includes(s)) throw new Error(`${what} "${v}" is not one of: ${DIT_PRECISIONS.join(', ')}`);
  return s as DitPrecision;
}

/** the precision the DiT computes in from now on (process-wide, like the backend) */
export function setDitPrecision(p: DitPrecision): void {
  current = parseDitPrecision(p);
}

export function ditPrecision(): DitPrecision {
  return current;
}
