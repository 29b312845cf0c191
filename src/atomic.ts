/** Atomic file writes: write `<path>.tmp-<pid>-<n>` in the same folder, then rename over `path`. A failed or
 *  interrupted write never leaves a half-written file under the final name, nor its temporary file. */
import { AsyncLocalStorage } from 'node:async_hooks';
import { open, rename, unlink } from 'node:fs/promises';

let counter = 0;

/** the AbortSignal that stops the writes started inside withWriteSignal() (the CLI's Ctrl-C / SIGTERM / SIGHUP,
 *  src/commands/interrupt.ts) */
const writeSignal = new AsyncLocalStorage<AbortSignal>();

/**
 * Runs `fn` so that every writeFileAtomic started inside it (however deep: writeWav, writeCodesFile) checks `signal`
 * between its steps and before the rename: once aborted, the write removes its temporary file and throws the
 * signal's reason, and the final file is left as it was.
 */
export function withWriteSignal<T>(signal: AbortSignal, fn: () => Promise<T>): Promise<T> {
  return writeSignal.run(signal, fn);
}

/** the signal of the innermost withWriteSignal() around the caller (for writers other than writeFileAtomic) */
export function currentWriteSignal(): AbortSignal | undefined {
  return writeSignal.getStore();
}

function abortReason(signal: AbortSignal): Error {
  return signal.reason instanceof Error ? signal.reason : new Error(String(signal.reason));
}

export async function writeFileAtomic(path: string, data: Uint8Array): Promise<void> {
  const tmp = `${path}.tmp-${process.pid}-${counter++}`;
  const signal = writeSignal.getStore();
  const check = (): void => { if (signal?.aborted) throw abortReason(signal); };
  let fh;
  try {
    check();
    fh = await open(tmp, 'w');
    await fh.writeFile(data);
    check();
    await fh.sync();
    await fh.close();
    fh = undefined;
    check();
    await rename(tmp, path);
  } catch (e) {
    if (fh) await fh.close().catch(() => undefined);
    await unlink(tmp).catch(() => undefined);
    if (signal?.aborted) throw abortReason(signal);
    throw new Error(`${path}: cannot write (${(e as Error).message})`);
  }
}
