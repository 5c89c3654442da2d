/**
 * `lomq run [OPTIONS] SCRIPT.lua [ARG...]` (also plain `lomq SCRIPT.lua`): runs a LuaOverMQ
 * script.
 *
 * @module
 */

import { runScript } from "../lua/runtime.ts";
import { VERSION } from "../version.ts";
import { type CommandModule, runCommand } from "./args.ts";
import {
  SCRIPT_OPTIONS_HELP,
  SCRIPT_SPECS,
  scriptSettings,
  splitAtScript,
} from "./script_options.ts";

/** Help text for `lomq run`. */
export const RUN_HELP = `Usage: lomq run [OPTIONS] SCRIPT.lua [ARG...]
       lomq SCRIPT.lua [ARG...]

Runs a LuaOverMQ script: its top level, then OnInit(path) and main() if defined.
Ctrl+C or SIGTERM calls OnStop() (a second signal within 500 ms counts as the
same one; a later one exits at once). The script sees its arguments as arg[1..n].

Options (before the script; what follows it belongs to the script):
${SCRIPT_OPTIONS_HELP}

Examples:
  lomq examples/hello.lua
  lomq run --max-memory 256 bench/add.lua tcp://127.0.0.1:9000

Exit codes: 0 main returned, 1 a Lua error escaped, 2 the script is missing or does not
compile (or a usage error), the code given to os.exit, 130/143 a forced exit after
SIGINT/SIGTERM.`;

/** Runs the script named after the options; returns the exit code. */
export function run(args: string[]): Promise<number> {
  const { options, script } = splitAtScript(args, SCRIPT_SPECS);
  return runCommand({ name: "run", help: RUN_HELP, specs: SCRIPT_SPECS }, options, (parsed) => {
    const [scriptPath, ...scriptArgs] = [...parsed.positionals, ...script];
    if (!scriptPath) {
      console.error("lomq run: missing the script to run\n\n" + RUN_HELP);
      return Promise.resolve(2);
    }
    return runScript({ scriptPath, args: scriptArgs, version: VERSION, ...scriptSettings(parsed) });
  });
}

/** `lomq run`, for the command table. */
export const COMMAND: CommandModule = { help: RUN_HELP, main: run };
