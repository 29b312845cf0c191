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
