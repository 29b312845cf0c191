/**
 * Parity stages of the MuQ side of the encoder family: audio.resample, muq.features, muq.conv_subsampling,
 * muq.conformer_layer, muq.encoder (see tests/fixtures/encoder/<case>/case.json).
 */
import * as tf from '@tensorflow/tfjs-core';
import { registerStage } from '../parity.js';
import { tensorToHost as host, toFloat32, type HostTensor } from '../hosttensor.js';
import { resample } from '../audio/resample.js';
import { MelFeatures, transpose2d } from '../muq/features.js';
import { Conv2dSubsampling } from '../muq/conv_subsampling.js';
import { ConformerLayer, RotaryTensors, rotaryFromStacked } from '../muq/conformer.js';
import { MuQEncoder, muqConfigFromDicts } from '../muq/muq.js';
import type { FixtureCase } from '../fixtures.js';

function cfgNum(c: FixtureCase, key: string): number {
  const v = (c.json.config ?? {})[key];
  if (typeof v !== 'number') throw new Error(`${c.name}: config.${key} is not a number`);
  return v;
}

registerStage('audio.resample', async (c) => {
  const orig = cfgNum(c, 'orig_freq');
  const target = cfgNum(c, 'new_freq');
  // "computed in float64, stored float32 (dtype=None)" = transforms.Resample; "… waveform dtype (float32)" = functional
  const kd = String((c.json.config ?? {}).kernel_dtype ?? '');
  const kernelPrecision = kd.startsWith('computed in float64') ? 'float64' : 'float32';
  const x = c.t(c.json.inputs!.waveform!);
  const len = x.shape[x.shape.length - 1]!;
  const rows = x.data.length / len;
  const xs = toFloat32(x);
  const outs: Float32Array[] = [];
  for (let r = 0; r < rows; r++) outs.push(resample(xs.subarray(r * len, (r + 1) * len), orig, target, { kernelPrecision }));
  const n = outs[0]!.length;
  const data = new Float32Array(rows * n);
  outs.forEach((o, i) => data.set(o, i * n));
  return { 'out.resampled': { dtype: 'float32', shape: [...x.shape.slice(0, -1), n], data } };
});

registerStage('muq.features', async (c) => {
  const x = c.t(c.json.inputs!.x!);
  const [b, len] = x.shape as [number, number];
  const xs = toFloat32(x);
  const mel = new MelFeatures(); // no weights in this case: window and HTK filterbank computed
  const nMels = mel.cfg.nMels;
  let frames = 0;
  const parts: Float32Array[] = [];
  for (let i = 0; i < b; i++) {
    const f = mel.features(xs.subarray(i * len, (i + 1) * len));
    frames = f.frames;
    parts.push(transpose2d(f.data, f.frames, nMels));
  }
  const data = new Float32Array(b * nMels * frames);
  parts.forEach((p, i) => data.set(p, i * nMels * frames));
  return { 'out.features': { dtype: 'float32', shape: [b, nMels, frames], data } };
});

registerStage('muq.conv_subsampling', async (c) => {
  const p = await c.weights();
  const cfg = c.json.config as Record<string, unknown>;
  const strides = cfg.strides as [number, number];
  const fe = new Conv2dSubsampling(p, {
    convDim: cfgNum(c, 'hdim (conv_dim)'), encoderDim: cfgNum(c, 'odim (encoder_dim)'), nMels: cfgNum(c, 'n_bands (n_mels)'),
    strides, batchNormEps: cfgNum(c, 'batch_norm_eps'),
  });
  try {
    const x = c.t(c.json.inputs!.x!);
    const y = tf.tidy(() => {
      const xt = tf.tensor3d(toFloat32(x), x.shape as [number, number, number]).transpose([0, 2, 1]) as tf.Tensor3D; // (B, T, mel)
      return fe.apply(xt);
    });
    const out = await host(y);
    y.dispose();
    return { 'out.y': out };
  } finally {
    fe.dispose();
  }
});

registerStage('muq.conformer_layer', async (c) => {
  const p = await c.weights();
  const layer = new ConformerLayer(p, {
    hiddenSize: cfgNum(c, 'hidden_size'), numHeads: cfgNum(c, 'num_attention_heads'), intermediateSize: cfgNum(c, 'intermediate_size'),
    convKernel: cfgNum(c, 'conv_depthwise_kernel_size'), rotaryBase: cfgNum(c, 'rotary_embedding_base'),
    layerNormEps: cfgNum(c, 'other_layer_norm_eps'), batchNormEps: cfgNum(c, 'batch_norm_eps'),
  });
  const rot = new RotaryTensors(rotaryFromStacked(c.t('in.rotary')));
  try {
    const x = c.t('in.hidden_states');
    const xt = tf.tensor3d(toFloat32(x), x.shape as [number, number, number]);
    const { out, probs } = layer.apply(xt, rot, { returnProbs: true });
    xt.dispose();
    const res = { 'out.hidden_states': await host(out), 'out.attn_probs': await host(probs!) };
    out.dispose();
    probs!.dispose();
    return res;
  } finally {
    layer.dispose();
    rot.dispose();
  }
});

registerStage('muq.encoder', async (c) => {
  const p = await c.weights();
  const cfg = c.json.config as Record<string, Record<string, unknown>>;
  // NOTES pitfall 14: the tiny conformer comes from case.json config.conformer, not the checkpoint's cfg
  const mcfg = muqConfigFromDicts(cfg.muq!, cfg.conformer!);
  const enc = new MuQEncoder(p.sub('model.'), mcfg);
  try {
    const x = c.t(c.json.inputs!['source (B, L) 24 kHz']!);
    const [b, len] = x.shape as [number, number];
    const xs = toFloat32(x);
    const rows = Array.from({ length: b }, (_, i) => xs.subarray(i * len, (i + 1) * len));
    const depth = enc.cfg.encoderDepth;
    const hs = enc.hiddenStates(rows, depth);
    const res: Record<string, HostTensor> = {};
    for (const [i, h] of hs.entries()) { res[`out.layer_${String(i).padStart(2, '0')}`] = await host(h); h.dispose(); }
    return res;
  } finally {
    enc.dispose();
  }
});
