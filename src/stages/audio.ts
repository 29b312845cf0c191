/**
 * Parity stages of the audio family (reference/audio): stft.mel, vae.encode, vae.decode,
 * vae.decode_to_waveform, hifigan.generate, mucodec.latents_to_audio. Besides the outputs, each stage
 * returns the intermediates it can tap (keyed by case.json `intermediates` names) so a failing case can be bisected.
 */
import { TacotronSTFT, clipAudio, transposeMel } from '../audio/mel.js';
import type { FixtureCase } from '../fixtures.js';
import { toFloat32, type HostTensor } from '../hosttensor.js';
import { registerStage } from '../parity.js';
import { DESCRIPTION, VAE_DECODE_UNUSED, VAE_ENCODE_UNUSED, cfgNum, expectDerived, sub, supportOnly } from './checks.js';
import { drainStepsAsync } from '../steps.js';
import { latentsToAudioAsync } from '../synthesis.js';
import { AutoencoderKL, imagesToHost, type VaeConfig } from '../vae/autoencoder.js';
import type { Params } from '../params.js';
import type { Image } from '../vae/tiled.js';
import { vocoderChunkInferNCLSteps } from '../vocoder/chunk_infer.js';
import { HifiGanGenerator, type HifiganConfig } from '../vocoder/hifigan.js';
import * as tf from '@tensorflow/tfjs-core';

const f32 = (shape: number[], data: Float32Array): HostTensor => ({ dtype: 'float32', shape, data });

/** the case's VAE (ddconfig, embed_dim, and its config scale_factor: the weights' value in every fixture) */
function caseVae(c: FixtureCase, p: Params): AutoencoderKL {
  const cfg: VaeConfig = { ddconfig: sub(c.config, 'ddconfig', 'config') as unknown as VaeConfig['ddconfig'], embed_dim: cfgNum(c, 'embed_dim') };
  const vae = new AutoencoderKL(p, cfg, cfgNum(c, 'scale_factor'));
  vae.tile = fixtureTiles();
  return vae;
}

function vocoderConfig(c: FixtureCase): HifiganConfig {
  return (Object.prototype.hasOwnProperty.call(c.config, 'vocoder') ? sub(c.config, 'vocoder', 'config') : c.config) as unknown as HifiganConfig;
}

/** tile options for the fixtures: small bands so the band seams are exercised (MUCODEC_VAE_TILE_ROWS overrides) */
function fixtureTiles(): { tileRows?: number } {
  const env = process.env.MUCODEC_VAE_TILE_ROWS;
  return { tileRows: env ? Number(env) : 5 };
}

registerStage('stft.mel', async (c) => {
  const k = (key: string) => cfgNum(c, key);
  // TacotronSTFT's fixed pieces (audio/mel.ts): Hann window, librosa Slaney filterbank, log of the 1e-5-clamped mel
  supportOnly(c.config, 'config', {
    window: 'hann (scipy.signal.get_window, fftbins=True)', normalize_fun: 'torch.log', clamp_min: 1e-5,
    mel_basis: `librosa 0.9.2 filters.mel(sr=${k('sampling_rate')}, n_fft=${k('filter_length')}, n_mels=${k('n_mel_channels')}, fmin=${k('mel_fmin')}, fmax=${k('mel_fmax')}), htk=False (Slaney mel scale), norm='slaney', float32`,
  });
  const stft = new TacotronSTFT({
    filter_length: k('filter_length'), hop_length: k('hop_length'), win_length: k('win_length'),
    n_mel_channels: k('n_mel_channels'), sampling_rate: k('sampling_rate'), mel_fmin: k('mel_fmin'), mel_fmax: k('mel_fmax'),
  });
  const wav = c.input('waveform');
  const [B] = wav.shape as [number, number];
  const r = stft.melSpectrogram(clipAudio(toFloat32(wav)), B, { logMagnitudes: true, energy: true });
  expectDerived(c.config, 'frames', 'config', r.frames);
  const nm = stft.cfg.n_mel_channels;
  return {
    mel_output: f32([B, nm, r.frames], r.mel),
    log_magnitudes: f32([B, stft.bins, r.frames], r.logMagnitudes!),
    fbank: f32([B, r.frames, nm], transposeMel(r.mel, B, nm, r.frames)),
    mel_basis: f32([nm, stft.bins], stft.melBasis),
    energy: f32([B, r.frames], r.energy!),
  };
}, { unusedConfig: { frames_formula: DESCRIPTION } });

/** batch / frame counts a VAE case records: equal to the shapes in and out */
function vaeShapes(c: FixtureCase, mel: readonly number[], latent: readonly number[]): void {
  expectDerived(c.config, 'batch', 'config', mel[0]);
  expectDerived(c.config, 'mel_frames', 'config', mel[2]);
  expectDerived(c.config, 'latent_frames', 'config', latent[2]);
}

registerStage('vae.encode', async (c) => {
  const vae = caseVae(c, await c.weights());
  try {
    const mids: Image[] = [];
    const mel = c.input('mel');
    // read back asynchronously (drainStepsAsync): the path every backend can run, webgpu included
    const r = await drainStepsAsync(vae.encodeSteps(mel, c.replayNoise(), { mid: (_b, h) => mids.push(h) }));
    const [B, e, T, W] = r.z.shape as [number, number, number, number];
    vaeShapes(c, mel.shape, r.z.shape);
    return {
      z: r.z,
      latent: { ...r.z, shape: [B / 2, 2 * e, T, W] },
      'posterior.mean': r.mean,
      'posterior.logvar': r.logvar,
      'encoder.mid.block_2': imagesToHost(mids),
    };
  } finally {
    vae.dispose();
  }
}, {
  unusedConfig: VAE_ENCODE_UNUSED,
  unproduced: { encoder: 'AutoencoderKL.encode taps the mid block and the moments, not the raw encoder output; posterior.mean/logvar (one 1×1 conv later) are compared' },
});

registerStage('vae.decode', async (c) => {
  const vae = caseVae(c, await c.weights());
  try {
    const pq: Image[] = [], mids: Image[] = [];
    const z = c.input('z');
    const mel = (await drainStepsAsync(vae.decodeSteps(z, { postQuant: (_b, x) => pq.push(x), mid: (_b, h) => mids.push(h) })))!;
    vaeShapes(c, mel.shape, z.shape);
    return { mel, post_quant_conv: imagesToHost(pq), 'decoder.mid.block_2': imagesToHost(mids) };
  } finally {
    vae.dispose();
  }
}, { unusedConfig: VAE_DECODE_UNUSED });

registerStage('vae.decode_to_waveform', async (c) => {
  const p = await c.weights();
  // vocoder_chunk_infer's plan is fixed in vocoder/hifigan.ts (1024-frame chunks, hop 256), as upstream
  supportOnly(sub(c.config, 'vocoder_chunk_infer', 'config'), 'config.vocoder_chunk_infer', { chunk_size_frames: 1024, shift_frames: 256 });
  const vae = caseVae(c, p);
  const voc = new HifiGanGenerator(p.sub('vocoder.'), vocoderConfig(c));
  try {
    const z = c.input('z');
    const mel = (await drainStepsAsync(vae.decodeSteps(z)))!;
    vaeShapes(c, mel.shape, z.shape);
    const [B, , F, M] = mel.shape as [number, number, number, number];
    // decode_to_waveform: squeeze(1).permute(0, 2, 1) → (B, mel_bins, frames)
    const ncl = new Float32Array(B * M * F);
    const md = mel.data as Float32Array;
    for (let b = 0; b < B; b++) for (let t = 0; t < F; t++) for (let m = 0; m < M; m++) ncl[(b * M + m) * F + t] = md[(b * F + t) * M + m]!;
    const wav = await drainStepsAsync(vocoderChunkInferNCLSteps(voc, f32([B, M, F], ncl)));
    expectDerived(c.config, 'out_samples', 'config', wav.shape[1]);
    return { wav: f32(wav.shape, wav.data), mel };
  } finally {
    vae.dispose();
    voc.dispose();
  }
}, {
  unusedConfig: {
    ...VAE_DECODE_UNUSED,
    'vocoder_chunk_infer.vocoder_calls [in_frames, out_samples]': 'derived: the chunk plan for this length; the output comparison checks its result',
  },
});

registerStage('hifigan.generate', async (c) => {
  const voc = new HifiGanGenerator(await c.weights(), vocoderConfig(c));
  try {
    const taps: Record<string, HostTensor> = {};
    const wanted = new Set(Object.keys(c.json.intermediates ?? {}));
    const mel = c.input('mel');
    // tap names are the generator's module names (conv_pre, ups.i, conv_post), as case.json names them
    const tapped: [string, tf.Tensor][] = [];
    const y = await drainStepsAsync(voc.generateSteps(mel, (name, t) => {
      if (wanted.has(name)) tapped.push([name, tf.tidy(() => tf.transpose(t, [0, 2, 1]))]); // NWC → NCL as the fixture stores it
    }));
    for (const [name, nct] of tapped) { taps[name] = f32(nct.shape, (await nct.data()) as Float32Array); nct.dispose(); }
    expectDerived(c.config, 'batch', 'config', mel.shape[0]);
    expectDerived(c.config, 'mel_frames', 'config', mel.shape[2]);
    expectDerived(c.config, 'out_samples', 'config', y.shape[1]);
    return { wav: f32([y.shape[0], 1, y.shape[1]], y.data), ...taps };
  } finally {
    voc.dispose();
  }
}, { unusedConfig: { out_samples_formula: DESCRIPTION } });

registerStage('mucodec.latents_to_audio', async (c) => {
  const p = await c.weights();
  const vae = caseVae(c, p);
  const voc = new HifiGanGenerator(p.sub('vocoder.'), vocoderConfig(c));
  try {
    // inputs latent_list[0], latent_list[1], …: the segments in order
    const names = c.inputNames();
    names.forEach((n, i) => { if (n !== `latent_list[${i}]`) throw new Error(`input "${n}": expected latent_list[${i}]`); });
    const latents = names.map((n) => c.input(n));
    expectDerived(c.config, 'n_segments', 'config', latents.length);
    expectDerived(c.config, 'latent_frames_per_segment', 'config', latents[0]?.shape[2]);
    const mids: Record<string, HostTensor> = {};
    const mel0: Image[] = [];
    const out = await latentsToAudioAsync(vae, voc, latents, {
      minSamples: cfgNum(c, 'min_samples'), hopSamples: cfgNum(c, 'hop_samples'), ovlpSamples: cfgNum(c, 'ovlp_samples'),
      targetLen: cfgNum(c, 'target_len'), firstLatentLength: cfgNum(c, 'first_latent_length'),
    }, {
      wav: (i, w) => { mids[`decode_to_waveform[${i}]`] = f32(w.shape, w.data); },
      mel: (i, _row, m) => { if (i === 0) mel0.push(m); },
    });
    expectDerived(c.config, 'out_samples', 'config', out.shape[out.shape.length - 1]);
    return { output: out, 'mel[0]': imagesToHost(mel0), ...mids };
  } finally {
    vae.dispose();
    voc.dispose();
  }
}, {
  unusedConfig: {
    ...VAE_DECODE_UNUSED,
    duration: 'min_samples = int(duration · sample_rate) is what the stage takes',
    sample_rate: 'min_samples = int(duration · sample_rate) is what the stage takes',
    how_run: DESCRIPTION,
  },
});
