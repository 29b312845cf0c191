/**
 * FLAC output (issue 14, item 2): our encoder (src/audio/flac_encode.ts) read back by the project's FLAC decoder
 * (@wasm-audio-decoders/flac through readAudio) gives exactly the samples of the 16-bit WAV of the same audio;
 * STREAMINFO's length, frame sizes and MD5 are right; edge cases: silence (CONSTANT), full-scale noise
 * (VERBATIM), odd lengths, a stream shorter than one block, 1 and 2 channels, 24-bit; the streaming writer gives
 * the same bytes whatever the chunking and leaves nothing behind on abort. When Debian's `flac` is installed,
 * `flac -t` (which checks every CRC and the MD5) accepts the files too.
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { withWriteSignal } from '../src/atomic.js';
import { FlacFileWriter, openAudioSink, outputFormat, writeAudioFile } from '../src/audio/audio_out.js';
import { parseFlacStreamInfo } from '../src/audio/decoders.js';
import { encodeFlac, floatToPcm } from '../src/audio/flac_encode.js';
import { readAudio } from '../src/audio/open.js';
import { readWav, writeWav, type Audio } from '../src/audio/wav.js';

const tmp = mkdtempSync(join(tmpdir(), 'mucodec-flac-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
const hasFlacTool = spawnSync('flac', ['--version']).status === 0;

/** deterministic pseudo-random numbers in [−1, 1) */
function lcg(seed: number): () => number {
  let s = seed >>> 0;
  return () => { s = (Math.imul(s, 1664525) + 1013904223) >>> 0; return s / 2 ** 31 - 1; };
}

/** music-like: a few partials, a slow envelope and a little noise (channel c differs in phase and level) */
function music(frames: number, channels: number, seed = 1): Float32Array[] {
  const rnd = lcg(seed);
  return Array.from({ length: channels }, (_, c) => Float32Array.from({ length: frames }, (_, i) =>
    (0.5 * Math.sin(i * 0.013 + c) + 0.2 * Math.sin(i * 0.071) * Math.sin(i * 0.0007) + 0.02 * rnd()) * (1 - 0.3 * c)));
}

const bits = (a: Float32Array): Buffer => Buffer.from(a.buffer, a.byteOffset, a.byteLength);

/** writes `audio` as FLAC and as 16-bit WAV; the FLAC read back equals the WAV read back, bit for bit */
async function roundTrip(name: string, audio: Audio, blockSize?: number): Promise<{ flac: Uint8Array; path: string; wavData: Buffer }> {
  const path = join(tmp, `${name}.flac`);
  const flac = encodeFlac(floatToPcm(audio.channels), { sampleRate: audio.sampleRate, channels: audio.channels.length, blockSize });
  writeFileSync(path, flac);
  const wavPath = join(tmp, `${name}.wav`);
  await writeWav(wavPath, audio, 'pcm16');
  const fromWav = await readWav(wavPath);
  const fromFlac = await readAudio(path);
  expect(fromFlac.sampleRate).toBe(audio.sampleRate);
  expect(fromFlac.channels.length).toBe(audio.channels.length);
  fromFlac.channels.forEach((c, i) => expect(bits(c).equals(bits(fromWav.channels[i]!))).toBe(true));
  const wavBytes = readFileSync(wavPath);
  const at = wavBytes.indexOf('data');
  const wavData = wavBytes.subarray(at + 8, at + 8 + wavBytes.readUInt32LE(at + 4));
  // STREAMINFO: length, channels, bits; MD5 = of the WAV's data chunk (interleaved 16-bit little-endian samples)
  const info = parseFlacStreamInfo(flac, name);
  expect(info).toEqual({ sampleRate: audio.sampleRate, channels: audio.channels.length, bitsPerSample: 16, totalSamples: audio.channels[0]!.length });
  expect(Buffer.from(flac.subarray(26, 42)).equals(createHash('md5').update(wavData).digest())).toBe(true);
  if (hasFlacTool) expect(spawnSync('flac', ['-t', '-s', path]).status).toBe(0);
  return { flac, path, wavData };
}

const u24 = (b: Uint8Array, at: number): number => (b[at]! << 16) | (b[at + 1]! << 8) | b[at + 2]!;

describe('FLAC encoder: exact round trip through the project decoder', () => {
  it('stereo music, an odd length (last block shorter), default 4096-sample blocks: smaller than the WAV', async () => {
    const audio = { sampleRate: 48000, channels: music(3 * 4096 + 1001, 2) };
    const { flac, wavData } = await roundTrip('music2', audio);
    expect(flac.length).toBeLessThan(0.75 * wavData.length);
    const [minFrame, maxFrame] = [u24(flac, 12), u24(flac, 15)];
    expect(minFrame).toBeGreaterThan(0);
    expect(maxFrame).toBeGreaterThanOrEqual(minFrame);
    expect(flac.length).toBeLessThanOrEqual(42 + 4 * maxFrame);
    expect(flac.length).toBeGreaterThanOrEqual(42 + 4 * minFrame);
  });

  it('mono at 44.1 kHz, odd block size; 1, 3 and 17 samples (a stream shorter than one block, shorter than the predictor order)', async () => {
    await roundTrip('music1', { sampleRate: 44100, channels: music(10007, 1, 2) }, 1000);
    for (const n of [1, 3, 17]) await roundTrip(`short${n}`, { sampleRate: 48000, channels: music(n, 2, n) });
  });

  it('silence is CONSTANT subframes: a few bytes per frame, every frame the same size', async () => {
    const { flac } = await roundTrip('silence', { sampleRate: 22050, channels: [new Float32Array(5000), new Float32Array(5000)] }, 1000);
    const [minFrame, maxFrame] = [u24(flac, 12), u24(flac, 15)];
    expect(minFrame).toBe(maxFrame);
    expect(flac.length).toBe(42 + 5 * maxFrame);
    expect(maxFrame).toBeLessThan(20);
  });

  it('full-scale noise is VERBATIM: not bigger than the samples plus frame headers; clipping as the WAV writer clips', async () => {
    const rnd = lcg(7);
    const noise = [Float32Array.from({ length: 8192 }, () => rnd() * 1.2), Float32Array.from({ length: 8192 }, () => rnd())];
    const { flac, wavData } = await roundTrip('noise', { sampleRate: 48000, channels: noise });
    expect(flac.length).toBeLessThanOrEqual(42 + wavData.length + 2 * (16 + 2 * 1));
  });

  it('last frames that codec-parser alone would drop (13 bytes or shorter; a false sync near the end) read back whole', async () => {
    // mono -1 everywhere (0xFF bytes), 192-sample blocks, tails of 3 … 100 samples: read short by 3 … 100 samples
    // before the decoder fed its trailer (src/audio/decoders.ts FLAC_TRAILER); 2 channels of a synthetic ramp too
    for (const last of [3, 12, 100]) {
      const path = join(tmp, `tail${last}.flac`);
      const x = new Int32Array(2 * 192 + last).fill(-1);
      writeFileSync(path, encodeFlac([x], { sampleRate: 48000, channels: 1, blockSize: 192 }));
      const back = await readAudio(path);
      expect(Array.from(back.channels[0]!, (v) => v * 32768)).toEqual(Array.from(x));
      if (hasFlacTool) expect(spawnSync('flac', ['-t', '-s', path]).status).toBe(0);
    }
    const chans = [0, 13].map((k) => Int32Array.from({ length: 2 * 192 + 2 }, (_, i) => ((i * 7919 + k) % 2001) - 1000));
    writeFileSync(join(tmp, 'tail-sync.flac'), encodeFlac(chans, { sampleRate: 48000, channels: 2, blockSize: 192 }));
    const back = await readAudio(join(tmp, 'tail-sync.flac'));
    back.channels.forEach((c, k) => expect(Array.from(c, (v) => v * 32768)).toEqual(Array.from(chans[k]!)));
  });

  it('24-bit: the integers round(x · 2^23) come back', async () => {
    const ch = music(5000, 2, 3);
    const ints = floatToPcm(ch, 24);
    const path = join(tmp, 'b24.flac');
    writeFileSync(path, encodeFlac(ints, { sampleRate: 96000, channels: 2, bitsPerSample: 24, blockSize: 1152 }));
    const back = await readAudio(path);
    back.channels.forEach((c, i) => expect(Array.from(c, (v) => v * 2 ** 23)).toEqual(Array.from(ints[i]!)));
    if (hasFlacTool) expect(spawnSync('flac', ['-t', '-s', path]).status).toBe(0);
  });

  it('refuses what FLAC cannot hold', () => {
    expect(() => encodeFlac([new Int32Array([40000])], { sampleRate: 48000, channels: 1 })).toThrow(/sample 40000 does not fit in 16 bits/);
    expect(() => encodeFlac([], { sampleRate: 48000, channels: 0 })).toThrow(/0 channels cannot be stored/);
    expect(() => encodeFlac([new Int32Array(1)], { sampleRate: 2 ** 20, channels: 1 })).toThrow(/sample rate 1048576 Hz cannot be stored/);
  });
});

describe('FLAC file writing', () => {
  it('the streaming writer gives the bytes of the one-shot encode whatever the chunking; nothing under the name until finish', async () => {
    const ch = music(20000, 2, 5);
    const whole = encodeFlac(floatToPcm(ch), { sampleRate: 48000, channels: 2 });
    const path = join(tmp, 'streamed.flac');
    const w = await FlacFileWriter.open(path, { sampleRate: 48000, channels: 2 });
    const rnd = lcg(9);
    for (let at = 0; at < 20000;) {
      const n = Math.min(20000 - at, 1 + Math.floor((rnd() + 1) * 3000));
      await w.write(ch.map((c) => c.subarray(at, at + n)));
      at += n;
      expect(existsSync(path)).toBe(false);
    }
    await w.finish();
    expect(readFileSync(path).equals(Buffer.from(whole))).toBe(true);
    await writeAudioFile(join(tmp, 'whole.flac'), { sampleRate: 48000, channels: ch }, 'flac'); // written in chunks too
    expect(readFileSync(join(tmp, 'whole.flac')).equals(Buffer.from(whole))).toBe(true);
    expect(readdirSync(tmp).filter((f) => f.includes('.tmp-'))).toEqual([]);
  });

  it('openAudioSink (what `mucodec decode` streams its chunks into): FLAC and WAV sinks give the one-shot files; frames counted', async () => {
    const ch = music(30001, 2, 6);
    const chunks = [0, 12000, 12001, 30001];
    for (const format of ['flac', 'pcm16', 'float32'] as const) {
      const path = join(tmp, `sink-${format}.${format === 'flac' ? 'flac' : 'wav'}`);
      const sink = await openAudioSink(path, format, { sampleRate: 48000, channels: 2, frames: 30001 });
      for (let k = 0; k + 1 < chunks.length; k++) await sink.write(ch.map((c) => c.slice(chunks[k], chunks[k + 1])));
      expect(existsSync(path)).toBe(false);
      await sink.finish();
      expect(sink.frames).toBe(30001);
      const one = join(tmp, `one-${format}.${format === 'flac' ? 'flac' : 'wav'}`);
      await writeAudioFile(one, { sampleRate: 48000, channels: ch }, format);
      expect(readFileSync(path).equals(readFileSync(one))).toBe(true);
    }
    const aborted = join(tmp, 'sink-aborted.flac');
    const sink = await openAudioSink(aborted, 'flac', { sampleRate: 48000, channels: 2 });
    await sink.write(ch.map((c) => c.slice(0, 5000)));
    await sink.abort();
    expect(existsSync(aborted)).toBe(false);
    expect(readdirSync(tmp).filter((f) => f.includes('.tmp-'))).toEqual([]);
  });

  it('abort, or a fired signal, leaves no file and no temporary file', async () => {
    const w = await FlacFileWriter.open(join(tmp, 'aborted.flac'), { sampleRate: 48000, channels: 1 });
    await w.write([new Float32Array(5000)]);
    await w.abort();
    const ac = new AbortController();
    const w2 = await FlacFileWriter.open(join(tmp, 'signalled.flac'), { sampleRate: 48000, channels: 1, signal: ac.signal });
    await w2.write([new Float32Array(5000)]);
    ac.abort(new Error('interrupted'));
    await expect(w2.finish()).rejects.toThrow(/^interrupted$/);
    // writeAudioFile inside withWriteSignal (the CLI's final write): a fired signal stops it the same way
    const ac3 = new AbortController();
    ac3.abort(new Error('interrupted (Ctrl-C)'));
    await expect(withWriteSignal(ac3.signal, () => writeAudioFile(join(tmp, 'signalled3.flac'), { sampleRate: 48000, channels: [new Float32Array(9)] }, 'flac')))
      .rejects.toThrow(/^interrupted \(Ctrl-C\)$/);
    expect(readdirSync(tmp).filter((f) => f.startsWith('aborted') || f.startsWith('signalled'))).toEqual([]);
  });

  it('the package root exports the FLAC and many-files API', async () => {
    const api = await import('../src/index.js') as Record<string, unknown>;
    for (const name of ['FlacEncoder', 'encodeFlac', 'floatToPcm', 'writeAudioFile', 'FlacFileWriter', 'outputFormat',
      'encodeFiles', 'decodeFiles', 'reconstructFiles', 'planFolder']) expect(typeof api[name], name).toBe('function');
  });

  it('the output format: --format, else the extension; FLAC with float refused', () => {
    expect(outputFormat('decode', 'a.wav', {})).toBe('pcm16');
    expect(outputFormat('decode', 'a.WAV', { float: true })).toBe('float32');
    expect(outputFormat('decode', 'a.flac', {})).toBe('flac');
    expect(outputFormat('decode', 'out/dir', { format: 'flac' })).toBe('flac');
    expect(() => outputFormat('decode', 'a.flac', { float: true })).toThrow(/^decode: FLAC holds integer samples only: --float cannot be written as FLAC/);
    expect(() => outputFormat('decode', 'a.wav', { format: 'flac' })).toThrow(/^decode: --format flac but the output a\.wav is named \.wav$/);
    expect(() => outputFormat('decode', 'a', { format: 'mp3' })).toThrow(/^decode: option --format: unknown format "mp3" \(choose one of: wav, flac\)$/);
  });
});
