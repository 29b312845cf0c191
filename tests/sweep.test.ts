/**
 * `mucodec sweep` on the tiny model: one row per (sampler, steps) with every metric finite, a table and a plot of
 * the stated size; a stop keeps the rows already finished.
 */
import { describe, expect, it, vi, afterEach } from 'vitest';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PNG } from 'pngjs';
import * as tf from '@tensorflow/tfjs-core';
import { readWav, writeWav } from '../src/audio/wav.js';
import { initBackend } from '../src/backend.js';
import { sweepCommand } from '../src/commands/sweep.js';
import { TEST_WAV, TINY } from './helpers/tiny_codec.js';

interface Doc { plot: { width: number; height: number }; rows: { sampler: string; steps: number; dit_evals: number; seconds: number; vs_reference: Record<string, number | null>; vs_original: Record<string, number | null> | null }[] }

async function shortInput(dir: string): Promise<string> {
  const a = await readWav(TEST_WAV);
  const n = Math.round(a.sampleRate * 2);
  const p = join(dir, 'in.wav');
  await writeWav(p, { sampleRate: a.sampleRate, channels: a.channels.map((c) => c.slice(0, n)) });
  return p;
}

describe('mucodec sweep (tiny model)', () => {
  let spy: ReturnType<typeof vi.spyOn> | null = null;
  afterEach(() => { spy?.mockRestore(); spy = null; });
  const quiet = { log: (): void => undefined, stderr: { write: () => true, isTTY: false } as unknown as NodeJS.WriteStream };

  it('writes results.json (one row per combination, every metric finite), table.md and plot.png', async () => {
    await initBackend();
    const before = tf.memory().numTensors;
    const d = mkdtempSync(join(tmpdir(), 'mucodec-sweep-'));
    const input = await shortInput(d);
    const out = join(d, 'out');
    const code = await sweepCommand([input, '--sampler', 'euler,heun', '--steps', '1', '--ref-steps', '2', '--seed', '5', '--weights', TINY, '--out', out, '--quiet'], quiet);
    expect(code).toBe(0);
    const doc = JSON.parse(readFileSync(join(out, 'results.json'), 'utf8')) as Doc;
    expect(doc.rows.map((r) => [r.sampler, r.steps, r.dit_evals])).toEqual([['euler', 1, 1], ['heun', 1, 2]]);
    for (const r of doc.rows) {
      for (const m of [r.vs_reference, r.vs_original!]) {
        for (const k of ['mel_distance', 'stft_distance', 'si_sdr_db', 'lsd', 'loudness_diff_lu']) expect(Number.isFinite(m[k])).toBe(true);
      }
      expect(r.vs_reference.mel_distance).toBeGreaterThan(0);
    }
    const table = readFileSync(join(out, 'table.md'), 'utf8');
    expect(table.split('\n').filter((l) => /^\| (euler|heun) \|/.test(l))).toHaveLength(2);
    const png = PNG.sync.read(readFileSync(join(out, 'plot.png')));
    expect([png.width, png.height]).toEqual([doc.plot.width, doc.plot.height]);
    expect(png.width).toBeGreaterThan(2 * png.height); // two panels: against the reference and the original
    expect(tf.memory().numTensors).toBe(before);
  }, 600_000);

  it('a stop (Ctrl-C) keeps the finished rows', async () => {
    const d = mkdtempSync(join(tmpdir(), 'mucodec-sweep-stop-'));
    const input = await shortInput(d);
    const out = join(d, 'out');
    const ac = new AbortController();
    const poll = setInterval(() => {
      if (existsSync(join(out, 'results.json'))) ac.abort(new Error('interrupted (Ctrl-C)'));
    }, 50);
    const logs: string[] = [];
    try {
      const code = await sweepCommand([input, '--steps', '1,1000', '--ref-steps', '1', '--weights', TINY, '--out', out, '--quiet'],
        { ...quiet, log: (l) => logs.push(l), signal: ac.signal });
      expect(code).toBe(1);
    } finally { clearInterval(poll); }
    expect(logs.join('\n')).toMatch(/sweep interrupted: 1 finished row\(s\) kept/);
    const doc = JSON.parse(readFileSync(join(out, 'results.json'), 'utf8')) as Doc;
    expect(doc.rows).toHaveLength(1);
    expect(doc.rows[0]!.steps).toBe(1);
    expect(PNG.sync.read(readFileSync(join(out, 'plot.png'))).width).toBe(doc.plot.width);
  }, 600_000);
});
