/**
 * Memory of the streamed encode does not grow with the song: a 6-minute WAV (written chunk by chunk, never held)
 * is read in chunks of a fixed size, each frame about twice (peak pass + window pass); and `mucodec encode`, in a
 * process of its own, peaks at about the same resident size for 1 minute and for 6 minutes (the whole-file reader
 * needed ≈ 1.3 MB more per second of 44.1 kHz stereo: +356 MB here; the margin allows for GC timing).
 */
import { mkdtempSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { AudioSource } from '../src/audio/source.js';
import { openWavSource } from '../src/audio/wav.js';
import { readCodesFile } from '../src/codesfile.js';
import { STREAM_CHUNK_SAMPLES } from '../src/encode_source.js';
import { WINDOW_SAMPLES, outputLength } from '../src/encoder.js';
import { runHelper } from './helpers/run_child.js';
import { TINY, useTinyCodec } from './helpers/tiny_codec.js';
import { writeSynthWav, type SynthSpec } from './helpers/wav_files.js';

const tmp = mkdtempSync(join(tmpdir(), 'encode-memory-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
const t = useTinyCodec();
const spec = (minutes: number): SynthSpec => ({ sampleRate: 44100, channels: 2, frames: minutes * 60 * 44100, format: 'pcm16', amplitude: 0.95, period: 7 * 44100 + 13 });
const long = join(tmp, 'six-minutes.wav');
const short = join(tmp, 'one-minute.wav');
const writeLong = async (): Promise<void> => { if (!existsSync(long)) await writeSynthWav(long, spec(6)); };

describe('streamed encode memory is bounded by a window, whatever the length', () => {
  it('6 minutes: bounded reads, each frame read ≈ twice, never the whole file', async () => {
    await writeLong();
    const src = await openWavSource(long);
    let maxCount = 0, total = 0;
    const counted: AudioSource = {
      name: src.name, sampleRate: src.sampleRate, channels: src.channels, frames: src.frames,
      read: (s, n) => { maxCount = Math.max(maxCount, n); total += n; return src.read(s, n); },
      close: () => src.close(),
    };
    let windows = 0;
    try {
      const r = await t.codec.encodeSource(counted, { onProgress: (p) => { windows = p.windows; } });
      expect(r.codes.length).toBe(outputLength(Math.ceil((src.frames * 160) / 147)));
    } finally {
      await src.close();
    }
    expect(windows).toBe(9);
    expect(maxCount).toBeLessThanOrEqual(Math.ceil((STREAM_CHUNK_SAMPLES * 44100) / 48000) + 1000);
    // pass 1 reads every frame once, pass 2 once more, plus the halos and the last window's wrap to the start
    expect(total).toBeGreaterThanOrEqual(2 * src.frames);
    expect(total).toBeLessThan(2 * src.frames + (WINDOW_SAMPLES * 44100) / 48000 + 1e5);
  }, 180_000);

  it('`mucodec encode`: about the same peak RSS for 1 and 6 minutes (child processes)', async () => {
    await writeLong();
    await writeSynthWav(short, spec(1));
    const rss = async (wav: string): Promise<number> => {
      const out = wav.replace(/\.wav$/, '.mcodes');
      const r = await runHelper('cli_maxrss.ts', ['--threads', '1', 'encode', wav, '-o', out, '--weights', TINY, '--quiet'], {}, 300_000);
      expect(r.status, r.stderr).toBe(0);
      expect((await readCodesFile(out)).originalLength).toBe(spec(wav === long ? 6 : 1).frames);
      return Number(/maxrss-kb (\d+)/.exec(r.stdout)![1]) / 1024;
    };
    const one = await rss(short);
    const six = await rss(long);
    // reading whole: six minutes needed 356 MB more than one (file bytes, float channels, 48 kHz copies)
    expect(six - one, `peak RSS ${one.toFixed(0)} MB for 1 min, ${six.toFixed(0)} MB for 6 min`).toBeLessThan(150);
  }, 300_000);
});
