/**
 * scripts/gpu-pack.sh's detach / attach / size / stage on a local clone of this repository (no network; the Node and
 * runtime carry that `pack` downloads are not needed): detaching tests/fixtures leaves `git status` clean and the index
 * whole (a commit made while detached still holds every fixture), the size report counts exactly what `stage` copies,
 * and attach restores the fixtures byte for byte.
 */
import { copyFileSync, existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { runProcess } from './helpers/run_child.js';

const ROOT = join(import.meta.dirname, '..');
const tmp = mkdtempSync(join(tmpdir(), 'mucodec-gpupack-'));
const repo = join(tmp, 'repo');
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

async function sh(cmd: string, args: string[], cwd = repo): Promise<string> {
  const env = { ...process.env, GIT_AUTHOR_NAME: 't', GIT_AUTHOR_EMAIL: 't@t', GIT_COMMITTER_NAME: 't', GIT_COMMITTER_EMAIL: 't@t' };
  const r = await runProcess(cmd, args, { cwd, env }, 120_000);
  if (r.status !== 0 && !(cmd === 'bash' && args[1] === 'size')) throw new Error(`${cmd} ${args.join(' ')}: exit ${r.status}\n${r.stdout}\n${r.stderr}`);
  return r.stdout + r.stderr;
}
const git = (...a: string[]) => sh('git', a);
const pack = (...a: string[]) => sh('bash', ['scripts/gpu-pack.sh', ...a]);

describe('scripts/gpu-pack.sh', () => {
  it('detach keeps the index and a clean status, size counts what stage copies, attach restores the fixtures exactly', async () => {
    await sh('git', ['clone', '-q', '--shared', ROOT, repo], tmp);
    // the script and .gitignore under test (identical to the committed ones once committed)
    for (const f of ['scripts/gpu-pack.sh', '.gitignore']) copyFileSync(join(ROOT, f), join(repo, f));
    const statusBefore = await git('status', '--porcelain');
    const files = (await git('ls-files', 'tests/fixtures')).trim().split('\n');
    expect(files.length).toBeGreaterThan(50);
    const sample = files.find((f) => f.endsWith('.safetensors'))!;
    const bytes = readFileSync(join(repo, sample));

    expect(await pack('size')).toMatch(/OVER the device tool's 64 MiB: run scripts\/gpu-pack.sh detach first/);
    expect(await pack('detach')).toMatch(/detached tests\/fixtures/);
    expect(existsSync(join(repo, 'tests', 'fixtures'))).toBe(false);
    expect(await git('status', '--porcelain')).toBe(statusBefore);
    expect((await git('ls-files', 'tests/fixtures')).trim().split('\n')).toEqual(files);
    // what a stop's automatic commit does: add everything, commit; the fixtures stay in the commit
    await git('add', '-A');
    await git('commit', '-q', '--allow-empty', '-am', 'commit while detached');
    expect((await git('ls-tree', '-r', '--name-only', 'HEAD', 'tests/fixtures')).trim().split('\n')).toEqual(files);

    const report = await pack('size');
    expect(report).toMatch(new RegExp(`tests/fixtures: ${files.length} of ${files.length} files detached`));
    expect(report).not.toMatch(/^\s+\d+\s+\d+ files\s+tests\/fixtures$/m);
    const total = Number(/total (\d+) bytes/.exec(report)![1]);
    // the measured carry (.gpu-carry + .gl, 50.4 MiB on 2026-12-04) must fit beside the tracked tree
    const carry = 50.4 * 2 ** 20;
    expect(total + carry).toBeLessThanOrEqual(64 * 2 ** 20);
    const stage = join(tmp, 'stage');
    await pack('stage', stage);
    const staged = Number((await sh('du', ['-sb', '--apparent-size', stage])).split('\t')[0]);
    const listed = (await pack('size', '--list')).split('\n').filter((l) => /^\d+\t/.test(l));
    expect(listed.reduce((s, l) => s + Number(l.split('\t')[0]), 0)).toBe(total);
    for (const l of listed.slice(-3)) expect(statSync(join(stage, l.split('\t')[1]!)).size).toBe(Number(l.split('\t')[0]));
    expect(staged).toBeGreaterThanOrEqual(total);
    expect(existsSync(join(stage, 'tests', 'fixtures'))).toBe(false);

    expect(await pack('attach')).toMatch(new RegExp(`attached tests/fixtures \\(${files.length} files, identical to the index\\)`));
    expect(await git('status', '--porcelain')).toBe(statusBefore);
    expect(await git('diff', '--stat', 'HEAD~1', '--', 'tests/fixtures')).toBe('');
    expect(await git('ls-files', '-t', 'tests/fixtures')).not.toMatch(/^S /m);
    expect(readFileSync(join(repo, sample)).equals(bytes)).toBe(true);
  }, 240_000);
});
