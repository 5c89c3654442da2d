/**
 * Waiting primitives for the socket: a set of waiters woken together, and a cancellable
 * sleep. Every timer and abort listener is removed when a wait ends, so nothing outlives a
 * closed socket (Deno's test sanitizers check that).
 *
 * @module
 */

type Timer = ReturnType<typeof setTimeout>;

interface Waiter {
  resolve(value: boolean): void;
  timer: Timer | undefined;
  signal: AbortSignal | undefined;
  onAbort: (() => void) | undefined;
}

/** Callers waiting for the same kind of event (readability, room to send). */
export class WaiterSet {
  #waiters = new Set<Waiter>();

  /** Number of pending waits. */
  get size(): number {
    return this.#waiters.size;
  }

  /**
   * Resolves true when woken with true, false on wake(false), timeout or abort.
   * `timeoutMs` undefined (or Infinity) waits without a timer.
   */
  wait(timeoutMs?: number, signal?: AbortSignal): Promise<boolean> {
    return new Promise<boolean>((resolve) => {
      const waiter: Waiter = { resolve, timer: undefined, signal, onAbort: undefined };
      if (timeoutMs !== undefined && timeoutMs !== Infinity) {
        waiter.timer = setTimeout(() => this.#settle(waiter, false), Math.max(0, timeoutMs));
      }
      if (signal !== undefined) {
        waiter.onAbort = () => this.#settle(waiter, false);
        signal.addEventListener("abort", waiter.onAbort);
      }
      this.#waiters.add(waiter);
    });
  }

  /**
   * Callback form of {@link wait} for hot paths (no promise, no timer, no abort listener):
   * `callback` gets the value of the next wake, or false when the returned function is
   * called first. Calling that function after the wake does nothing.
   */
  listen(callback: (value: boolean) => void): () => void {
    const waiter: Waiter = {
      resolve: callback,
      timer: undefined,
      signal: undefined,
      onAbort: undefined,
    };
    this.#waiters.add(waiter);
    return () => this.#settle(waiter, false);
  }

  /** Ends every pending wait with `value`. */
  wakeAll(value: boolean): void {
    if (this.#waiters.size === 0) return;
    for (const waiter of [...this.#waiters]) this.#settle(waiter, value);
  }

  #settle(waiter: Waiter, value: boolean): void {
    if (!this.#waiters.delete(waiter)) return;
    clearTimeout(waiter.timer);
    if (waiter.onAbort !== undefined) waiter.signal!.removeEventListener("abort", waiter.onAbort);
    waiter.resolve(value);
  }
}

/** Resolves after `ms`, or at once when `signal` aborts (so close() never waits a backoff). */
export function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const done = () => {
      clearTimeout(timer);
      signal.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener("abort", done);
  });
}
