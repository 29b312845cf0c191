/**
 * tests/helpers/cli_src.ts with a slow final write: every FileHandle.sync() (only the atomic output write syncs)
 * first prints "[slow-write] syncing" to stderr, then waits 3 s, so a test can send a signal while the output's
 * temporary file exists (tests/cli_signals.test.ts). vite-node's dev server listens for SIGTERM itself (it closes and
 * exits 143); the built CLI has no such listener, so it is removed here to leave the signal to the CLI.
 */
import { open } from 'node:fs/promises';

const probe = await open(process.execPath, 'r');
const proto = Object.getPrototypeOf(probe) as { sync: (this: unknown) => Promise<void> };
await probe.close();
const sync = proto.sync;
proto.sync = async function slowSync(this: unknown): Promise<void> {
  process.stderr.write('[slow-write] syncing\n');
  await new Promise((r) => setTimeout(r, 3000));
  return sync.call(this);
};

process.removeAllListeners('SIGTERM');
await import('./cli_src.js');
