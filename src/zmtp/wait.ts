/**
 * Waiting primitives for the socket: a set of waiters woken together, and a cancellable
 * sleep. Every timer and abort listener is removed when a wait ends, so nothing outlives a
 * closed socket (Deno's test sanitizers check that).
 *
 * @module
 */

/** One pending wait; an object of its own, so the same callback may wait twice. */
interface Waiter {
  resolve(value: boolean): void;
}

/** Callers waiting for the same kind of event (readability, room to send). */
export class WaiterSet {
  #waiters = new Set<Waiter>();

  /** Number of pending waits. */
  get size(): number {
    return this.#waiters.size;
  }

  /**
   * `callback` gets the value of the next wake, or false when the returned function is
   * called first; calling that function after the wake does nothing. No promise, timer or
   * listener: the form for hot paths, and what {@link wait} is built on.
   */
  listen(callback: (value: boolean) => void): () => void {
    const waiter: Waiter = { resolve: callback };
    this.#waiters.add(waiter);
    return () => this.#settle(waiter, false);
  }

  /**
   * Resolves true when woken with true, false on wake(false), timeout or abort.
   * `timeoutMs` undefined (or Infinity) waits without a timer.
   */
  wait(timeoutMs?: number, signal?: AbortSignal): Promise<boolean> {
    return new Promise<boolean>((resolve) => {
      let timer: ReturnType<typeof setTimeout> | undefined;
      const cancel = this.listen((value) => {
        clearTimeout(timer);
        signal?.removeEventListener("abort", cancel);
        resolve(value);
      });
      if (timeoutMs !== undefined && timeoutMs !== Infinity) {
        timer = setTimeout(cancel, Math.max(0, timeoutMs));
      }
      signal?.addEventListener("abort", cancel);
    });
  }

  /** Ends every pending wait with `value`. */
  wakeAll(value: boolean): void {
    if (this.#waiters.size === 0) return;
    for (const waiter of [...this.#waiters]) this.#settle(waiter, value);
  }

  #settle(waiter: Waiter, value: boolean): void {
    if (!this.#waiters.delete(waiter)) return;
    waiter.resolve(value);
  }
}

/** Resolves after `ms`, or at once when `signal` aborts (so close() never waits a backoff). */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const done = () => {
      clearTimeout(timer);
      signal?.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener("abort", done);
  });
}

// Every connection's reads share one JavaScript thread, and a read from a connection with
// data waiting completes at once, without a turn of the event loop: a peer that sends
// without pause (a PING flood, a stream of big frames) would keep every other connection,
// and every timer, waiting for as long as it sends. So the work done since the event loop
// was last seen to turn is counted (in bytes read, across all connections); past a budget a
// timer is set to see the next turn, and a reader that still finds no turn taken after
// TURN_MS gives one with sleep(0). A lockstep server, whose reads each wait for the network,
// sets that timer once every TURN_BYTES of requests and never waits.
const TURN_BYTES = 256 * 1024;
const TURN_MS = 5;
let spentSinceTurn = 0;
let watchingSince = -1;

function sawTurn(): void {
  spentSinceTurn = 0;
  watchingSince = -1;
}

/**
 * Records `cost` (bytes read, or an equivalent) done on behalf of one peer; true when the
 * caller has held the thread long enough and should `await sleep(0)` before going on.
 */
export function turnDue(cost: number): boolean {
  spentSinceTurn += cost;
  if (spentSinceTurn < TURN_BYTES) return false;
  if (watchingSince < 0) {
    watchingSince = performance.now();
    setTimeout(sawTurn, 0);
    return false;
  }
  return performance.now() - watchingSince >= TURN_MS;
}
