/**
 * Folder mode (issue 14, item 3) on the tiny model: `mucodec encode|decode|reconstruct <dir> -o <dir>` — nested
 * layout mirrored, a bad file reported and the others done (exit 1, summary), a rerun skipping what is done (the
 * outputs untouched), the output folder inside the input folder never read back, and refusals before any work.
 * Audio is short (0.5–0.6 s); each tiny-model decode still runs a whole 40.96 s window (VAE + vocoder), so there
 * are three decodes in this file (two decodes, one reconstruct), at 1 step: ≈ 50 s of CPU on 2 cores, plus a child
 * process for Ctrl-C (≈ 18 s wall, two 3 s slowed fsyncs).
 */
import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { writeAudioFile } from '../src/audio/audio_out.js';
import { readAudio } from '../src/audio/open.js';
import { readWav, writeWav, type Audio } from '../src/audio/wav.js';
import { encodeFiles, planFolder } from '../src/batch_files.js';
import { readCodesFile } from '../src/codesfile.js';
import { decodeCommand, reconstructCommand } from '../src/commands/decode.js';
import { encodeCommand } from '../src/commands/encode.js';
import { startHelper } from './helpers/run_child.js';
import { TINY, useTinyCodec } from './helpers/tiny_codec.js';

const tmp = mkdtempSync(join(tmpdir(), 'mucodec-folders-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
const tiny = useTinyCodec();

function tone(seconds: number, f: number): Audio {
  const n = Math.round(seconds * 48000);
  return { sampleRate: 48000, channels: [0, 1].map((c) => Float32Array.from({ length: n }, (_, i) => 0.3 * Math.sin(i * f * (1 + 0.1 * c)))) };
}

/** a context whose result lines are collected (progress goes to a silent non-TTY stream) */
function ctx(): { log: (l: string) => void; lines: string[]; stderr: NodeJS.WriteStream } {
  const lines: string[] = [];
  return { lines, log: (l) => lines.push(l), stderr: { write: () => true, isTTY: false } as unknown as NodeJS.WriteStream };
}

const files = (dir: string): string[] => (readdirSync(dir, { recursive: true }) as string[])
  .filter((f) => statSync(join(dir, f)).isFile()).sort();

const IN = join(tmp, 'in');
mkdirSync(join(IN, 'a', 'b'), { recursive: true });
mkdirSync(join(IN, 'c'));
await writeWav(join(IN, 'one.wav'), tone(0.5, 0.01));
await writeAudioFile(join(IN, 'a', 'b', 'two.flac'), tone(0.6, 0.02), 'flac');
writeFileSync(join(IN, 'a', 'bad.wav'), Buffer.from(Array.from({ length: 3000 }, (_, i) => (i * 7919 + 13) % 251))); // garbage named .wav
writeFileSync(join(IN, 'c', 'notes.txt'), 'not audio\n');
writeFileSync(join(IN, '.hidden.wav'), 'hidden: never looked at');

describe('encode a folder', () => {
  const OUT = join(tmp, 'codes');

  it('every audio file below it, layout mirrored; the bad file reported and skipped, exit 1, a summary', async () => {
    const c = ctx();
    expect(await encodeCommand([IN, '-o', OUT, '--weights', TINY, '--quiet'], c)).toBe(1);
    expect(files(OUT)).toEqual(['a/b/two.mcodes', 'one.mcodes']);
    expect(c.lines.filter((l) => l.startsWith('failed '))).toEqual([expect.stringMatching(/^failed a\/bad\.wav: not a supported audio file \(starts with bytes 0d 97 [0-9a-f ]+\); supported formats: WAV, FLAC, MP3, Ogg Vorbis, Opus$/)]);
    expect(c.lines[c.lines.length - 1]).toMatch(/^ {2}failed: a\/bad\.wav: not a supported audio file/);
    expect(c.lines).toContain(`encode ${IN} → ${OUT}: 3 files: 2 done, 0 skipped (output exists), 1 failed; 1 file ignored (not audio)`);
    expect(c.lines.filter((l) => l.startsWith('done '))).toEqual(['done a/b/two.flac → a/b/two.mcodes (0.60 s)', 'done one.wav → one.mcodes (0.50 s)']);
    // the same bytes as the one-file command
    const single = join(tmp, 'single.mcodes');
    expect(await encodeCommand([join(IN, 'a', 'b', 'two.flac'), '-o', single, '--weights', TINY, '--quiet'], ctx())).toBe(0);
    expect(readFileSync(join(OUT, 'a', 'b', 'two.mcodes')).equals(readFileSync(single))).toBe(true);
    expect((await readCodesFile(join(OUT, 'one.mcodes'))).originalLength).toBe(24000);
  });

  it('a rerun skips the files done (outputs untouched) and retries the failed one; a removed output is redone', async () => {
    const mtimes = files(OUT).map((f) => statSync(join(OUT, f)).mtimeMs);
    const c = ctx();
    expect(await encodeCommand([IN, '-o', OUT, '--weights', TINY, '--quiet'], c)).toBe(1);
    expect(c.lines).toContain(`encode ${IN} → ${OUT}: 3 files: 0 done, 2 skipped (output exists), 1 failed; 1 file ignored (not audio)`);
    expect(files(OUT).map((f) => statSync(join(OUT, f)).mtimeMs)).toEqual(mtimes);
    unlinkSync(join(OUT, 'one.mcodes'));
    const c2 = ctx();
    expect(await encodeCommand([IN, '-o', OUT, '--weights', TINY, '--quiet'], c2)).toBe(1);
    expect(c2.lines).toContain(`encode ${IN} → ${OUT}: 3 files: 1 done, 1 skipped (output exists), 1 failed; 1 file ignored (not audio)`);
    expect(statSync(join(OUT, 'a', 'b', 'two.mcodes')).mtimeMs).toBe(mtimes[0]);
    expect(files(OUT).some((f) => f.includes('.tmp-'))).toBe(false);
  });

  it('decode the folder of .mcodes to FLAC: layout mirrored, a corrupt .mcodes reported, the length as decode gives', async () => {
    const CODES = join(tmp, 'codes2');
    mkdirSync(join(CODES, 'a', 'b'), { recursive: true });
    copyFileSync(join(OUT, 'a', 'b', 'two.mcodes'), join(CODES, 'a', 'b', 'two.mcodes'));
    writeFileSync(join(CODES, 'broken.mcodes'), readFileSync(join(OUT, 'one.mcodes')).subarray(0, 40)); // cut short
    const DEC = join(tmp, 'decoded');
    const c = ctx();
    expect(await decodeCommand([CODES, '-o', DEC, '--format', 'flac', '--steps', '1', '--seed', '1', '--weights', TINY, '--quiet'], c)).toBe(1);
    expect(files(DEC)).toEqual(['a/b/two.flac']);
    expect(c.lines.find((l) => l.startsWith('failed broken.mcodes: '))).toMatch(/^failed broken\.mcodes: .*truncated/);
    expect(c.lines).toContain(`decode ${CODES} → ${DEC}: 2 files: 1 done, 0 skipped (output exists), 1 failed`);
    const frames = (await readCodesFile(join(CODES, 'a', 'b', 'two.mcodes'))).frames;
    const audio = await readAudio(join(DEC, 'a', 'b', 'two.flac'));
    expect([audio.sampleRate, audio.channels.length, audio.channels[0]!.length]).toEqual([48000, 2, frames * 1920]);
    // the one-file command with the same seed, to a 16-bit WAV: the same samples, bit for bit
    const wavOut = join(tmp, 'two.wav');
    expect(await decodeCommand([join(CODES, 'a', 'b', 'two.mcodes'), '-o', wavOut, '--steps', '1', '--seed', '1', '--weights', TINY, '--quiet'], ctx())).toBe(0);
    const wav = await readWav(wavOut);
    wav.channels.forEach((ch, i) => expect(Buffer.from(ch.buffer).equals(Buffer.from(audio.channels[i]!.buffer))).toBe(true));
  });
});

describe('reconstruct a folder, output inside the input folder', () => {
  it('writes WAVs under the output folder and never reads them back as inputs', async () => {
    const IN3 = join(tmp, 'in3');
    mkdirSync(join(IN3, 'x'), { recursive: true });
    copyFileSync(join(IN, 'one.wav'), join(IN3, 'x', 'one.wav'));
    const OUT3 = join(IN3, 'out');
    const c = ctx();
    expect(await reconstructCommand([IN3, '-o', OUT3, '--steps', '1', '--seed', '1', '--weights', TINY, '--quiet'], c)).toBe(0);
    expect(c.lines).toContain(`reconstruct ${IN3} → ${OUT3}: 1 file: 1 done, 0 skipped (output exists), 0 failed`);
    const out = await readAudio(join(OUT3, 'x', 'one.wav'));
    expect(out.channels[0]!.length).toBe(24000);
    // the rerun plans the one input only (out/x/one.wav is not an input), finds it done, loads no model
    const plan = await planFolder(IN3, OUT3, 'audio', '.wav');
    expect(plan.jobs).toEqual([{ input: join(IN3, 'x', 'one.wav'), output: join(OUT3, 'x', 'one.wav') }]);
    const c2 = ctx();
    expect(await reconstructCommand([IN3, '-o', OUT3, '--weights', join(tmp, 'no-weights'), '--quiet'], c2)).toBe(0);
    expect(c2.lines).toContain(`reconstruct ${IN3} → ${OUT3}: 1 file: 0 done, 1 skipped (output exists), 0 failed`);
  });
});

describe('Ctrl-C in folder mode', () => {
  it('during the second file\'s write: exit 1, "interrupted", the first output kept, no partial or temporary file; a rerun resumes', async () => {
    const OUT4 = join(tmp, 'codes4');
    // the child's every fsync waits 3 s (tests/helpers/cli_slow_write.ts): the signal lands inside the second write
    const run = startHelper('cli_slow_write.ts', ['encode', IN, '-o', OUT4, '--weights', TINY, '--quiet'], {}, 240_000);
    const t0 = Date.now();
    while (run.stderrSoFar().split('[slow-write] syncing').length < 3) {
      if (run.child.exitCode !== null || Date.now() - t0 > 180_000) throw new Error(`never reached the second write:\n${run.stderrSoFar().slice(-2000)}`);
      await new Promise((r) => setTimeout(r, 50));
    }
    run.child.kill('SIGINT');
    const r = await run.result;
    expect(r.status, r.stderr.slice(-2000)).toBe(1);
    expect(r.stderr).toContain('interrupted (Ctrl-C)');
    expect(r.stdout).toMatch(/: 3 files: 1 done, 0 skipped \(output exists\), 1 failed; 1 file ignored \(not audio\); stopped at file 3 \(the files done are kept: run again to resume\)/);
    expect(files(OUT4)).toEqual(['a/b/two.mcodes']);
    const c = ctx();
    expect(await encodeCommand([IN, '-o', OUT4, '--weights', TINY, '--quiet'], c)).toBe(1);
    expect(c.lines).toContain(`encode ${IN} → ${OUT4}: 3 files: 1 done, 1 skipped (output exists), 1 failed; 1 file ignored (not audio)`);
  });
});

describe('refused before any work', () => {
  const W = ['--weights', join(tmp, 'no-weights'), '--quiet'];
  it('no -o, -o a file, -o the input folder, FLAC with --float, a folder without inputs', async () => {
    await expect(encodeCommand([IN, ...W], ctx())).rejects.toThrow(/^encode: a folder input needs an output folder: -o <dir>$/);
    await expect(encodeCommand([IN, '-o', join(IN, 'one.wav'), ...W], ctx())).rejects.toThrow(/^encode: output .*one\.wav: is a file; a folder input needs an output folder$/);
    await expect(reconstructCommand([IN, '-o', join(IN, '.'), ...W], ctx())).rejects.toThrow(/^reconstruct: output .*: is the input folder/);
    await expect(decodeCommand([IN, '-o', join(tmp, 'd'), '--format', 'flac', '--float', ...W], ctx())).rejects.toThrow(/^decode: FLAC holds integer samples only/);
    await expect(decodeCommand([join(IN, 'c'), '-o', join(tmp, 'd'), ...W], ctx())).rejects.toThrow(/^decode: no \.mcodes files below .*c \(1 file ignored\)$/);
    await expect(decodeCommand([join(tmp, 'x.mcodes'), '-o', join(tmp, 'x.flac'), '--float', ...W], ctx())).rejects.toThrow(/^decode: FLAC holds integer samples only/);
  });
});

describe('API: encodeFiles', () => {
  it('a list of inputs → one result per file, failures named, done ones skipped', async () => {
    const out = (n: string): string => join(tmp, 'api', n);
    mkdirSync(join(tmp, 'api'));
    const jobs = [
      { input: join(IN, 'one.wav'), output: out('one.mcodes') },
      { input: join(tmp, 'missing.wav'), output: out('missing.mcodes') },
      { input: join(IN, 'one.wav'), output: out('one.mcodes') },
    ];
    const r = await encodeFiles(tiny.codec, jobs);
    expect(r.map((x) => x.status)).toEqual(['done', 'failed', 'failed']);
    expect(r[1]!.reason).toMatch(/cannot read \(ENOENT\)/);
    expect(r[2]!.reason).toBe(`same output as ${join(IN, 'one.wav')} (rename one of them)`);
    expect((await encodeFiles(tiny.codec, jobs.slice(0, 1)))[0]!.status).toBe('skipped');
  });
});
