/**
 * Parity stages of the MuQ side of the encoder family: audio.resample, muq.features, muq.conv_subsampling,
 * muq.conformer_layer, muq.encoder (see tests/fixtures/encoder/<case>/case.json).
 */
import * as tf from '@tensorflow/tfjs-core';
import { registerStage } from '../parity.js';
import { tensorToHost as host, toFloat32, type HostTensor } from '../hosttensor.js';
import { gcd, resample, sincResampleKernel, type ResampleOptions } from '../audio/resample.js';
import { MelFeatures, transpose2d } from '../muq/features.js';
import { Conv2dSubsampling } from '../muq/conv_subsampling.js';
import { ConformerLayer, RotaryTensors, rotaryFromStacked, rotaryTables, type ConformerLayerMids } from '../muq/conformer.js';
import { MuQEncoder, muqConfigFromDicts } from '../muq/muq.js';
import type { FixtureCase } from '../fixtures.js';
import { CONFORMER_FIXED, CONFORMER_UNUSED, DESCRIPTION, cfgNum, expectDerived, num, sub, supportOnly, under } from './checks.js';

/** case.json kernel_dtype → kernel precision: transforms.Resample builds in float64, functional.resample in the waveform's float32 */
const KERNEL_DTYPES: Record<string, ResampleOptions['kernelPrecision']> = {
  'computed in float64, stored float32 (dtype=None)': 'float64',
  'computed in the waveform dtype (float32)': 'float32',
};

registerStage('audio.resample', async (c) => {
  const orig = cfgNum(c, 'orig_freq');
  const target = cfgNum(c, 'new_freq');
  supportOnly(c.config, 'config', { resampling_method: 'sinc_interpolation', beta: null });
  const kd = String(c.config.kernel_dtype);
  const kernelPrecision = KERNEL_DTYPES[kd];
  if (!kernelPrecision) throw new Error(`config.kernel_dtype ${JSON.stringify(kd)}: not one of ${Object.keys(KERNEL_DTYPES).map((k) => JSON.stringify(k)).join(', ')}`);
  const opts: ResampleOptions = { kernelPrecision, lowpassFilterWidth: cfgNum(c, 'lowpass_filter_width'), rolloff: cfgNum(c, 'rolloff') };
  const x = c.input('waveform');
  const len = x.shape[x.shape.length - 1]!;
  const rows = x.data.length / len;
  const xs = toFloat32(x);
  const outs: Float32Array[] = [];
  for (let r = 0; r < rows; r++) outs.push(resample(xs.subarray(r * len, (r + 1) * len), orig, target, opts));
  const n = outs[0]!.length;
  const data = new Float32Array(rows * n);
  outs.forEach((o, i) => data.set(o, i * n));
  const k = sincResampleKernel(orig, target, opts);
  for (const [key, v] of [['gcd', gcd(orig, target)], ['width', k.width], ['input_length', len], ['output_length', n]] as const) expectDerived(c.config, key, 'config', v);
  return {
    resampled: { dtype: 'float32', shape: [...x.shape.slice(0, -1), n], data },
    'kernel (new/gcd, 1, 2*width + orig/gcd)': { dtype: 'float32', shape: [k.target, 1, k.taps], data: k.kernel },
  };
}, { unusedConfig: { output_length_formula: DESCRIPTION } });

registerStage('muq.features', async (c) => {
  const cfg = c.config;
  const nFft = cfgNum(c, 'n_fft');
  // torchaudio MelSpectrogram + AmplitudeToDB settings MelFeatures has at MuQ's values only
  supportOnly(cfg, 'config', {
    win_length: nFft, window: `torch.hann_window(${nFft}, periodic=True)`, center: true, pad_mode: 'reflect', power: 2.0,
    normalized: false, onesided: true, mel_scale: 'htk', mel_norm: null, crop: '[..., :-1] (last STFT frame dropped)', rearrange_applied: false,
  });
  const db = sub(cfg, 'amplitude_to_db', 'config');
  supportOnly(db, 'config.amplitude_to_db', { stype: 'power', multiplier: 10.0, ref_value: 1.0, db_multiplier: 0.0, top_db: null });
  const norm = sub(cfg, 'normalize', 'config');
  const mel = new MelFeatures({
    config: {
      sampleRate: cfgNum(c, 'sample_rate'), nFft, hopLength: cfgNum(c, 'hop_length'), nMels: cfgNum(c, 'n_mels'),
      fMin: cfgNum(c, 'f_min'), fMax: cfgNum(c, 'f_max'), amin: num(db, 'amin', 'config.amplitude_to_db'),
      mean: num(norm, 'melspec_2048_mean', 'config.normalize'), std: num(norm, 'melspec_2048_std', 'config.normalize'),
    },
  });
  const x = c.input('x');
  const [b, len] = x.shape as [number, number];
  const xs = toFloat32(x);
  const nMels = mel.cfg.nMels;
  let frames = 0;
  const parts: Float32Array[] = [], dbs: Float32Array[] = [], powers: Float32Array[] = [];
  for (let i = 0; i < b; i++) {
    const row = xs.subarray(i * len, (i + 1) * len);
    const pw = mel.melPower(row);
    powers.push(transpose2d(pw, pw.length / nMels, nMels));
    const d = mel.toDb(pw);
    dbs.push(transpose2d(d, d.length / nMels, nMels));
    const f = mel.features(row);
    frames = f.frames;
    parts.push(transpose2d(f.data, f.frames, nMels));
  }
  const cat = (ps: Float32Array[], t: number): HostTensor => {
    const data = new Float32Array(b * nMels * t);
    ps.forEach((p, i) => data.set(p, i * nMels * t));
    return { dtype: 'float32', shape: [b, nMels, t], data };
  };
  expectDerived(cfg, 'input_length', 'config', len);
  expectDerived(cfg, 'stft_frames', 'config', frames + 1);
  expectDerived(cfg, 'output_frames', 'config', frames);
  return {
    melspec_2048: cat(parts, frames), 'mel dB (before crop/normalize)': cat(dbs, frames + 1),
    'mel power (MelSpectrogram, before dB, before crop)': cat(powers, frames + 1),
  };
}, { unusedConfig: { note: DESCRIPTION } });

registerStage('muq.conv_subsampling', async (c) => {
  const p = await c.weights();
  const cfg = c.config;
  supportOnly(cfg, 'config', { idim: 1 });
  const strides = cfg.strides as [number, number];
  const fe = new Conv2dSubsampling(p, {
    convDim: cfgNum(c, 'hdim (conv_dim)'), encoderDim: cfgNum(c, 'odim (encoder_dim)'), nMels: cfgNum(c, 'n_bands (n_mels)'),
    strides, batchNormEps: cfgNum(c, 'batch_norm_eps'),
  });
  try {
    const x = c.input('x');
    expectDerived(cfg, 'input_frames', 'config', x.shape[2]);
    const mids: { res0?: tf.Tensor4D; res1?: tf.Tensor4D } = {};
    const y = tf.tidy(() => {
      const xt = tf.tensor3d(toFloat32(x), x.shape as [number, number, number]).transpose([0, 2, 1]) as tf.Tensor3D; // (B, T, mel)
      const out = fe.apply(xt, mids);
      tf.keep(mids.res0!); tf.keep(mids.res1!);
      return out;
    });
    const out = await host(y);
    expectDerived(cfg, 'output_frames', 'config', y.shape[1]);
    y.dispose();
    // ours (B, T, F, C) → upstream (B, C, F, T)
    const up = async (t: tf.Tensor4D): Promise<HostTensor> => { const u = tf.transpose(t, [0, 3, 2, 1]); const h = await host(u); u.dispose(); t.dispose(); return h; };
    return {
      y: out,
      'after conv.conv[0] (B, hdim, n_bands/2, ceil(T/2))': await up(mids.res0!),
      'after conv.conv[1] (B, hdim, n_bands/4, ceil(T/4))': await up(mids.res1!),
    };
  } finally {
    fe.dispose();
  }
}, { unusedConfig: { res2d: DESCRIPTION, flatten: DESCRIPTION } });

const CONFORMER_MIDS: Record<keyof ConformerLayerMids & string, string> = {
  ffn1: 'ffn1 output (before *0.5 + residual)',
  self_attn: 'self_attn output (linear_out, before residual)',
  conv_module: 'conv_module output (before residual)',
  ffn2: 'ffn2 output (before *0.5 + residual, before final_layer_norm)',
};

registerStage('muq.conformer_layer', async (c) => {
  const p = await c.weights();
  supportOnly(c.config, 'config', { ...CONFORMER_FIXED, num_hidden_layers: 1 });
  const layer = new ConformerLayer(p, {
    hiddenSize: cfgNum(c, 'hidden_size'), numHeads: cfgNum(c, 'num_attention_heads'), intermediateSize: cfgNum(c, 'intermediate_size'),
    convKernel: cfgNum(c, 'conv_depthwise_kernel_size'), rotaryBase: cfgNum(c, 'rotary_embedding_base'),
    layerNormEps: cfgNum(c, 'other_layer_norm_eps'), batchNormEps: cfgNum(c, 'batch_norm_eps'),
  });
  const rot = new RotaryTensors(rotaryFromStacked(c.input('relative_position_embeddings (2, T, 1, 1, head_size): [cos, sin]')));
  try {
    const x = c.input('hidden_states');
    expectDerived(c.config, 'batch', 'config', x.shape[0]);
    expectDerived(c.config, 'input_frames', 'config', x.shape[1]);
    const xt = tf.tensor3d(toFloat32(x), x.shape as [number, number, number]);
    const mids: ConformerLayerMids = {};
    const { out, probs } = layer.apply(xt, rot, { returnProbs: true, mids });
    xt.dispose();
    const res: Record<string, HostTensor> = { hidden_states: await host(out), 'attn_probs (B, H, T, T)': await host(probs!) };
    out.dispose();
    probs!.dispose();
    for (const [k, name] of Object.entries(CONFORMER_MIDS)) {
      const t = mids[k as keyof ConformerLayerMids];
      if (t) { res[name] = await host(t); t.dispose(); }
    }
    return res;
  } finally {
    layer.dispose();
    rot.dispose();
  }
}, {
  unusedConfig: {
    ...CONFORMER_UNUSED,
    layer_norm_eps: 'the encoder-level final LayerNorm\'s eps; the layer\'s own LayerNorms use other_layer_norm_eps',
  },
});

registerStage('muq.encoder', async (c) => {
  const p = await c.weights();
  const cfg = c.config;
  const muq = sub(cfg, 'muq', 'config'), conf = sub(cfg, 'conformer', 'config');
  supportOnly(muq, 'config.muq', { features: ['melspec_2048'], is_flash: false, use_hubert_featurizer: false });
  supportOnly(conf, 'config.conformer', {
    ...CONFORMER_FIXED, hidden_size: num(muq, 'encoder_dim', 'config.muq'), num_hidden_layers: num(muq, 'encoder_depth', 'config.muq'),
    other_layer_norm_eps: num(conf, 'layer_norm_eps', 'config.conformer'), // one eps for every LayerNorm (muq/muq.ts)
  });
  supportOnly(cfg, 'config', { n_fold: 4, conv_strides: [[2, 2], [2, 2]] }); // MuQ's frontend (muq/conv_subsampling.ts)
  // NOTES pitfall 14: the tiny conformer comes from case.json config.conformer, not the checkpoint's cfg
  const mcfg = muqConfigFromDicts(muq, conf);
  const enc = new MuQEncoder(p.sub('model.'), mcfg);
  try {
    const x = c.input('source (B, L) 24 kHz');
    const [b, len] = x.shape as [number, number];
    const xs = toFloat32(x);
    const rows = Array.from({ length: b }, (_, i) => xs.subarray(i * len, (i + 1) * len));
    const depth = enc.cfg.encoderDepth;
    const hs = enc.hiddenStates(rows, depth);
    const res: Record<string, HostTensor> = {};
    for (const [i, h] of hs.entries()) { res[`layer_results[${i}]`] = await host(h); h.dispose(); }
    const T = res['layer_results[0]']!.shape[1]!;
    res['conv frontend output (B, T, encoder_dim)'] = res['layer_results[0]']!;
    // the normalised mel the frontend takes (MuQEncoder.features: 960-sample crop), (B, n_mels, frames)
    const feats = rows.map((r) => enc.features(r));
    const nm = enc.cfg.nMels, F = feats[0]!.frames;
    const fd = new Float32Array(b * nm * F);
    feats.forEach((f, i) => fd.set(transpose2d(f.data, f.frames, nm), i * nm * F));
    res['conv frontend input = normalized mel (B, 128, 4*T)'] = { dtype: 'float32', shape: [b, nm, F], data: fd };
    // the rotary tables the layers use: from the checkpoint's inv_freq buffer (as MuQEncoder)
    const rt = rotaryTables(T, p.f32('model.conformer.embed_positions.inv_freq'));
    const rd = new Float32Array(2 * rt.cos.length);
    rd.set(rt.cos); rd.set(rt.sin, rt.cos.length);
    res['rotary embeddings (2, T, 1, 1, head_size)'] = { dtype: 'float32', shape: [2, T, 1, 1, rt.headSize], data: rd };
    expectDerived(cfg, 'input_length', 'config', len);
    expectDerived(cfg, 'output_frames', 'config', T);
    expectDerived(cfg, 'cropped_length', 'config', T * enc.cropUnit);
    return res;
  } finally {
    enc.dispose();
  }
}, {
  unusedConfig: {
    ...under('conformer', CONFORMER_UNUSED),
    'muq.codebook_size': 'MuQ\'s training targets (its own quantiser); the hidden states do not depend on it',
    'muq.codebook_dim': 'MuQ\'s training targets (its own quantiser); the hidden states do not depend on it',
    'muq.num_codebooks': 'MuQ\'s training targets (its own quantiser); the hidden states do not depend on it',
    source_crop: DESCRIPTION,
    layer_results: DESCRIPTION,
  },
});
