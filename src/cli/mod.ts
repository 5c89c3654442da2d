/**
 * The `lomq` command line: picks a subcommand, or runs a script given directly.
 *
 * @module
 */

import { run, RUN_HELP } from "./run.ts";
import { VERSION } from "../version.ts";

/** A subcommand: its one-line summary, help text and entry point. */
export interface Command {
  summary: string;
  help: string;
  main(args: string[]): Promise<number>;
}

/** Every subcommand by name. */
export const COMMANDS: Record<string, Command> = {
  run: { summary: "run a LuaOverMQ script (same as lomq SCRIPT.lua)", help: RUN_HELP, main: run },
};

function usage(): string {
  const lines = Object.entries(COMMANDS).map(([name, c]) => `  ${name.padEnd(8)}${c.summary}`);
  return `lomq ${VERSION}: run Lua scripts as RPC servers over ZeroMQ and MessagePack

Usage: lomq SCRIPT.lua [ARG...]
       lomq COMMAND [OPTIONS] [ARG...]

Commands:
${lines.join("\n")}

Options:
  -h, --help     show this help (lomq COMMAND --help for a command's)
  -V, --version  print the version

Examples:
  lomq examples/hello.lua
  lomq run examples/hello.lua`;
}

/** Entry point: returns the process exit code. */
export async function main(args: string[]): Promise<number> {
  const [first, ...rest] = args;
  if (first === undefined || first === "-h" || first === "--help" || first === "help") {
    console.log(usage());
    return first === undefined ? 2 : 0;
  }
  if (first === "-V" || first === "--version") {
    console.log(`lomq ${VERSION}`);
    return 0;
  }
  const command = COMMANDS[first];
  if (command) {
    if (rest[0] === "-h" || rest[0] === "--help") {
      console.log(command.help);
      return 0;
    }
    return await command.main(rest);
  }
  if (first.startsWith("-")) {
    console.error(`lomq: unknown option '${first}' (try lomq --help)`);
    return 2;
  }
  if (first.endsWith(".lua") || !/^[a-z]+$/.test(first)) return await run(args);
  const near = nearest(first, Object.keys(COMMANDS));
  console.error(
    `lomq: unknown command '${first}'${near ? ` (did you mean '${near}'?)` : ""}; try lomq --help`,
  );
  return 2;
}

/** The candidate closest to `word` by edit distance, when it is close enough. */
export function nearest(word: string, candidates: string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const candidate of candidates) {
    const d = editDistance(word, candidate);
    if (d < bestDistance) {
      bestDistance = d;
      best = candidate;
    }
  }
  return bestDistance <= Math.max(2, Math.floor(word.length / 3)) ? best : undefined;
}

function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      current[j] = Math.min(
        previous[j] + 1,
        current[j - 1] + 1,
        previous[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1),
      );
    }
    previous = current;
  }
  return previous[b.length];
}
