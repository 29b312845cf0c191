/** Parity stages of the RVQ (rvq.quantize, rvq.from_codes) and of MuCodec's encode path (mucodec.*). */
import * as tf from '@tensorflow/tfjs-core';
import { registerStage } from '../parity.js';
import { RVQ, type RVQConfig } from '../rvq/index.js';
import type { HostTensor } from '../hosttensor.js';
import { toFloat32, toInt32 } from '../hosttensor.js';

async function host(t: tf.Tensor, dtype: 'float32' | 'int32' = 'float32'): Promise<HostTensor> {
  const data = dtype === 'int32' ? Int32Array.from(await t.data()) : Float32Array.from(await t.data());
  return { dtype, shape: [...t.shape], data };
}

function rvqConfig(cfg: Record<string, unknown>): RVQConfig {
  return {
    input_dim: cfg.input_dim as number,
    n_codebooks: cfg.n_codebooks as number,
    codebook_size: cfg.codebook_size as number,
    codebook_dim: cfg.codebook_dim as number,
  };
}

registerStage('rvq.quantize', async (c) => {
  const rvq = RVQ.fromParams(await c.weights(), rvqConfig(c.json.config!), 'both');
  const zIn = c.t(c.json.inputs!['z (B, input_dim, T)']!);
  const z = tf.tensor3d(toFloat32(zIn), zIn.shape as [number, number, number]);
  try {
    const r = rvq.quantize(z);
    try {
      return { 'out.codes': await host(r.codes, 'int32'), 'out.z_q': await host(r.zQ!), 'out.latents': await host(r.latents) };
    } finally {
      r.codes.dispose(); r.zQ?.dispose(); r.latents.dispose();
    }
  } finally {
    z.dispose();
    rvq.dispose();
  }
});

registerStage('rvq.from_codes', async (c) => {
  const rvq = RVQ.fromParams(await c.weights(), rvqConfig(c.json.config!), 'decode');
  const cIn = c.t(c.json.inputs!['codes (B, 1, T) int64']!);
  try {
    const r = rvq.fromCodes({ data: toInt32(cIn), shape: cIn.shape as [number, number, number] });
    try {
      return { 'out.z_q': await host(r.zQ), 'out.z_p': await host(r.zP) };
    } finally {
      r.zQ.dispose(); r.zP.dispose();
    }
  } finally {
    rvq.dispose();
  }
});
