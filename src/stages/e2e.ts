/**
 * Parity stage of the e2e family: `mucodec.sound2sound` — upstream generate.py MuCodec.sound2sound (encode, then
 * code2sound with its windows, VAE and vocoder) on tiny weights of every real block, run through the codec's own
 * public encode() and decode() (not a test-only assembly), with the recorded draws replayed. A case that declares
 * `inputs.prompt` (2, Lp) at the case's sample rate decodes with it, as a user calls it: decode(codes, { prompt }).
 */
import type { MuCodecConfig } from '../codec.js';
import { MuCodec } from '../codec.js';
import { MIN_SAMPLES, WINDOW_SAMPLES, outputLength, windowCount } from '../encoder.js';
import type { HostTensor } from '../hosttensor.js';
import { toFloat32 } from '../hosttensor.js';
import { Params } from '../params.js';
import { registerStage } from '../parity.js';
import { CONFORMER_FIXED, CONFORMER_UNUSED, DIT_FIXED, DIT_UNUSED, RVQ_UNUSED, VAE_UNUSED, expectDerived, num, sub, supportOnly, under } from './checks.js';

const rows = (t: HostTensor): Float32Array[] => {
  const [r, n] = t.shape as [number, number];
  const d = toFloat32(t);
  return Array.from({ length: r }, (_, i) => d.slice(i * n, (i + 1) * n));
};

const DERIVED_PLAN = 'derived: code2sound\'s window plan for these codes (the decoder case mucodec.code2sound_latents checks the plan); the output comparison checks the result';

registerStage('mucodec.sound2sound', async (c) => {
  const cfg = c.config;
  const sc = c.scalars;
  const muq = sub(cfg, 'muq', 'config'), conf = sub(muq, 'conformer', 'config.muq');
  supportOnly(conf, 'config.muq.conformer', {
    ...CONFORMER_FIXED, hidden_size: num(muq, 'encoder_dim', 'config.muq'), num_hidden_layers: num(muq, 'encoder_depth', 'config.muq'),
    other_layer_norm_eps: num(conf, 'layer_norm_eps', 'config.muq.conformer'),
  });
  supportOnly(sub(cfg, 'estimator', 'config'), 'config.estimator', DIT_FIXED);
  expectDerived(cfg, 'muq_layer_results_index', 'config', num(cfg, 'layer_num', 'config') - 1);
  const sampleRate = num(sc, 'sample_rate', 'scalars');
  supportOnly(cfg, 'config', { sample_rate: sampleRate });
  // upstream's loop hard-codes CFG 1.5; the codec's guidanceScale is that setting
  const guidance = num(sc, 'guidance_scale (hard-coded in code2sound\'s loop)', 'scalars');
  const steps = num(sc, 'steps', 'scalars');
  supportOnly(cfg, 'config', { steps });
  const p = await c.weights();
  const root = new Params(p.map, '', p.source);
  // the codec reads scale_factor from the weights (as upstream's .item()); the case's config records that value
  expectDerived(sub(cfg, 'vae', 'config'), 'scale_factor', 'config.vae', root.scalar('scale_factor'));
  const codec = MuCodec.fromParams(root, cfg as unknown as MuCodecConfig);
  try {
    // sound[c, n] = in.audio[c, n mod P], 0 ≤ n < input_length (input_construction)
    const inp = c.input('sound');
    const [nRows, P] = inp.shape as [number, number];
    const n = num(sc, 'input_length', 'scalars');
    expectDerived(sc, 'in.audio_length', 'scalars', P);
    const d = toFloat32(inp);
    const channels = Array.from({ length: nRows }, (_, r) => Float32Array.from({ length: n }, (_, j) => d[r * P + (j % P)]!));
    const { codes } = await codec.encode({ sampleRate, channels });
    const prompt = c.inputNames().includes('prompt') ? { sampleRate, channels: rows(c.input('prompt')) } : undefined;
    const duration = num(sc, 'min_duration', 'scalars');
    const audio = await codec.decode(codes, { steps, guidanceScale: guidance, duration, prompt, noise: c.replayNoise() });
    const len = audio.channels[0]!.length;
    for (const [k, v] of [
      ['codes_len (= int(input_length / 48000 * 25) + 1)', codes.length], ['sound2code.muq_windows', windowCount(n)],
      ['sound2code.window_samples', WINDOW_SAMPLES], ['window_output_samples (min_samples = int(40.96 * 48000))', Math.trunc(duration * 48000)],
      ['target_len (= int(codes_len / 100 * 4 * 48000), double precision, truncated)', len], ['out_samples', len],
    ] as const) expectDerived(sc, k, 'scalars', v);
    if (codes.length !== outputLength(n)) throw new Error(`encode gave ${codes.length} codes for ${n} samples, expected ${outputLength(n)}`);
    if (MIN_SAMPLES !== Math.trunc(duration * 48000)) throw new Error(`scalars.min_duration ${duration}: the DiT window is 40.96 s`);
    const flat = new Float32Array(audio.channels.length * len);
    audio.channels.forEach((ch, r) => flat.set(ch, r * len));
    return {
      codes: { dtype: 'int32', shape: [1, 1, codes.length], data: codes },
      audio: { dtype: 'float32', shape: [audio.channels.length, len], data: flat },
    };
  } finally {
    codec.dispose();
  }
}, {
  unusedConfig: {
    ...under('muq.conformer', CONFORMER_UNUSED),
    'muq.codebook_size': 'MuQ\'s training targets (its own quantiser); the hidden states do not depend on it',
    'muq.codebook_dim': 'MuQ\'s training targets (its own quantiser); the hidden states do not depend on it',
    'muq.num_codebooks': 'MuQ\'s training targets (its own quantiser); the hidden states do not depend on it',
    ...under('rvq_muencoder_emb', RVQ_UNUSED),
    ...under('estimator', DIT_UNUSED),
    ...under('vae', VAE_UNUSED),
    'vae.ddconfig.in_channels': 'the VAE encoder\'s input channels: read only when a prompt is encoded',
    'cond_muencoder_emb.in_features': 'the shape of cond_muencoder_emb.weight, taken from the weights',
    'cond_muencoder_emb.out_features': 'the shape of cond_muencoder_emb.weight, taken from the weights',
    'normfeat.dim': 'the statistics\' size comes from the weights (normfeat.sum_x)',
    'normfeat.counts': 'the weights\' normfeat.counts is what runs (this records its value)',
  },
  unusedScalars: {
    'first_latent_length (prompt latent frames)': 'derived from the prompt (its VAE latent frames), when there is one',
    first_latent_codes_length: 'derived from the prompt (2 × its latent frames), when there is one',
    'code2sound.codes_len (prompt codes + codes)': DERIVED_PLAN,
    padded_codes_len: DERIVED_PLAN,
    n_windows: DERIVED_PLAN,
    'window_starts (codes)': DERIVED_PLAN,
    latent_length: DERIVED_PLAN,
    'incontext_length per window': DERIVED_PLAN,
    hop_samples: 'derived: ¾ of the audio window (min_duration), fixed in the codec',
    ovlp_samples: 'derived: ¼ of the audio window (min_duration), fixed in the codec',
  },
  unproduced: {
    codes_padded: 'MuCodec.decode (the user\'s path) does not expose the padded codes; mucodec.code2sound_latents compares them',
  },
});
