/**
 * Batched decode (`MuCodec.decodeBatch`): several code sequences share each DiT call on a device backend.
 *
 * Each sequence is decoded exactly as `decode(codes, { seed })` decodes it alone — its own noise source (seeded
 * with `seed`, or random), upstream code2sound's windows, draws and in-context hand-off (src/decoder.ts
 * code2soundLatents) — but window w of up to `batchSize` sequences is sampled in one inference_codes call of batch
 * B (the DiT then sees 2·B rows: the CFG pair of each). Batching changes only which rows share a kernel, so results
 * equal the one-at-a-time ones within float32 rounding. Sequences with fewer windows drop out of later batches.
 * The VAE and vocoder then run per sequence, as in decode.
 *
 * On the host path (wasm, cpu, tfjs-node) sequences are decoded one at a time (batch 1), so the bytes are
 * decode's; also when normfeat still updates its statistics (counts < num_samples: a batch would update them
 * differently). Prompts and a shared `noise` source are not accepted (each sequence needs its own draws).
 */
import type { Audio } from './audio/wav.js';
import type { DecodeOptions, DecodeProgress } from './codec_types.js';
import { assertFinite, NonFiniteError, tensorToHost, type HostTensor } from './hosttensor.js';
import { devicePath } from './device.js';
import { releaseDevicePool } from './webgpu.js';
import {
  HOP_CODES, OVERLAP_FRAMES, WINDOW_CODES, WINDOW_FRAMES, planCode2Sound, tileCodes, type MuCodecDecoder, type WindowPlan,
} from './decoder.js';
import { makeNoise, type NoiseSource } from './noise.js';
import { throwIfAborted, yieldToEventLoop } from './steps.js';
import { LatentsToAudio } from './synthesis.js';
import type { AutoencoderKL } from './vae/autoencoder.js';
import type { HifiGanGenerator } from './vocoder/hifigan.js';
import { checkDecodeOptions, describeValue } from './validate.js';

export interface DecodeBatchProgress extends DecodeProgress {
  /** the sequences [first, first + count) of the current batch, of `items` */
  first: number;
  count: number;
  items: number;
}

export interface DecodeBatchOptions extends Omit<DecodeOptions, 'prompt' | 'noise' | 'onProgress'> {
  /** sequences per DiT batch on a device backend (default 1; host backends decode one at a time) */
  batchSize?: number;
  onProgress?: (p: DecodeBatchProgress) => void;
}

/** The decode-side models decodeBatch runs on. */
export interface DecodeBatchParts {
  decoder: MuCodecDecoder;
  vae: AutoencoderKL;
  vocoder: HifiGanGenerator;
}

/** decodeBatch's options checked before any work (named as `what`'s option) */
export function checkDecodeBatchOptions(opts: unknown, what = 'decodeBatch'): void {
  if (opts === null || typeof opts !== 'object') throw new Error(`${what}: options must be an object, got ${describeValue(opts)}`);
  const o = opts as Record<string, unknown>;
  for (const k of ['prompt', 'noise']) {
    if (o[k] !== undefined) throw new Error(`${what}: option ${k} is not supported (each sequence draws from its own seeded source; decode one at a time for a ${k})`);
  }
  const b = o.batchSize;
  if (b !== undefined && !(typeof b === 'number' && Number.isInteger(b) && b >= 1)) {
    throw new Error(`${what}: option batchSize is ${describeValue(b)}, not a positive integer (sequences per DiT batch)`);
  }
  const { batchSize: _b, ...rest } = o;
  checkDecodeOptions(rest, what);
}

/** N(0, 1) draws of a batch whose row i comes from source i (each source draws its own (1, …) row, in its own order) */
function stackedNoise(sources: NoiseSource[]): NoiseSource {
  return {
    randn(shape, what) {
      if (shape[0] !== sources.length) throw new Error(`batched noise: a draw of ${shape[0]} rows for ${sources.length} sequences`);
      const row = [1, ...shape.slice(1)];
      const parts = sources.map((s) => s.randn(row, what));
      const out = new Float32Array(parts.reduce((n, p) => n + p.length, 0));
      let off = 0;
      for (const p of parts) { out.set(p, off); off += p.length; }
      return out;
    },
  };
}

/**
 * Decode every sequence (checked Int32Array codes), `batchSize` per DiT batch on the device path; returns one
 * 48 kHz stereo Audio per sequence, in order.
 */
export async function decodeBatchWith(parts: DecodeBatchParts, list: Int32Array[], opts: DecodeBatchOptions = {}): Promise<Audio[]> {
  try {
    const batch = devicePath() && !parts.decoder.normfeat.updating ? opts.batchSize ?? 1 : 1;
    const out: Audio[] = [];
    const groups = Math.ceil(list.length / batch);
    for (let g = 0; g < groups; g++) {
      const first = g * batch;
      out.push(...await decodeGroup(parts, list.slice(first, first + batch), first, list.length, opts, (done) => (g + done) / groups));
    }
    return out;
  } catch (e) {
    if (e instanceof NonFiniteError) throw new NonFiniteError(`decodeBatch: ${e.message}; the weights or the noise give NaN/Inf, no audio returned`);
    throw e;
  }
}

/** One window of one sequence's latents, as batchLatentWindows yields them (in window order, then sequence order). */
export interface BatchLatentWindow {
  /** index of the sequence in the list given */
  item: number;
  window: number;
  /** windows of this sequence */
  windows: number;
  /** (1, 32, 512, 32): what code2soundLatents yields for this sequence alone */
  latents: HostTensor;
  plan: WindowPlan;
}

/**
 * code2soundLatents of several sequences at once: window w of every sequence that has one is sampled in one
 * inference_codes call (batch = those sequences); each sequence draws from its own `noises[i]` in code2sound's
 * order (first_latent, then per window the in-context fill and prepare_latents), so each yields what
 * `decoder.code2soundLatents(codes[i], { noise: noises[i] })` yields alone, within float32 rounding.
 */
export async function* batchLatentWindows(
  decoder: MuCodecDecoder, codes: Int32Array[], noises: NoiseSource[],
  opts: Pick<DecodeBatchOptions, 'steps' | 'guidanceScale' | 'sampler' | 'tSpan' | 'signal'> & {
    onStep?: (info: { window: number; windows: number; step: number; steps: number }) => void;
  } = {},
): AsyncGenerator<BatchLatentWindow, void, void> {
  const signal = opts.signal;
  const C = decoder.config.numChannels;
  const rowSize = C * WINDOW_FRAMES * 32;
  const items = codes.map((c, i) => {
    const plan = planCode2Sound(c.length);
    // code2sound's first_latent, always drawn
    return { noise: noises[i]!, plan, padded: tileCodes(c, 1, c.length, plan.paddedLength), trueLatents: noises[i]!.randn([1, C, WINDOW_FRAMES, 32], 'first_latent') };
  });
  const windows = Math.max(...items.map((it) => it.plan.windowStarts.length));
  for (let w = 0; w < windows; w++) {
    throwIfAborted(signal);
    const active = items.map((it, i) => ({ it, i })).filter(({ it }) => it.plan.windowStarts.length > w);
    const B = active.length;
    const wc = new Int32Array(B * WINDOW_CODES);
    const trueLatents = new Float32Array(B * rowSize);
    active.forEach(({ it }, r) => {
      wc.set(it.padded.subarray(w * HOP_CODES, w * HOP_CODES + WINDOW_CODES), r * WINDOW_CODES);
      trueLatents.set(it.trueLatents, r * rowSize);
    });
    const lat = await decoder.inferenceCodesAsync({
      codes: { data: wc, shape: [B, 1, WINDOW_CODES] },
      trueLatents: { dtype: 'float32', shape: [B, C, WINDOW_FRAMES, 32], data: trueLatents },
      latentLength: WINDOW_FRAMES, incontextLength: w === 0 ? 0 : OVERLAP_FRAMES, guidanceScale: opts.guidanceScale ?? 1.5,
      scenario: 'other_seg', noise: stackedNoise(active.map(({ it }) => it.noise)),
      numSteps: opts.steps ?? 20, tSpan: opts.tSpan, solver: opts.sampler, signal,
      onStep: ({ step, steps }) => { throwIfAborted(signal); opts.onStep?.({ window: w, windows, step, steps }); },
    });
    let data: Float32Array;
    try {
      data = (await tensorToHost(lat)).data as Float32Array;
    } finally {
      lat.dispose();
    }
    releaseDevicePool();
    assertFinite(data, `the DiT sampler produced non-finite latents in window ${w + 1} of ${windows}`);
    for (let r = 0; r < B; r++) {
      const { it, i } = active[r]!;
      const own = data.slice(r * rowSize, (r + 1) * rowSize);
      if (w + 1 < it.plan.windowStarts.length) {
        // the next window's in-context input: this window's last 128 frames, then the fill drawn now, as code2sound
        const fill = it.noise.randn([1, C, WINDOW_FRAMES - OVERLAP_FRAMES, 32], 'in-context fill');
        const keep = WINDOW_FRAMES - OVERLAP_FRAMES;
        for (let c = 0; c < C; c++) {
          const o = c * WINDOW_FRAMES * 32;
          it.trueLatents.set(own.subarray(o + keep * 32, o + WINDOW_FRAMES * 32), o);
          it.trueLatents.set(fill.subarray(c * keep * 32, (c + 1) * keep * 32), o + OVERLAP_FRAMES * 32);
        }
      }
      yield { item: i, window: w, windows: it.plan.windowStarts.length, latents: { dtype: 'float32', shape: [1, C, WINDOW_FRAMES, 32], data: own }, plan: it.plan };
    }
  }
}

async function decodeGroup(
  { decoder, vae, vocoder }: DecodeBatchParts, codes: Int32Array[], first: number, items: number, opts: DecodeBatchOptions,
  overall: (doneInGroup: number) => number,
): Promise<Audio[]> {
  const noises = codes.map(() => makeNoise(opts.seed));
  const synths = codes.map((c) => new LatentsToAudio(vae, vocoder, { targetLen: planCode2Sound(c.length).targetLen, duration: opts.duration ?? 40.96, sampleRate: 48000 }));
  const pieces: Float32Array[][][] = codes.map(() => []);
  const windows = Math.max(...codes.map((c) => planCode2Sound(c.length).windowStarts.length));
  const report = (p: Omit<DecodeProgress, 'fraction'>, within: number): void => {
    opts.onProgress?.({ ...p, first, count: codes.length, items, fraction: Math.min(1, overall((p.window + within) / windows)) });
  };
  try {
    const gen = batchLatentWindows(decoder, codes, noises, {
      ...opts, onStep: ({ window, step, steps }) => report({ phase: 'sample', window, windows, step: step + 1, steps }, (0.9 * (step + 1)) / steps),
    });
    for await (const w of gen) {
      throwIfAborted(opts.signal);
      report({ phase: 'audio', window: w.window, windows }, 0.9);
      await yieldToEventLoop();
      pieces[w.item]!.push(await synths[w.item]!.pushAsync(w.latents, opts.signal));
    }
  } finally {
    if (synths[0]!.residency === 'alternate') { vae.dispose(); vocoder.release(); }
  }
  return synths.map((s, i) => {
    const p = pieces[i]!;
    p.push(s.finish());
    const total = p.reduce((n, x) => n + x[0]!.length, 0);
    const channels = [0, 1].map((r) => {
      const ch = new Float32Array(total);
      let off = 0;
      for (const x of p) { ch.set(x[r]!, off); off += x[r]!.length; }
      return ch;
    });
    return { sampleRate: 48000, channels };
  });
}
