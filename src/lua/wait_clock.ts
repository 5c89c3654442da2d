/**
 * Timeouts for the script's waits without a timer per wait.
 *
 * A busy server waits thousands of times a second (`rpc:process(250)` between
 * requests), and almost every wait ends early. Arming and clearing a timer each time
 * costs more than the rest of the wait, so one timer stays armed for the earliest
 * deadline and is only re-armed when it fires. Only one host thread waits at a time
 * (the script runs its phases one after another), so one deadline suffices.
 *
 * @module
 */

/** Hands out abort signals that fire at a deadline or on stop. */
export class WaitClock {
  #controller = new AbortController();
  #deadline = Infinity;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #timerAt = Infinity;
  #stopped = false;

  /** Aborts every current and future wait. */
  stop(): void {
    this.#stopped = true;
    this.#controller.abort();
    clearTimeout(this.#timer);
  }

  /** A signal for a wait that must end after `timeoutMs` (undefined: no limit). */
  begin(timeoutMs: number | undefined): AbortSignal {
    if (this.#stopped) return this.#controller.signal;
    if (timeoutMs === undefined || !Number.isFinite(timeoutMs)) {
      this.#deadline = Infinity;
      return this.#controller.signal;
    }
    this.#deadline = performance.now() + timeoutMs;
    if (this.#deadline < this.#timerAt) this.#arm(timeoutMs);
    return this.#controller.signal;
  }

  /** The wait ended; a timer still armed for it will find no deadline and do nothing. */
  end(): void {
    this.#deadline = Infinity;
  }

  #arm(ms: number): void {
    clearTimeout(this.#timer);
    this.#timerAt = performance.now() + ms;
    this.#timer = setTimeout(() => this.#fire(), ms);
  }

  #fire(): void {
    this.#timer = undefined;
    this.#timerAt = Infinity;
    if (this.#deadline === Infinity || this.#stopped) return;
    const left = this.#deadline - performance.now();
    if (left > 0.5) {
      this.#arm(left);
      return;
    }
    this.#deadline = Infinity;
    const expired = this.#controller;
    this.#controller = new AbortController();
    expired.abort();
  }
}
