/**
 * Helpers for the bounds tests: capturing lomq's log lines in-process, reading RSS, and a
 * raw peer that sends what a hostile client would.
 *
 * @module
 */

import { configureLog, log, type LogLevel } from "../../src/log.ts";

const encoder = new TextEncoder();

/** Lines the log wrote while a capture was active. */
export interface Capture {
  /** Every line so far, in order. */
  readonly lines: string[];
  /** The lines containing `text`. */
  matching(text: string): string[];
  /** Puts the log back as it was (level "quiet" or whatever it was, stderr, 10 lines/s). */
  restore(): void;
}

/** Captures every log line (level debug, no rate limit) until restore() is called. */
export function captureLog(): Capture {
  const previous: LogLevel = log.level;
  const lines: string[] = [];
  configureLog({ level: "debug", sink: (line) => lines.push(line), linesPerSecond: 1e9 });
  return {
    lines,
    matching: (text) => lines.filter((line) => line.includes(text)),
    restore: () =>
      configureLog({
        level: previous,
        sink: (line) => Deno.stderr.writeSync(encoder.encode(line + "\n")),
        linesPerSecond: 10,
      }),
  };
}

/** Resident set size of process `pid` in bytes, from /proc (Linux). */
export function rssOf(pid: number): number {
  const status = Deno.readTextFileSync(`/proc/${pid}/status`);
  const match = /VmRSS:\s+(\d+) kB/.exec(status);
  if (match === null) throw new Error(`no VmRSS for process ${pid}`);
  return Number(match[1]) * 1024;
}
