/**
 * The options `lomq run` and `lomq serve` share: how much memory the script may use, how
 * long it may compute before the server gets a turn, and how much the server logs.
 *
 * @module
 */

import { configureLog } from "../log.ts";
import { DEFAULT_MAX_MEMORY_BYTES, DEFAULT_SLICE_MS } from "../lua/engine.ts";
import { flag, numberOption, type OptionSpec, type ParsedArgs, UsageError } from "./args.ts";
import { CODE_PAGES, type CodePage, codePage } from "../lua/codepage.ts";

/** The shared options' specs. */
export const SCRIPT_SPECS: readonly OptionSpec[] = [
  { name: "encoding", takesValue: true },
  { name: "max-memory", takesValue: true },
  { name: "slice-ms", takesValue: true },
  { name: "quiet", short: "q", takesValue: false },
];

/** Help lines of the shared options (for the commands' help texts). */
export const SCRIPT_OPTIONS_HELP =
  `  --encoding NAME  the code page of the script's strings, as the terminal's Windows ANSI
                   code page (cp1250..cp1258, cp866, koi8-r): strings cross the wire as
                   UTF-8 and are that code page inside Lua (default utf-8: as they are)
  --max-memory MB  the Lua heap's limit (default ${
    DEFAULT_MAX_MEMORY_BYTES / 1048576
  }): past it, the
                   allocation fails and the call gets ERROR "not enough memory"
  --slice-ms MS    how long Lua computes before the server takes a turn (default
                   ${DEFAULT_SLICE_MS}); 0 turns preemption off: Lua runs up to 2x faster in
                   tight loops, but a computing handler then freezes the server
  -q, --quiet      log nothing (dropped peers, refused connections); LOMQ_LOG=debug
                   logs connects and disconnects too`;

/** What the shared options set. */
export interface ScriptSettings {
  /** Lua heap limit in bytes. */
  maxMemoryBytes: number;
  /** Preemption slice in ms. */
  sliceMs: number;
  /** The code page of `--encoding`, if any. */
  codePage?: CodePage;
}

/** Reads the shared options (and applies `--quiet` to the log). */
export function scriptSettings(parsed: ParsedArgs): ScriptSettings {
  if (flag(parsed, "quiet")) configureLog({ level: "quiet" });
  const megabytes = numberOption(parsed, "max-memory", { min: 1, max: 4096 }) ??
    DEFAULT_MAX_MEMORY_BYTES / 1048576;
  const encoding = parsed.options.get("encoding");
  let page: CodePage | undefined;
  if (typeof encoding === "string") {
    page = codePage(encoding);
    if (page === undefined) {
      throw new UsageError(
        `--encoding: unknown encoding '${encoding}' (known: ${CODE_PAGES.join(", ")})`,
      );
    }
  }
  return {
    codePage: page,
    maxMemoryBytes: megabytes * 1048576,
    sliceMs: numberOption(parsed, "slice-ms", { min: 0, max: 60_000 }) ?? DEFAULT_SLICE_MS,
  };
}

/**
 * Splits `lomq run` arguments: the options before the script, and the script with its own
 * arguments (everything from the script on belongs to it, dashes included).
 */
export function splitAtScript(
  args: readonly string[],
  specs: readonly OptionSpec[],
): { options: string[]; script: string[] } {
  let i = 0;
  while (i < args.length && args[i].startsWith("-") && args[i] !== "-") {
    if (args[i] === "--") return { options: args.slice(0, i), script: args.slice(i + 1) };
    const long = args[i].startsWith("--");
    const name = long ? args[i].slice(2).split("=")[0] : args[i].slice(1, 2);
    const spec = specs.find((s) => (long ? s.name === name : s.short === name));
    const inline = long ? args[i].includes("=") : args[i].length > 2;
    i += spec?.takesValue && !inline ? 2 : 1;
  }
  return { options: args.slice(0, i), script: args.slice(i) };
}
