/** Atomic file writes: write `<path>.tmp-<pid>-<n>` in the same folder, then rename over `path`. A failed or
 *  interrupted write never leaves a half-written file under the final name. */
import { open, rename, unlink } from 'node:fs/promises';

let counter = 0;

export async function writeFileAtomic(path: string, data: Uint8Array): Promise<void> {
  const tmp = `${path}.tmp-${process.pid}-${counter++}`;
  let fh;
  try {
    fh = await open(tmp, 'w');
    await fh.writeFile(data);
    await fh.sync();
    await fh.close();
    fh = undefined;
    await rename(tmp, path);
  } catch (e) {
    if (fh) await fh.close().catch(() => undefined);
    await unlink(tmp).catch(() => undefined);
    throw new Error(`${path}: cannot write (${(e as Error).message})`);
  }
}
