/**
 * WAV reading and writing. The RIFF structure is checked here first (so a truncated, foreign or unsupported
 * file gets an error that names the file and the problem), the chunks are parsed with the `wavefile` package,
 * and the sample bytes are decoded here (wavefile does not decode WAVE_FORMAT_EXTENSIBLE float or 64-bit float
 * correctly, and its integer → float scaling is not torchaudio's).
 *
 * Sample scaling is torchaudio.load's (normalize=True), so the audio upstream's file2code sees is reproduced:
 * u8 → (x − 128) / 128, sN → x / 2^(N−1), float32 as stored, float64 rounded to float32.
 */
import { readFile } from 'node:fs/promises';
import * as wavefileModule from 'wavefile';
import { writeFileAtomic } from '../atomic.js';

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
// (named export): accept both.
type WaveFileCtor = typeof wavefileModule.WaveFile;
const WaveFile: WaveFileCtor = ((wavefileModule as unknown as { WaveFile?: WaveFileCtor }).WaveFile
  ?? (wavefileModule as unknown as { default: { WaveFile: WaveFileCtor } }).default.WaveFile);

const WAVE_FORMAT_PCM = 1;
const WAVE_FORMAT_IEEE_FLOAT = 3;
const WAVE_FORMAT_EXTENSIBLE = 0xfffe;

function fourcc(b: Uint8Array, at: number): string {
  return String.fromCharCode(b[at]!, b[at + 1]!, b[at + 2]!, b[at + 3]!);
}

function printable(s: string): string {
  return /^[\x20-\x7e]{4}$/.test(s) ? `"${s}"` : `bytes ${[...s].map((c) => c.charCodeAt(0).toString(16).padStart(2, '0')).join(' ')}`;
}

/** Walk the RIFF chunks and validate what decoding needs; returns the format and where the samples are. */
function inspect(bytes: Uint8Array, name: string): WavInfo & { dataStart: number; dataBytes: number; bigEndian: boolean } {
  const fail = (msg: string): never => { throw new WavError(`${name}: ${msg}`); };
  if (bytes.length < 12) fail(`not a WAV file (only ${bytes.length} bytes)`);
  const container = fourcc(bytes, 0);
  if (container !== 'RIFF' && container !== 'RIFX') {
    fail(container === 'RF64' ? 'RF64 WAV files are not supported' : `not a WAV file (starts with ${printable(container)}, expected "RIFF")`);
  }
  if (fourcc(bytes, 8) !== 'WAVE') fail(`not a WAV file (RIFF form ${printable(fourcc(bytes, 8))}, expected "WAVE")`);
  const be = container === 'RIFX';
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let fmt: { tag: number; ch: number; rate: number; align: number; bits: number; sub?: number } | null = null;
  let data: { start: number; size: number } | null = null;
  let pos = 12;
  while (pos + 8 <= bytes.length) {
    const id = fourcc(bytes, pos);
    const size = dv.getUint32(pos + 4, !be);
    const start = pos + 8;
    if (id === 'fmt ') {
      if (size < 16 || start + size > bytes.length) fail(`truncated or malformed "fmt " chunk (${size} bytes declared, ${bytes.length - start} present)`);
      const tag = dv.getUint16(start, !be);
      fmt = {
        tag,
        ch: dv.getUint16(start + 2, !be),
        rate: dv.getUint32(start + 4, !be),
        align: dv.getUint16(start + 12, !be),
        bits: dv.getUint16(start + 14, !be),
      };
      if (tag === WAVE_FORMAT_EXTENSIBLE) {
        if (size < 40) fail(`WAVE_FORMAT_EXTENSIBLE "fmt " chunk is ${size} bytes, expected 40`);
        fmt.sub = dv.getUint16(start + 24, !be); // first two bytes of the SubFormat GUID = the format tag
      }
    } else if (id === 'data') {
      if (start + size > bytes.length) {
        fail(`truncated: the data chunk declares ${size} bytes but only ${bytes.length - start} are present`);
      }
      data = { start, size };
      break;
    }
    pos = start + size + (size & 1);
  }
  if (!fmt) fail(data ? 'the "fmt " chunk is missing (or comes after "data")' : 'no "fmt " chunk (file truncated or not a WAV file)');
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
  if (!(f.rate > 0)) fail('the "fmt " chunk declares a sample rate of 0');
  const bpf = f.ch * (f.bits / 8);
  if (f.align !== bpf) fail(`inconsistent "fmt " chunk: block align ${f.align}, expected ${bpf} for ${f.ch} × ${f.bits} bits`);
  if (d.size % bpf !== 0) fail(`truncated: the data chunk holds ${d.size} bytes, not a whole number of ${bpf}-byte frames`);
  return {
    encoding: encoding!, bitsPerSample: f.bits, formatTag: f.tag, numChannels: f.ch, sampleRate: f.rate,
    frames: d.size / bpf, dataStart: d.start, dataBytes: d.size, bigEndian: be,
  };
}

/** Decode WAV file bytes. `name` is used in error messages. */
export function decodeWav(bytes: Uint8Array, name = 'WAV data'): Audio & { info: WavInfo } {
  const info = inspect(bytes, name);
  // parse the chunks with wavefile too (cross-check of the header; its sample bytes are what we decode)
  const wav = new WaveFile();
  try {
    wav.fromBuffer(bytes);
  } catch (e) {
    throw new WavError(`${name}: cannot parse WAV (${(e as Error).message})`);
  }
  const fmt = wav.fmt as { numChannels: number; sampleRate: number; bitsPerSample: number };
  const samples = (wav.data as { samples: Uint8Array }).samples;
  if (fmt.numChannels !== info.numChannels || fmt.sampleRate !== info.sampleRate || fmt.bitsPerSample !== info.bitsPerSample || samples.length !== info.dataBytes) {
    throw new WavError(`${name}: inconsistent WAV header`);
  }
  const { numChannels: C, frames: n, bitsPerSample: bits, bigEndian: be } = info;
  const le = !be;
  const dv = new DataView(samples.buffer, samples.byteOffset, samples.byteLength);
  const channels = Array.from({ length: C }, () => new Float32Array(n));
  const bps = bits / 8;
  for (let c = 0; c < C; c++) {
    const out = channels[c]!;
    let off = c * bps;
    const stride = C * bps;
    if (info.encoding === 'float') {
      if (bits === 32) for (let i = 0; i < n; i++, off += stride) out[i] = dv.getFloat32(off, le);
      else for (let i = 0; i < n; i++, off += stride) out[i] = dv.getFloat64(off, le);
    } else if (bits === 8) {
      for (let i = 0; i < n; i++, off += stride) out[i] = (samples[off]! - 128) / 128;
    } else if (bits === 16) {
      for (let i = 0; i < n; i++, off += stride) out[i] = dv.getInt16(off, le) / 32768;
    } else if (bits === 24) {
      for (let i = 0; i < n; i++, off += stride) {
        const b0 = samples[off]!, b1 = samples[off + 1]!, b2 = samples[off + 2]!;
        let v = be ? (b0 << 16) | (b1 << 8) | b2 : (b2 << 16) | (b1 << 8) | b0;
        if (v & 0x800000) v -= 0x1000000;
        out[i] = v / 8388608;
      }
    } else {
      for (let i = 0; i < n; i++, off += stride) out[i] = dv.getInt32(off, le) / 2147483648;
    }
  }
  return { sampleRate: info.sampleRate, channels, info: { ...info } };
}

/** Read a WAV file (PCM u8/s16/s24/s32, float32/64, plain or WAVE_FORMAT_EXTENSIBLE, any rate and channel count). */
export async function readWav(path: string): Promise<Audio & { info: WavInfo }> {
  let bytes: Uint8Array;
  try {
    bytes = await readFile(path);
  } catch (e) {
    throw new WavError(`${path}: cannot read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  return decodeWav(bytes, path);
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

/** Write a WAV file atomically (temp file in the same folder, then rename). */
export async function writeWav(path: string, audio: Audio, format: 'pcm16' | 'float32' = 'pcm16'): Promise<void> {
  await writeFileAtomic(path, encodeWav(audio, format));
}
