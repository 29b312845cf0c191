/**
 * Issue 8: the parity suite passes whatever the thread count. The vitest parity files run with one wasm thread per
 * fork (vitest.config.ts); this runs EVERY reference case in tests/fixtures again through `mucodec parity` on a
 * 2-thread XNNPACK pool (its own process: the pool size is fixed when the wasm backend starts).
 */
import { readdirSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runHelper } from './helpers/run_child.js';

const ROOT = join(import.meta.dirname, '..');
const FIX = join(ROOT, 'tests', 'fixtures');

/** case folders = folders holding a case.json, one level below each family */
function caseCount(): number {
  let n = 0;
  for (const fam of readdirSync(FIX, { withFileTypes: true })) {
    if (!fam.isDirectory()) continue;
    for (const c of readdirSync(join(FIX, fam.name), { withFileTypes: true })) {
      if (c.isDirectory() && existsSync(join(FIX, fam.name, c.name, 'case.json'))) n++;
    }
  }
  return n;
}

describe('parity with 2 wasm threads', () => {
  it('every reference case passes on a 2-thread pool', async () => {
    const r = await runHelper('parity_cli.ts', [FIX], { MUCODEC_THREADS: '2', MUCODEC_BACKEND: 'wasm' }, 900_000);
    const out = r.stdout;
    const first = out.split('\n').find((l) => l.startsWith('{'));
    expect(first, `no thread line; stderr:\n${r.stderr.slice(-2000)}`).toBeDefined();
    expect((JSON.parse(first!) as { threads: number }).threads).toBe(2);
    const failed = out.split('\n').filter((l) => l.startsWith('FAIL'));
    expect(failed, failed.join('\n')).toEqual([]);
    const n = caseCount();
    expect(n).toBeGreaterThanOrEqual(35);
    expect(out).toContain(`${n} passed, 0 failed`);
    expect(r.status).toBe(0);
  });
});
