/**
 * Parity stages of the audio family (reference/audio): stft.mel, vae.encode, vae.decode,
 * vae.decode_to_waveform, hifigan.generate, mucodec.latents_to_audio. Besides the outputs, each stage
 * returns the intermediates it can tap (mid.*) so a failing case can be bisected.
 */
import { TacotronSTFT, clipAudio, transposeMel } from '../audio/mel.js';
import type { FixtureCase } from '../fixtures.js';
import { toFloat32, type HostTensor } from '../hosttensor.js';
import { ReplayNoise } from '../noise.js';
import { registerStage } from '../parity.js';
import { latentsToAudio } from '../synthesis.js';
import { AutoencoderKL, imagesToHost, type VaeConfig } from '../vae/autoencoder.js';
import type { Image } from '../vae/tiled.js';
import { HifiGanGenerator, vocoderChunkInferNCL, type HifiganConfig } from '../vocoder/hifigan.js';
import * as tf from '@tensorflow/tfjs-core';

const f32 = (shape: number[], data: Float32Array): HostTensor => ({ dtype: 'float32', shape, data });

function vaeConfig(c: FixtureCase): VaeConfig {
  const cfg = c.json.config as { ddconfig: VaeConfig['ddconfig']; embed_dim: number };
  return { ddconfig: cfg.ddconfig, embed_dim: cfg.embed_dim };
}

function vocoderConfig(c: FixtureCase): HifiganConfig {
  const cfg = c.json.config as Record<string, unknown>;
  return (cfg.vocoder ?? cfg) as HifiganConfig;
}

/** tile options for the fixtures: small bands so the band seams are exercised (MUCODEC_VAE_TILE_ROWS overrides) */
function fixtureTiles(): { tileRows?: number } {
  const env = process.env.MUCODEC_VAE_TILE_ROWS;
  return { tileRows: env ? Number(env) : 5 };
}

registerStage('stft.mel', async (c) => {
  const cfg = c.json.config as Record<string, number>;
  const stft = new TacotronSTFT({
    filter_length: cfg.filter_length, hop_length: cfg.hop_length, win_length: cfg.win_length,
    n_mel_channels: cfg.n_mel_channels, sampling_rate: cfg.sampling_rate, mel_fmin: cfg.mel_fmin, mel_fmax: cfg.mel_fmax,
  });
  const wav = c.t(c.json.inputs!.waveform!);
  const [B] = wav.shape as [number, number];
  const r = stft.melSpectrogram(clipAudio(toFloat32(wav)), B, { logMagnitudes: true, energy: true });
  const nm = stft.cfg.n_mel_channels;
  return {
    'out.mel': f32([B, nm, r.frames], r.mel),
    'out.log_magnitudes': f32([B, stft.bins, r.frames], r.logMagnitudes!),
    'out.fbank': f32([B, r.frames, nm], transposeMel(r.mel, B, nm, r.frames)),
    'mid.mel_basis': f32([nm, stft.bins], stft.melBasis),
    'mid.energy': f32([B, r.frames], r.energy!),
  };
});

registerStage('vae.encode', async (c) => {
  const vae = new AutoencoderKL(await c.weights(), vaeConfig(c));
  vae.tile = fixtureTiles();
  try {
    const mids: Image[] = [], outs: Image[] = [];
    const r = vae.encode(c.t(c.json.inputs!.mel!), new ReplayNoise(c.noise(), `${c.name} noise`), {
      mid: (_b, h) => mids.push(h),
      moments: (_b, m) => outs.push(m),
    });
    const [B, e, T, W] = r.z.shape as [number, number, number, number];
    return {
      'out.z': r.z,
      'out.latent': { ...r.z, shape: [B / 2, 2 * e, T, W] },
      'mid.mean': r.mean,
      'mid.logvar': r.logvar,
      'mid.enc_mid': imagesToHost(mids),
    };
  } finally {
    vae.dispose();
  }
});

registerStage('vae.decode', async (c) => {
  const vae = new AutoencoderKL(await c.weights(), vaeConfig(c));
  vae.tile = fixtureTiles();
  try {
    const pq: Image[] = [], mids: Image[] = [];
    const mel = vae.decode(c.t(c.json.inputs!.z!), { postQuant: (_b, x) => pq.push(x), mid: (_b, h) => mids.push(h) });
    return { 'out.mel': mel, 'mid.post_quant': imagesToHost(pq), 'mid.dec_mid': imagesToHost(mids) };
  } finally {
    vae.dispose();
  }
});

registerStage('vae.decode_to_waveform', async (c) => {
  const p = await c.weights();
  const vae = new AutoencoderKL(p, vaeConfig(c));
  vae.tile = fixtureTiles();
  const voc = new HifiGanGenerator(p.sub('vocoder.'), vocoderConfig(c));
  try {
    const mel = vae.decode(c.t(c.json.inputs!.z!));
    const [B, , F, M] = mel.shape as [number, number, number, number];
    // decode_to_waveform: squeeze(1).permute(0, 2, 1) → (B, mel_bins, frames)
    const ncl = new Float32Array(B * M * F);
    const md = mel.data as Float32Array;
    for (let b = 0; b < B; b++) for (let t = 0; t < F; t++) for (let m = 0; m < M; m++) ncl[(b * M + m) * F + t] = md[(b * F + t) * M + m]!;
    const wav = vocoderChunkInferNCL(voc, f32([B, M, F], ncl));
    return { 'out.wav': f32(wav.shape, wav.data), 'mid.mel': mel };
  } finally {
    vae.dispose();
    voc.dispose();
  }
});

registerStage('hifigan.generate', async (c) => {
  const voc = new HifiGanGenerator(await c.weights(), vocoderConfig(c));
  try {
    const taps: Record<string, HostTensor> = {};
    const names: Record<string, string> = { conv_pre: 'mid.conv_pre', conv_post: 'mid.conv_post' };
    for (let i = 0; i < 5; i++) names[`ups.${i}`] = `mid.ups${i}`;
    const y = voc.generate(c.t(c.json.inputs!.mel!), (name, t) => {
      const key = names[name];
      if (!key) return;
      // NWC → NCL as the fixture stores it
      const nct = tf.tidy(() => tf.transpose(t, [0, 2, 1]));
      taps[key] = f32(nct.shape, nct.dataSync() as Float32Array);
      nct.dispose();
    });
    return { 'out.wav': f32([y.shape[0], 1, y.shape[1]], y.data), ...taps };
  } finally {
    voc.dispose();
  }
});

registerStage('mucodec.latents_to_audio', async (c) => {
  const cfg = c.json.config as Record<string, number>;
  const p = await c.weights();
  const vae = new AutoencoderKL(p, vaeConfig(c));
  vae.tile = fixtureTiles();
  const voc = new HifiGanGenerator(p.sub('vocoder.'), vocoderConfig(c));
  try {
    const names = Object.values(c.json.inputs!);
    const mids: Record<string, HostTensor> = {};
    const mel0: Image[] = [];
    const out = latentsToAudio(vae, voc, names.map((n) => c.t(n)), {
      minSamples: cfg.min_samples, hopSamples: cfg.hop_samples, ovlpSamples: cfg.ovlp_samples,
      targetLen: cfg.target_len, firstLatentLength: cfg.first_latent_length,
    }, {
      wav: (i, w) => { mids[`mid.seg_wav_${i}`] = f32(w.shape, w.data); },
      mel: (i, _row, m) => { if (i === 0) mel0.push(m); },
    });
    return { 'out.wav': out, 'mid.seg_mel_0': imagesToHost(mel0), ...mids };
  } finally {
    vae.dispose();
    voc.dispose();
  }
});
