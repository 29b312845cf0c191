/**
 * `mucodec compare` and its picture: metrics JSON, and a PNG whose panels differ where the signals differ.
 */
import { describe, expect, it, vi, afterEach } from 'vitest';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PNG } from 'pngjs';
import { writeWav } from '../src/audio/wav.js';
import { main } from '../src/cli.js';
import { compareAudio } from '../src/metrics/index.js';
import { comparisonPicture, type Rect } from '../src/metrics/picture.js';

const sr = 48000;
function signals(): { ref: Float32Array[]; test: Float32Array[] } {
  const n = 2 * sr;
  const ref = [0, 1].map((c) => Float32Array.from({ length: n }, (_, i) => 0.3 * Math.sin((2 * Math.PI * (300 + 200 * c) * i) / sr)));
  let s = 12345;
  const rnd = (): number => { s = (s * 1103515245 + 12345) >>> 0; return s / 2 ** 32 - 0.5; };
  const test = ref.map((ch) => Float32Array.from(ch, (v, i) => (i >= n / 2 ? v + 0.2 * rnd() : v))); // noise in the 2nd second
  return { ref, test };
}

/** mean distance of a region's pixels from a colour */
function meanDistance(png: PNG, r: Rect, x0: number, x1: number, colour: [number, number, number]): number {
  let s = 0, c = 0;
  for (let y = r.y; y < r.y + r.h; y++) for (let x = r.x + x0; x < r.x + x1; x++) {
    const o = (y * png.width + x) * 4;
    s += Math.abs(png.data[o]! - colour[0]) + Math.abs(png.data[o + 1]! - colour[1]) + Math.abs(png.data[o + 2]! - colour[2]);
    c++;
  }
  return s / c;
}
function regionDiff(png: PNG, a: Rect, b: Rect, x0: number, x1: number): number {
  let s = 0, c = 0;
  for (let y = 0; y < a.h; y++) for (let x = x0; x < x1; x++) {
    const oa = ((a.y + y) * png.width + a.x + x) * 4, ob = ((b.y + y) * png.width + b.x + x) * 4;
    for (let k = 0; k < 3; k++) s += Math.abs(png.data[oa + k]! - png.data[ob + k]!);
    c++;
  }
  return s / c;
}

describe('comparison picture', () => {
  it('decodes as a PNG of the stated size; the panels differ only where the signals differ', () => {
    const { ref, test } = signals();
    const r = compareAudio({ sampleRate: sr, channels: ref }, { sampleRate: sr, channels: test });
    const pic = comparisonPicture(r.aligned, r.metrics, { reference: 'a.wav', test: 'b.wav' });
    const png = PNG.sync.read(pic.png);
    expect([png.width, png.height]).toEqual([pic.width, pic.height]);
    const { reference, test: tp, difference } = pic.panels;
    const half = reference.w / 2, edge = 12; // stay clear of the STFT frames that straddle the change
    // first second: identical signals → identical spectrogram pixels and a neutral difference panel
    expect(regionDiff(png, reference, tp, 0, half - edge)).toBe(0);
    expect(meanDistance(png, difference, 0, half - edge, [247, 247, 247])).toBeLessThan(1);
    // second second: the noise shows in the test panel and in the difference panel
    expect(regionDiff(png, reference, tp, half + edge, reference.w)).toBeGreaterThan(20);
    expect(meanDistance(png, difference, half + edge, difference.w, [247, 247, 247])).toBeGreaterThan(40);
  });
});

describe('mucodec compare', () => {
  let spy: ReturnType<typeof vi.spyOn> | null = null;
  afterEach(() => { spy?.mockRestore(); spy = null; });

  it('--json holds a metrics object; --png writes the picture; bad input is a clear error', async () => {
    const d = mkdtempSync(join(tmpdir(), 'mucodec-compare-'));
    const { ref, test } = signals();
    await writeWav(join(d, 'ref.wav'), { sampleRate: sr, channels: ref }, 'float32');
    await writeWav(join(d, 'test.wav'), { sampleRate: sr, channels: test }, 'float32');
    const out: string[] = [];
    spy = vi.spyOn(console, 'log').mockImplementation((...a: unknown[]) => { out.push(a.join(' ')); });
    expect(await main(['compare', join(d, 'ref.wav'), join(d, 'test.wav'), '--json', '--png', join(d, 'c.png')])).toBe(0);
    const doc = JSON.parse(out.join('\n')) as { metrics: Record<string, number>; seconds: number };
    expect(doc.seconds).toBe(2);
    const direct = compareAudio({ sampleRate: sr, channels: ref }, { sampleRate: sr, channels: test }).metrics;
    for (const k of ['mel_distance', 'stft_distance', 'si_sdr_db', 'lsd', 'loudness_diff_lu'] as const) {
      expect(Number.isFinite(doc.metrics[k])).toBe(true);
      expect(doc.metrics[k]).toBeCloseTo(direct[k]!, 9);
    }
    const png = PNG.sync.read(readFileSync(join(d, 'c.png')));
    expect(png.width).toBeGreaterThan(1000);
    await expect(main(['compare', join(d, 'ref.wav')])).rejects.toThrow(/give a reference and a test file/);
    await expect(main(['compare', join(d, 'ref.wav'), join(d, 'missing.wav')])).rejects.toThrow(/missing\.wav/);
  });
});
