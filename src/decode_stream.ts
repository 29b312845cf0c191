/**
 * Codes → audio as a stream of final chunks (generate.py MuCodec.code2sound, window by window): the DiT samples
 * window w (src/decoder.ts code2soundLatents), the VAE and vocoder turn it into audio, and the running cross-fade
 * (src/synthesis.ts WindowCrossFader) hands back the samples no later window can change: everything of window w
 * but its last ovlp = min_samples − hop samples (10.24 s), which are cross-faded with window w + 1. So the first
 * chunk (30.72 s at 40.96 s windows; less for a prompt or a short song) comes out after window 0, before window 1
 * is sampled, and the last chunk after the last window, with the target cut. MuCodec.decode is the concatenation
 * of these chunks (one code path), so decodeStream's chunks join to decode's output bit for bit.
 *
 * Each chunk has passed the finiteness checks of its stages (latents, VAE mel, vocoder audio) before it is given
 * out. Leaving the stream early (break / return / an exception in the consumer's loop) stops the decoder's
 * generator and releases what the window phases hold.
 */
import type { Audio } from './audio/wav.js';
import type { TacotronSTFT } from './audio/mel.js';
import type { DecodeOptions, DecodeProgress } from './codec_types.js';
import type { MuCodecDecoder, PromptLatent } from './decoder.js';
import type { MuCodecEncoder } from './encoder.js';
import { NonFiniteError } from './hosttensor.js';
import { makeNoise } from './noise.js';
import { encodePrompt } from './prompt.js';
import { throwIfAborted, yieldToEventLoop } from './steps.js';
import { LatentsToAudio } from './synthesis.js';
import type { AutoencoderKL } from './vae/autoencoder.js';
import type { HifiGanGenerator } from './vocoder/hifigan.js';

export const OUTPUT_SAMPLE_RATE = 48000;

/** What a decode needs of the codec: the decode-side modules, and the encoder when a prompt is given. */
export interface DecodeParts {
  decoder: MuCodecDecoder;
  vae: AutoencoderKL;
  vocoder: HifiGanGenerator;
  stft: TacotronSTFT;
  encoder: MuCodecEncoder | null;
}

/**
 * The stream of final 48 kHz stereo chunks for checked codes. `load` builds the parts (on first use) once the stream
 * runs. `what` names the call in errors ("decode: the VAE decoder produced non-finite mel …").
 */
export async function* decodeChunks(
  load: () => Promise<DecodeParts>, codes: Int32Array, opts: DecodeOptions, defaultSteps: number, what: string,
): AsyncGenerator<Audio, void, void> {
  try {
    yield* synthesise(load, codes, opts, defaultSteps);
  } catch (e) {
    // a stage whose output stopped being finite: say so under the call's name (the chunk is not given out)
    if (e instanceof NonFiniteError) throw new NonFiniteError(`${what}: ${e.message}; the weights or the noise give NaN/Inf, no audio returned`);
    throw e;
  }
}

async function* synthesise(load: () => Promise<DecodeParts>, codes: Int32Array, opts: DecodeOptions, defaultSteps: number): AsyncGenerator<Audio, void, void> {
  const signal = opts.signal;
  throwIfAborted(signal);
  const { decoder, vae, vocoder, stft, encoder } = await load();
  const noise = opts.noise ?? makeNoise(opts.seed);
  const steps = opts.steps ?? defaultSteps;
  let windows = 1;
  let current = 0;
  const report = (p: Omit<DecodeProgress, 'fraction'>, within: number): void => {
    opts.onProgress?.({ ...p, fraction: Math.min(1, (current + within) / windows) });
  };
  const prompt = opts.prompt;
  const promptFn = prompt ? (): Promise<PromptLatent> => {
    report({ phase: 'prompt', window: 0, windows }, 0);
    return encodePrompt(prompt, { vae, stft, encoder: encoder! }, noise, signal);
  } : undefined;
  const chunk = (rows: Float32Array[]): Audio => ({ sampleRate: OUTPUT_SAMPLE_RATE, channels: rows });

  let synth: LatentsToAudio | null = null;
  try {
    const gen = decoder.code2soundLatents({ data: codes, shape: [1, 1, codes.length] }, {
      numSteps: steps, guidanceScale: opts.guidanceScale ?? 1.5, solver: opts.sampler, tSpan: opts.tSpan, noise, signal,
      prompt: promptFn,
      onWindow: ({ window, windows: n }) => { windows = n; current = window; throwIfAborted(signal); },
      onStep: ({ step, steps: m }) => { // the sampler's step index is 0-based; the progress counts steps done
        throwIfAborted(signal);
        report({ phase: 'sample', window: current, windows, step: step + 1, steps: m }, (0.9 * (step + 1)) / m);
      },
    });
    // leaving this loop early (the consumer's break while a chunk is out) returns `gen` too
    for await (const w of gen) {
      throwIfAborted(signal);
      report({ phase: 'audio', window: w.index, windows: w.count }, 0.9);
      // the decoder already cut the prompt frames from window 0
      synth ??= new LatentsToAudio(vae, vocoder, { targetLen: w.plan.targetLen, duration: opts.duration ?? 40.96, sampleRate: OUTPUT_SAMPLE_RATE });
      await yieldToEventLoop();
      const rows = await synth.pushAsync(w.latents, signal);
      current = w.index + 1;
      report({ phase: 'audio', window: w.index, windows: w.count }, 0);
      // final: everything of this window but the overlap that the next window cross-fades
      if (rows[0]!.length) yield chunk(rows);
      throwIfAborted(signal); // aborted (or the codec disposed) while the consumer held the chunk
    }
    if (!synth) throw new Error('decode: the decoder produced no window');
    const last = synth.finish();
    if (last[0]!.length) yield chunk(last);
  } finally {
    if (synth?.residency === 'alternate') { vae.dispose(); vocoder.release(); }
  }
}

/** The chunks of a stream joined into one Audio (decode's output). */
export async function collectAudio(chunks: AsyncIterable<Audio>): Promise<Audio> {
  const pieces: Float32Array[][] = [];
  for await (const c of chunks) pieces.push(c.channels);
  const rows = pieces[0]?.length ?? 2;
  const total = pieces.reduce((n, p) => n + p[0]!.length, 0);
  const channels = Array.from({ length: rows }, (_, r) => {
    const out = new Float32Array(total);
    let off = 0;
    for (const p of pieces) { out.set(p[r]!, off); off += p[r]!.length; }
    return out;
  });
  return { sampleRate: OUTPUT_SAMPLE_RATE, channels };
}
