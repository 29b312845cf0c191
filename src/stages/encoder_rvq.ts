/** Parity stages of the RVQ (rvq.quantize, rvq.from_codes) and of MuCodec's encode path (mucodec.*). */
import * as tf from '@tensorflow/tfjs-core';
import { registerStage } from '../parity.js';
import { RVQ, type RVQConfig } from '../rvq/index.js';
import { tensorToHost as host, toFloat32, toInt32, type HostTensor } from '../hosttensor.js';
import { MuCodec, type MuCodecConfig } from '../codec.js';
import { ITEM_PEAK_THRESHOLD, MIN_SAMPLES, ROW_PEAK_THRESHOLD, WINDOW_SAMPLES, loopWindow, peakNormalize, windowCount } from '../encoder.js';
import type { FixtureCase } from '../fixtures.js';
import { CONFORMER_FIXED, CONFORMER_UNUSED, DESCRIPTION, RVQ_UNUSED, expectDerived, num, sub, supportOnly, under } from './checks.js';

type Rec = Record<string, unknown>;

function rvqConfig(cfg: Rec, label: string): RVQConfig {
  return {
    input_dim: num(cfg, 'input_dim', label),
    n_codebooks: num(cfg, 'n_codebooks', label),
    codebook_size: num(cfg, 'codebook_size', label),
    codebook_dim: num(cfg, 'codebook_dim', label),
  };
}

const MARGIN = 'the reference\'s float64 top-1/top-2 search margin: the code_match rule\'s input, not a quantity the codec computes';

registerStage('rvq.quantize', async (c) => {
  const rvq = RVQ.fromParams(await c.weights(), rvqConfig(c.config, 'config'), 'both');
  const zIn = c.input('z (B, input_dim, T)');
  expectDerived(c.config, 'batch', 'config', zIn.shape[0]);
  expectDerived(c.config, 'frames', 'config', zIn.shape[2]);
  const z = tf.tensor3d(toFloat32(zIn), zIn.shape as [number, number, number]);
  try {
    const r = rvq.quantize(z);
    try {
      return {
        'codes (B, 1, T) int64': await host(r.codes, 'int32'), 'z_q (B, input_dim, T)': await host(r.zQ!),
        'latents = z_e (B, codebook_dim, T)': await host(r.latents),
      };
    } finally {
      r.codes.dispose(); r.zQ?.dispose(); r.latents.dispose();
    }
  } finally {
    z.dispose();
    rvq.dispose();
  }
}, { unusedConfig: RVQ_UNUSED, unproduced: { 'per-frame top1-top2 score margin (float64, (B*T,))': MARGIN } });

registerStage('rvq.from_codes', async (c) => {
  const rvq = RVQ.fromParams(await c.weights(), rvqConfig(c.config, 'config'), 'decode');
  const cIn = c.input('codes (B, 1, T) int64');
  expectDerived(c.config, 'batch', 'config', cIn.shape[0]);
  expectDerived(c.config, 'frames', 'config', cIn.shape[2]);
  try {
    const r = rvq.fromCodes({ data: toInt32(cIn), shape: cIn.shape as [number, number, number] });
    try {
      return {
        'z_q = sum_i out_proj_i(codebook_i[codes_i]) (B, input_dim, T)': await host(r.zQ),
        'z_p = codebook vectors, NOT normalized (B, codebook_dim, T)': await host(r.zP),
      };
    } finally {
      r.zQ.dispose(); r.zP.dispose();
    }
  } finally {
    rvq.dispose();
  }
}, { unusedConfig: RVQ_UNUSED });

// ---- mucodec.fetch_codes / mucodec.sound2code (generate.py MuCodec.sound2code, model.py fetch_codes_batch) ----

/** `base` (a tracked config view) with one more key, still tracked */
function withKey(base: Rec, key: string, value: unknown): Rec {
  return new Proxy(base, { get: (t, k, r) => (k === key ? value : Reflect.get(t, k, r)) });
}

/** MuCodecConfig from a mucodec.* case.json config (muq + conformer + rvq + layer); the fixed settings checked. */
function mucodecConfig(c: FixtureCase): MuCodecConfig {
  const cfg = c.config;
  const muq = sub(cfg, 'muq', 'config'), conf = sub(cfg, 'conformer', 'config');
  supportOnly(conf, 'config.conformer', {
    ...CONFORMER_FIXED, hidden_size: num(muq, 'encoder_dim', 'config.muq'), num_hidden_layers: num(muq, 'encoder_depth', 'config.muq'),
    other_layer_norm_eps: num(conf, 'layer_norm_eps', 'config.conformer'), // one eps for every LayerNorm (muq/muq.ts)
  });
  // MODEL fetch_codes_batch: per-row 0.9 peak normalisation, mono mix, rsq48tomuencoder (encoder.ts)
  supportOnly(cfg, 'config', {
    'preprocess_threshold (PromptCondAudioDiffusion.preprocess_audio, per channel row)': ROW_PEAK_THRESHOLD,
    mono: '(ch0 + ch1) / 2 after per-channel normalisation',
    resample: 'torchaudio.transforms.Resample(48000, 24000) (buffer rsq48tomuencoder.kernel)',
  });
  const layerKey = 'layer (index into layer_results)', numKey = 'MuCodec layer_num (constructor arg)';
  const layerNum = Object.prototype.hasOwnProperty.call(cfg, numKey) ? num(cfg, numKey, 'config') : num(cfg, layerKey, 'config') + 1;
  expectDerived(cfg, layerKey, 'config', layerNum - 1);
  return {
    muq: withKey(muq, 'conformer', conf) as MuCodecConfig['muq'],
    layer_num: layerNum,
    rvq_muencoder_emb: rvqConfig(sub(cfg, 'rvq', 'config'), 'config.rvq'),
  };
}

const MUCODEC_UNUSED: Record<string, string> = {
  ...under('conformer', CONFORMER_UNUSED),
  ...under('rvq', RVQ_UNUSED),
  'muq.codebook_size': 'MuQ\'s training targets (its own quantiser); the hidden states do not depend on it',
};

registerStage('mucodec.fetch_codes', async (c) => {
  const codec = MuCodec.fromParams(await c.weights(), mucodecConfig(c));
  try {
    const x = c.input('input_audios (B, 2, L) 48 kHz');
    const [B, C, L] = x.shape as [number, number, number];
    if (C !== 2) throw new Error(`fetch_codes: input has ${C} channels`);
    const d = toFloat32(x);
    const items = Array.from({ length: B }, (_, b) =>
      [d.subarray((b * 2) * L, (b * 2 + 1) * L), d.subarray((b * 2 + 1) * L, (b * 2 + 2) * L)] as [Float32Array, Float32Array]);
    const enc = await codec.encoder();
    const r = await enc.fetchCodes(items, { withEmb: true, withMuqInput: true });
    const emb = r.emb!;
    try {
      const embT = tf.transpose(emb, [0, 2, 1]);
      const out = await host(embT);
      embT.dispose();
      // z_e of the embedding through the encoder's own RVQ (fetchCodes keeps only its codes)
      const q = enc.rvq.quantizeChannelsLast(emb, { withZq: false });
      const latents = await host(q.latents);
      q.latents.dispose(); q.codes.dispose(); q.zQ?.dispose();
      const n24 = r.muqInput![0]!.length;
      const mid = new Float32Array(B * n24);
      r.muqInput!.forEach((row, i) => mid.set(row, i * n24));
      for (const [k, v] of [['batch', B], ['input_length', L], ['output_frames', r.frames]] as const) expectDerived(c.config, k, 'config', v);
      return {
        'codes (B, 1, T) int64': { dtype: 'int32', shape: [B, codec.config.rvq_muencoder_emb.n_codebooks, r.frames], data: r.codes },
        'muencoder_emb (B, encoder_dim, T)': out,
        'MuQ input: 24 kHz mono (B, L24)': { dtype: 'float32', shape: [B, n24], data: mid },
        'rvq latents z_e (B, 32, T)': latents,
      };
    } finally {
      emb.dispose();
    }
  } finally {
    codec.dispose();
  }
}, {
  unusedConfig: MUCODEC_UNUSED,
  unproduced: {
    'rvq z_q (discarded by fetch_codes_batch)': 'the encoder loads the RVQ for encoding only (no out_proj), as fetch_codes_batch discards z_q; rvq.quantize_* compare z_q',
    'per-frame top1-top2 score margin (float64)': MARGIN,
  },
});

registerStage('mucodec.sound2code', async (c) => {
  const cfg = c.config;
  const codec = MuCodec.fromParams(await c.weights(), mucodecConfig(c));
  // GEN sound2code's fixed geometry (encoder.ts)
  supportOnly(cfg, 'config', { sample_rate: 48000, min_samples: MIN_SAMPLES, window: WINDOW_SAMPLES, 'sound2code preprocess threshold': ITEM_PEAK_THRESHOLD });
  try {
    const tile = c.input('orig_samples (2, L) 48 kHz stereo (see input_construction)');
    const [C, n] = tile.shape as [number, number];
    if (C !== 2) throw new Error(`sound2code: tile has ${C} channels`);
    const L = num(cfg, 'input_length', 'config');
    const td = toFloat32(tile);
    // input_construction: orig[c, i] = tile[c, i mod n] for i < L
    let peak = 0;
    const orig = [0, 1].map((ch) => {
      const row = td.subarray(ch * n, (ch + 1) * n);
      const o = new Float32Array(L);
      for (let i = 0; i < L; i += n) o.set(row.subarray(0, Math.min(n, L - i)), i);
      for (const v of row) peak = Math.max(peak, Math.abs(v));
      return o;
    }) as [Float32Array, Float32Array];
    const enc = await codec.encoder();
    const codes = await enc.sound2code(orig, { batchSize: num(cfg, 'batch_size', 'config') });
    const nWin = windowCount(L);
    for (const [k, v] of [
      ['input_seconds', L / 48000], ['output_len', codes.length], ['n_windows', nWin], ['codes_per_window', enc.framesPerWindow], ['input_peak', peak],
    ] as const) expectDerived(cfg, k, 'config', v);
    const res: Record<string, HostTensor> = { 'codes (1, 1, output_len) int64': { dtype: 'int32', shape: [1, 1, codes.length], data: codes } };
    const embKey = 'muencoder_emb of every window, in window order (n_windows, encoder_dim, 1024)';
    if (c.json.intermediates?.[embKey] !== undefined) {
      // sound2code's windows (0.8 item normalisation, loop padding) through the encoder's fetchCodes, embeddings kept
      const [c0, c1] = peakNormalize(orig, ITEM_PEAK_THRESHOLD) as [Float32Array, Float32Array];
      const r = await enc.fetchCodes(Array.from({ length: nWin }, (_, w) => [loopWindow(c0, w), loopWindow(c1, w)] as [Float32Array, Float32Array]), { withEmb: true });
      const embT = tf.transpose(r.emb!, [0, 2, 1]);
      r.emb!.dispose();
      res[embKey] = await host(embT);
      embT.dispose();
    }
    return res;
  } finally {
    codec.dispose();
  }
}, {
  unusedConfig: {
    ...MUCODEC_UNUSED,
    'fetch_codes_batch calls (window batch shapes)': 'derived: the window batches of batch_size (the codes do not depend on the batching)',
    'repeat_padding_factor (doublings before windowing)': 'derived: the loop padding, checked through the codes',
    case_kind: DESCRIPTION,
  },
  unproduced: {
    'per-frame top1-top2 score margin of the output_len emitted frames (float64)': MARGIN,
  },
});
