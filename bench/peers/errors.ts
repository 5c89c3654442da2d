/**
 * The two failures the peers harness reports without a stack trace.
 *
 * @module
 */

/** A failure the user can act on: printed without a stack trace, exit code 1. */
export class BenchError extends Error {
  /** @param message what went wrong and what to do about it */
  constructor(message: string) {
    super(message);
    this.name = "BenchError";
  }
}

/** Bad command-line usage: printed with the usage text, exit code 2. */
export class UsageError extends BenchError {
  /** @param message which option was wrong */
  constructor(message: string) {
    super(message);
    this.name = "UsageError";
  }
}
