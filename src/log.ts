/**
 * lomq's diagnostic log: one line on stderr per event (a dropped peer, a refused connection,
 * a failed handler), rate-limited so that a flood of bad peers cannot flood the terminal.
 *
 * The library is silent by default: importing the client prints nothing. The command line
 * turns warnings on (`lomq run`, `lomq serve`), `--quiet` turns them off, and
 * `LOMQ_LOG=debug` adds connects and disconnects.
 *
 * ```ts
 * import { configureLog, log } from "./log.ts";
 * configureLog({ level: "warn" });
 * log.warn("dropped tcp://10.0.0.7:50112 on REP tcp://0.0.0.0:8004: bad greeting");
 * ```
 *
 * @module
 */

import { writeAllSync } from "./bytes.ts";

/** How much is logged: nothing, warnings (drops, refusals), or warnings and connection events. */
export type LogLevel = "quiet" | "warn" | "debug";

/** Where lines go; the default writes them to stderr. */
export type LogSink = (line: string) => void;

/** Settings accepted by {@linkcode configureLog}; omitted fields keep their value. */
export interface LogSettings {
  /** What is logged (default "quiet" for library use). */
  level?: LogLevel;
  /** Where lines go (default stderr). */
  sink?: LogSink;
  /** Lines let through per second before the rest are counted and suppressed (default 10). */
  linesPerSecond?: number;
}

const encoder = new TextEncoder();

function stderrSink(line: string): void {
  // The client's Node.js build has no Deno; console.error is Node's unbuffered stderr.
  if (typeof Deno === "undefined") return console.error(line);
  try {
    writeAllSync(Deno.stderr, encoder.encode(line + "\n"));
  } catch {
    // stderr closed: nothing sensible left to do with a diagnostic
  }
}

const WINDOW_MS = 1000;

/** The rate-limited log; use the shared instance {@linkcode log}. */
export class Log {
  #level: LogLevel = "quiet";
  #sink: LogSink = stderrSink;
  #limit = 10;
  #windowStart = 0;
  #written = 0;
  #suppressed = 0;
  #flushTimer: ReturnType<typeof setTimeout> | undefined;

  /** The current level. */
  get level(): LogLevel {
    return this.#level;
  }

  /** Whether debug lines are wanted: callers skip building them otherwise. */
  get debugEnabled(): boolean {
    return this.#level === "debug";
  }

  /** Whether warnings are wanted. */
  get warnEnabled(): boolean {
    return this.#level !== "quiet";
  }

  /** Applies `settings`; see {@linkcode configureLog}. */
  configure(settings: LogSettings): void {
    if (settings.level !== undefined) this.#level = settings.level;
    if (settings.sink !== undefined) this.#sink = settings.sink;
    if (settings.linesPerSecond !== undefined) this.#limit = Math.max(1, settings.linesPerSecond);
  }

  /** Logs a warning (a peer dropped or refused, a limit reached), unless quiet. */
  warn(message: string): void {
    if (this.#level !== "quiet") this.#emit(message);
  }

  /** Logs a connection event, only at level "debug". */
  debug(message: string): void {
    if (this.#level === "debug") this.#emit(message);
  }

  #emit(message: string): void {
    const now = performance.now();
    if (now - this.#windowStart >= WINDOW_MS) this.#newWindow(now);
    if (this.#written < this.#limit) {
      this.#written++;
      this.#sink(`lomq: ${message}`);
      return;
    }
    this.#suppressed++;
    // The count is reported when the window ends even if nothing else is logged; the timer
    // must not keep the process alive.
    if (this.#flushTimer === undefined) {
      const timer = setTimeout(() => {
        this.#flushTimer = undefined;
        this.#newWindow(performance.now());
      }, Math.max(1, WINDOW_MS - (now - this.#windowStart)));
      if (typeof Deno === "undefined") (timer as unknown as { unref(): void }).unref();
      else Deno.unrefTimer(timer);
      this.#flushTimer = timer;
    }
  }

  #newWindow(now: number): void {
    if (this.#suppressed > 0) {
      const n = this.#suppressed;
      this.#sink(`lomq: ${n} more line${n === 1 ? "" : "s"} like the above suppressed in 1 s`);
    }
    this.#windowStart = now;
    this.#written = 0;
    this.#suppressed = 0;
    if (this.#flushTimer !== undefined) {
      clearTimeout(this.#flushTimer);
      this.#flushTimer = undefined;
    }
  }
}

/** The process-wide log every part of lomq writes to. */
export const log: Log = new Log();

/** Changes the process-wide log's level, sink or rate. */
export function configureLog(settings: LogSettings): void {
  log.configure(settings);
}
