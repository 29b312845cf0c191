/**
 * Streaming encode (src/encode_source.ts, MuCodec.encodeFile / encodeSource): the codes are byte-identical to the
 * whole-array encode (prepareStereo48k + sound2code on the samples in memory) for every length class, rate,
 * channel count and sample format, on the tiny model; the source is read in bounded chunks, twice, never whole.
 */
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, describe, expect, it } from 'vitest';
import { memorySource, type AudioSource } from '../src/audio/source.js';
import { openWavSource, readWav } from '../src/audio/wav.js';
import { encodeCommand } from '../src/commands/encode.js';
import { STREAM_CHUNK_SAMPLES } from '../src/encode_source.js';
import { MIN_SAMPLES, WINDOW_SAMPLES, checkEncodableRate } from '../src/encoder.js';
import { TEST_WAV, useTinyCodec } from './helpers/tiny_codec.js';
import { synthChannels, writeSynthWav, type SynthSpec } from './helpers/wav_files.js';

const tmp = mkdtempSync(join(tmpdir(), 'encode-stream-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
const t = useTinyCodec();

/** A source that records every read (the largest request and the frames read in all). */
function counting(src: AudioSource): AudioSource & { maxCount: number; total: number; reads: number } {
  const c = {
    name: src.name, sampleRate: src.sampleRate, channels: src.channels, frames: src.frames, maxCount: 0, total: 0, reads: 0,
    async read(start: number, count: number) {
      c.maxCount = Math.max(c.maxCount, count);
      c.total += count;
      c.reads++;
      return src.read(start, count);
    },
    close: () => src.close(),
  };
  return c;
}

const bytesOf = (a: Int32Array): Buffer => Buffer.from(a.buffer, a.byteOffset, a.byteLength);

describe('streamed encode = whole-array encode, byte for byte (tiny model)', () => {
  const cases: Array<[string, SynthSpec]> = [
    ['48 kHz stereo float32, 1.3 s (shorter than a window, loop padded), peak 0.95 (normalised)', { sampleRate: 48000, channels: 2, frames: 62400, format: 'float32', amplitude: 0.95 }],
    ['48 kHz stereo PCM16, exactly one window (1966560 samples)', { sampleRate: 48000, channels: 2, frames: WINDOW_SAMPLES, format: 'pcm16', amplitude: 0.9 }],
    ['48 kHz mono float32, min_samples (1966080), not normalised', { sampleRate: 48000, channels: 1, frames: MIN_SAMPLES, format: 'float32', amplitude: 0.5, seed: 3 }],
    ['44.1 kHz stereo PCM16, 2.6 windows (ends mid-window, last window wraps to the start), normalised', { sampleRate: 44100, channels: 2, frames: Math.round(106.3 * 44100), format: 'pcm16', amplitude: 1.0, seed: 5 }],
    ['44.1 kHz mono PCM16, 5 s', { sampleRate: 44100, channels: 1, frames: 5 * 44100 + 17, format: 'pcm16', amplitude: 0.6 }],
    ['22.05 kHz stereo float32, 3.01 s', { sampleRate: 22050, channels: 2, frames: 66371, format: 'float32', amplitude: 0.85 }],
  ];
  for (const [title, spec] of cases) {
    it(title, async () => {
      const path = join(tmp, 'case.wav');
      await writeSynthWav(path, spec);
      const codec = t.codec;
      const whole = await codec.encode({ sampleRate: spec.sampleRate, channels: synthChannels(spec) });
      const before = tf.memory().numTensors;
      const src = counting(await openWavSource(path));
      const prog: string[] = [];
      const streamed = await codec.encodeSource(src, { onProgress: (p) => prog.push(`${p.window}/${p.windows}`) });
      await src.close();
      expect(tf.memory().numTensors).toBe(before);
      expect(streamed.meta).toEqual(whole.meta);
      expect(streamed.codes.length).toBe(whole.codes.length);
      expect(bytesOf(streamed.codes).equals(bytesOf(whole.codes))).toBe(true);
      expect(prog.at(-1)).toBe(`${prog.length - 1}/${prog.length - 1}`);
      // bounded reads: a chunk of 48 kHz output plus the filter halo (< 1000 frames: a polyphase block of 147
      // frames at 44.1 kHz and the 161 taps), never the whole file
      const perRead = Math.ceil((STREAM_CHUNK_SAMPLES * spec.sampleRate) / 48000) + 1000;
      expect(src.maxCount).toBeLessThanOrEqual(Math.min(spec.frames, perRead));
    }, 120_000);
  }

  it('test_wav/test.wav (44.1 kHz stereo PCM16) and batchSize 2', async () => {
    const codec = t.codec;
    const whole = await codec.encode(await readWav(TEST_WAV));
    const a = await codec.encodeFile(TEST_WAV);
    expect(a.meta).toEqual(whole.meta);
    expect(bytesOf(a.codes).equals(bytesOf(whole.codes))).toBe(true);
    const spec: SynthSpec = { sampleRate: 48000, channels: 2, frames: Math.round(2.3 * WINDOW_SAMPLES), format: 'float32', amplitude: 0.99, seed: 9 };
    const path = join(tmp, 'batch.wav');
    await writeSynthWav(path, spec);
    const w1 = await codec.encode({ sampleRate: 48000, channels: synthChannels(spec) });
    const b2 = await codec.encodeFile(path, { batchSize: 2 });
    expect(bytesOf(b2.codes).equals(bytesOf(w1.codes))).toBe(true);
  }, 120_000);

  it('encodeSource of an in-memory source = encode', async () => {
    const spec: SynthSpec = { sampleRate: 44100, channels: 2, frames: 30000, format: 'float32', amplitude: 0.9 };
    const audio = { sampleRate: 44100, channels: synthChannels(spec) };
    const a = await t.codec.encodeSource(memorySource(audio));
    expect(bytesOf(a.codes).equals(bytesOf((await t.codec.encode(audio)).codes))).toBe(true);
  });
});

describe('streamed encode errors come before the work', () => {
  it('an abort during the peak pass stops it there, leaks nothing', async () => {
    const codec = t.codec;
    await codec.encodeSource(memorySource({ sampleRate: 48000, channels: [new Float32Array(4800)] })); // warm caches
    const before = tf.memory().numTensors;
    const x = new Float32Array(4 * STREAM_CHUNK_SAMPLES + 5);
    const src = counting(memorySource({ sampleRate: 48000, channels: [x, x] }));
    const ac = new AbortController();
    const read = src.read.bind(src);
    src.read = async (s, n) => { if (src.reads === 1) ac.abort(new Error('stopped in pass 1')); return read(s, n); };
    const prog: number[] = [];
    await expect(codec.encodeSource(src, { signal: ac.signal, onProgress: (p) => prog.push(p.window) })).rejects.toThrow('stopped in pass 1');
    expect(src.reads).toBe(2);
    expect(prog).toEqual([]);
    expect(tf.memory().numTensors).toBe(before);
  });
  it('every common rate is encodable; rates needing a huge resampling filter are refused', () => {
    for (const r of [8000, 11025, 12000, 16000, 22050, 24000, 32000, 37800, 44100, 47250, 48000, 50000, 64000, 88200, 96000, 176400, 192000, 352800, 384000]) {
      expect(() => checkEncodableRate(r, 'x.wav'), `${r} Hz`).not.toThrow();
    }
    for (const r of [44056, 44101, 47999]) expect(() => checkEncodableRate(r, 'x.wav')).toThrow(new RegExp(`x\\.wav: sample rate ${r} Hz is not supported`));
    for (const r of [0, 1, 7999, 384001, 44100.5]) expect(() => checkEncodableRate(r, 'x.wav')).toThrow(/outside the supported range 8000 … 384000 Hz/);
  });
  it('`mucodec encode` of a 1 Hz WAV: the file and the rate, before the model loads; no output', async () => {
    const p = join(tmp, 'one-hertz.wav');
    await writeSynthWav(p, { sampleRate: 1, channels: 1, frames: 12000, format: 'pcm16', amplitude: 0.5 });
    const out = join(tmp, 'one-hertz.mcodes');
    await expect(encodeCommand([p, '-o', out, '--weights', join(tmp, 'no-weights-here')]))
      .rejects.toThrow(/one-hertz\.wav: sample rate 1 Hz is outside the supported range 8000 … 384000 Hz/);
    expect(existsSync(out)).toBe(false);
  });
  it('non-finite samples, 3 channels, empty, unencodable rate', async () => {
    const codec = t.codec;
    const x = new Float32Array(48000); x[30000] = NaN;
    await expect(codec.encodeSource(memorySource({ sampleRate: 48000, channels: [new Float32Array(48000), x] }, 'nan.wav')))
      .rejects.toThrow(/nan\.wav: sample 30000 of channel 1 is not a finite number \(NaN\)/);
    const c = new Float32Array(10);
    await expect(codec.encodeSource(memorySource({ sampleRate: 48000, channels: [c, c, c] }, 'three.wav'))).rejects.toThrow(/three\.wav: only mono or stereo audio is supported \(got 3 channels\)/);
    await expect(codec.encodeSource(memorySource({ sampleRate: 48000, channels: [new Float32Array(0)] }, 'empty.wav'))).rejects.toThrow(/empty\.wav: the audio is empty/);
    await expect(codec.encodeSource(memorySource({ sampleRate: 47999, channels: [c] }, 'odd.wav'))).rejects.toThrow(/odd\.wav: sample rate 47999 Hz is not supported: resampling it to 48000 Hz needs a \d+ MB filter/);
    await expect(codec.encode({ sampleRate: 1, channels: [c] })).rejects.toThrow(/encode: sample rate 1 Hz is outside the supported range 8000 … 384000 Hz/);
  });
});
