/**
 * The `lomq` command line: picks a subcommand, or runs a script given directly.
 *
 * @module
 */

import { type CommandModule, nearest } from "./args.ts";
import { COMMAND as RUN, run } from "./run.ts";
import { VERSION } from "../version.ts";
import { configureLog, type LogLevel } from "../log.ts";
import { SCRIPT_SPECS } from "./script_options.ts";

export { nearest };

/**
 * A subcommand: its one-line summary, and its module's {@linkcode CommandModule}, loaded when
 * the command runs. Only the command that runs is loaded, so that running a script (the main
 * job) does not wait for the client side (the msgpack library, the clients, the bench's
 * statistics): about 10 ms of a 150 ms start-up.
 */
export interface Command {
  /** One line for the command list of `lomq --help`. */
  summary: string;
  /** Loads the command's module. */
  load(): Promise<CommandModule>;
}

/** Every subcommand by name. */
export const COMMANDS: Record<string, Command> = {
  run: {
    summary: "run a LuaOverMQ script (same as lomq SCRIPT.lua)",
    load: () => Promise.resolve(RUN),
  },
  serve: {
    summary: "serve the functions a script defines, no main() needed",
    load: () => import("./serve.ts").then((m) => m.COMMAND),
  },
  call: {
    summary: "call a method on a server and print the result as JSON",
    load: () => import("./call.ts").then((m) => m.COMMAND),
  },
  ls: {
    summary: "list the functions a server lets clients call",
    load: () => import("./ls.ts").then((m) => m.COMMAND),
  },
  sub: {
    summary: "print what a publisher sends, one JSON line per message",
    load: () => import("./sub.ts").then((m) => m.COMMAND),
  },
  bench: {
    summary: "measure a server's throughput and latency",
    load: () => import("./bench.ts").then((m) => m.COMMAND),
  },
  keygen: {
    summary: "make a CURVE key pair for encrypted servers",
    load: () => import("./keygen.ts").then((m) => m.COMMAND),
  },
};

const GLOBAL_OPTIONS = ["--help", "--version"];

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
  lomq examples/hello.lua                 run a script
  lomq serve examples/prices.lua          serve a script's functions on tcp://127.0.0.1:8004
  lomq ls                                 list them: add(a, b) ...
  lomq call add 1 2                       call one of them: prints 3
  lomq sub quotes.                        print what a script publishes on tcp://127.0.0.1:8005
  lomq bench --clients 4 --duration 10    load a server and report RPS and latency`;
}

/** The log level LOMQ_LOG asks for, or warnings (the command line's default). */
function logLevelFromEnv(): LogLevel {
  let value: string | undefined;
  try {
    value = Deno.env.get("LOMQ_LOG");
  } catch {
    value = undefined; // no --allow-env
  }
  return value === "debug" || value === "quiet" ? value : "warn";
}

/** Entry point: returns the process exit code. */
export async function main(args: string[]): Promise<number> {
  configureLog({ level: logLevelFromEnv() });
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
    const loaded = await command.load();
    if (rest[0] === "-h" || rest[0] === "--help") {
      console.log(loaded.help);
      return 0;
    }
    return await loaded.main(rest);
  }
  // `lomq --max-memory 256 script.lua`: options of run before a script.
  if (SCRIPT_SPECS.some((s) => first === `--${s.name}` || first.startsWith(`--${s.name}=`))) {
    return await run(args);
  }
  if (first.startsWith("-")) {
    const near = nearest(first, GLOBAL_OPTIONS);
    console.error(
      `lomq: unknown option '${first}'${near ? ` (did you mean '${near}'?)` : ""}; try lomq --help`,
    );
    return 2;
  }
  if (first.endsWith(".lua") || !/^[a-z]+$/.test(first)) return await run(args);
  const near = nearest(first, Object.keys(COMMANDS));
  console.error(
    `lomq: unknown command '${first}'${near ? ` (did you mean '${near}'?)` : ""}; try lomq --help`,
  );
  return 2;
}
