import { mkdtempSync, readdirSync, readFileSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { readSafetensors } from '../convert/safetensors.js';
import { decodeWav, encodeWav, readWav, writeWav } from '../src/audio/wav.js';
import { FIXTURES } from './parity-helper.js';

const DIR = join(FIXTURES, 'audio_in');
const RATES: Record<string, number> = { '96k': 96000, '22k05': 22050, '16k': 16000, '44k1': 44100, '48k': 48000 };
const wavs = readdirSync(DIR).filter((f) => f.endsWith('.wav') && !f.startsWith('e2e_')).sort();

describe('WAV reading (expected values decoded independently by scipy, see make_fixtures.py)', () => {
  it('has the fixture files', () => { expect(wavs.length).toBe(8); });
  for (const f of wavs) {
    it(f, async () => {
      const exp = await readSafetensors(join(DIR, 'expected.safetensors'));
      const stem = f.slice(0, -4);
      const ref = exp.get(stem)!;
      const a = await readWav(join(DIR, f));
      const [C, n] = ref.shape as [number, number];
      expect(a.sampleRate).toBe(RATES[/_(\d+k\d*)_/.exec(f)![1]!]);
      expect(a.channels.length).toBe(C);
      for (let c = 0; c < C; c++) {
        expect(a.channels[c]!.length).toBe(n);
        // exact: same scaling, float32 results
        expect(Array.from(a.channels[c]!)).toEqual(Array.from((ref.data as Float32Array).subarray(c * n, (c + 1) * n)));
      }
    });
  }
  it('reports the encodings', async () => {
    const info = (f: string) => readWav(join(DIR, f)).then((a) => [a.info.encoding, a.info.bitsPerSample, a.info.formatTag, a.info.numChannels]);
    expect(await info('tropicalbreeze_48k_s24_mono_3s_excerpt.wav')).toEqual(['pcm', 24, 0xfffe, 1]);
    expect(await info('gen_44k1_f32ext_stereo.wav')).toEqual(['float', 32, 0xfffe, 2]);
    expect(await info('gen_44k1_f64_stereo.wav')).toEqual(['float', 64, 3, 2]);
    expect(await info('theme_16k_u8_mono_2s_excerpt.wav')).toEqual(['pcm', 8, 1, 1]);
  });
});

describe('WAV errors name the file and the problem', () => {
  const tmp = mkdtempSync(join(tmpdir(), 'wavtest-'));
  const good = readFileSync(join(DIR, 'theme_44k1_s16_stereo_12s_excerpt.wav'));
  it('truncated data', async () => {
    const p = join(tmp, 'cut.wav');
    writeFileSync(p, good.subarray(0, good.length - 1001));
    await expect(readWav(p)).rejects.toThrow(/cut\.wav: truncated: the data chunk declares 12000 bytes but only 10999 are present/);
  });
  it('truncated header', async () => {
    const p = join(tmp, 'head.wav');
    writeFileSync(p, good.subarray(0, 30));
    await expect(readWav(p)).rejects.toThrow(/head\.wav: truncated or malformed "fmt " chunk/);
    writeFileSync(p, good.subarray(0, 8));
    await expect(readWav(p)).rejects.toThrow(/head\.wav: not a WAV file \(only 8 bytes\)/);
  });
  it('not a WAV file', async () => {
    const p = join(tmp, 'text.wav');
    writeFileSync(p, 'This is certainly not audio, just some text.\n');
    await expect(readWav(p)).rejects.toThrow(/text\.wav: not a WAV file \(starts with "This", expected "RIFF"\)/);
    const q = join(tmp, 'avi.wav');
    const b = Buffer.from(good); b.write('AVI ', 8, 'latin1');
    writeFileSync(q, b);
    await expect(readWav(q)).rejects.toThrow(/avi\.wav: not a WAV file \(RIFF form "AVI ", expected "WAVE"\)/);
  });
  it('unsupported encoding', async () => {
    const p = join(tmp, 'alaw.wav');
    const b = Buffer.from(good); b.writeUInt16LE(6, 20); b.writeUInt16LE(8, 34); b.writeUInt16LE(2, 32);
    writeFileSync(p, b);
    await expect(readWav(p)).rejects.toThrow(/alaw\.wav: unsupported WAV encoding: format tag 0x0006 \(A-law\)/);
    const q = join(tmp, 's12.wav');
    const c = Buffer.from(good); c.writeUInt16LE(12, 34);
    writeFileSync(q, c);
    await expect(readWav(q)).rejects.toThrow(/s12\.wav: unsupported PCM sample size: 12 bits/);
  });
  it('missing file', async () => {
    await expect(readWav(join(tmp, 'nope.wav'))).rejects.toThrow(/nope\.wav: cannot read \(ENOENT\)/);
  });
});

describe('WAV writing', () => {
  const tmp = mkdtempSync(join(tmpdir(), 'wavtest-'));
  const x = [new Float32Array([0, 0.5, -0.5, 1, -1, 1.5, -2, 1 / 32768]), new Float32Array([0.25, -0.25, 0.1, -0.1, 0, 0, 0.75, -0.75])];
  it('pcm16 round trip (clipped, quantised to 1/32768) and atomic write', async () => {
    const p = join(tmp, 'out16.wav');
    await writeWav(p, { sampleRate: 48000, channels: x }, 'pcm16');
    expect(readdirSync(tmp).filter((f) => f.includes('.tmp-'))).toEqual([]);
    const a = await readWav(p);
    expect(a.sampleRate).toBe(48000);
    expect(a.info).toMatchObject({ encoding: 'pcm', bitsPerSample: 16, numChannels: 2, frames: 8 });
    expect(Array.from(a.channels[0]!)).toEqual([0, 0.5, -0.5, 32767 / 32768, -1, 32767 / 32768, -1, 1 / 32768]);
    for (let i = 0; i < 8; i++) expect(Math.abs(a.channels[1]![i]! - x[1]![i]!)).toBeLessThanOrEqual(0.5 / 32768);
  });
  it('float32 round trip is exact', async () => {
    const p = join(tmp, 'outf.wav');
    await writeWav(p, { sampleRate: 22050, channels: x }, 'float32');
    const a = await readWav(p);
    expect(a.info).toMatchObject({ encoding: 'float', bitsPerSample: 32, numChannels: 2 });
    expect(a.channels.map((c) => Array.from(c))).toEqual(x.map((c) => Array.from(c)));
    expect(decodeWav(encodeWav({ sampleRate: 8000, channels: [x[0]!] }, 'float32')).channels[0]).toEqual(x[0]);
  });
  it('a failed write leaves nothing behind', async () => {
    const p = join(tmp, 'no-such-dir', 'x.wav');
    await expect(writeWav(p, { sampleRate: 48000, channels: x })).rejects.toThrow(/x\.wav: cannot write/);
    expect(existsSync(join(tmp, 'no-such-dir'))).toBe(false);
  });
  it('rejects ragged channels', () => {
    expect(() => encodeWav({ sampleRate: 48000, channels: [new Float32Array(3), new Float32Array(4)] })).toThrow(/different lengths/);
  });
});
