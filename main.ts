/**
 * lomq: runs Lua scripts as RPC servers over ZeroMQ with MessagePack.
 *
 * `deno run -A main.ts script.lua`, or the compiled `lomq script.lua`.
 *
 * @module
 */

import { main } from "./src/cli/mod.ts";

/** `deno task start` passes `--start`: with no script after it, run the example. */
function startTaskArgs(args: string[]): string[] {
  if (args[0] !== "--start") return args;
  return args.length > 1 ? args.slice(1) : ["examples/hello.lua"];
}

if (import.meta.main) {
  Deno.exit(await main(startTaskArgs(Deno.args)));
}
