/**
 * A streaming PCM source: audio read a range of frames at a time, so a song of any length is held only a chunk
 * at a time (the WAV reader implements it; other decoders can plug in behind the same interface).
 *
 *   const src = await openWavSource('song.wav');        // header only
 *   const first = await src.read(0, 48000);             // planar float32, one array per channel
 *   const whole = await readAllFrames(src); await src.close();
 *
 * What the streamed encode asks of a source (src/encode_source.ts), so a decoder of a compressed format can serve
 * it without seeking: two forward passes (reads in increasing order, consecutive ranges overlapping by at most the
 * resampling halo, < 1000 frames), the second starting again from frame 0, plus — for the last window of a song
 * longer than one window — one more read from frame 0 (upstream's loop padding). `frames` must be exact before
 * the first read (a decoder that cannot know it up front can count it in a first pass).
 */
import type { Audio } from './wav.js';

export interface AudioSource {
  /** what errors name (the file path) */
  readonly name: string;
  readonly sampleRate: number;
  /** channel count */
  readonly channels: number;
  /** length per channel, known up front */
  readonly frames: number;
  /** frames [start, start + count), planar float32 (values nominally in [−1, 1]); 0 ≤ start, start + count ≤ frames */
  read(start: number, count: number): Promise<Float32Array[]>;
  /** releases the underlying file (idempotent) */
  close(): Promise<void>;
}

/** Sample rates accepted on input (Hz, inclusive): outside them a file is refused before any work. */
export const MIN_SAMPLE_RATE = 8000;
export const MAX_SAMPLE_RATE = 384000;

/** Refuses a sample rate outside [MIN_SAMPLE_RATE, MAX_SAMPLE_RATE] (e.g. a 24 KB file at 1 Hz: 6000 s of audio). */
export function checkSampleRate(rate: number, name: string): void {
  if (!(Number.isInteger(rate) && rate >= MIN_SAMPLE_RATE && rate <= MAX_SAMPLE_RATE)) {
    throw new Error(`${name}: sample rate ${rate} Hz is outside the supported range ${MIN_SAMPLE_RATE} … ${MAX_SAMPLE_RATE} Hz`);
  }
}

/** Checks a read request against the source's length. */
export function checkRange(src: Pick<AudioSource, 'name' | 'frames'>, start: number, count: number): void {
  if (!(Number.isInteger(start) && Number.isInteger(count) && start >= 0 && count >= 0 && start + count <= src.frames)) {
    throw new RangeError(`${src.name}: cannot read frames [${start}, ${start + count}) of ${src.frames}`);
  }
}

/** An in-memory Audio as a source (reads are views of its arrays). */
export function memorySource(audio: Audio, name = 'audio'): AudioSource {
  const frames = audio.channels[0]?.length ?? 0;
  if (audio.channels.some((c) => c.length !== frames)) throw new Error(`${name}: channels have different lengths`);
  return {
    name, sampleRate: audio.sampleRate, channels: audio.channels.length, frames,
    read(start, count) {
      checkRange(this, start, count);
      return Promise.resolve(audio.channels.map((c) => c.subarray(start, start + count)));
    },
    close: () => Promise.resolve(),
  };
}

/** Frames per read when a whole source is read (1 Mi frames: 8 MB of float32 stereo). */
export const READ_CHUNK_FRAMES = 1 << 20;

/** The whole source as planar arrays, read chunk by chunk (memory: the result plus one chunk). */
export async function readAllFrames(src: AudioSource): Promise<Float32Array[]> {
  let out: Float32Array[];
  try {
    out = Array.from({ length: src.channels }, () => new Float32Array(src.frames));
  } catch (e) {
    if (e instanceof RangeError) {
      throw new Error(`${src.name}: too long to hold whole in memory (${src.frames} frames × ${src.channels} channels); encode it from the file (streamed) instead`);
    }
    throw e;
  }
  for (let s = 0; s < src.frames; s += READ_CHUNK_FRAMES) {
    const part = await src.read(s, Math.min(READ_CHUNK_FRAMES, src.frames - s));
    part.forEach((p, c) => out[c]!.set(p, s));
  }
  return out;
}
