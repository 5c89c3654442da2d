/**
 * Timeouts for the script's waits without a timer per wait.
 *
 * A busy server waits thousands of times a second (`rpc:process(250)` between
 * requests), and almost every wait ends early. Arming and clearing a timer each time
 * costs more than the rest of the wait, so one timer stays armed for the earliest
 * deadline and is only re-armed when it fires. Only one host thread waits at a time
 * (the script runs its phases one after another), so one deadline suffices, and the
 * wait is ended through a plain callback rather than an abort signal and its listeners.
 *
 * @module
 */

/** Ends the current wait at its deadline or on stop. */
export class WaitClock {
  #onExpire: (() => void) | undefined;
  #deadline = Infinity;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #timerAt = Infinity;
  #stopped = false;

  /** Ends the current wait, and every later one as soon as it begins. */
  stop(): void {
    this.#stopped = true;
    clearTimeout(this.#timer);
    this.#expire();
  }

  /**
   * Starts a wait that `onExpire` ends after `timeoutMs` (undefined: no limit), or at once
   * when the clock is stopped. {@link end} must be called when the wait ends otherwise.
   */
  begin(timeoutMs: number | undefined, onExpire: () => void): void {
    this.#onExpire = onExpire;
    if (this.#stopped) return this.#expire();
    if (timeoutMs === undefined || !Number.isFinite(timeoutMs)) {
      this.#deadline = Infinity;
      return;
    }
    this.#deadline = performance.now() + timeoutMs;
    if (this.#deadline < this.#timerAt) this.#arm(timeoutMs);
  }

  /** The wait ended; a timer still armed for it will find no deadline and do nothing. */
  end(): void {
    this.#deadline = Infinity;
    this.#onExpire = undefined;
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
    this.#expire();
  }

  #expire(): void {
    const onExpire = this.#onExpire;
    this.#onExpire = undefined;
    onExpire?.();
  }
}
