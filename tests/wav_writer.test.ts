/**
 * The streaming WAV writer (src/audio/wav_writer.ts): chunked writes give the bytes of the whole-song writer
 * (encodeWav, i.e. wavefile's fromScratch), 16-bit and float; RF64 when the expected length is beyond RIFF (made
 * reachable here by a small test limit) reads back through readWav; without the expected length the write that
 * would cross the limit is refused; failures and aborts leave no file and no temporary file.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { encodeWav, readWav, writeWav } from '../src/audio/wav.js';
import { WavStreamWriter } from '../src/audio/wav_writer.js';
import { withWriteSignal } from '../src/atomic.js';

const tmp = mkdtempSync(join(tmpdir(), 'mucodec-wavw-'));
afterAll(() => { rmSync(tmp, { recursive: true, force: true }); });

/** stereo test signal with values past ±1 (clipping), exact halves (rounding) and a NaN */
function signal(n: number): Float32Array[] {
  return [0, 1].map((c) => Float32Array.from({ length: n }, (_, i) => {
    if (i === 5) return NaN;
    if (i % 97 === 0) return (c ? -1 : 1) * 1.25;
    if (i % 89 === 0) return (2 * i + 1) / 65536; // k + 0.5 in units of 1/32768
    return Math.sin(i * (0.01 + c * 0.003)) * 0.9;
  }));
}

async function writeChunks(path: string, chs: Float32Array[], sizes: number[], format: 'pcm16' | 'float32', frames?: number, maxRiffData?: number): Promise<void> {
  const w = await WavStreamWriter.create(path, 48000, chs.length, { format, frames, maxRiffData });
  let off = 0;
  for (const s of sizes) { await w.write(chs.map((c) => c.subarray(off, off + s))); off += s; }
  await w.finish();
}

describe('WavStreamWriter', () => {
  const n = 200_003; // beyond one 65536-frame block, not a multiple of it
  const chs = signal(n);
  const sizes = [1, 70_000, 0, 65_536, n - 1 - 70_000 - 65_536];

  it.each(['pcm16', 'float32'] as const)('%s: chunked writes = encodeWav of the whole (bytes)', async (format) => {
    const p = join(tmp, `a-${format}.wav`);
    await writeChunks(p, chs, sizes, format);
    expect(readFileSync(p).equals(Buffer.from(encodeWav({ sampleRate: 48000, channels: chs }, format)))).toBe(true);
    // writeWav (now through the writer) too, and mono
    const q = join(tmp, `b-${format}.wav`);
    await writeWav(q, { sampleRate: 22050, channels: [chs[0]!] }, format);
    expect(readFileSync(q).equals(Buffer.from(encodeWav({ sampleRate: 22050, channels: [chs[0]!] }, format)))).toBe(true);
  });

  it('RF64 when the expected frames exceed the RIFF limit: ds64 sizes, read back exactly', async () => {
    const p = join(tmp, 'rf.wav');
    const f = 10_000;
    await writeChunks(p, chs.map((c) => c.subarray(0, f)), [3000, 7000], 'float32', f, 1000);
    const b = readFileSync(p);
    expect(b.subarray(0, 4).toString('latin1')).toBe('RF64');
    expect(b.readUInt32LE(4)).toBe(0xffffffff);
    expect(b.subarray(12, 16).toString('latin1')).toBe('ds64');
    expect(Number(b.readBigUInt64LE(20))).toBe(b.length - 8); // RIFF size
    expect(Number(b.readBigUInt64LE(28))).toBe(f * 8); // data size
    expect(Number(b.readBigUInt64LE(36))).toBe(f); // frames
    expect(b.subarray(72, 76).toString('latin1')).toBe('data');
    expect(b.readUInt32LE(76)).toBe(0xffffffff);
    // the samples are those of the RIFF file
    expect(b.subarray(80).equals(Buffer.from(encodeWav({ sampleRate: 48000, channels: chs.map((c) => c.subarray(0, f)) }, 'float32')).subarray(44))).toBe(true);
    const back = await readWav(p);
    expect(back.info.frames).toBe(f);
    expect(Buffer.from(back.channels[1]!.buffer).equals(Buffer.from(chs[1]!.slice(0, f).buffer))).toBe(true);
  });

  it('no expected length and more data than RIFF holds: refused at that write, nothing left', async () => {
    const p = join(tmp, 'big.wav');
    const w = await WavStreamWriter.create(p, 48000, 2, { format: 'pcm16', maxRiffData: 4000 });
    await w.write(chs.map((c) => c.subarray(0, 1000)));
    await expect(w.write(chs.map((c) => c.subarray(0, 1)))).rejects.toThrow(/big\.wav: more than 4000 bytes of samples, which a RIFF WAV cannot hold/);
    expect(existsSync(p)).toBe(false);
    expect(readdirSync(tmp).filter((f) => f.includes('.tmp-'))).toEqual([]);
  });

  it('abort, a bad chunk and an aborted signal leave no file and no temporary file', async () => {
    const p = join(tmp, 'x.wav');
    const w = await WavStreamWriter.create(p, 48000, 2);
    await w.write(chs.map((c) => c.subarray(0, 10)));
    expect(readdirSync(tmp).filter((f) => f.startsWith('x.wav.tmp-'))).toHaveLength(1);
    await w.abort();
    await w.abort();
    const v = await WavStreamWriter.create(p, 48000, 2);
    await expect(v.write([chs[0]!])).rejects.toThrow(/got 1 channels, the file has 2/);
    const ac = new AbortController();
    await expect(withWriteSignal(ac.signal, async () => {
      const u = await WavStreamWriter.create(p, 48000, 2);
      await u.write(chs.map((c) => c.subarray(0, 10)));
      ac.abort(new Error('interrupted (test)'));
      await u.finish();
    })).rejects.toThrow('interrupted (test)');
    expect(existsSync(p)).toBe(false);
    expect(readdirSync(tmp).filter((f) => f.includes('x.wav'))).toEqual([]);
  });
});
