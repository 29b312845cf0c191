/**
 * Parity stages of the decoder family (reference/decoder): dit.*, cfm.solve_euler, mucodec.inference_codes,
 * mucodec.code2sound_latents.
 */
import * as tf from '@tensorflow/tfjs-core';
import { registerStage } from '../parity.js';
import type { FixtureCase } from '../fixtures.js';
import { tensorToHost as host, toFloat32, type HostTensor } from '../hosttensor.js';
import { ditConfigFromUpstream } from '../dit/config.js';
import { AdaLayerNormSingleFlow } from '../dit/timestep.js';
import { BasicTransformerBlock } from '../dit/block.js';
import { PatchEmbed, Transformer2DModel } from '../dit/transformer.js';
import { solveCfm } from '../sampler/cfm.js';
import { MuCodecDecoder, decoderConfigFromUpstream, type DecoderConfig } from '../decoder.js';
import { ReplayNoise } from '../noise.js';

function input(c: FixtureCase, key: string): tf.Tensor {
  const h = c.t(c.json.inputs![key]!);
  return tf.tensor(toFloat32(h), h.shape, 'float32');
}

function cfgNum(c: FixtureCase, k: string): number {
  const v = (c.json.config as Record<string, unknown>)[k];
  if (typeof v !== 'number') throw new Error(`${c.name}: config.${k} missing`);
  return v;
}

registerStage('dit.timestep_embedding', async (c) => {
  const dim = cfgNum(c, 'embedding_dim');
  const m = new AdaLayerNormSingleFlow(await c.weights(), dim, cfgNum(c, 'flow_t_size'));
  const t = toFloat32(c.t(c.json.inputs!.timestep!));
  const { modulation, embedded } = m.apply(t);
  try {
    return { 'out.modulation': await host(modulation), 'out.embedded_timestep': await host(embedded) };
  } finally {
    modulation.dispose(); embedded.dispose();
  }
});

registerStage('dit.patch_embed', async (c) => {
  const d = cfgNum(c, 'embed_dim');
  const ps = cfgNum(c, 'patch_size');
  const heads = 1;
  const pe = new PatchEmbed(await c.weights(), {
    heads, headDim: d, inChannels: cfgNum(c, 'in_channels'), outChannels: 0, numLayers: 0,
    patchSize: ps, sampleSize: cfgNum(c, 'height'), normEps: 1e-6, flowTSize: 512,
  });
  if (pe.interpolationScale !== cfgNum(c, 'interpolation_scale')) throw new Error('interpolation_scale mismatch');
  const x = input(c, 'latent') as tf.Tensor4D;
  const y = pe.apply(x);
  try {
    return { 'out.tokens': await host(y) };
  } finally {
    x.dispose(); y.dispose();
  }
});

registerStage('dit.block', async (c) => {
  const dim = cfgNum(c, 'dim');
  const blk = new BasicTransformerBlock(await c.weights(), dim, cfgNum(c, 'num_attention_heads'), cfgNum(c, 'attention_head_dim'), cfgNum(c, 'norm_eps'));
  const x = input(c, 'hidden_states') as tf.Tensor3D;
  const t = input(c, 'timestep') as tf.Tensor2D;
  const y = blk.apply(x, t);
  try {
    return { 'out.hidden_states': await host(y) };
  } finally {
    x.dispose(); t.dispose(); y.dispose();
  }
});

registerStage('dit.transformer', async (c) => {
  const cfg = ditConfigFromUpstream(c.json.config as Record<string, unknown>);
  const model = new Transformer2DModel(await c.weights(), cfg);
  const outs: Record<string, HostTensor> = {};
  try {
    for (const [key, tname] of Object.entries(c.json.outputs)) {
      const suffix = key.replace(/^sample/, ''); // _T64
      const x = input(c, `hidden_states${suffix}`) as tf.Tensor4D;
      const t = toFloat32(c.t(c.json.inputs![`timestep${suffix}`]!));
      const y = model.forward(x, t);
      outs[tname] = await host(y);
      x.dispose(); y.dispose();
    }
  } finally {
    model.dispose();
  }
  return outs;
});

registerStage('cfm.solve_euler', async (c) => {
  const cfg = ditConfigFromUpstream((c.json.config as { estimator: Record<string, unknown> }).estimator);
  const sc = c.json.scalars as { incontext_length: number; guidance_scale: number; sigma_min?: number };
  const model = new Transformer2DModel(await c.weights(), cfg);
  const x = input(c, 'x') as tf.Tensor4D;
  const incontextX = input(c, 'incontext_x') as tf.Tensor4D;
  const mu = input(c, 'mu') as tf.Tensor4D;
  const tSpan = toFloat32(c.t(c.json.inputs!.t_span!));
  try {
    const sigmaMin = (c.json.config as { sigma_min?: number }).sigma_min ?? 1e-4;
    const out = solveCfm(model, { x, incontextX, incontextLength: sc.incontext_length, mu, guidanceScale: sc.guidance_scale, sigmaMin }, { tSpan, solver: 'euler' });
    try {
      return { 'out.x': await host(out) };
    } finally {
      out.dispose();
    }
  } finally {
    x.dispose(); incontextX.dispose(); mu.dispose();
    model.dispose();
  }
});

function decoderConfig(c: FixtureCase): DecoderConfig {
  return decoderConfigFromUpstream(c.json.config as Record<string, unknown>);
}

registerStage('mucodec.inference_codes', async (c) => {
  const sc = c.json.scalars as { latent_length: number; incontext_length: number; guidance_scale: number; num_steps: number; scenario: 'start_seg' | 'other_seg' };
  const dec = new MuCodecDecoder(await c.weights(), decoderConfig(c));
  try {
    const noise = new ReplayNoise(c.noise(), `${c.name} noise`);
    const out = dec.inferenceCodes({
      codes: c.t(c.json.inputs!.codes!), trueLatents: c.t(c.json.inputs!.true_latents!),
      latentLength: sc.latent_length, incontextLength: sc.incontext_length, guidanceScale: sc.guidance_scale,
      numSteps: sc.num_steps, scenario: sc.scenario, noise,
    });
    try {
      if (noise.remaining) throw new Error(`${noise.remaining} recorded draws unused`);
      return { 'out.latents': await host(out) };
    } finally {
      out.dispose();
    }
  } finally {
    dec.dispose();
  }
});

registerStage('mucodec.code2sound_latents', async (c) => {
  const sc = c.json.scalars as { num_steps: number; guidance_scale: number; padded_codes_len: number; window_starts: number[]; target_len: number };
  const dec = new MuCodecDecoder(await c.weights(), decoderConfig(c));
  const outs: Record<string, HostTensor> = {};
  try {
    const noise = new ReplayNoise(c.noise(), `${c.name} noise`);
    const codes = c.t(c.json.inputs!.codes!);
    for await (const w of dec.code2soundLatents(codes, { numSteps: sc.num_steps, guidanceScale: sc.guidance_scale, noise })) {
      const p = w.plan;
      if (p.paddedLength !== sc.padded_codes_len || p.targetLen !== sc.target_len || JSON.stringify(p.windowStarts) !== JSON.stringify(sc.window_starts)) {
        throw new Error(`window plan ${JSON.stringify(p)} differs from the reference scalars`);
      }
      outs[`out.latent_${w.index}`] = w.latents;
    }
    if (noise.remaining) throw new Error(`${noise.remaining} recorded draws unused`);
  } finally {
    dec.dispose();
  }
  return outs;
});
