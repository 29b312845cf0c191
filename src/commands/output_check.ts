/**
 * Checks on a command's output file, made before any long work starts (an encode or decode at the real size takes
 * minutes to hours; finding out afterwards that `-o` was unusable wastes them, and an output that is one of the
 * inputs would destroy it): the output is not an existing folder and not any input file (compared by device and
 * inode, so `./a.wav`, `../x/a.wav`, hard links and symlinks are all caught), and its folder exists and takes a
 * new file (a probe file is created and removed: that is what the final temp-file-and-rename write will need).
 */
import { open, stat, unlink } from 'node:fs/promises';
import type { Stats } from 'node:fs';
import { dirname, resolve } from 'node:path';

export interface InputFile {
  path: string;
  /** how the message names it: 'input', 'prompt' */
  what: string;
}

const errCode = (e: unknown): string | undefined => (e as NodeJS.ErrnoException).code;

async function statOrNull(path: string): Promise<Stats | null> {
  try {
    return await stat(path);
  } catch (e) {
    if (errCode(e) === 'ENOENT') return null;
    throw e;
  }
}

export async function checkOutputFile(command: string, output: string, inputs: readonly InputFile[]): Promise<void> {
  const fail = (why: string): never => { throw new Error(`${command}: output ${output}: ${why}`); };
  let out: Stats | null;
  try {
    out = await statOrNull(output);
  } catch (e) {
    return fail(`cannot be written (${(e as Error).message})`);
  }
  if (out?.isDirectory()) fail('is a folder; give a file name');
  if (out) {
    for (const inp of inputs) {
      const s = await statOrNull(inp.path).catch(() => null);
      if (s && s.dev === out.dev && s.ino === out.ino) fail(`is the ${inp.what} file ${inp.path}; writing it would destroy the ${inp.what}`);
    }
  }
  const dir = dirname(resolve(output));
  const d = await statOrNull(dir).catch(() => null);
  if (!d) fail(`its folder ${dir} does not exist`);
  if (!d!.isDirectory()) fail(`${dir} is not a folder`);
  const probe = `${resolve(output)}.tmp-${process.pid}-probe`;
  try {
    await (await open(probe, 'w')).close();
  } catch (e) {
    fail(`cannot create a file in ${dir} (${errCode(e) ?? (e as Error).message})`);
  }
  await unlink(probe).catch(() => undefined);
}
