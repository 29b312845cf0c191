/**
 * Long synchronous computations written once as generators (one `yield` per unit of work: a sampler step, a DiT
 * block) and run either synchronously (`drainSteps`) or handing the event loop back between units
 * (`drainStepsAsync`): timers, signal handlers, I/O and an AbortSignal fired from outside get through, which a
 * single synchronous stretch of minutes (a real-size DiT step on CPU) would hold back.
 */

/**
 * A read of device data to the host that a step generator needs before it can go on (`yield read` hands it to the
 * driver; `read.value` holds the values afterwards). `drainStepsAsync` awaits `tensor.data()`: the only way to read
 * a device backend (webgpu) in Node; `drainSteps` reads synchronously (`dataSync()`: what the wasm and cpu backends
 * do today, same values). The tensor is the generator's: it stays alive until the driver has read it.
 */
export class HostRead {
  private v: Float32Array | Int32Array | Uint8Array | null = null;
  constructor(readonly tensor: { dataSync(): unknown; data(): Promise<unknown> }, readonly what: string) {}
  get value(): Float32Array {
    if (!this.v) throw new Error(`${this.what}: read before the driver fulfilled it (yield it first)`);
    return this.v as Float32Array;
  }
  fulfilSync(): void { this.v = this.tensor.dataSync() as Float32Array; }
  async fulfil(): Promise<void> { this.v = (await this.tensor.data()) as Float32Array; }
}

/** what step generators yield: a label for the unit of work just done, or a read the driver performs */
export type Step = string | HostRead;

/** Run a step generator to its end, synchronously. */
export function drainSteps<Y, R>(gen: Generator<Y, R, void>): R {
  for (;;) {
    const r = gen.next();
    if (r.done) return r.value;
    if (r.value instanceof HostRead) r.value.fulfilSync();
  }
}

/** Hand the event loop back for one turn. */
export function yieldToEventLoop(): Promise<void> {
  return new Promise<void>((res) => setImmediate(res));
}

/**
 * Run a step generator to its end, giving the event loop a turn at every yield. `between` may throw (e.g. an abort
 * check); the generator is then closed, so its `finally` blocks dispose what it holds.
 */
export async function drainStepsAsync<Y, R>(gen: Generator<Y, R, void>, between?: () => void): Promise<R> {
  try {
    for (;;) {
      const r = gen.next();
      if (r.done) return r.value;
      if (r.value instanceof HostRead) { await r.value.fulfil(); continue; }
      await yieldToEventLoop();
      between?.();
    }
  } catch (e) {
    gen.return(undefined as never);
    throw e;
  }
}

/** Throw the signal's reason (an Error; else `new Error(what)`) once it is aborted. */
export function throwIfAborted(signal: AbortSignal | undefined, what = 'aborted'): void {
  if (signal?.aborted) {
    const r: unknown = signal.reason;
    throw r instanceof Error ? r : new Error(what);
  }
}

/** An abort check for `drainStepsAsync`'s `between` (undefined without a signal). */
export function abortCheck(signal?: AbortSignal): (() => void) | undefined {
  return signal ? () => throwIfAborted(signal) : undefined;
}
