/**
 * The output file of encode / decode / reconstruct is checked before any work (issue 12, B2/B3): an output that is
 * an input (or the --prompt file) by another spelling, a hard link or a symlink is refused, and so are an output
 * that is a folder or lies in a missing folder. `--weights` names a folder that does not exist in every call: the
 * output check must come first (the old code found out only after the work, or compared the strings).
 */
import { copyFileSync, linkSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { main } from '../src/cli.js';
import { writeCodesFile } from '../src/codesfile.js';
import { checkOutputFile } from '../src/commands/output_check.js';

const ROOT = join(import.meta.dirname, '..');
const tmp = mkdtempSync(join(tmpdir(), 'mucodec-output-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const NO_WEIGHTS = ['--weights', join(tmp, 'no-such-weights'), '--quiet'];
const wav = join(tmp, 'x', 'a.wav');
mkdirSync(join(tmp, 'x'));
copyFileSync(join(ROOT, 'test_wav', 'test.wav'), wav);
const original = readFileSync(wav);
const mc = join(tmp, 'x', 'a.mcodes');
await writeCodesFile(mc, { sampleRate: 48000, originalLength: 48000, channels: 2, nCodebooks: 1, frameRate: 25, codebookSize: 64, muqLayer: 7, codes: Int32Array.from({ length: 26 }, (_, i) => i) });
linkSync(wav, join(tmp, 'hard.wav'));
symlinkSync(wav, join(tmp, 'soft.wav'));

describe('output = an input, however spelled', () => {
  const cwd = process.cwd();
  afterAll(() => process.chdir(cwd));

  it.each([
    ['./a.wav (relative, from its folder)', () => { process.chdir(join(tmp, 'x')); return ['a.wav', './a.wav']; }],
    ['../x/a.wav', () => { process.chdir(join(tmp, 'x')); return ['a.wav', '../x/a.wav']; }],
    ['a hard link', () => [wav, join(tmp, 'hard.wav')]],
    ['a symlink', () => [wav, join(tmp, 'soft.wav')]],
    ['an absolute path to a relative input', () => { process.chdir(tmp); return [relative(tmp, wav), wav]; }],
  ])('encode and reconstruct refuse %s; the input is intact', async (_name, paths) => {
    const [input, output] = paths();
    await expect(main(['encode', input, '-o', output, ...NO_WEIGHTS])).rejects.toThrow(/^encode: output .*a\.wav: is the input file .*a\.wav; writing it would destroy the input$|^encode: output .*(hard|soft)\.wav: is the input file/);
    await expect(main(['reconstruct', input, '-o', output, ...NO_WEIGHTS])).rejects.toThrow(/^reconstruct: output .*: is the input file/);
    process.chdir(cwd);
    expect(readFileSync(wav).equals(original)).toBe(true);
  });

  it('decode refuses an output that is its input or its --prompt file', async () => {
    await expect(main(['decode', mc, '-o', join(tmp, 'x', '.', 'a.mcodes'), ...NO_WEIGHTS])).rejects.toThrow(/^decode: output .*: is the input file/);
    await expect(main(['decode', mc, '-o', join(tmp, 'soft.wav'), '--prompt', wav, ...NO_WEIGHTS])).rejects.toThrow(/^decode: output .*soft\.wav: is the prompt file .*a\.wav; writing it would destroy the prompt$/);
    await expect(main(['reconstruct', join(tmp, 'hard.wav'), '-o', join(tmp, 'x', '..', 'x', 'a.wav'), '--prompt', join(tmp, 'hard.wav'), ...NO_WEIGHTS])).rejects.toThrow(/is the input file/);
    expect(readFileSync(wav).equals(original)).toBe(true);
  });
});

describe('output folder checked before the work', () => {
  it('a missing folder, a folder given as the output, a file given as the folder', async () => {
    await expect(main(['encode', wav, '-o', join(tmp, 'nope', 'a.mcodes'), ...NO_WEIGHTS])).rejects.toThrow(/^encode: output .*nope\/a\.mcodes: its folder .*nope does not exist$/);
    await expect(main(['decode', mc, '-o', join(tmp, 'x'), ...NO_WEIGHTS])).rejects.toThrow(/^decode: output .*x: is a folder; give a file name$/);
    writeFileSync(join(tmp, 'plain'), 'x');
    await expect(main(['reconstruct', wav, '-o', join(tmp, 'plain', 'o.wav'), ...NO_WEIGHTS])).rejects.toThrow(/^reconstruct: output .*plain\/o\.wav: (cannot be written|.*is not a folder)/);
    // nothing was left behind (no probe file)
    expect(readdirSync(tmp).filter((f) => f.includes('.tmp-'))).toEqual([]);
    expect(readdirSync(join(tmp, 'x')).sort()).toEqual(['a.mcodes', 'a.wav']);
  });

  // /sys (sysfs) takes no new file even from root, so this holds whoever runs the tests
  it.runIf(process.platform === 'linux')('a folder that takes no new file', async () => {
    await expect(main(['encode', wav, '-o', '/sys/o.mcodes', ...NO_WEIGHTS])).rejects.toThrow(/^encode: output \/sys\/o\.mcodes: cannot create a file in \/sys \(EACCES\)$/);
  });

  it('a writable folder and a new output pass, leaving nothing behind', async () => {
    await expect(checkOutputFile('encode', join(tmp, 'new.mcodes'), [{ path: wav, what: 'input' }])).resolves.toBeUndefined();
    expect(readdirSync(tmp).filter((f) => f.startsWith('new.mcodes'))).toEqual([]);
  });
});
