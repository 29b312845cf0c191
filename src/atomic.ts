/** Atomic file writes: write `<path>.tmp-<pid>-<n>` in the same folder, then rename over `path`. A failed or
 *  interrupted write never leaves a half-written file under the final name, nor its temporary file. */
import { AsyncLocalStorage } from 'node:async_hooks';
import { open, rename, unlink, type FileHandle } from 'node:fs/promises';

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

/**
 * An output file written progressively (e.g. a streamed WAV) under the same rule: bytes go to `<path>.tmp-<pid>-<n>`
 * as they come (`write` appends, `writeAt` patches earlier bytes, e.g. a header completed at the end); `commit`
 * syncs, closes and renames it over `path`; `abort` (or any failed step) closes and removes the temporary file.
 * Inside withWriteSignal every step checks the signal. A process killed outright (SIGKILL, a second Ctrl-C inside a
 * long kernel) cannot run this cleanup: its `<path>.tmp-…` file stays, never a partial file under `path`.
 */
export interface AtomicFile {
  readonly path: string;
  readonly tmpPath: string;
  /** bytes appended so far */
  readonly size: number;
  write(data: Uint8Array): Promise<void>;
  writeAt(position: number, data: Uint8Array): Promise<void>;
  commit(): Promise<void>;
  abort(): Promise<void>;
}

export async function openAtomicFile(path: string): Promise<AtomicFile> {
  const tmpPath = `${path}.tmp-${process.pid}-${counter++}`;
  const signal = writeSignal.getStore();
  const check = (): void => { if (signal?.aborted) throw abortReason(signal); };
  check();
  let fh: FileHandle | undefined;
  try {
    fh = await open(tmpPath, 'w');
  } catch (e) {
    throw new Error(`${path}: cannot write (${(e as Error).message})`);
  }
  let size = 0;
  let closed = false;
  const abort = async (): Promise<void> => {
    if (closed) return;
    closed = true;
    await fh?.close().catch(() => undefined);
    fh = undefined;
    await unlink(tmpPath).catch(() => undefined);
  };
  /** one step: a failure (or an abort of the signal) removes the temporary file and names the output */
  const step = async (what: () => Promise<void>): Promise<void> => {
    if (closed) throw new Error(`${path}: write after the file was committed or aborted`);
    try {
      check();
      await what();
    } catch (e) {
      await abort();
      if (signal?.aborted) throw abortReason(signal);
      throw new Error(`${path}: cannot write (${(e as Error).message})`);
    }
  };
  const writeAll = async (data: Uint8Array, position: number): Promise<void> => {
    for (let off = 0; off < data.length;) {
      const { bytesWritten } = await fh!.write(data, off, data.length - off, position + off);
      off += bytesWritten;
    }
  };
  return {
    path, tmpPath,
    get size() { return size; },
    write: (data) => step(async () => { await writeAll(data, size); size += data.length; }),
    writeAt: (position, data) => step(() => writeAll(data, position)),
    commit: () => step(async () => {
      await fh!.sync();
      await fh!.close();
      fh = undefined;
      check();
      await rename(tmpPath, path);
      closed = true;
    }),
    abort,
  };
}
