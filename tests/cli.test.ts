import { afterEach, describe, expect, it, vi } from 'vitest';
import { join } from 'node:path';
import { main } from '../src/cli.js';

const FIX = join(import.meta.dirname, 'fixtures');

function capture(): { out: string[]; err: string[]; restore: () => void } {
  const out: string[] = [], err: string[] = [];
  const l = vi.spyOn(console, 'log').mockImplementation((...a: unknown[]) => { out.push(a.join(' ')); });
  const e = vi.spyOn(console, 'error').mockImplementation((...a: unknown[]) => { err.push(a.join(' ')); });
  const w = vi.spyOn(process.stdout, 'write').mockImplementation((s: string | Uint8Array) => { out.push(String(s)); return true; });
  return { out, err, restore: () => { l.mockRestore(); e.mockRestore(); w.mockRestore(); } };
}

let cap: ReturnType<typeof capture> | null = null;
afterEach(() => { cap?.restore(); cap = null; });

describe('mucodec CLI', () => {
  it('parity prints one line per case and "N passed, M failed"', async () => {
    cap = capture();
    const code = await main(['parity', join(FIX, 'torchload')]);
    const lines = cap.out.join('\n').trim().split('\n');
    expect(lines.filter((l) => /^PASS torch.load /.test(l))).toHaveLength(5);
    expect(lines[lines.length - 1]).toBe('5 passed, 0 failed');
    expect(code).toBe(0);
  });

  it('parity exits 1 and says "not implemented" for an unknown stage', async () => {
    const { mkdtempSync, writeFileSync, mkdirSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const d = mkdtempSync(join(tmpdir(), 'mucodec-parity-'));
    mkdirSync(join(d, 'x'));
    writeFileSync(join(d, 'x', 'case.json'), JSON.stringify({ stage: 'no.such_stage', outputs: { y: 'out.y' }, tolerance: { max_abs: 0, rel_l2: 0 } }));
    cap = capture();
    const code = await main(['parity', d]);
    expect(cap.out.join('\n')).toMatch(/FAIL no.such_stage x not implemented/);
    expect(cap.out.join('\n')).toMatch(/0 passed, 1 failed/);
    expect(code).toBe(1);
  });

  it('inspect --json lists every tensor with dtype and shape', async () => {
    cap = capture();
    const code = await main(['inspect', join(FIX, 'torchload', 'views', 'weights.pt'), '--json']);
    expect(code).toBe(0);
    const parsed = JSON.parse(cap.out.join('')) as unknown;
    const list = (Array.isArray(parsed) ? parsed : (parsed as { tensors: unknown[] }).tensors) as Array<{ name: string; dtype: string; shape: number[] }>;
    expect(list.length).toBeGreaterThan(0);
    for (const t of list) { expect(typeof t.name).toBe('string'); expect(Array.isArray(t.shape)).toBe(true); }
  });

  it('rejects unknown commands, unknown backends and unknown options clearly', async () => {
    cap = capture();
    expect(await main(['frobnicate'])).toBe(1);
    expect(cap.err.join('\n')).toMatch(/unknown command "frobnicate"/);
    await expect(main(['backend', '--backend', 'tpu'])).rejects.toThrow(/unknown backend "tpu"/);
    await expect(main(['parity', FIX, '--tolerance', '1'])).rejects.toThrow(/unknown option --tolerance/);
  });
});

describe('messages (issue 12, B10)', () => {
  const COMMANDS = ['encode', 'decode', 'reconstruct', 'convert', 'inspect', 'fetch-weights', 'parity', 'bench', 'backend'];

  it.each(COMMANDS)('mucodec %s --help and -h print the command\'s usage, exit 0', async (cmd) => {
    for (const flag of ['--help', '-h']) {
      cap = capture();
      expect(await main([cmd, flag])).toBe(0);
      expect(cap.out.join('\n')).toMatch(new RegExp(`^usage: mucodec ${cmd}\\b`));
      cap.restore(); cap = null;
    }
  });

  it('an unknown option without a value is an unknown option; a known one without a value needs one', async () => {
    await expect(main(['encode', 'a.wav', '--frobnicate'])).rejects.toThrow(/^unknown option --frobnicate$/);
    await expect(main(['decode', 'a.mcodes', '--frobnicate', '--quiet'])).rejects.toThrow(/^unknown option --frobnicate$/);
    await expect(main(['decode', 'a.mcodes', '--steps'])).rejects.toThrow(/^option --steps needs a value$/);
    await expect(main(['encode', 'a.wav', '--weights', '--quiet'])).rejects.toThrow(/^option --weights needs a value$/);
  });

  it('inspect names a folder it is given, and a missing file', async () => {
    await expect(main(['inspect', FIX])).rejects.toThrow(new RegExp(`^inspect: ${FIX} is a folder; give a .pt, .pth, .safetensors or .mcodes file$`));
    await expect(main(['inspect', join(FIX, 'nope.pt')])).rejects.toThrow(/^inspect: .*nope\.pt: cannot read \(ENOENT\)$/);
  });

  it('errors in the --prompt file name the prompt file', async () => {
    const { mkdtempSync, writeFileSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const { encodeWav } = await import('../src/audio/wav.js');
    const { writeCodesFile } = await import('../src/codesfile.js');
    const d = mkdtempSync(join(tmpdir(), 'mucodec-prompt-'));
    const p3 = join(d, 'p3.wav');
    writeFileSync(p3, encodeWav({ sampleRate: 48000, channels: [0, 1, 2].map(() => new Float32Array(4800)) }));
    const mc = join(d, 'a.mcodes');
    await writeCodesFile(mc, { sampleRate: 48000, originalLength: 48000, channels: 2, nCodebooks: 1, frameRate: 25, codebookSize: 64, muqLayer: 7, codes: new Int32Array(26) });
    const tiny = join(import.meta.dirname, '..', 'weights', 'tiny');
    await expect(main(['decode', mc, '-o', join(d, 'o.wav'), '--prompt', p3, '--weights', tiny, '--quiet']))
      .rejects.toThrow(new RegExp(`^prompt ${p3}: only mono or stereo audio is supported \\(got 3 channels\\)$`));
    await expect(main(['reconstruct', join(import.meta.dirname, '..', 'test_wav', 'test.wav'), '-o', join(d, 'o.wav'), '--prompt', join(d, 'missing.wav'), '--weights', tiny, '--quiet']))
      .rejects.toThrow(/missing\.wav: cannot read \(ENOENT\)/);
  });
});

describe('progress display', () => {
  const fakeStream = (isTTY: boolean): { s: NodeJS.WriteStream; writes: string[] } => {
    const writes: string[] = [];
    return { s: { isTTY, write: (x: string) => { writes.push(x); return true; } } as unknown as NodeJS.WriteStream, writes };
  };

  it('on a TTY the line keeps redrawing between updates (elapsed runs on, ETA counts down) until done()', async () => {
    const { makeProgress } = await import('../src/commands/progress.js');
    const { s, writes } = fakeStream(true);
    const bar = makeProgress('decode', s, false, 40);
    bar.update(1, 2, 'window 1/2');
    expect(writes).toHaveLength(1);
    expect(writes[0]).toMatch(/^\r\x1b\[2Kdecode █+░+ {2}50% window 1\/2 elapsed 0:00 eta /);
    await new Promise((r) => setTimeout(r, 300));
    expect(writes.length).toBeGreaterThanOrEqual(3); // redrawn by the timer, not by updates
    expect(writes.every((w) => w.includes('50% window 1/2') || w === '\r\x1b[2K')).toBe(true);
    bar.done();
    const n = writes.length;
    expect(writes[n - 1]).toBe('\r\x1b[2K');
    await new Promise((r) => setTimeout(r, 150));
    expect(writes).toHaveLength(n); // the timer stopped
    bar.done(); // idempotent
    expect(writes).toHaveLength(n);
  });

  it('off a TTY: a plain line at the start and at every 10 %, no timer', async () => {
    const { makeProgress } = await import('../src/commands/progress.js');
    const { s, writes } = fakeStream(false);
    const bar = makeProgress('encode', s, false, 20);
    for (let i = 1; i <= 20; i++) bar.update(i, 20, `window ${i}/20`);
    await new Promise((r) => setTimeout(r, 100));
    expect(writes).toEqual([5, 10, 20, 30, 40, 50, 60, 70, 80, 90, 100].map((p) => `encode: ${p}% window ${p / 5}/20\n`));
    bar.done();
  });
});
