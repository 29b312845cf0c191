/**
 * Shared vitest glue: one test per fixture case folder below tests/fixtures/<family>/, run through the same
 * runner as `mucodec parity`. A case folder is copied into tests/fixtures only once its stage is
 * implemented, so every case present must pass (no skips).
 */
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../src/backend.js';
import { formatResult, runCase } from '../src/parity.js';
import '../src/stages/index.js';

export const FIXTURES = join(import.meta.dirname, 'fixtures');

export function fixtureDir(family: string, name: string): string {
  return join(FIXTURES, family, name);
}

export function defineParityTests(family: string, opts: { only?: string[] } = {}): void {
  const root = join(FIXTURES, family);
  const cases = existsSync(root)
    ? readdirSync(root).filter((d) => existsSync(join(root, d, 'case.json'))).filter((d) => !opts.only || opts.only.includes(d)).sort()
    : [];
  describe(`parity: ${family}`, () => {
    beforeAll(async () => { await initBackend(); });
    it('has fixture cases', () => { expect(cases.length).toBeGreaterThan(0); });
    for (const name of cases) {
      it(name, async () => {
        const r = await runCase(join(root, name));
        const line = formatResult(r);
        if (!r.pass) console.log(line);
        expect(r.error ?? null, line).toBeNull();
        expect(r.pass, line).toBe(true);
      });
    }
  });
}
