/**
 * Parity stages of the decoder family (reference/decoder): dit.*, cfm.solve_euler, mucodec.inference_codes,
 * mucodec.code2sound_latents.
 */
import * as tf from '@tensorflow/tfjs-core';
import { registerStage } from '../parity.js';
import type { FixtureCase } from '../fixtures.js';
import { tensorToHost as host, toFloat32, toInt32, type HostTensor } from '../hosttensor.js';
import { ditConfigFromUpstream } from '../dit/config.js';
import { AdaLayerNormSingleFlow } from '../dit/timestep.js';
import { BasicTransformerBlock } from '../dit/block.js';
import { PatchEmbed, Transformer2DModel } from '../dit/transformer.js';
import { solveCfm, type Estimator } from '../sampler/cfm.js';
import {
  HOP_CODES, MuCodecDecoder, OVERLAP_FRAMES, WINDOW_CODES, WINDOW_FRAMES, decoderConfigFromUpstream, tileCodes, type DecoderConfig,
} from '../decoder.js';
import { DIT_FIXED, DIT_UNUSED, RVQ_UNUSED, cfgNum, expectDerived, num, sub, supportOnly, under } from './checks.js';

type Rec = Record<string, unknown>;

function input(c: FixtureCase, key: string): tf.Tensor {
  const h = c.input(key);
  return tf.tensor(toFloat32(h), h.shape, 'float32');
}

/** an upstream estimator / block config: the fixed settings checked, then the DiT config read from it */
function ditConfig(obj: Rec, label: string): ReturnType<typeof ditConfigFromUpstream> {
  supportOnly(obj, label, DIT_FIXED);
  return ditConfigFromUpstream(obj);
}

/** decoder config (estimator, RVQ, normfeat) of a mucodec.* case */
function decoderConfig(c: FixtureCase): DecoderConfig {
  supportOnly(sub(c.config, 'estimator', 'config'), 'config.estimator', DIT_FIXED);
  return decoderConfigFromUpstream(c.config);
}

const DECODER_UNUSED: Record<string, string> = {
  ...under('estimator', DIT_UNUSED),
  ...under('rvq_muencoder_emb', RVQ_UNUSED),
  'cond_muencoder_emb.in_features': 'the shape of cond_muencoder_emb.weight, taken from the weights',
  'cond_muencoder_emb.out_features': 'the shape of cond_muencoder_emb.weight, taken from the weights',
  'normfeat.dim': 'the statistics\' size comes from the weights (normfeat.sum_x)',
};

registerStage('dit.timestep_embedding', async (c) => {
  supportOnly(c.config, 'config', { use_additional_conditions: false });
  const dim = cfgNum(c, 'embedding_dim');
  const m = new AdaLayerNormSingleFlow(await c.weights(), dim, cfgNum(c, 'flow_t_size'));
  const t = toFloat32(c.input('timestep'));
  const { modulation, embedded } = m.apply(t);
  try {
    return { modulation: await host(modulation), embedded_timestep: await host(embedded) };
  } finally {
    modulation.dispose(); embedded.dispose();
  }
});

registerStage('dit.patch_embed', async (c) => {
  const d = cfgNum(c, 'embed_dim');
  const ps = cfgNum(c, 'patch_size');
  const height = cfgNum(c, 'height');
  // PatchEmbed's position grid is square (diffusers: height = width = sample_size)
  supportOnly(c.config, 'config', { width: height });
  const heads = 1;
  const pe = new PatchEmbed(await c.weights(), {
    heads, headDim: d, inChannels: cfgNum(c, 'in_channels'), outChannels: 0, numLayers: 0,
    patchSize: ps, sampleSize: height, normEps: 1e-6, flowTSize: 512,
  });
  if (pe.interpolationScale !== cfgNum(c, 'interpolation_scale')) throw new Error('interpolation_scale mismatch');
  const x = input(c, 'latent') as tf.Tensor4D;
  const y = pe.apply(x);
  try {
    return { tokens: await host(y) };
  } finally {
    x.dispose(); y.dispose();
  }
});

registerStage('dit.block', async (c) => {
  supportOnly(c.config, 'config', DIT_FIXED);
  // the settings ditConfigFromUpstream checks for the whole model, for this block
  supportOnly(c.config, 'config', { cross_attention_dim: null, activation_fn: 'gelu-approximate', attention_bias: true, norm_type: 'ada_norm_single', norm_elementwise_affine: false });
  const dim = cfgNum(c, 'dim');
  const blk = new BasicTransformerBlock(await c.weights(), dim, cfgNum(c, 'num_attention_heads'), cfgNum(c, 'attention_head_dim'), cfgNum(c, 'norm_eps'));
  const x = input(c, 'hidden_states') as tf.Tensor3D;
  const t = input(c, 'timestep') as tf.Tensor2D;
  const y = blk.apply(x, t);
  try {
    return { hidden_states: await host(y) };
  } finally {
    x.dispose(); t.dispose(); y.dispose();
  }
}, { unusedConfig: DIT_UNUSED });

registerStage('dit.transformer', async (c) => {
  const cfg = ditConfig(c.config, 'config');
  const model = new Transformer2DModel(await c.weights(), cfg);
  const outs: Record<string, HostTensor> = {};
  const wanted = new Set(Object.keys(c.json.intermediates ?? {}));
  try {
    for (const key of Object.keys(c.json.outputs)) {
      const suffix = key.replace(/^sample/, ''); // _T64
      const x = input(c, `hidden_states${suffix}`) as tf.Tensor4D;
      const t = toFloat32(c.input(`timestep${suffix}`));
      // taps of the forward: patch_embed, t_mod, t_embedded, block<i> (case.json names them <tap><suffix>)
      const taps: Array<[string, tf.Tensor]> = [];
      const y = model.forward(x, t, (name, v) => { if (wanted.has(`${name}${suffix}`)) taps.push([`${name}${suffix}`, v.clone()]); });
      outs[key] = await host(y);
      for (const [k, v] of taps) { outs[k] = await host(v); v.dispose(); }
      if (wanted.has(`pos_embed_used${suffix}`)) {
        // the position embedding the forward adds to the patch tokens (PatchEmbed.posEmbed of the token grid)
        const [, , hh, ww] = x.shape;
        const h = hh / cfg.patchSize, w = ww / cfg.patchSize;
        outs[`pos_embed_used${suffix}`] = { dtype: 'float32', shape: [1, h * w, cfg.heads * cfg.headDim], data: model.patchEmbed.posEmbed(h, w) };
      }
      x.dispose(); y.dispose();
    }
  } finally {
    model.dispose();
  }
  return outs;
}, { unusedConfig: DIT_UNUSED });

/** An estimator that records what the solver feeds it (the x part, first B rows) and its first output. */
function recordingEstimator(model: Transformer2DModel, batch: number, channels: number): Estimator & { xs: tf.Tensor[]; out0: tf.Tensor | null } {
  const rec = {
    xs: [] as tf.Tensor[], out0: null as tf.Tensor | null,
    forward(hidden: tf.Tensor4D, t: ArrayLike<number>): tf.Tensor4D {
      const [, , T, W] = hidden.shape;
      rec.xs.push(tf.keep(tf.slice(hidden, [0, 0, 0, 0], [batch, channels, T, W]))); // kept: the solver runs this inside tf.tidy
      const y = model.forward(hidden, t);
      if (!rec.out0) rec.out0 = tf.keep(y.clone());
      return y;
    },
  };
  return rec;
}

registerStage('cfm.solve_euler', async (c) => {
  const cfg = ditConfig(sub(c.config, 'estimator', 'config'), 'config.estimator');
  const sc = c.scalars;
  const model = new Transformer2DModel(await c.weights(), cfg);
  const x = input(c, 'x') as tf.Tensor4D;
  const incontextX = input(c, 'incontext_x') as tf.Tensor4D;
  const mu = input(c, 'mu') as tf.Tensor4D;
  const tSpan = toFloat32(c.input('t_span'));
  expectDerived(sc, 'n_timesteps', 'scalars', tSpan.length - 1);
  const est = recordingEstimator(model, x.shape[0], x.shape[1]);
  try {
    const sigmaMin = num(c.config, 'sigma_min', 'config');
    const out = solveCfm(est, {
      x, incontextX, incontextLength: num(sc, 'incontext_length', 'scalars'), mu, guidanceScale: num(sc, 'guidance_scale', 'scalars'), sigmaMin,
    }, { tSpan, solver: 'euler' });
    try {
      const res: Record<string, HostTensor> = { x: await host(out) };
      for (let k = 0; k < est.xs.length; k++) res[`x_step${k}`] = await host(est.xs[k]!);
      if (est.out0) res.estimator_out_step0 = await host(est.out0);
      return res;
    } finally {
      out.dispose();
    }
  } finally {
    for (const t of [x, incontextX, mu, ...est.xs, est.out0]) t?.dispose();
    model.dispose();
  }
}, { unusedConfig: under('estimator', DIT_UNUSED) });

registerStage('mucodec.inference_codes', async (c) => {
  const sc = c.scalars;
  const scenario = sc.scenario;
  if (scenario !== 'start_seg' && scenario !== 'other_seg') throw new Error(`scalars.scenario = ${JSON.stringify(scenario)}: expected "start_seg" or "other_seg"`);
  const dec = new MuCodecDecoder(await c.weights(), decoderConfig(c));
  try {
    const out = dec.inferenceCodes({
      codes: c.input('codes'), trueLatents: c.input('true_latents'),
      latentLength: num(sc, 'latent_length', 'scalars'), incontextLength: num(sc, 'incontext_length', 'scalars'),
      guidanceScale: num(sc, 'guidance_scale', 'scalars'), numSteps: num(sc, 'num_steps', 'scalars'), scenario, noise: c.replayNoise(),
    });
    try {
      return { latents: await host(out) };
    } finally {
      out.dispose();
    }
  } finally {
    dec.dispose();
  }
}, { unusedConfig: DECODER_UNUSED });

registerStage('mucodec.code2sound_latents', async (c) => {
  const sc = c.scalars;
  // the decoder's window geometry is upstream's, fixed: 1024-code (40.96 s at 48 kHz) windows every 768 codes
  supportOnly(c.config, 'config', { sample_rate: 48000, duration: 40.96 });
  supportOnly(sc, 'scalars', {
    window_codes: WINDOW_CODES, hop_codes: HOP_CODES, latent_length: WINDOW_FRAMES, incontext_length_later_windows: OVERLAP_FRAMES,
    first_latent_length: 0, // no prompt in this stage
  });
  const dec = new MuCodecDecoder(await c.weights(), decoderConfig(c));
  const outs: Record<string, HostTensor> = {};
  try {
    const codes = c.input('codes');
    const n = codes.shape[codes.shape.length - 1]!;
    expectDerived(sc, 'codes_len', 'scalars', n);
    let windows = 0;
    for await (const w of dec.code2soundLatents(codes, { numSteps: num(sc, 'num_steps', 'scalars'), guidanceScale: num(sc, 'guidance_scale', 'scalars'), noise: c.replayNoise() })) {
      const p = w.plan;
      for (const [k, v] of [['padded_codes_len', p.paddedLength], ['target_len', p.targetLen], ['out_samples', p.targetLen], ['window_starts', p.windowStarts], ['n_windows', p.windowStarts.length]] as const) {
        expectDerived(sc, k, 'scalars', v);
      }
      if (w.index === 0) {
        // the padded codes of the decoder's window plan (the windows are slices of them)
        outs.codes_padded = { dtype: 'int32', shape: [1, 1, p.paddedLength], data: tileCodes(toInt32(codes), 1, n, p.paddedLength) };
      }
      outs[`latent_${w.index}`] = w.latents;
      windows++;
    }
    if (!windows) throw new Error('code2sound produced no window');
  } finally {
    dec.dispose();
  }
  return outs;
}, { unusedConfig: DECODER_UNUSED });
