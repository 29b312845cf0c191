/**
 * Synthetic WAV files for the streaming tests, written chunk by chunk (a file of minutes never exists in memory),
 * with the same samples available in memory (what a correct reader must return), and hand-built headers (extra
 * chunks, odd sizes, placeholder sizes, RF64).
 */
import { open } from 'node:fs/promises';

export type SampleFormat = 'pcm16' | 'float32';

export interface SynthSpec {
  sampleRate: number;
  channels: number;
  frames: number;
  format: SampleFormat;
  /** peak amplitude of the signal before quantisation (above 0.8 the encoder's item normalisation applies) */
  amplitude: number;
  seed?: number;
  /** the signal repeats every `period` frames (long files are then written by copying one period's bytes) */
  period?: number;
}

/** The stored value of frame i, channel c: sines + a little noise, exact in the sample format. */
export function synthSample(s: SynthSpec, c: number, i: number): number {
  if (s.period) i %= s.period;
  let h = Math.imul((i + 1) ^ ((s.seed ?? 1) * 2654435761), 2246822519) ^ (c * 97);
  h = Math.imul(h ^ (h >>> 13), 3266489917) ^ (h >>> 16);
  const noise = ((h >>> 0) / 2 ** 32 - 0.5) * 0.1;
  const t = i / s.sampleRate;
  const x = s.amplitude * (0.6 * Math.sin(2 * Math.PI * (220 + 110 * c) * t) + 0.3 * Math.sin(2 * Math.PI * 1375.5 * t + c) + noise);
  if (s.format === 'float32') return Math.fround(x);
  return Math.max(-32768, Math.min(32767, Math.round(x * 32768))) / 32768;
}

/** The whole signal in memory (planar), as a reader must decode it. */
export function synthChannels(s: SynthSpec): Float32Array[] {
  return Array.from({ length: s.channels }, (_, c) => Float32Array.from({ length: s.frames }, (_, i) => synthSample(s, c, i)));
}

export interface HeaderOptions {
  /** chunks before "fmt " / between "fmt " and "data" (id, body) */
  before?: Array<[string, Uint8Array]>;
  /** the data chunk's size field (default: the true size) */
  dataSizeField?: number;
  /** RF64 container with a ds64 chunk holding the true sizes (data size field 0xFFFFFFFF) */
  rf64?: boolean;
}

function chunk(id: string, body: Uint8Array): Buffer {
  const b = Buffer.alloc(8 + body.length + (body.length & 1));
  b.write(id, 0, 'latin1');
  b.writeUInt32LE(body.length, 4);
  b.set(body, 8);
  return b;
}

/** Header bytes up to and including the data chunk's header, for `dataBytes` bytes of samples. */
export function wavHeader(s: Pick<SynthSpec, 'sampleRate' | 'channels' | 'format'>, dataBytes: number, o: HeaderOptions = {}): Buffer {
  const bits = s.format === 'pcm16' ? 16 : 32;
  const fmt = Buffer.alloc(16);
  fmt.writeUInt16LE(s.format === 'pcm16' ? 1 : 3, 0);
  fmt.writeUInt16LE(s.channels, 2);
  fmt.writeUInt32LE(s.sampleRate, 4);
  fmt.writeUInt32LE((s.sampleRate * s.channels * bits) / 8, 8);
  fmt.writeUInt16LE((s.channels * bits) / 8, 12);
  fmt.writeUInt16LE(bits, 14);
  const parts: Buffer[] = [];
  if (o.rf64) {
    const ds = Buffer.alloc(28);
    const big = (v: number, at: number) => { ds.writeUInt32LE(v % 2 ** 32, at); ds.writeUInt32LE(Math.floor(v / 2 ** 32), at + 4); };
    big(dataBytes + 72, 0); big(dataBytes, 8); big(dataBytes / ((s.channels * bits) / 8), 16);
    parts.push(chunk('ds64', ds));
  }
  for (const [id, body] of o.before ?? []) parts.push(chunk(id, body));
  parts.push(chunk('fmt ', fmt));
  const dataHead = Buffer.alloc(8);
  dataHead.write('data', 0, 'latin1');
  dataHead.writeUInt32LE(o.rf64 ? 0xffffffff : (o.dataSizeField ?? dataBytes), 4);
  parts.push(dataHead);
  const body = Buffer.concat(parts);
  const riff = Buffer.alloc(12);
  riff.write(o.rf64 ? 'RF64' : 'RIFF', 0, 'latin1');
  riff.writeUInt32LE(o.rf64 ? 0xffffffff : Math.min(0xffffffff, 4 + body.length + dataBytes), 4);
  riff.write('WAVE', 8, 'latin1');
  return Buffer.concat([riff, body]);
}

/** Interleaved sample bytes of frames [a, b). */
export function sampleBytes(s: SynthSpec, a: number, b: number): Buffer {
  const bps = s.format === 'pcm16' ? 2 : 4;
  const out = Buffer.alloc((b - a) * s.channels * bps);
  const dv = new DataView(out.buffer, out.byteOffset, out.byteLength);
  let o = 0;
  for (let i = a; i < b; i++) {
    for (let c = 0; c < s.channels; c++, o += bps) {
      const v = synthSample(s, c, i);
      if (bps === 2) dv.setInt16(o, v * 32768, true);
      else dv.setFloat32(o, v, true);
    }
  }
  return out;
}

/** Write the synthetic WAV to `path` chunk by chunk (memory: one chunk); `after` = chunks after the data. */
export async function writeSynthWav(path: string, s: SynthSpec, o: HeaderOptions & { after?: Array<[string, Uint8Array]> } = {}): Promise<void> {
  const bps = s.format === 'pcm16' ? 2 : 4;
  const dataBytes = s.frames * s.channels * bps;
  const fh = await open(path, 'w');
  try {
    await fh.write(wavHeader(s, dataBytes, o));
    const step = 1 << 16;
    if (s.period) {
      const one = sampleBytes(s, 0, s.period);
      const fb = s.channels * bps;
      for (let a = 0; a < s.frames;) {
        const from = a % s.period, n = Math.min(s.period - from, s.frames - a, step);
        await fh.write(one.subarray(from * fb, (from + n) * fb));
        a += n;
      }
    } else {
      for (let a = 0; a < s.frames; a += step) await fh.write(sampleBytes(s, a, Math.min(s.frames, a + step)));
    }
    if (dataBytes & 1) await fh.write(Buffer.alloc(1));
    for (const [id, body] of o.after ?? []) await fh.write(chunk(id, body));
  } finally {
    await fh.close();
  }
}
