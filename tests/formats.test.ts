/**
 * Input formats (issue 14, item 1): FLAC, MP3, Ogg Vorbis and Opus decoded through the streaming AudioSource,
 * chosen by content. Fixtures: tests/fixtures-formats (one synthetic WAV and its encodings; README there).
 */
import { describe, expect, it } from 'vitest';
import { copyFileSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { DecodedSource } from '../src/audio/decoded_source.js';
import { detectFormat, openAudioSource, readAudio } from '../src/audio/open.js';
import { resample } from '../src/audio/resample.js';
import { readWav } from '../src/audio/wav.js';
import { readCodesFile } from '../src/codesfile.js';
import { STREAM_CHUNK_SAMPLES } from '../src/encode_source.js';
import { reconstructCommand } from '../src/commands/decode.js';
import { encodeCommand } from '../src/commands/encode.js';
import { TINY, useTinyCodec } from './helpers/tiny_codec.js';

const FX = join(import.meta.dirname, 'fixtures-formats');
const WAV = join(FX, 'tone.wav');
const tmp = mkdtempSync(join(tmpdir(), 'mucodec-formats-'));

/** Pearson correlation of a[i] and b[i + lag] over their overlap, best over lags in [−maxLag, maxLag]. */
function bestCorrelation(a: Float32Array, b: Float32Array, maxLag: number): { r: number; lag: number } {
  let best = { r: -Infinity, lag: 0 };
  for (let lag = -maxLag; lag <= maxLag; lag++) {
    const i0 = Math.max(0, -lag), i1 = Math.min(a.length, b.length - lag);
    let sa = 0, sb = 0, saa = 0, sbb = 0, sab = 0;
    const n = i1 - i0;
    for (let i = i0; i < i1; i++) {
      const x = a[i]!, y = b[i + lag]!;
      sa += x; sb += y; saa += x * x; sbb += y * y; sab += x * y;
    }
    const r = (sab - (sa * sb) / n) / Math.sqrt((saa - (sa * sa) / n) * (sbb - (sb * sb) / n));
    if (r > best.r) best = { r, lag };
  }
  return best;
}

/** Every sample equal, bit for bit. */
function expectSameBits(a: Float32Array[], b: Float32Array[]): void {
  expect(a.length).toBe(b.length);
  a.forEach((c, ch) => {
    const d = b[ch]!;
    expect(c.length).toBe(d.length);
    expect(Buffer.from(c.buffer, c.byteOffset, c.byteLength).equals(Buffer.from(d.buffer, d.byteOffset, d.byteLength))).toBe(true);
  });
}

describe('input formats: decoding', () => {
  it('FLAC decodes to exactly the WAV it was made from (every sample); length from STREAMINFO, no counting pass', async () => {
    const wav = await readWav(WAV);
    const src = await openAudioSource(join(FX, 'tone.flac'));
    expect(src).toBeInstanceOf(DecodedSource);
    expect((src as DecodedSource).stats.passes).toBe(0); // nothing decoded yet: STREAMINFO stated the length
    expect([src.format, src.sampleRate, src.channels, src.frames]).toEqual(['FLAC 16-bit', 44100, 2, 88200]);
    await src.close();
    const flac = await readAudio(join(FX, 'tone.flac'));
    expect(flac.sampleRate).toBe(wav.sampleRate);
    expect(flac.channels).toHaveLength(2);
    expectSameBits(flac.channels, wav.channels);
  });

  it('24-bit and 8-bit FLAC (mono) decode exactly as their WAVs too; 32-bit FLAC is refused at open', async () => {
    for (const [name, bits] of [['tone24', 24], ['tone8', 8]] as const) {
      const src = await openAudioSource(join(FX, `${name}.flac`));
      expect([src.format, src.channels]).toEqual([`FLAC ${bits}-bit`, 1]);
      await src.close();
      expectSameBits((await readAudio(join(FX, `${name}.flac`))).channels, (await readWav(join(FX, `${name}.wav`))).channels);
    }
    const b = Buffer.from(readFileSync(join(FX, 'tone.flac')));
    b[20] = b[20]! | 1; // STREAMINFO bits per sample − 1 = 31
    b[21] = (b[21]! & 0x0f) | 0xf0;
    const p = join(tmp, 'deep.flac');
    writeFileSync(p, b);
    await expect(openAudioSource(p)).rejects.toThrow(/deep\.flac: 32-bit FLAC is not supported \(up to 24 bits\)/);
  });

  // the lengths are the source's within the codec delay each library leaves in: mpg123 removes LAME's stated delay
  // and padding (gapless), the Vorbis decoder trims to the last granule position, Opus removes the pre-skip
  const lossy = [
    { file: 'tone.mp3', format: 'MP3', rate: 44100, maxLengthError: 1152 },
    { file: 'tone.ogg', format: 'Ogg Vorbis', rate: 44100, maxLengthError: 2048 },
    { file: 'tone.opus', format: 'Opus', rate: 48000, maxLengthError: 960 },
  ];
  for (const t of lossy) {
    it(`${t.format}: rate, channels, length within the codec delay, correlation > 0.9 with the source`, async () => {
      const wav = await readWav(WAV);
      const src = await openAudioSource(join(FX, t.file));
      expect([src.format, src.sampleRate, src.channels]).toEqual([t.format, t.rate, 2]);
      await src.close();
      const a = await readAudio(join(FX, t.file));
      const expected = Math.round((88200 * t.rate) / 44100);
      expect(a.channels[0]!.length).toBe(src.frames);
      expect(Math.abs(src.frames - expected)).toBeLessThanOrEqual(t.maxLengthError);
      for (let ch = 0; ch < 2; ch++) {
        const ref = t.rate === 44100 ? wav.channels[ch]! : resample(wav.channels[ch]!, 44100, t.rate);
        const { r } = bestCorrelation(ref, a.channels[ch]!, 64);
        expect(r).toBeGreaterThan(0.9);
      }
    });
  }
});

describe('input formats: mono', () => {
  it('a mono MP3 is one channel (the decoder library gives two equal ones), correlated with its source', async () => {
    const src = await openAudioSource(join(FX, 'tone-mono.mp3'));
    expect([src.format, src.sampleRate, src.channels]).toEqual(['MP3', 44100, 1]);
    expect(Math.abs(src.frames - 11025)).toBeLessThanOrEqual(1152);
    await src.close();
    const a = await readAudio(join(FX, 'tone-mono.mp3'));
    expect(a.channels).toHaveLength(1);
    const ref = (await readWav(join(FX, 'tone24.wav'))).channels[0]!;
    expect(bestCorrelation(ref, a.channels[0]!, 64).r).toBeGreaterThan(0.9);
  });
});

describe('input formats: streaming', () => {
  for (const file of ['tone.flac', 'tone.mp3', 'tone.ogg', 'tone.opus']) {
    it(`${file}: forward reads (overlapping, as the encode's) hold one read plus about one feed's output; an earlier read restarts the decode`, async () => {
      const whole = await readAudio(join(FX, file));
      const src = await openAudioSource(join(FX, file), { chunkBytes: 2048 }) as DecodedSource & { format: string };
      const count = 4096;
      const passesAtOpen = src.stats.passes;
      for (let s = 0; s < src.frames; s += count - 500) {
        const n = Math.min(count, src.frames - s);
        const got = await src.read(s, n);
        got.forEach((c, ch) => expect(c).toEqual(whole.channels[ch]!.subarray(s, s + n)));
      }
      expect(src.stats.passes).toBe(passesAtOpen + 1); // one forward decode for all of them
      // memory: what the reads need plus what one feed (≤ 2 KiB) decoded to (two blocks straddling a range), never the song
      expect(src.stats.maxHeldFrames).toBeLessThanOrEqual(count + 2 * src.stats.maxChunkFrames);
      expect(src.stats.maxHeldFrames).toBeLessThan(src.frames / 2);
      // a read before what is held: decoded again from the start, same samples
      const back = await src.read(100, 1000);
      back.forEach((c, ch) => expect(c).toEqual(whole.channels[ch]!.subarray(100, 1100)));
      expect(src.stats.passes).toBe(passesAtOpen + 2);
      await src.close();
      await src.close(); // idempotent
      await expect(src.read(0, 1)).rejects.toThrow(/read after close/);
    });
  }

  it('a read range past the end is refused', async () => {
    const src = await openAudioSource(join(FX, 'tone.ogg'));
    await expect(src.read(src.frames - 10, 11)).rejects.toThrow(/cannot read frames/);
    await src.close();
  });
});

describe('input formats: detection by content', () => {
  it('the name does not matter: a FLAC named .wav and an MP3 named .flac open as what they are', async () => {
    const f = join(tmp, 'really-flac.wav');
    copyFileSync(join(FX, 'tone.flac'), f);
    const m = join(tmp, 'really-mp3.flac');
    copyFileSync(join(FX, 'tone.mp3'), m);
    for (const [p, fmt] of [[f, 'FLAC 16-bit'], [m, 'MP3']] as const) {
      const s = await openAudioSource(p);
      expect(s.format).toBe(fmt);
      await s.close();
    }
    const w = await openAudioSource(WAV);
    expect(w.format).toBe('WAV pcm 16-bit');
    await w.close();
  });

  it('an MP3 behind an ID3v2 tag decodes to the same samples as without it', async () => {
    const body = new Uint8Array(300).fill(0); // a tag of 300 zero bytes (padding)
    const id3 = Buffer.concat([Buffer.from([0x49, 0x44, 0x33, 4, 0, 0, 0, 0, 0x02, 0x2c]), body, readFileSync(join(FX, 'tone.mp3'))]);
    const p = join(tmp, 'tagged.mp3');
    writeFileSync(p, id3);
    expect(detectFormat(id3.subarray(0, 512))).toEqual({ format: 'mp3', offset: 310 });
    const a = await readAudio(p), b = await readAudio(join(FX, 'tone.mp3'));
    expect(a.channels).toEqual(b.channels);
  });

  it('anything else: an error naming the file and what it starts with', async () => {
    const cases: Array<[string, Uint8Array, RegExp]> = [
      ['text.mp3', Buffer.from('This is not audio at all'), /text\.mp3: not a supported audio file \(starts with "This"\); supported formats: WAV, FLAC, MP3, Ogg Vorbis, Opus/],
      ['empty.flac', new Uint8Array(0), /empty\.flac: not a supported audio file \(the file is empty\)/],
      ['movie.m4a', Buffer.from('\0\0\0\x20ftypM4A \0\0\0\0', 'latin1'), /movie\.m4a: not a supported audio file \(starts with bytes 00 00 00 20: MP4\/M4A/],
      ['bin.ogg', Buffer.from([0xde, 0xad, 0xbe, 0xef, 1, 2, 3]), /bin\.ogg: not a supported audio file \(starts with bytes de ad be ef\)/],
    ];
    // an Ogg stream of another codec: the Vorbis file with its first packet's id changed
    const ogg = Buffer.from(readFileSync(join(FX, 'tone.ogg')));
    const at = 27 + ogg[26]!;
    ogg.write('\x7fFLAC\x01\x00', at, 'latin1');
    cases.push(['oggflac.ogg', ogg, /oggflac\.ogg: not a supported audio file \(an Ogg stream of another codec \(first packet "\.FLAC\.\.\.\S*"/]);
    for (const [name, bytes, re] of cases) {
      const p = join(tmp, name);
      writeFileSync(p, bytes);
      await expect(openAudioSource(p)).rejects.toThrow(re);
    }
    await expect(openAudioSource(join(tmp, 'missing.opus'))).rejects.toThrow(/missing\.opus: cannot read \(ENOENT\)/);
  });

  it('a truncated FLAC (STREAMINFO promises more) and a corrupt MP3 give clear errors', async () => {
    const flac = readFileSync(join(FX, 'tone.flac'));
    const p = join(tmp, 'cut.flac');
    writeFileSync(p, flac.subarray(0, flac.length >> 1));
    await expect(readAudio(p)).rejects.toThrow(/cut\.flac: the FLAC data ends at frame \d+, but 88200 were expected/);
    const q = join(tmp, 'noise.mp3');
    writeFileSync(q, Buffer.concat([Buffer.from([0xff, 0xfb, 0x90, 0x64]), Buffer.alloc(4000, 0x55)]));
    await expect(openAudioSource(q)).rejects.toThrow(/noise\.mp3: (corrupt MP3 data|no audio decoded from the MP3 data)/);
  });
});

describe('input formats: encoding', () => {
  const tiny = useTinyCodec();

  it('FLAC and WAV of the same audio give byte-identical .mcodes (mucodec encode); the lossy formats encode too', async () => {
    const quiet = { log: () => {}, stderr: { write: () => true, isTTY: false } as unknown as NodeJS.WriteStream };
    const out = (n: string): string => join(tmp, n);
    expect(await encodeCommand([WAV, '-o', out('wav.mcodes'), '--weights', TINY, '--quiet'], quiet)).toBe(0);
    expect(await encodeCommand([join(FX, 'tone.flac'), '-o', out('flac.mcodes'), '--weights', TINY, '--quiet'], quiet)).toBe(0);
    const a = readFileSync(out('wav.mcodes')), b = readFileSync(out('flac.mcodes'));
    expect(a.length).toBeGreaterThan(0);
    expect(b.equals(a)).toBe(true);
    // the API: encodeFile of the FLAC = the codes in the WAV's .mcodes (also loads the encoder before counting tensors)
    const viaApi = await tiny.codec.encodeFile(join(FX, 'tone.flac'));
    expect(Array.from(viaApi.codes)).toEqual(Array.from((await readCodesFile(out('wav.mcodes'))).codes));
    const before = tf.memory().numTensors;
    const r = await tiny.codec.encodeFile(join(FX, 'tone.opus'));
    expect(r.meta.sampleRate).toBe(48000);
    expect(r.meta.frames).toBe((await readCodesFile(out('wav.mcodes'))).frames);
    expect(tf.memory().numTensors).toBe(before);
    // the streamed encode of a lossy file = the encode of its samples in memory
    expect(Array.from(r.codes)).toEqual(Array.from((await tiny.codec.encode(await readAudio(join(FX, 'tone.opus')))).codes));
  });

  it('mucodec reconstruct of an Opus with an MP3 --prompt: the input duration at 48 kHz', async () => {
    const quiet = { log: () => {}, stderr: { write: () => true, isTTY: false } as unknown as NodeJS.WriteStream };
    const out = join(tmp, 'rec.wav');
    const rc = await reconstructCommand([join(FX, 'tone.opus'), '-o', out, '--steps', '1', '--seed', '1', '--prompt', join(FX, 'tone.mp3'), '--weights', TINY, '--quiet'], quiet);
    expect(rc).toBe(0);
    const w = await readWav(out);
    expect([w.sampleRate, w.channels.length, w.channels[0]!.length]).toEqual([48000, 2, 96000]);
  });

  it('a 45 s Opus (longer than a window) encodes streamed: few decode passes, memory ≪ the song, same codes as in memory', async () => {
    const path = join(FX, 'long.opus');
    const src = await openAudioSource(path) as DecodedSource & { format: string };
    expect([src.sampleRate, src.channels]).toEqual([48000, 1]);
    expect(Math.abs(src.frames - 45 * 48000)).toBeLessThanOrEqual(960);
    const streamed = await tiny.codec.encodeSource(src);
    // the encode's reads: pass 1 (peak), pass 2 (windows), the last window's loop padding from frame 0
    expect(src.stats.passes).toBeLessThanOrEqual(3);
    expect(src.stats.maxHeldFrames).toBeLessThanOrEqual(STREAM_CHUNK_SAMPLES + 2000 + 2 * src.stats.maxChunkFrames);
    expect(src.stats.maxHeldFrames).toBeLessThan(src.frames / 4);
    await src.close();
    const whole = await tiny.codec.encode(await readAudio(path));
    expect(Array.from(streamed.codes)).toEqual(Array.from(whole.codes));
  });
});
