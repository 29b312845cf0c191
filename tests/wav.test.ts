import {
  closeSync, existsSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync, truncateSync, writeFileSync, writeSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { readSafetensors } from '../convert/safetensors.js';
import { decodeWav, encodeWav, openWavSource, readWav, writeWav } from '../src/audio/wav.js';
import { FIXTURES } from './parity-helper.js';
import { synthChannels, wavHeader, writeSynthWav, type SynthSpec } from './helpers/wav_files.js';

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

describe('streaming WAV reader (openWavSource): headers from the first bytes, frames per read', () => {
  const tmp = mkdtempSync(join(tmpdir(), 'wavstream-'));
  const spec: SynthSpec = { sampleRate: 44100, channels: 2, frames: 1001, format: 'pcm16', amplitude: 0.7 };
  const expected = synthChannels(spec);
  const same = (chs: Float32Array[], exp = expected) => {
    expect(chs.length).toBe(exp.length);
    const b = (x: Float32Array) => Buffer.from(x.buffer, x.byteOffset, x.byteLength);
    chs.forEach((c, i) => expect(b(c).equals(b(exp[i]!))).toBe(true));
  };
  const variants: Array<[string, Parameters<typeof writeSynthWav>[2]]> = [
    ['plain', {}],
    ['LIST (odd size, padded) before fmt, JUNK between fmt and data, LIST after data', {
      before: [['LIST', Buffer.from('INFOISFT\x05\x00\x00\x00test\x00', 'latin1')], ['JUNK', Buffer.alloc(7)]],
      after: [['LIST', Buffer.from('INFOICMT\x03\x00\x00\x00ab\x00', 'latin1')]],
    }],
    ['data size 0xFFFFFFFF (streamed WAV): to the end of the file', { dataSizeField: 0xffffffff }],
    ['data size 0 with samples after it (header never completed): to the end of the file', { dataSizeField: 0 }],
    ['RF64 with ds64 sizes', { rf64: true }],
  ];
  for (const [title, o] of variants) {
    it(title, async () => {
      const p = join(tmp, 'v.wav');
      await writeSynthWav(p, spec, o);
      const src = await openWavSource(p);
      expect([src.sampleRate, src.channels, src.frames]).toEqual([44100, 2, 1001]);
      same(await src.read(0, 1001));
      const mid = await src.read(500, 3);
      expect(mid.map((c) => Array.from(c))).toEqual(expected.map((c) => Array.from(c.subarray(500, 503))));
      await src.close();
      same((await readWav(p)).channels);
      same(decodeWav(readFileSync(p), p).channels);
    });
  }
  it('fmt after data (explicit size), mono float32', async () => {
    const m: SynthSpec = { sampleRate: 48000, channels: 1, frames: 77, format: 'float32', amplitude: 0.5 };
    const p = join(tmp, 'late-fmt.wav');
    await writeSynthWav(p, m);
    const b = readFileSync(p); // RIFF(12) fmt(24) data(8 + 308) → RIFF, data, fmt
    writeFileSync(p, Buffer.concat([b.subarray(0, 12), b.subarray(36), b.subarray(12, 36)]));
    same((await readWav(p)).channels, synthChannels(m));
  });
  it('a streamed WAV cut inside a frame drops the partial frame; an empty data chunk followed by LIST is empty', async () => {
    const p = join(tmp, 'cut.wav');
    await writeSynthWav(p, spec, { dataSizeField: 0xffffffff });
    writeFileSync(p, readFileSync(p).subarray(0, 44 + 4 * 1000 + 3));
    same((await readWav(p)).channels, expected.map((c) => c.subarray(0, 1000)));
    const q = join(tmp, 'empty.wav');
    await writeSynthWav(q, { ...spec, frames: 0 }, { after: [['LIST', Buffer.from('INFOabcd', 'latin1')]] });
    expect((await openWavSource(q)).frames).toBe(0);
  });
  it('a file shortened after opening: a clear error at the read', async () => {
    const p = join(tmp, 'shrink.wav');
    await writeSynthWav(p, spec);
    const src = await openWavSource(p);
    truncateSync(p, 44 + 4 * 600);
    await expect(src.read(0, 1001)).rejects.toThrow(/shrink\.wav: truncated: the file ends inside the data chunk \(at frame 600 of 1001/);
    await expect(src.read(0, 1002)).rejects.toThrow(/cannot read frames \[0, 1002\) of 1001/);
    await src.close();
    await expect(src.read(0, 1)).rejects.toThrow(/read after close/);
  });
  it('absurd sample rates are refused with the file and the rate (a 24 KB file at 1 Hz would be 6000 s of audio)', async () => {
    for (const rate of [1, 7999, 384001]) {
      const p = join(tmp, `rate${rate}.wav`);
      await writeSynthWav(p, { ...spec, sampleRate: rate, frames: 6000, channels: 1 });
      await expect(readWav(p)).rejects.toThrow(new RegExp(`rate${rate}\\.wav: sample rate ${rate} Hz is outside the supported range 8000 … 384000 Hz`));
      await expect(openWavSource(p)).rejects.toThrow(/outside the supported range/);
    }
    for (const rate of [8000, 384000]) {
      const p = join(tmp, `ok${rate}.wav`);
      await writeSynthWav(p, { ...spec, sampleRate: rate });
      expect((await readWav(p)).sampleRate).toBe(rate);
    }
  });
  it('a data chunk over 2 GiB (sparse file: no disk) opens and reads its first and last frames (the whole-file reader failed: ERR_FS_FILE_TOO_LARGE)', async () => {
    const big: SynthSpec = { sampleRate: 48000, channels: 2, frames: 0xc0000000 / 4, format: 'pcm16', amplitude: 0.5 };
    const p = join(tmp, 'huge.wav');
    const head = wavHeader(big, 0xc0000000);
    writeFileSync(p, head);
    truncateSync(p, head.length + 0xc0000000);
    const fd = openSync(p, 'r+');
    const last = Buffer.alloc(4); last.writeInt16LE(-12345, 0); last.writeInt16LE(321, 2);
    writeSync(fd, last, 0, 4, head.length + 0xc0000000 - 4);
    writeSync(fd, Buffer.from([0x00, 0x40, 0x00, 0xc0]), 0, 4, head.length); // 0.5, -0.5
    closeSync(fd);
    const src = await openWavSource(p);
    expect(src.frames).toBe(805306368);
    expect((await src.read(0, 2)).map((c) => Array.from(c))).toEqual([[0.5, 0], [-0.5, 0]]);
    expect((await src.read(src.frames - 1, 1)).map((c) => Array.from(c))).toEqual([[-12345 / 32768], [321 / 32768]]);
    await src.close();
    rmSync(p);
  });
  it('RF64 with a data chunk over 4 GiB (sparse): sizes from ds64', async () => {
    const bytes = 5 * 2 ** 30;
    const big: SynthSpec = { sampleRate: 96000, channels: 1, frames: bytes / 4, format: 'float32', amplitude: 0.5 };
    const p = join(tmp, 'huge64.wav');
    const head = wavHeader(big, bytes, { rf64: true });
    writeFileSync(p, head);
    truncateSync(p, head.length + bytes);
    const fd = openSync(p, 'r+');
    const last = Buffer.alloc(4); last.writeFloatLE(0.25, 0);
    writeSync(fd, last, 0, 4, head.length + bytes - 4);
    closeSync(fd);
    const src = await openWavSource(p);
    expect(src.frames).toBe(bytes / 4);
    expect(Array.from((await src.read(src.frames - 2, 2))[0]!)).toEqual([0, 0.25]);
    await src.close();
    rmSync(p);
  });
});
