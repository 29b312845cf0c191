/**
 * Ctrl-C (SIGINT), SIGTERM and SIGHUP during a command: the first one aborts the work (the codec stops at its next
 * event-loop turn, a final write in flight removes its temporary file; src/atomic.ts) and the command fails with
 * "interrupted (…): no output written"; a second one exits at once, after removing the temporary files.
 */
import { removeTempFilesSync, withWriteSignal } from '../atomic.js';

const SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;
const SIGNAL_NUMBERS: Record<(typeof SIGNALS)[number], number> = { SIGINT: 2, SIGTERM: 15, SIGHUP: 1 };

export async function withInterrupts<T>(work: (signal: AbortSignal) => Promise<T>): Promise<T> {
  const ac = new AbortController();
  const handler = (sig: NodeJS.Signals): void => {
    if (ac.signal.aborted) {
      removeTempFilesSync();
      process.exit(128 + (SIGNAL_NUMBERS[sig as (typeof SIGNALS)[number]] ?? 0));
    }
    ac.abort(new Error(`interrupted (${sig === 'SIGINT' ? 'Ctrl-C' : sig}): no output written`));
  };
  for (const s of SIGNALS) process.on(s, handler);
  try {
    return await withWriteSignal(ac.signal, () => work(ac.signal));
  } finally {
    for (const s of SIGNALS) process.removeListener(s, handler);
  }
}
