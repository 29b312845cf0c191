/**
 * A WAV file written progressively: `write(channels)` appends samples as they come, `finish()` completes the header
 * and renames the temporary file over the output (src/atomic.ts); `abort()` removes it. Memory is one block of
 * interleaved samples, whatever the length.
 *
 * The bytes are those of `encodeWav` (wavefile's `fromScratch`): a 44-byte RIFF header (`fmt ` of 16 bytes: tag 1
 * for 16-bit PCM, 3 for 32-bit IEEE float, no `fact` chunk) then the interleaved samples; 16-bit PCM is
 * round(x · 32768) clipped to [−32768, 32767], NaN → 0. The header is written with placeholder sizes first and
 * completed at the end. A RIFF file holds at most 2^32 − 1 − 36 bytes of samples (≈ 3.1 h of 48 kHz stereo float,
 * 6.2 h of 16-bit): when `frames` (the expected length) says more, the file is RF64 (EBU Tech 3306: `RF64`, a `ds64`
 * chunk with the 64-bit sizes, then `fmt ` and `data` with sizes 0xFFFFFFFF), which readWav reads; without `frames`
 * the writer stays RIFF and refuses, naming the file, the write that would cross the limit.
 */
import { openAtomicFile, type AtomicFile } from '../atomic.js';

/** The incremental writer interface of audio outputs (WAV here; other formats implement the same). */
export interface AudioSink {
  /** append planar samples (one Float32Array per channel, equal lengths) */
  write(channels: Float32Array[]): Promise<void>;
  /** complete the file and put it under its name */
  finish(): Promise<void>;
  /** stop: remove the temporary file (nothing appears under the output name); safe to call more than once */
  abort(): Promise<void>;
}

export type WavFormat = 'pcm16' | 'float32';

export interface WavWriterOptions {
  format?: WavFormat;
  /** expected frames per channel, when known: chooses RF64 from the start when RIFF cannot hold them */
  frames?: number;
  /** RIFF's limit on the data chunk (bytes); only for tests of the RF64 / refusal paths */
  maxRiffData?: number;
}

/** the most sample bytes a RIFF WAV can hold: its RIFF size field (36 + data) is 32-bit */
export const RIFF_MAX_DATA = 0xffffffff - 36;
const BLOCK_FRAMES = 65536;

function fmtChunk(v: DataView, at: number, format: WavFormat, channels: number, sampleRate: number): void {
  const bytes = format === 'pcm16' ? 2 : 4;
  v.setUint32(at, 0x666d7420, false); // "fmt "
  v.setUint32(at + 4, 16, true);
  v.setUint16(at + 8, format === 'pcm16' ? 1 : 3, true);
  v.setUint16(at + 10, channels, true);
  v.setUint32(at + 12, sampleRate, true);
  v.setUint32(at + 16, sampleRate * channels * bytes, true);
  v.setUint16(at + 20, channels * bytes, true);
  v.setUint16(at + 22, bytes * 8, true);
}

/** The header for `dataBytes` of samples: RIFF (44 bytes) or RF64 (80 bytes). */
export function wavHeader(format: WavFormat, channels: number, sampleRate: number, dataBytes: number, rf64: boolean): Uint8Array {
  const b = new Uint8Array(rf64 ? 80 : 44);
  const v = new DataView(b.buffer);
  const tag = (at: number, s: string): void => { for (let i = 0; i < 4; i++) b[at + i] = s.charCodeAt(i); };
  tag(0, rf64 ? 'RF64' : 'RIFF');
  tag(8, 'WAVE');
  let at = 12;
  if (rf64) {
    const frameBytes = channels * (format === 'pcm16' ? 2 : 4);
    v.setUint32(4, 0xffffffff, true);
    tag(12, 'ds64');
    v.setUint32(16, 28, true);
    v.setBigUint64(20, BigInt(b.length - 8 + dataBytes), true); // RIFF size
    v.setBigUint64(28, BigInt(dataBytes), true);
    v.setBigUint64(36, BigInt(dataBytes / frameBytes), true); // sample count (frames)
    v.setUint32(44, 0, true); // no table
    at = 48;
  } else {
    v.setUint32(4, 36 + dataBytes, true);
  }
  fmtChunk(v, at, format, channels, sampleRate);
  tag(at + 24, 'data');
  v.setUint32(at + 28, rf64 ? 0xffffffff : dataBytes, true);
  return b;
}

export class WavStreamWriter implements AudioSink {
  private dataBytes = 0;
  private done = false;
  private readonly frameBytes: number;

  private constructor(
    private readonly file: AtomicFile, readonly format: WavFormat, readonly channels: number, readonly sampleRate: number,
    readonly rf64: boolean, private readonly maxData: number,
  ) {
    this.frameBytes = channels * (format === 'pcm16' ? 2 : 4);
  }

  /** Create `<path>.tmp-…` and write a header with placeholder sizes. */
  static async create(path: string, sampleRate: number, channels: number, opts: WavWriterOptions = {}): Promise<WavStreamWriter> {
    const format = opts.format ?? 'pcm16';
    if (!(Number.isInteger(sampleRate) && sampleRate > 0 && sampleRate <= 0xffffffff)) throw new Error(`${path}: invalid sample rate ${sampleRate}`);
    if (!(Number.isInteger(channels) && channels >= 1 && channels <= 0xffff)) throw new Error(`${path}: invalid channel count ${channels}`);
    const frameBytes = channels * (format === 'pcm16' ? 2 : 4);
    const maxRiff = opts.maxRiffData ?? RIFF_MAX_DATA;
    const rf64 = opts.frames !== undefined && opts.frames * frameBytes > maxRiff;
    const file = await openAtomicFile(path);
    const w = new WavStreamWriter(file, format, channels, sampleRate, rf64, rf64 ? Number.MAX_SAFE_INTEGER : maxRiff);
    try {
      await file.write(wavHeader(format, channels, sampleRate, 0, rf64));
    } catch (e) {
      await file.abort();
      throw e;
    }
    return w;
  }

  /** frames written so far */
  get frames(): number { return this.dataBytes / this.frameBytes; }

  async write(chs: Float32Array[]): Promise<void> {
    if (this.done) throw new Error(`${this.file.path}: write after finish() or abort()`);
    if (chs.length !== this.channels) { await this.abort(); throw new Error(`${this.file.path}: got ${chs.length} channels, the file has ${this.channels}`); }
    const n = chs[0]!.length;
    if (chs.some((c) => c.length !== n)) { await this.abort(); throw new Error(`${this.file.path}: channels have different lengths`); }
    if (this.dataBytes + n * this.frameBytes > this.maxData) {
      await this.abort();
      throw new Error(`${this.file.path}: more than ${this.maxData} bytes of samples, which a RIFF WAV cannot hold ` +
        '(give the expected frames so that the writer uses RF64)');
    }
    const C = this.channels;
    for (let f0 = 0; f0 < n; f0 += BLOCK_FRAMES) {
      const m = Math.min(BLOCK_FRAMES, n - f0);
      let bytes: Uint8Array;
      if (this.format === 'pcm16') {
        const inter = new Int16Array(m * C);
        for (let c = 0; c < C; c++) {
          const x = chs[c]!;
          for (let i = 0; i < m; i++) {
            const v = Math.round(x[f0 + i]! * 32768);
            inter[i * C + c] = Number.isNaN(v) ? 0 : v > 32767 ? 32767 : v < -32768 ? -32768 : v;
          }
        }
        bytes = littleEndian(inter);
      } else {
        const inter = new Float32Array(m * C);
        for (let c = 0; c < C; c++) {
          const x = chs[c]!;
          for (let i = 0; i < m; i++) inter[i * C + c] = x[f0 + i]!;
        }
        bytes = littleEndian(inter);
      }
      await this.file.write(bytes); // removes the temporary file itself when it fails
      this.dataBytes += bytes.length;
    }
  }

  async finish(): Promise<void> {
    if (this.done) throw new Error(`${this.file.path}: finish() after finish() or abort()`);
    this.done = true;
    await this.file.writeAt(0, wavHeader(this.format, this.channels, this.sampleRate, this.dataBytes, this.rf64));
    await this.file.commit();
  }

  async abort(): Promise<void> {
    this.done = true;
    await this.file.abort();
  }
}

const LITTLE = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/** the bytes of a typed array, little-endian whatever the platform */
function littleEndian(a: Int16Array | Float32Array): Uint8Array {
  const bytes = new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
  if (LITTLE) return bytes;
  const out = new Uint8Array(bytes.length);
  const k = a.BYTES_PER_ELEMENT;
  for (let i = 0; i < bytes.length; i += k) for (let j = 0; j < k; j++) out[i + j] = bytes[i + k - 1 - j]!;
  return out;
}

/** Write whole audio through the streaming writer (the file appears atomically, in blocks of samples). */
export async function writeWavStreamed(path: string, audio: { sampleRate: number; channels: Float32Array[] }, format: WavFormat = 'pcm16'): Promise<void> {
  const n = audio.channels[0]?.length ?? 0;
  const w = await WavStreamWriter.create(path, audio.sampleRate, audio.channels.length, { format, frames: n });
  await w.write(audio.channels);
  await w.finish();
}
