/**
 * Ctrl-C (SIGINT), SIGTERM and SIGHUP during a command: the first one aborts `signal` (the codec stops at its next
 * event-loop turn; a final write run through withWriteSignal stops before its rename and removes its temporary
 * file, src/atomic.ts), so the command fails with "interrupted (…): no output written". The handlers are then
 * removed, so a second signal has its default effect: the process ends at once, even inside a long kernel.
 */
const SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;

export interface Interrupts {
  signal: AbortSignal;
  /** removes the handlers (call in a finally) */
  dispose(): void;
}

export function watchInterrupts(): Interrupts {
  const ac = new AbortController();
  const dispose = (): void => { for (const s of SIGNALS) process.removeListener(s, handler); };
  function handler(sig: NodeJS.Signals): void {
    dispose();
    ac.abort(new Error(`interrupted (${sig === 'SIGINT' ? 'Ctrl-C' : sig}): no output written`));
  }
  for (const s of SIGNALS) process.on(s, handler);
  return { signal: ac.signal, dispose };
}
