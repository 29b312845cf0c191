/**
 * Fused scaled dot-product attention for tfjs-backend-webgpu: one WGSL program, registered as the tfjs kernel
 * `MucodecFusedAttention` on the webgpu backend. q (B, Tq, H·dh), k/v (B, Tk, H·dh) → (B, Tq, H·dh), heads read in
 * place (no transposes), the softmax computed online over key tiles (FlashAttention, Dao et al. 2022, §3.1): each
 * thread owns one query row of one head and keeps its running max m, sum l and output accumulator; the workgroup
 * stages a tile of BK keys and values in workgroup memory. The (Tq, Tk) scores are never materialised, so the kernel
 * binds only tensors of the size of q, k and v (each under maxStorageBufferBindingSize whenever its inputs are: the
 * guard in src/webgpu.ts checks every binding).
 *
 * Scaling matches the plain attention's order of operations (layers/attention.ts): 'query' multiplies q by the scale
 * before the product (the DiT), 'scores' multiplies the scores, 'divide' divides them (MuQ's `/ sqrt(dh)`).
 * No masks: neither the DiT (diffusers AttnProcessor, attention_mask None) nor MuQ's conformer uses one.
 */
import * as tf from '@tensorflow/tfjs-core';

export const FUSED_ATTENTION = 'MucodecFusedAttention';

export type ScaleMode = 'query' | 'scores' | 'divide';

export interface FusedAttentionAttrs {
  heads: number;
  /** the scale ('query', 'scores') or the divisor ('divide') */
  scale: number;
  scaleMode: ScaleMode;
}

/** query rows per workgroup (one per thread) */
const BQ = 64;

interface TensorInfoLike { dataId: object; shape: number[]; dtype: string }
interface WebGpuBackendLike {
  device: { limits: { maxComputeWorkgroupStorageSize: number } };
  runWebGPUProgram(program: object, inputs: TensorInfoLike[], outputDtype: string, uniforms?: Array<{ type: string; data: number[] }>): TensorInfoLike;
}

/** keys per tile: K and V tiles (2·BK·dh floats) must fit the workgroup storage; 0 when even 4 keys do not */
export function keyTile(headDim: number, workgroupStorageBytes: number): number {
  for (const bk of [32, 16, 8, 4]) if (2 * bk * headDim * 4 <= workgroupStorageBytes) return bk;
  return 0;
}

class FusedAttentionProgram {
  readonly variableNames = ['q', 'k', 'v'];
  readonly variableComponents = [4, 4, 4];
  readonly outputComponent = 4;
  readonly workgroupSize: [number, number, number] = [BQ, 1, 1];
  readonly uniforms = 'scale : f32,';
  readonly dispatchLayout = { x: [2], y: [1], z: [0] };
  dispatch: [number, number, number];
  shaderKey: string;

  constructor(readonly outputShape: number[], heads: number, readonly headDim: number, readonly bk: number, readonly mode: ScaleMode) {
    const [b, tq] = outputShape as [number, number, number];
    this.dispatch = [Math.ceil(tq / BQ), heads, b];
    this.shaderKey = `mucodecFusedAttention_${headDim}_${bk}_${mode}`;
  }

  getUserCode(): string {
    const d4 = this.headDim / 4, bk = this.bk;
    const scaleQ = this.mode === 'query' ? ' * uniforms.scale' : '';
    const scaleS = this.mode === 'scores' ? ' * uniforms.scale' : this.mode === 'divide' ? ' / uniforms.scale' : '';
    return `
    const FA_D4 = ${d4};
    const FA_BK = ${bk};
    const FA_BQ = ${BQ};
    var<workgroup> faK : array<vec4<f32>, ${bk * d4}>;
    var<workgroup> faV : array<vec4<f32>, ${bk * d4}>;
    fn main() {
      let tid = i32(localId.x);
      let bi = i32(workgroupId.z);
      let hi = i32(workgroupId.y);
      let row = i32(workgroupId.x) * FA_BQ + tid;
      let tq = uniforms.qShape.y;
      let tk = uniforms.kShape.y;
      let w4 = uniforms.qShape.z / 4;
      let qRow = min(row, tq - 1);
      let qBase = (bi * tq + qRow) * w4 + hi * FA_D4;
      var qr : array<vec4<f32>, ${d4}>;
      var acc : array<vec4<f32>, ${d4}>;
      for (var d = 0; d < FA_D4; d++) {
        qr[d] = q[qBase + d]${scaleQ};
        acc[d] = vec4<f32>(0.0);
      }
      var m = -3.402823e+38f;
      var l = 0.0;
      var s : array<f32, ${bk}>;
      for (var k0 = 0; k0 < tk; k0 += FA_BK) {
        let n = min(FA_BK, tk - k0);
        for (var i = tid; i < n * FA_D4; i += FA_BQ) {
          let j = i / FA_D4;
          let idx = (bi * tk + k0 + j) * w4 + hi * FA_D4 + (i - j * FA_D4);
          faK[i] = k[idx];
          faV[i] = v[idx];
        }
        workgroupBarrier();
        var tileMax = -3.402823e+38f;
        for (var j = 0; j < n; j++) {
          var dt = 0.0;
          for (var d = 0; d < FA_D4; d++) { dt += dot(qr[d], faK[j * FA_D4 + d]); }
          dt = dt${scaleS};
          s[j] = dt;
          tileMax = max(tileMax, dt);
        }
        let mNew = max(m, tileMax);
        let corr = exp(m - mNew);
        l = l * corr;
        for (var d = 0; d < FA_D4; d++) { acc[d] = acc[d] * corr; }
        for (var j = 0; j < n; j++) {
          let p = exp(s[j] - mNew);
          l += p;
          for (var d = 0; d < FA_D4; d++) { acc[d] += p * faV[j * FA_D4 + d]; }
        }
        m = mNew;
        workgroupBarrier();
      }
      if (row < tq) {
        let oBase = (bi * tq + row) * w4 + hi * FA_D4;
        for (var d = 0; d < FA_D4; d++) { result[oBase + d] = acc[d] / l; }
      }
    }
    `;
  }
}

function ensureRegistered(): void {
  if (tf.getKernel(FUSED_ATTENTION, 'webgpu')) return;
  tf.registerKernel({
    kernelName: FUSED_ATTENTION,
    backendName: 'webgpu',
    kernelFunc: ({ inputs, backend, attrs }) => {
      const { q, k, v } = inputs as unknown as { q: TensorInfoLike; k: TensorInfoLike; v: TensorInfoLike };
      const a = attrs as unknown as FusedAttentionAttrs;
      const be = backend as unknown as WebGpuBackendLike;
      const dh = q.shape[2]! / a.heads;
      const bk = keyTile(dh, be.device.limits.maxComputeWorkgroupStorageSize);
      const program = new FusedAttentionProgram(q.shape, a.heads, dh, bk, a.scaleMode);
      return be.runWebGPUProgram(program, [q, k, v], 'float32', [{ type: 'float32', data: [a.scale] }]) as unknown as tf.TensorInfo;
    },
  });
}

/** why the fused kernel cannot run these shapes on the current backend, or null when it can */
export function fusedAttentionUnsupported(q: tf.Tensor3D, k: tf.Tensor3D, v: tf.Tensor3D, heads: number): string | null {
  if (tf.getBackend() !== 'webgpu') return `backend ${tf.getBackend()} (the fused kernel is WGSL, for webgpu)`;
  const [b, , d] = q.shape;
  if (d % heads !== 0) return `width ${d} is not a multiple of ${heads} heads`;
  const dh = d / heads;
  if (dh % 4 !== 0) return `head dim ${dh} is not a multiple of 4`;
  if (k.shape[0] !== b || v.shape[0] !== b || k.shape[2] !== d || v.shape[2] !== d || k.shape[1] !== v.shape[1]) {
    return `k ${JSON.stringify(k.shape)} / v ${JSON.stringify(v.shape)} do not match q ${JSON.stringify(q.shape)}`;
  }
  if (q.dtype !== 'float32' || k.dtype !== 'float32' || v.dtype !== 'float32') return 'inputs are not float32';
  const be = tf.backend() as unknown as WebGpuBackendLike;
  const storage = be.device.limits.maxComputeWorkgroupStorageSize;
  if (keyTile(dh, storage) === 0) return `head dim ${dh}: a tile of 4 keys and values does not fit ${storage} B of workgroup storage`;
  return null;
}

/** softmax(q kᵀ · scale) v per head on webgpu, in one fused kernel; check fusedAttentionUnsupported first */
export function fusedAttention(q: tf.Tensor3D, k: tf.Tensor3D, v: tf.Tensor3D, attrs: FusedAttentionAttrs): tf.Tensor3D {
  const why = fusedAttentionUnsupported(q, k, v, attrs.heads);
  if (why) throw new Error(`fusedAttention: ${why}`);
  ensureRegistered();
  return tf.engine().runKernel(FUSED_ATTENTION, { q, k, v }, attrs as unknown as tf.NamedAttrMap) as tf.Tensor3D;
}
