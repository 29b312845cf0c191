/**
 * Ctrl-C (SIGINT), SIGTERM and SIGHUP during a command: the first one aborts the work (the codec stops at its next
 * event-loop turn; a final write in flight stops before its rename and removes its temporary file, src/atomic.ts)
 * and the command fails with "interrupted (…): no output written". The handlers are then removed, so a second
 * signal has its default effect: the process ends at once, even inside a long synchronous kernel.
 */
import { withWriteSignal } from '../atomic.js';

const SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;

export async function withInterrupts<T>(work: (signal: AbortSignal) => Promise<T>): Promise<T> {
  const ac = new AbortController();
  const remove = (): void => { for (const s of SIGNALS) process.removeListener(s, handler); };
  function handler(sig: NodeJS.Signals): void {
    remove();
    ac.abort(new Error(`interrupted (${sig === 'SIGINT' ? 'Ctrl-C' : sig}): no output written`));
  }
  for (const s of SIGNALS) process.on(s, handler);
  try {
    return await withWriteSignal(ac.signal, () => work(ac.signal));
  } finally {
    remove();
  }
}
