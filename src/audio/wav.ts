/**
 * WAV reading (streamed) and writing. The RIFF structure is parsed here from the first bytes of the file with
 * positional reads (RIFF / RIFX / RF64-BW64 with its ds64 sizes, plain or WAVE_FORMAT_EXTENSIBLE, chunks of any
 * order and odd sizes) so a truncated, foreign or unsupported file gets an error that names the file and the
 * problem before any sample is read; samples are then decoded a range of frames at a time (`openWavSource`), so
 * memory does not grow with the file (files over 2 GiB included). `readWav` reads a whole file through it.
 *
 * A data chunk size of 0xFFFFFFFF (or 0 with no chunk after it: a streamed WAV whose header was never completed)
 * means "to the end of the file", cut to whole frames. An explicit size beyond the end of the file is an error.
 *
 * Sample scaling is torchaudio.load's (normalize=True), so the audio upstream's file2code sees is reproduced:
 * u8 → (x − 128) / 128, sN → x / 2^(N−1), float32 as stored, float64 rounded to float32.
 */
import { open, type FileHandle } from 'node:fs/promises';
import * as wavefileModule from 'wavefile';
import { writeWavStreamed } from './wav_writer.js';
import { checkRange, checkSampleRate, readAllFrames, type AudioSource } from './source.js';

/** Audio as planar float32 channels at a sample rate (values nominally in [−1, 1]). */
export interface Audio {
  sampleRate: number;
  channels: Float32Array[];
}

export interface WavInfo {
  /** 'pcm' (integer) or 'float' */
  encoding: 'pcm' | 'float';
  bitsPerSample: number;
  /** 0x0001, 0x0003 or 0xFFFE (extensible) */
  formatTag: number;
  numChannels: number;
  sampleRate: number;
  frames: number;
}

export class WavError extends Error {}

// Node loads wavefile's CommonJS build ({ WaveFile } as the default export); bundlers may pick its ESM entry
// (named export): accept both. (Used for writing.)
type WaveFileCtor = typeof wavefileModule.WaveFile;
const WaveFile: WaveFileCtor = ((wavefileModule as unknown as { WaveFile?: WaveFileCtor }).WaveFile
  ?? (wavefileModule as unknown as { default: { WaveFile: WaveFileCtor } }).default.WaveFile);

const WAVE_FORMAT_PCM = 1;
const WAVE_FORMAT_IEEE_FLOAT = 3;
const WAVE_FORMAT_EXTENSIBLE = 0xfffe;
const SIZE_UNKNOWN = 0xffffffff;

/** Where the samples are and how they are stored. */
interface WavLayout extends WavInfo {
  dataStart: number;
  dataBytes: number;
  bigEndian: boolean;
  bytesPerFrame: number;
}

/** A read the header parser asks for; answered with the bytes there (fewer at the end of the file). */
interface ReadRequest { pos: number; len: number }

function fourcc(b: Uint8Array, at: number): string {
  return String.fromCharCode(b[at]!, b[at + 1]!, b[at + 2]!, b[at + 3]!);
}

function printable(s: string): string {
  return /^[\x20-\x7e]{4}$/.test(s) ? `"${s}"` : `bytes ${[...s].map((c) => c.charCodeAt(0).toString(16).padStart(2, '0')).join(' ')}`;
}

const view = (b: Uint8Array): DataView => new DataView(b.buffer, b.byteOffset, b.byteLength);
const u64le = (dv: DataView, at: number): number => dv.getUint32(at, true) + dv.getUint32(at + 4, true) * 2 ** 32;

/**
 * Walk the RIFF chunks of a file of `fileSize` bytes and validate what decoding needs; yields the (small) reads
 * it needs: chunk headers, "fmt " and "ds64" bodies — never the samples or other chunks' contents.
 */
function* parseHeader(fileSize: number, name: string): Generator<ReadRequest, WavLayout, Uint8Array> {
  const fail = (msg: string): never => { throw new WavError(`${name}: ${msg}`); };
  if (fileSize < 12) fail(`not a WAV file (only ${fileSize} bytes)`);
  const head = yield { pos: 0, len: 12 };
  const container = fourcc(head, 0);
  const rf64 = container === 'RF64' || container === 'BW64';
  if (container !== 'RIFF' && container !== 'RIFX' && !rf64) fail(`not a WAV file (starts with ${printable(container)}, expected "RIFF")`);
  if (fourcc(head, 8) !== 'WAVE') fail(`not a WAV file (${container} form ${printable(fourcc(head, 8))}, expected "WAVE")`);
  const be = container === 'RIFX';
  let fmt: { tag: number; ch: number; rate: number; align: number; bits: number; sub?: number } | null = null;
  let data: { start: number; size: number; toEnd: boolean } | null = null;
  let ds64Data: number | undefined;
  let pos = 12;
  while (pos + 8 <= fileSize) {
    const h = yield { pos, len: 8 };
    const id = fourcc(h, 0);
    const size = view(h).getUint32(4, !be);
    const start = pos + 8;
    let next = start + size + (size & 1);
    if (id === 'ds64' && rf64) {
      if (size < 28 || start + 28 > fileSize) fail(`truncated or malformed "ds64" chunk (${size} bytes declared)`);
      ds64Data = u64le(view(yield { pos: start, len: 28 }), 8);
    } else if (id === 'fmt ') {
      if (size < 16 || start + size > fileSize) fail(`truncated or malformed "fmt " chunk (${size} bytes declared, ${fileSize - start} present)`);
      const b = yield { pos: start, len: Math.min(size, 40) };
      const dv = view(b);
      const tag = dv.getUint16(0, !be);
      fmt = { tag, ch: dv.getUint16(2, !be), rate: dv.getUint32(4, !be), align: dv.getUint16(12, !be), bits: dv.getUint16(14, !be) };
      if (tag === WAVE_FORMAT_EXTENSIBLE) {
        if (size < 40) fail(`WAVE_FORMAT_EXTENSIBLE "fmt " chunk is ${size} bytes, expected 40`);
        fmt.sub = dv.getUint16(24, !be); // first two bytes of the SubFormat GUID = the format tag
      }
    } else if (id === 'data') {
      let bytes = size;
      let toEnd = false;
      if (rf64 && size === SIZE_UNKNOWN) {
        if (ds64Data === undefined) fail(`${container} file without a "ds64" chunk before "data"`);
        bytes = ds64Data!;
      } else if (size === SIZE_UNKNOWN || (size === 0 && !(yield* chunkFollows(start, fileSize, be)))) {
        toEnd = true; // a streamed WAV: the writer never came back to fill in the size
        bytes = fileSize - start;
      }
      if (start + bytes > fileSize) fail(`truncated: the data chunk declares ${bytes} bytes but only ${fileSize - start} are present`);
      data = { start, size: bytes, toEnd };
      if (fmt || toEnd) break;
      next = start + bytes + (bytes & 1);
    }
    pos = next;
  }
  if (!fmt) fail(data ? `the "fmt " chunk is missing${data.toEnd ? ' (or comes after a "data" chunk that runs to the end of the file)' : ''}` : 'no "fmt " chunk (file truncated or not a WAV file)');
  if (!data) fail('no "data" chunk (file truncated?)');
  const f = fmt!, d = data!;
  const code = f.tag === WAVE_FORMAT_EXTENSIBLE ? f.sub! : f.tag;
  let encoding: 'pcm' | 'float';
  if (code === WAVE_FORMAT_PCM) {
    encoding = 'pcm';
    if (![8, 16, 24, 32].includes(f.bits)) fail(`unsupported PCM sample size: ${f.bits} bits (supported: 8, 16, 24, 32)`);
  } else if (code === WAVE_FORMAT_IEEE_FLOAT) {
    encoding = 'float';
    if (f.bits !== 32 && f.bits !== 64) fail(`unsupported float sample size: ${f.bits} bits (supported: 32, 64)`);
  } else {
    const names: Record<number, string> = { 2: 'MS ADPCM', 6: 'A-law', 7: 'µ-law', 0x11: 'IMA ADPCM', 0x55: 'MP3' };
    fail(`unsupported WAV encoding: format tag 0x${code.toString(16).padStart(4, '0')}${names[code] ? ` (${names[code]})` : ''}; only PCM and IEEE float are supported`);
  }
  if (f.ch < 1) fail('the "fmt " chunk declares 0 channels');
  try {
    checkSampleRate(f.rate, name);
  } catch (e) {
    throw new WavError((e as Error).message);
  }
  const bpf = f.ch * (f.bits / 8);
  if (f.align !== bpf) fail(`inconsistent "fmt " chunk: block align ${f.align}, expected ${bpf} for ${f.ch} × ${f.bits} bits`);
  if (d.toEnd) d.size -= d.size % bpf; // a partly written last frame is dropped
  if (d.size % bpf !== 0) fail(`truncated: the data chunk holds ${d.size} bytes, not a whole number of ${bpf}-byte frames`);
  return {
    encoding: encoding!, bitsPerSample: f.bits, formatTag: f.tag, numChannels: f.ch, sampleRate: f.rate,
    frames: d.size / bpf, dataStart: d.start, dataBytes: d.size, bigEndian: be, bytesPerFrame: bpf,
  };
}

/** After a data chunk declared empty: does a well-formed chunk header follow (else the size was never filled in)? */
function* chunkFollows(pos: number, fileSize: number, be: boolean): Generator<ReadRequest, boolean, Uint8Array> {
  if (pos === fileSize) return true; // empty and nothing after it: an empty WAV
  if (pos + 8 > fileSize) return false;
  const h = yield { pos, len: 8 };
  return /^[\x20-\x7e]{4}$/.test(fourcc(h, 0)) && pos + 8 + view(h).getUint32(4, !be) <= fileSize;
}

function layoutInfo(l: WavLayout): WavInfo {
  return { encoding: l.encoding, bitsPerSample: l.bitsPerSample, formatTag: l.formatTag, numChannels: l.numChannels, sampleRate: l.sampleRate, frames: l.frames };
}

/** Decode `bytes` (whole frames, interleaved) into planar float32 channels (torchaudio's scaling). */
function decodeFrames(bytes: Uint8Array, l: WavLayout): Float32Array[] {
  const { numChannels: C, bitsPerSample: bits, bigEndian: be } = l;
  const n = bytes.length / l.bytesPerFrame;
  const le = !be;
  const dv = view(bytes);
  const channels = Array.from({ length: C }, () => new Float32Array(n));
  const bps = bits / 8;
  const stride = C * bps;
  for (let c = 0; c < C; c++) {
    const out = channels[c]!;
    let off = c * bps;
    if (l.encoding === 'float') {
      if (bits === 32) for (let i = 0; i < n; i++, off += stride) out[i] = dv.getFloat32(off, le);
      else for (let i = 0; i < n; i++, off += stride) out[i] = dv.getFloat64(off, le);
    } else if (bits === 8) {
      for (let i = 0; i < n; i++, off += stride) out[i] = (bytes[off]! - 128) / 128;
    } else if (bits === 16) {
      for (let i = 0; i < n; i++, off += stride) out[i] = dv.getInt16(off, le) / 32768;
    } else if (bits === 24) {
      for (let i = 0; i < n; i++, off += stride) {
        const b0 = bytes[off]!, b1 = bytes[off + 1]!, b2 = bytes[off + 2]!;
        let v = be ? (b0 << 16) | (b1 << 8) | b2 : (b2 << 16) | (b1 << 8) | b0;
        if (v & 0x800000) v -= 0x1000000;
        out[i] = v / 8388608;
      }
    } else {
      for (let i = 0; i < n; i++, off += stride) out[i] = dv.getInt32(off, le) / 2147483648;
    }
  }
  return channels;
}

/** Decode WAV file bytes held in memory. `name` is used in error messages. */
export function decodeWav(bytes: Uint8Array, name = 'WAV data'): Audio & { info: WavInfo } {
  const gen = parseHeader(bytes.length, name);
  let step = gen.next();
  while (!step.done) step = gen.next(bytes.subarray(step.value.pos, step.value.pos + step.value.len));
  const l = step.value;
  const channels = decodeFrames(bytes.subarray(l.dataStart, l.dataStart + l.dataBytes), l);
  return { sampleRate: l.sampleRate, channels, info: layoutInfo(l) };
}

/** A WAV file as an AudioSource: the header parsed on open, frames decoded per read (positional reads). */
export class WavSource implements AudioSource {
  readonly sampleRate: number;
  readonly channels: number;
  readonly frames: number;
  readonly info: WavInfo;
  private fh: FileHandle | null;

  private constructor(readonly name: string, fh: FileHandle, private readonly layout: WavLayout) {
    this.fh = fh;
    this.info = layoutInfo(layout);
    this.sampleRate = layout.sampleRate;
    this.channels = layout.numChannels;
    this.frames = layout.frames;
  }

  /** Opens `path` and parses its header (errors name the file; nothing is read past the chunk headers). */
  static async open(path: string): Promise<WavSource> {
    const fail = (e: unknown): never => { throw new WavError(`${path}: cannot read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`); };
    const fh = await open(path, 'r').catch(fail);
    try {
      const st = await fh.stat().catch(fail);
      if (st.isDirectory()) throw new WavError(`${path}: cannot read (EISDIR: it is a folder)`);
      const gen = parseHeader(st.size, path);
      let step = gen.next();
      while (!step.done) step = gen.next(await readAt(fh, step.value.pos, step.value.len, path));
      return new WavSource(path, fh, step.value);
    } catch (e) {
      await fh.close();
      throw e;
    }
  }

  async read(start: number, count: number): Promise<Float32Array[]> {
    checkRange(this, start, count);
    if (!this.fh) throw new WavError(`${this.name}: read after close()`);
    const l = this.layout;
    const bytes = await readAt(this.fh, l.dataStart + start * l.bytesPerFrame, count * l.bytesPerFrame, this.name);
    if (bytes.length !== count * l.bytesPerFrame) {
      throw new WavError(`${this.name}: truncated: the file ends inside the data chunk (at frame ${start + Math.floor(bytes.length / l.bytesPerFrame)} of ${this.frames}; shortened while being read?)`);
    }
    return decodeFrames(bytes, l);
  }

  async close(): Promise<void> {
    const fh = this.fh;
    this.fh = null;
    await fh?.close();
  }
}

/** Up to `len` bytes at `pos` (fewer only at the end of the file). */
async function readAt(fh: FileHandle, pos: number, len: number, name: string): Promise<Uint8Array> {
  const buf = Buffer.allocUnsafe(len);
  let got = 0;
  while (got < len) {
    let n: number;
    try {
      ({ bytesRead: n } = await fh.read(buf, got, len - got, pos + got));
    } catch (e) {
      throw new WavError(`${name}: cannot read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
    }
    if (n === 0) break;
    got += n;
  }
  return buf.subarray(0, got);
}

/** Open a WAV file as a streaming source (see WavSource). */
export function openWavSource(path: string): Promise<WavSource> {
  return WavSource.open(path);
}

/** Read a whole WAV file (PCM u8/s16/s24/s32, float32/64, plain or WAVE_FORMAT_EXTENSIBLE, RIFF/RIFX/RF64). */
export async function readWav(path: string): Promise<Audio & { info: WavInfo }> {
  const src = await WavSource.open(path);
  try {
    return { sampleRate: src.sampleRate, channels: await readAllFrames(src), info: src.info };
  } finally {
    await src.close();
  }
}

function checkAudio(audio: Audio, what: string): number {
  if (!audio.channels.length) throw new Error(`${what}: no channels`);
  if (!(Number.isInteger(audio.sampleRate) && audio.sampleRate > 0)) throw new Error(`${what}: invalid sample rate ${audio.sampleRate}`);
  const n = audio.channels[0]!.length;
  if (audio.channels.some((c) => c.length !== n)) throw new Error(`${what}: channels have different lengths`);
  return n;
}

/** Encode audio as WAV bytes: 16-bit PCM (round(x · 32768), clipped) or 32-bit IEEE float. */
export function encodeWav(audio: Audio, format: 'pcm16' | 'float32' = 'pcm16'): Uint8Array {
  const n = checkAudio(audio, 'encodeWav');
  const C = audio.channels.length;
  const wav = new WaveFile();
  if (format === 'pcm16') {
    const inter = new Int16Array(n * C);
    for (let c = 0; c < C; c++) {
      const x = audio.channels[c]!;
      for (let i = 0; i < n; i++) {
        const v = Math.round(x[i]! * 32768);
        inter[i * C + c] = Number.isNaN(v) ? 0 : v > 32767 ? 32767 : v < -32768 ? -32768 : v;
      }
    }
    wav.fromScratch(C, audio.sampleRate, '16', inter);
  } else {
    const inter = new Float32Array(n * C);
    for (let c = 0; c < C; c++) {
      const x = audio.channels[c]!;
      for (let i = 0; i < n; i++) inter[i * C + c] = x[i]!;
    }
    wav.fromScratch(C, audio.sampleRate, '32f', inter);
  }
  return wav.toBuffer();
}

/**
 * Write a WAV file atomically (temp file in the same folder, then rename), through the streaming writer
 * (src/audio/wav_writer.ts: the bytes of encodeWav; RF64 beyond RIFF's 4 GiB).
 */
export async function writeWav(path: string, audio: Audio, format: 'pcm16' | 'float32' = 'pcm16'): Promise<void> {
  checkAudio(audio, 'writeWav');
  await writeWavStreamed(path, audio, format);
}
