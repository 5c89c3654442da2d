/**
 * `lomq run SCRIPT.lua [ARG...]` (also plain `lomq SCRIPT.lua`): runs a LuaOverMQ script.
 *
 * @module
 */

import { runScript } from "../lua/runtime.ts";
import { VERSION } from "../version.ts";

/** Help text for `lomq run`. */
export const RUN_HELP = `Usage: lomq run SCRIPT.lua [ARG...]
       lomq SCRIPT.lua [ARG...]

Runs a LuaOverMQ script: its top level, then OnInit(path) and main() if defined.
Ctrl+C or SIGTERM calls OnStop(); a second signal exits at once.
The script sees its arguments as arg[1..n].

Examples:
  lomq examples/hello.lua
  lomq bench/add.lua tcp://127.0.0.1:9000

Exit codes: 0 main returned, 1 a Lua error escaped, 2 the script is missing or does not compile.`;

/** Runs the script named by `args[0]`; returns the exit code. */
export function run(args: string[]): Promise<number> {
  const [scriptPath, ...scriptArgs] = args;
  if (!scriptPath) {
    console.error("lomq run: missing the script to run\n\n" + RUN_HELP);
    return Promise.resolve(2);
  }
  return runScript({ scriptPath, args: scriptArgs, version: VERSION });
}
