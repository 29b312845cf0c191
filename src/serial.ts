/**
 * One-at-a-time execution of a codec's calls. A MuCodec's modules keep state between the phases of a call (weights
 * uploaded and released per window, the VAE and the vocoder taking turns on the wasm heap), so two calls running
 * interleaved would free each other's tensors: calls on one codec are queued and run in the order they were made.
 *
 * `close()` (the codec's dispose): the running call is aborted at its next check point, calls still waiting are
 * rejected without starting, and the promise `close` returns resolves once nothing runs any more.
 */
export class SerialQueue {
  private tail: Promise<void> = Promise.resolve();
  private current: { what: string; ac: AbortController } | null = null;
  private closed = false;
  private pending = 0;

  /** true while a call runs or waits */
  get busy(): boolean {
    return this.pending > 0;
  }

  /**
   * Run `fn` after every earlier call has settled. `fn` gets a signal that fires when the caller's `signal`
   * does or when the queue is closed while it runs.
   */
  run<T>(what: string, signal: AbortSignal | undefined, fn: (signal: AbortSignal) => Promise<T>): Promise<T> {
    if (this.closed) return Promise.reject(new Error(`MuCodec: ${what} called after dispose()`));
    this.pending++;
    const start = async (): Promise<T> => {
      if (this.closed) throw new Error(`MuCodec: dispose() was called before this ${what} started; it did not run`);
      const ac = new AbortController();
      const forward = (): void => ac.abort(signal!.reason);
      if (signal?.aborted) forward();
      else signal?.addEventListener('abort', forward, { once: true });
      this.current = { what, ac };
      try {
        return await fn(ac.signal);
      } finally {
        this.current = null;
        signal?.removeEventListener('abort', forward);
      }
    };
    const result = this.tail.then(start);
    const settled = result.then(() => undefined, () => undefined);
    this.tail = settled.then(() => { this.pending--; });
    return result;
  }

  /**
   * A streamed call (e.g. decodeStream): takes its turn when the consumer first pulls, holds the queue while the
   * consumer iterates, and releases it when the stream ends, fails or is left early (`break` in a for-await calls
   * `return()`, which runs `make`'s finally blocks first). `make` gets the signal `run` gives.
   */
  async *stream<T>(what: string, signal: AbortSignal | undefined, make: (signal: AbortSignal) => AsyncGenerator<T, void, void>): AsyncGenerator<T, void, void> {
    let release!: () => void;
    const held = new Promise<void>((r) => { release = r; });
    let started!: (s: AbortSignal) => void;
    const turn = new Promise<AbortSignal>((r) => { started = r; });
    const done = this.run(what, signal, (s) => { started(s); return held; });
    try {
      // the turn comes, or the queue refuses the call (closed before it started)
      const s = await Promise.race([turn, done.then(() => { throw new Error(`MuCodec: ${what} ended before it started`); })]);
      yield* make(s);
    } finally {
      release();
      await done.catch(() => undefined);
    }
  }

  /** Stop accepting calls; abort the running one. Resolves when nothing runs any more. */
  close(): Promise<void> {
    this.closed = true;
    const c = this.current;
    c?.ac.abort(new Error(`MuCodec: dispose() was called during this ${c.what}; it stopped`));
    return this.tail;
  }
}
