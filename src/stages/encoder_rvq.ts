/** Parity stages of the RVQ (rvq.quantize, rvq.from_codes) and of MuCodec's encode path (mucodec.*). */
import * as tf from '@tensorflow/tfjs-core';
import { registerStage } from '../parity.js';
import { RVQ, type RVQConfig } from '../rvq/index.js';
import type { HostTensor } from '../hosttensor.js';
import { tensorToHost as host, toFloat32, toInt32 } from '../hosttensor.js';
import { MuCodec, type MuCodecConfig } from '../codec.js';

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

// ---- mucodec.fetch_codes / mucodec.sound2code (generate.py MuCodec.sound2code, model.py fetch_codes_batch) ----

/** MuCodecConfig from a mucodec.* case.json config (muq + conformer + rvq + layer). */
function mucodecConfig(cfg: Record<string, unknown>): MuCodecConfig {
  const layerNum = typeof cfg['MuCodec layer_num (constructor arg)'] === 'number'
    ? (cfg['MuCodec layer_num (constructor arg)'] as number)
    : (cfg['layer (index into layer_results)'] as number) + 1;
  return {
    muq: { ...(cfg.muq as Record<string, unknown>), conformer: cfg.conformer as Record<string, unknown> },
    layer_num: layerNum,
    rvq_muencoder_emb: rvqConfig(cfg.rvq as Record<string, unknown>),
  };
}

registerStage('mucodec.fetch_codes', async (c) => {
  const codec = MuCodec.fromParams(await c.weights(), mucodecConfig(c.json.config!));
  try {
    const x = c.t(c.json.inputs!['input_audios (B, 2, L) 48 kHz']!);
    const [B, C, L] = x.shape as [number, number, number];
    if (C !== 2) throw new Error(`fetch_codes: input has ${C} channels`);
    const d = toFloat32(x);
    const items = Array.from({ length: B }, (_, b) =>
      [d.subarray((b * 2) * L, (b * 2 + 1) * L), d.subarray((b * 2 + 1) * L, (b * 2 + 2) * L)] as [Float32Array, Float32Array]);
    const r = await (await codec.encoder()).fetchCodes(items, { withEmb: true, withMuqInput: true });
    const emb = r.emb!;
    try {
      const embT = tf.transpose(emb, [0, 2, 1]);
      const out = await host(embT);
      embT.dispose();
      const n24 = r.muqInput![0]!.length;
      const mid = new Float32Array(B * n24);
      r.muqInput!.forEach((row, i) => mid.set(row, i * n24));
      return {
        'out.codes': { dtype: 'int32', shape: [B, codec.config.rvq_muencoder_emb.n_codebooks, r.frames], data: r.codes },
        'out.muencoder_emb': out,
        'mid.muq_input_24k': { dtype: 'float32', shape: [B, n24], data: mid },
      };
    } finally {
      emb.dispose();
    }
  } finally {
    codec.dispose();
  }
});

registerStage('mucodec.sound2code', async (c) => {
  const cfg = c.json.config!;
  const codec = MuCodec.fromParams(await c.weights(), mucodecConfig(cfg));
  try {
    const tile = c.t('in.audio_tile');
    const [C, n] = tile.shape as [number, number];
    if (C !== 2) throw new Error(`sound2code: tile has ${C} channels`);
    const L = cfg.input_length as number;
    const td = toFloat32(tile);
    // input_construction: orig[c, i] = tile[c, i mod n] for i < L
    const orig = [0, 1].map((ch) => {
      const row = td.subarray(ch * n, (ch + 1) * n);
      const o = new Float32Array(L);
      for (let i = 0; i < L; i += n) o.set(row.subarray(0, Math.min(n, L - i)), i);
      return o;
    }) as [Float32Array, Float32Array];
    const codes = await (await codec.encoder()).sound2code(orig, { batchSize: cfg.batch_size as number });
    return { 'out.codes': { dtype: 'int32', shape: [1, 1, codes.length], data: codes } };
  } finally {
    codec.dispose();
  }
});
