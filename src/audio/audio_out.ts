/**
 * Output audio files: 16-bit PCM WAV (default), 32-bit float WAV, or FLAC (16-bit, lossless: the same integers as
 * the 16-bit WAV, in about half to two thirds of the bytes on music). The format is `--format` when given, else the
 * output's extension (`.flac` → FLAC). FLAC holds integers only: FLAC with float is refused.
 *
 * `writeAudioFile` writes a whole signal atomically; `FlacFileWriter` writes a FLAC stream as audio arrives
 * (frames appended to a temporary file, STREAMINFO completed at the end, then the rename), for a streaming decode.
 */
import { open, rename, unlink, type FileHandle } from 'node:fs/promises';
import { extname } from 'node:path';
import { currentWriteSignal } from '../atomic.js';
import { FlacEncoder, floatToPcm } from './flac_encode.js';
import { writeWav, type Audio } from './wav.js';
import { WavStreamWriter } from './wav_writer.js';

export type OutputFormat = 'pcm16' | 'float32' | 'flac';

/** the container named by --format */
export const OUTPUT_CONTAINERS = ['wav', 'flac'] as const;

/**
 * The output format from `--format` (wav | flac), `--float`, and the output's extension when no --format is given.
 * Errors name the problem: an unknown --format, FLAC with --float, --format contradicting the extension.
 */
export function outputFormat(command: string, output: string | undefined, opts: { float?: boolean; format?: string }): OutputFormat {
  const ext = output ? extname(output).toLowerCase() : '';
  let container = opts.format?.toLowerCase();
  if (container !== undefined && !(OUTPUT_CONTAINERS as readonly string[]).includes(container)) {
    throw new Error(`${command}: option --format: unknown format "${opts.format}" (choose one of: ${OUTPUT_CONTAINERS.join(', ')})`);
  }
  if (container === undefined) container = ext === '.flac' ? 'flac' : 'wav';
  else if ((container === 'flac' && ext === '.wav') || (container === 'wav' && ext === '.flac')) {
    throw new Error(`${command}: --format ${container} but the output ${output} is named ${ext}`);
  }
  if (container === 'flac') {
    if (opts.float) throw new Error(`${command}: FLAC holds integer samples only: --float cannot be written as FLAC (use a .wav output for 32-bit float)`);
    return 'flac';
  }
  return opts.float ? 'float32' : 'pcm16';
}

export const extensionFor = (f: OutputFormat): string => (f === 'flac' ? '.flac' : '.wav');

export function describeFormat(f: OutputFormat): string {
  return f === 'flac' ? 'FLAC 16-bit' : f === 'float32' ? '32-bit float' : '16-bit PCM';
}

/** frames per FLAC write of writeAudioFile (each write hands the event loop back: Ctrl-C is seen during a long one) */
const FLAC_WRITE_FRAMES = 1 << 18;

/**
 * Writes `audio` to `path` in `format`, atomically (temp file + rename); inside withWriteSignal() (src/atomic.ts)
 * a fired signal stops the write and leaves nothing behind.
 */
export async function writeAudioFile(path: string, audio: Audio, format: OutputFormat): Promise<void> {
  if (format !== 'flac') return writeWav(path, audio, format);
  const n = audio.channels[0]?.length ?? 0;
  if (!audio.channels.length || audio.channels.some((c) => c.length !== n)) throw new Error(`${path}: cannot write (no channels, or channels of different lengths)`);
  const w = await FlacFileWriter.open(path, { sampleRate: audio.sampleRate, channels: audio.channels.length, signal: currentWriteSignal() });
  for (let at = 0; at < n; at += FLAC_WRITE_FRAMES) await w.write(audio.channels.map((c) => c.subarray(at, at + FLAC_WRITE_FRAMES)));
  await w.finish();
}

/** what decode streams into: the WAV writer (src/audio/wav_writer.ts) or FlacFileWriter; `frames` written so far */
export interface FramedSink { write(channels: Float32Array[]): Promise<void>; finish(): Promise<void>; abort(): Promise<void>; readonly frames: number }

/**
 * A progressive writer for `format` (temp file; renamed over `path` by finish(), removed by abort()). `frames`, when
 * known, lets the WAV writer choose RF64 up front for data beyond RIFF's 4 GiB. Inside withWriteSignal() a fired
 * signal stops the FLAC writer at its next call (the caller aborts the WAV writer).
 */
export async function openAudioSink(path: string, format: OutputFormat, opts: { sampleRate: number; channels: number; frames?: number }): Promise<FramedSink> {
  if (format !== 'flac') return WavStreamWriter.create(path, opts.sampleRate, opts.channels, { format, frames: opts.frames });
  const w = await FlacFileWriter.open(path, { sampleRate: opts.sampleRate, channels: opts.channels, signal: currentWriteSignal() });
  let frames = 0;
  return {
    write: async (chs) => { await w.write(chs); frames += chs[0]?.length ?? 0; },
    finish: () => w.finish(),
    abort: () => w.abort(),
    get frames() { return frames; },
  };
}

let counter = 0;

/**
 * A FLAC file written as audio arrives: `write()` float chunks (rounded as the 16-bit WAV writer rounds), then
 * `finish()` (last frame, STREAMINFO over the first 42 bytes, fsync, rename) or `abort()` (temp file removed).
 * Until finish() returns nothing exists under `path`. A `signal` that fires makes the next call abort and throw.
 */
export class FlacFileWriter {
  private pos = 0;
  private closed = false;

  private constructor(readonly path: string, private readonly tmp: string, private fh: FileHandle,
    private readonly enc: FlacEncoder, private readonly signal?: AbortSignal) {}

  static async open(path: string, opts: { sampleRate: number; channels: number; blockSize?: number; signal?: AbortSignal }): Promise<FlacFileWriter> {
    const enc = new FlacEncoder({ sampleRate: opts.sampleRate, channels: opts.channels, bitsPerSample: 16, blockSize: opts.blockSize });
    const tmp = `${path}.tmp-${process.pid}-w${counter++}`;
    const fh = await open(tmp, 'w').catch((e: Error) => { throw new Error(`${path}: cannot write (${e.message})`); });
    const w = new FlacFileWriter(path, tmp, fh, enc, opts.signal);
    await w.guard(() => w.append(enc.header()));
    return w;
  }

  private async append(b: Uint8Array): Promise<void> {
    if (b.length) await this.fh.write(b, 0, b.length, this.pos);
    this.pos += b.length;
  }

  /** runs `fn`; on an error or a fired signal, removes the temp file and throws (the signal's reason first) */
  private async guard<T>(fn: () => Promise<T>): Promise<T> {
    if (this.closed) throw new Error(`${this.path}: write after finish() or abort()`);
    try {
      if (this.signal?.aborted) throw this.signal.reason;
      const r = await fn();
      if (this.signal?.aborted) throw this.signal.reason;
      return r;
    } catch (e) {
      await this.abort();
      if (this.signal?.aborted) throw this.signal.reason instanceof Error ? this.signal.reason : new Error(String(this.signal.reason));
      throw e instanceof Error && e.message.startsWith(this.path) ? e : new Error(`${this.path}: cannot write (${(e as Error).message})`);
    }
  }

  write(channels: readonly Float32Array[]): Promise<void> {
    return this.guard(() => this.append(this.enc.encode(floatToPcm(channels, 16))));
  }

  async finish(): Promise<void> {
    await this.guard(async () => {
      const { bytes, header } = this.enc.finish();
      await this.append(bytes);
      await this.fh.write(header, 0, header.length, 0);
      await this.fh.sync();
      await this.fh.close();
      this.closed = true;
      if (this.signal?.aborted) throw this.signal.reason;
      await rename(this.tmp, this.path);
    });
  }

  async abort(): Promise<void> {
    this.closed = true;
    await this.fh.close().catch(() => undefined);
    await unlink(this.tmp).catch(() => undefined);
  }
}
