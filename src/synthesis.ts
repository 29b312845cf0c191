/**
 * Latent windows → stereo waveform: the tail of MuCodec generate.py:MuCodec.code2sound after the DiT loop.
 *
 *   latent_list[0] = latent_list[0][:, :, first_latent_length:, :]
 *   per window: (B, 32, T, 32) → reshape (2B, 16, T, 32)  (channels 0–15 → row 2b = L, 16–31 → row 2b+1 = R)
 *               → vae.decode_first_stage → decode_to_waveform (vocoder_chunk_infer) → [:, :min_samples]
 *   cross-fade: output[:, −ovlp:] = output[:, −ovlp:]·(1 − ramp) + cur[:, :ovlp]·ramp, ramp = np.linspace(0, 1, ovlp)
 *               (float64 arithmetic, stored float32); output = cat(output, cur[:, ovlp:])
 *   final:      output[:, :target_len]
 *
 * Streaming: `LatentsToAudio.push(window)` decodes one window (one stereo row at a time: VAE decode, then the
 * vocoder in 1024-frame calls) and returns the samples that no later window can change; `finish()` returns
 * the rest. Memory is bounded by one window, whatever the song length.
 */
import * as tf from '@tensorflow/tfjs-core';
import { devicePath } from './device.js';
import { releaseDevicePool } from './webgpu.js';
import { abortCheck, drainSteps, drainStepsAsync, yieldToEventLoop, type Step } from './steps.js';
import { TacotronSTFT, wavToFbank2 } from './audio/mel.js';
import { assertFinite, toFloat32, type HostTensor, shapeStr } from './hosttensor.js';
import type { NoiseSource } from './noise.js';
import type { AutoencoderKL } from './vae/autoencoder.js';
import type { Image } from './vae/tiled.js';
import { cloneImage, disposeImage, hostImageSteps, onDevice, type AnyImage } from './vae/device_image.js';
import { rowsTensor } from './vae/tiled.js';
import { vocoderChunkInferSteps, linspace01 } from './vocoder/chunk_infer.js';
import type { HifiGanGenerator } from './vocoder/hifigan.js';

export interface WindowSamples {
  /** int(duration · sample_rate): each window's audio is cut to this length */
  minSamples: number;
  /** min_samples // 4 · 3 */
  hopSamples: number;
  /** min_samples − hop_samples: cross-fade length */
  ovlpSamples: number;
}

/** code2sound's window arithmetic: min_samples = int(duration·sr), hop = min_samples // 4 · 3, ovlp = rest */
export function windowSamples(duration = 40.96, sampleRate = 48000): WindowSamples {
  const minSamples = Math.trunc(duration * sampleRate);
  const hopSamples = Math.floor(minSamples / 4) * 3;
  return { minSamples, hopSamples, ovlpSamples: minSamples - hopSamples };
}

/**
 * The running cross-fade of code2sound over per-window audio (rows × samples), emitting final samples as soon
 * as they are final: after each window only its last `ovlp` samples can still change.
 */
export class WindowCrossFader {
  private tail: Float32Array[] | null = null;
  private emitted = 0;
  private readonly ramp: Float64Array;

  /** `targetLen`: final crop (Infinity for none) */
  constructor(readonly rows: number, readonly ovlp: number, readonly targetLen = Infinity) {
    if (ovlp < 1) throw new Error(`cross-fade: overlap must be ≥ 1 sample, got ${ovlp}`);
    this.ramp = linspace01(ovlp);
  }

  /** total samples emitted so far (after the target crop) */
  get samplesEmitted(): number { return this.emitted; }

  /** add one window (rows arrays of equal length); returns the newly final samples per row */
  push(cur: Float32Array[]): Float32Array[] {
    if (cur.length !== this.rows) throw new Error(`cross-fade: window has ${cur.length} rows, expected ${this.rows}`);
    const n = cur[0]!.length;
    if (cur.some((r) => r.length !== n)) throw new Error('cross-fade: rows of a window differ in length');
    const ov = this.ovlp;
    let joined: Float32Array[];
    if (!this.tail) {
      joined = cur;
    } else {
      if (n < ov) throw new Error(`cross-fade: a window of ${n} samples is shorter than the ${ov}-sample overlap`);
      if (this.tail[0]!.length < ov) throw new Error(`cross-fade: the running output (${this.tail[0]!.length} samples) is shorter than the ${ov}-sample overlap`);
      const ramp = this.ramp;
      joined = cur.map((c, r) => {
        const t = this.tail![r]!;
        const out = new Float32Array(ov + n - ov);
        for (let i = 0; i < ov; i++) out[i] = t[i]! * (1 - ramp[i]!) + c[i]! * ramp[i]!; // float64, stored float32
        out.set(c.subarray(ov), ov);
        return out;
      });
    }
    const len = joined[0]!.length;
    const keep = Math.max(0, len - ov);
    this.tail = joined.map((j) => j.slice(keep));
    return this.emit(joined.map((j) => j.subarray(0, keep)));
  }

  /** the remaining (last `ovlp`) samples, cropped to the target */
  finish(): Float32Array[] {
    if (!this.tail) return Array.from({ length: this.rows }, () => new Float32Array(0));
    const t = this.tail;
    this.tail = null;
    return this.emit(t);
  }

  private emit(rows: Float32Array[]): Float32Array[] {
    const room = Math.max(0, Math.min(rows[0]!.length, this.targetLen - this.emitted));
    this.emitted += room;
    return rows.map((r) => r.slice(0, room));
  }
}

export interface LatentsToAudioOptions extends Partial<WindowSamples> {
  /** final crop (code2sound's target_len); default: no crop */
  targetLen?: number;
  /** latent frames of the prompt at the start of window 0 (cut before decoding); default 0 */
  firstLatentLength?: number;
  /** when the window parameters are not given: duration (40.96) and sample rate (48000) they derive from */
  duration?: number;
  sampleRate?: number;
}

export interface WindowTaps {
  /** (2B, 1, 8T, 256) mel of a window, row by row */
  mel?: (window: number, row: number, mel: Image) => void;
  /** (2B, S) decode_to_waveform output of a window, before the min_samples cut */
  wav?: (window: number, wav: { data: Float32Array; shape: [number, number] }) => void;
}

/**
 * One window's mel rows (2B rows of (frames, mel_bins) log mel, NHWC images with C = 1), cut to its window: host
 * images, or on the device path device images (owned by the window: vocodeMels frees them).
 */
export interface MelWindow {
  index: number;
  rows: AnyImage[];
}

/**
 * Streaming latents → stereo audio (code2sound tail), one window at a time, in three phases that can also be
 * driven separately:
 *   decodeMels(latent)  — VAE decoder only: (B, 32, T, F) → 2B mel rows (4 MB per row of a real window)
 *   vocodeMels(mels)    — vocoder only: vocoder_chunk_infer per row, cut to min_samples
 *   pushAudio(rows)     — the cross-fade; returns the samples that are final
 * `push(latent)` runs the three. With `residency: 'alternate'` (the default on the host path) the VAE decoder's
 * backend weights are released after each decodeMels and the vocoder's after each vocodeMels, so the two never share
 * the wasm heap (at the real widths each needs ~1.6–2.2 GB of it with its packed kernels); re-uploading costs seconds
 * per window against minutes of compute. 'both' keeps them resident: the default on the device path (src/device.ts:
 * uploaded once, kept while the codec lives; ~1.3 GB of VAE decoder + vocoder weights at the real width), and for
 * small models / fixtures. On the device path the backend's pool of freed buffers is emptied after every window
 * (src/webgpu.ts releaseDevicePool), so GPU memory does not grow with the number of windows.
 */
export class LatentsToAudio {
  readonly win: WindowSamples;
  private fader: WindowCrossFader | null = null;
  private melIndex = 0;
  private audioIndex = 0;
  readonly targetLen: number;
  readonly firstLatentLength: number;
  readonly residency: 'alternate' | 'both';

  constructor(
    readonly vae: AutoencoderKL, readonly vocoder: HifiGanGenerator,
    opts: LatentsToAudioOptions & { residency?: 'alternate' | 'both' } = {}, readonly taps: WindowTaps = {},
  ) {
    const d = windowSamples(opts.duration ?? 40.96, opts.sampleRate ?? 48000);
    const minSamples = opts.minSamples ?? d.minSamples;
    const hopSamples = opts.hopSamples ?? Math.floor(minSamples / 4) * 3;
    this.win = { minSamples, hopSamples, ovlpSamples: opts.ovlpSamples ?? minSamples - hopSamples };
    this.targetLen = opts.targetLen ?? Infinity;
    this.firstLatentLength = opts.firstLatentLength ?? 0;
    this.residency = opts.residency ?? (devicePath() ? 'both' : 'alternate');
  }

  /**
   * Phase 1: one latent window (B, 2·C, T, F) → 2B mel rows. Row 2b+s = latent channels [s·C, (s+1)·C) of
   * batch b (reshape (B, 2C, T, F) → (2B, C, T, F)); the first window loses its first `first_latent_length` frames.
   */
  decodeMels(latent: HostTensor): MelWindow {
    return drainSteps(this.decodeMelsSteps(latent));
  }

  /** decodeMels as a step generator (a yield after every VAE decoder block) */
  *decodeMelsSteps(latent: HostTensor): Generator<Step, MelWindow, void> {
    if (latent.shape.length !== 4 || latent.shape[1]! % 2) throw new Error(`latents_to_audio: window must be (B, 2·C, T, F), got ${shapeStr(latent.shape)}`);
    const [B, C, T0, F] = latent.shape as [number, number, number, number];
    const index = this.melIndex;
    const cut = index === 0 ? this.firstLatentLength : 0;
    const T = T0 - cut;
    if (T <= 0) throw new Error(`latents_to_audio: window ${index} has ${T0} frames, first_latent_length is ${cut}`);
    const src = toFloat32(latent);
    const half = C / 2;
    const rows: AnyImage[] = [];
    const device = devicePath();
    let done = false;
    try {
      for (let b = 0; b < B; b++) {
        for (let s = 0; s < 2; s++) {
          const z = new Float32Array(half * T * F);
          for (let c = 0; c < half; c++) {
            const from = ((b * C + s * half + c) * T0 + cut) * F;
            z.set(src.subarray(from, from + T * F), c * T * F);
          }
          const zrow: HostTensor = { dtype: 'float32', shape: [1, half, T, F], data: z };
          if (!device) {
            yield* this.vae.decodeSteps(zrow, undefined, (_b, m) => {
              assertFinite(m.data, `the VAE decoder produced non-finite mel in window ${index + 1} (${s ? 'right' : 'left'} channel${B > 1 ? ` of batch row ${b}` : ''})`);
              this.taps.mel?.(index, rows.length, m);
              rows.push(m);
            });
            continue;
          }
          // device path: the row's mel stays on the device (read back only for a tap; a non-finite mel is caught in
          // the vocoder's audio below, which it turns non-finite)
          const taps = this.taps;
          yield* this.vae.decodeImagesSteps(zrow, true, function* (_b, m) {
            if (taps.mel) taps.mel(index, rows.length, yield* hostImageSteps(m, 'window mel'));
            rows.push(onDevice(m) ? cloneImage(m) : m);
          });
        }
      }
      done = true;
    } finally {
      if (this.residency === 'alternate') this.vae.dispose();
      if (!done) for (const m of rows) disposeImage(m);
    }
    this.melIndex++;
    return { index, rows };
  }

  /**
   * Phase 2: mel rows → audio rows (decode_to_waveform per row, then [:, :min_samples]). The rows of a window are
   * vocoded together (vocoder_chunk_infer with B = rows: equal-length calls run batched).
   */
  vocodeMels(mels: MelWindow): Float32Array[] {
    return drainSteps(this.vocodeMelsSteps(mels));
  }

  /** vocodeMels as a step generator (a yield after every vocoder ResBlock) */
  *vocodeMelsSteps(mels: MelWindow): Generator<Step, Float32Array[], void> {
    const rows = mels.rows;
    let wav: { data: Float32Array; shape: [number, number] };
    try {
      const R = rows.length, F = rows[0]!.h, nm = rows[0]!.w;
      if (rows.some((m) => m.h !== F || m.w !== nm || m.c !== 1)) throw new Error('latents_to_audio: the mel rows of a window differ in shape');
      // (frames, mel_bins, 1) row-major is already the NWC (1, frames, mel_bins) the vocoder takes
      wav = yield* vocoderChunkInferSteps(this.vocoder, (f0, f1) => {
        if (rows.some(onDevice)) {
          return tf.tidy(() => tf.stack(rows.map((m) => tf.reshape(rowsTensor(m, f0, f1), [f1 - f0, nm]))) as tf.Tensor3D);
        }
        const host = rows as Image[];
        if (R === 1) return host[0]!.data.subarray(f0 * nm, f1 * nm);
        const out = new Float32Array(R * (f1 - f0) * nm);
        host.forEach((m, r) => out.set(m.data.subarray(f0 * nm, f1 * nm), r * (f1 - f0) * nm));
        return out;
      }, R, F);
    } finally {
      if (this.residency === 'alternate') this.vocoder.release();
      for (const m of rows) disposeImage(m);
    }
    assertFinite(wav.data, `the vocoder produced non-finite audio in window ${mels.index + 1}`);
    const n = wav.shape[1];
    this.taps.wav?.(mels.index, wav);
    return Array.from({ length: wav.shape[0] }, (_, r) => wav.data.slice(r * n, r * n + Math.min(n, this.win.minSamples)));
  }

  /** Phase 3: cross-fade one window's audio rows; returns the newly final samples per row */
  pushAudio(rows: Float32Array[]): Float32Array[] {
    this.fader ??= new WindowCrossFader(rows.length, this.win.ovlpSamples, this.targetLen);
    this.audioIndex++;
    return this.fader.push(rows);
  }

  /** decode, vocode and cross-fade one window; returns the newly final samples per output row (2B rows) */
  push(latent: HostTensor): Float32Array[] {
    return this.pushAudio(this.vocodeMels(this.decodeMels(latent)));
  }

  /**
   * `push` handing the event loop back after every VAE decoder block and vocoder ResBlock (timers, signal handlers,
   * I/O get through); an aborted `signal` stops it at the next of those with its reason.
   */
  async pushAsync(latent: HostTensor, signal?: AbortSignal): Promise<Float32Array[]> {
    const check = abortCheck(signal);
    const mels = await drainStepsAsync(this.decodeMelsSteps(latent), check);
    const rows = await drainStepsAsync(this.vocodeMelsSteps(mels), check);
    releaseDevicePool(); // the window's temporaries are freed: do not carry their buffers into the next window
    await yieldToEventLoop();
    return this.pushAudio(rows);
  }

  /** the last samples (and the end of the stream) */
  finish(): Float32Array[] {
    if (!this.fader) throw new Error('latents_to_audio: no window was pushed');
    return this.fader.finish();
  }
}

/** Concatenate streamed pieces (each: rows arrays) into one (rows, total) row-major tensor. */
export function concatRows(pieces: Float32Array[][]): HostTensor {
  const rows = pieces[0]!.length;
  const total = pieces.reduce((n, p) => n + p[0]!.length, 0);
  const out = new Float32Array(rows * total);
  let off = 0;
  for (const p of pieces) {
    for (let r = 0; r < rows; r++) out.set(p[r]!, r * total + off);
    off += p[0]!.length;
  }
  return { dtype: 'float32', shape: [rows, total], data: out };
}

/** Whole-list convenience: latent windows → (2B, target_len) float32, as code2sound returns it. */
export function latentsToAudio(
  vae: AutoencoderKL, vocoder: HifiGanGenerator, latents: HostTensor[],
  opts: LatentsToAudioOptions & { residency?: 'alternate' | 'both' } = {}, taps: WindowTaps = {},
): HostTensor {
  const s = new LatentsToAudio(vae, vocoder, opts, taps);
  const pieces: Float32Array[][] = [];
  for (const l of latents) pieces.push(s.push(l));
  pieces.push(s.finish());
  return concatRows(pieces);
}

/** latentsToAudio through pushAsync: the form that also runs on a device backend (webgpu reads asynchronously) */
export async function latentsToAudioAsync(
  vae: AutoencoderKL, vocoder: HifiGanGenerator, latents: HostTensor[],
  opts: LatentsToAudioOptions & { residency?: 'alternate' | 'both' } = {}, taps: WindowTaps = {},
): Promise<HostTensor> {
  const s = new LatentsToAudio(vae, vocoder, opts, taps);
  const pieces: Float32Array[][] = [];
  for (const l of latents) pieces.push(await s.pushAsync(l));
  pieces.push(s.finish());
  return concatRows(pieces);
}

/**
 * code2sound's prompt branch after the prompt audio has been cut: (rows, N) 48 kHz audio (rows = 2: L, R)
 * → TT:wav_to_fbank2 (TacotronSTFT log mel, (rows, frames, 256)) → unsqueeze(1) → each row encoded alone
 * (encode_first_stage + get_first_stage_encoding: posterior SAMPLE, ε drawn from `noise` per row in order;
 * `noise` null = posterior mode) → (rows, 16, frames // 8, 32) → reshape (rows / 2, 32, frames // 8, 32).
 */
export function encodePromptLatent(
  vae: AutoencoderKL, stft: TacotronSTFT, wav: Float32Array, rows: number, noise: NoiseSource | null,
): HostTensor {
  return drainSteps(encodePromptLatentSteps(vae, stft, wav, rows, noise));
}

/** encodePromptLatent as a step generator (a yield after every VAE encoder block) */
export function* encodePromptLatentSteps(
  vae: AutoencoderKL, stft: TacotronSTFT, wav: Float32Array, rows: number, noise: NoiseSource | null,
): Generator<Step, HostTensor, void> {
  if (rows % 2) throw new Error(`prompt latent: ${rows} audio rows cannot pair into stereo latents`);
  const { fbank, frames } = wavToFbank2(wav, rows, stft);
  const r = yield* vae.encodeSteps({ dtype: 'float32', shape: [rows, 1, frames, stft.cfg.n_mel_channels], data: fbank }, noise);
  assertFinite(r.z.data as Float32Array, 'the VAE encoder produced a non-finite prompt latent');
  const [B, e, T, W] = r.z.shape as [number, number, number, number];
  return { dtype: 'float32', shape: [B / 2, 2 * e, T, W], data: r.z.data };
}
