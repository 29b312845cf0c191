/**
 * SIGTERM, SIGHUP and Ctrl-C (SIGINT) arriving while the output is being written (issue 12, B9): the write stops
 * before its rename, its temporary file is removed, and the command exits 1 with "interrupted (…): no output
 * written". Before, SIGTERM/SIGHUP killed the process and left `<out>.tmp-<pid>-<n>`, and Ctrl-C let the write
 * finish. Each run is a child process (tests/helpers/cli_slow_write.ts: the CLI on the sources, its final sync
 * slowed to 3 s so that the signal lands inside the write).
 */
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { startHelper } from './helpers/run_child.js';

const ROOT = join(import.meta.dirname, '..');
const tmp = mkdtempSync(join(tmpdir(), 'mucodec-signals-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('a signal during the final write', () => {
  it.each([
    ['SIGTERM', 'SIGTERM'],
    ['SIGHUP', 'SIGHUP'],
    ['SIGINT', 'Ctrl-C'],
  ] as const)('%s: exit 1, "interrupted", no output and no temporary file', async (sig, label) => {
    const dir = mkdtempSync(join(tmp, `${sig}-`));
    const out = join(dir, 'song.mcodes');
    const run = startHelper('cli_slow_write.ts', ['encode', join(ROOT, 'test_wav', 'test.wav'), '-o', out, '--weights', join(ROOT, 'weights', 'tiny'), '--quiet'], {}, 240_000);
    const t0 = Date.now();
    while (!run.stderrSoFar().includes('[slow-write] syncing')) {
      if (run.child.exitCode !== null || Date.now() - t0 > 180_000) throw new Error(`the encode never reached its final write:\n${run.stderrSoFar().slice(-2000)}`);
      await new Promise((r) => setTimeout(r, 50));
    }
    expect(readdirSync(dir).filter((f) => f.startsWith('song.mcodes.tmp-'))).toHaveLength(1); // the write is in flight
    run.child.kill(sig);
    const r = await run.result;
    expect(r.signal, r.stderr.slice(-2000)).toBeNull();
    expect(r.status).toBe(1);
    expect(r.stderr).toContain(`interrupted (${label}): no output written`);
    expect(readdirSync(dir)).toEqual([]);
  });
});
