/**
 * The in-context prompt of decode (upstream generate.py MuCodec.code2sound's `prompt` branch): the prompt audio cut
 * as upstream cuts it, its VAE latent and its own codes, which condition the first window.
 */
import type { Audio } from './audio/wav.js';
import type { TacotronSTFT } from './audio/mel.js';
import type { PromptLatent } from './decoder.js';
import { prepareStereo48k, type MuCodecEncoder } from './encoder.js';
import type { NoiseSource } from './noise.js';
import { abortCheck, drainStepsAsync } from './steps.js';
import { encodePromptLatentSteps } from './synthesis.js';
import type { AutoencoderKL } from './vae/autoencoder.js';

/** Upstream code2sound's prompt cut (generate.py): first 10.24 s, or 20.48–30.72 s when longer than 30.76 s. */
export function cutPrompt(stereo: [Float32Array, Float32Array], sampleRate = 48000): [Float32Array, Float32Array] {
  const n = stereo[0].length;
  const [a, b] = n < Math.trunc(30.76 * sampleRate)
    ? [0, Math.trunc(10.24 * sampleRate)]
    : [Math.trunc(20.48 * sampleRate), Math.trunc(30.72 * sampleRate)];
  return [stereo[0].slice(a, b), stereo[1].slice(a, b)];
}

/** The prompt's latent (VAE posterior sample per channel, draws from `noise`) and its own codes (sound2code). */
export async function encodePrompt(
  prompt: Audio, parts: { vae: AutoencoderKL; stft: TacotronSTFT; encoder: MuCodecEncoder }, noise: NoiseSource, signal?: AbortSignal,
): Promise<PromptLatent> {
  const cut = cutPrompt(prepareStereo48k(prompt));
  const rows = new Float32Array(2 * cut[0].length);
  rows.set(cut[0], 0);
  rows.set(cut[1], cut[0].length);
  // latent: TacotronSTFT mel of the clipped (not normalised) prompt → VAE posterior sample per channel
  const latent = await drainStepsAsync(encodePromptLatentSteps(parts.vae, parts.stft, rows, 2, noise), abortCheck(signal));
  // its own codes: a full sound2code of the prompt alone (the decoder keeps the first 2·F)
  const pcodes = await parts.encoder.sound2code(cut, { signal });
  return { latent, codes: { data: pcodes, shape: [1, 1, pcodes.length] } };
}
