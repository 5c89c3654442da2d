/**
 * `lomq serve SCRIPT.lua [--rpc URI] [--pub URI]`: serves the functions a script defines,
 * with no `main()` loop to write.
 *
 * The script's top level and `OnInit` run as under `lomq run`; then, instead of
 * `main()`, lomq binds a REP socket and answers requests from TypeScript with the
 * script's dispatcher until Ctrl+C.
 *
 * @module
 */

import { DEFAULT_RPC_URI } from "../client/client.ts";
import { errorLine, runScript, type ScriptHost } from "../lua/runtime.ts";
import { VERSION } from "../version.ts";
import { createSocket, type SecurityOptions, type Socket, ZmqError } from "../zmtp/mod.ts";
import { RpcServer } from "../rpc/mod.ts";
import { numberOption, type OptionSpec, runCommand, stringOption, UsageError } from "./args.ts";
import { CURVE_SERVER_HELP, CURVE_SERVER_SPECS, curveServerSocketOptions } from "./security.ts";
import { SCRIPT_OPTIONS_HELP, SCRIPT_SPECS, scriptSettings } from "./script_options.ts";

/** Exit code when serving cannot start (an address in use, a bad endpoint). */
export const EXIT_SERVE_FAILED = 1;

/** Help text for `lomq serve`. */
export const SERVE_HELP = `Usage: lomq serve SCRIPT.lua [--rpc URI] [--pub URI] [--call-timeout MS]
                  [--expose NAME,...] [--max-memory MB]
                  [--curve-secret-file F [--curve-allow-file F]] [-- ARG...]

Serves the functions SCRIPT.lua defines, for scripts without a main() loop:
runs the script's top level (and OnInit if defined), binds a REP socket, and
answers calls until Ctrl+C. Any client of lomq or LuaOverMQ can call the
script's own Lua functions, never the standard library, main, OnInit or OnStop.
main() is not called. Arguments after -- reach the script as arg[1..n].

A call that computes keeps the server live (heartbeats answered, connections
accepted, Ctrl+C seen); with --call-timeout, a call still running after MS
milliseconds gets ERROR "call 'NAME' exceeded MS ms" and the next is served.

With --pub, the script gets a global function publish(topic, value) that
publishes there (0 on success, else an errno, like pub:send), from its top
level on. Clients cannot call it.

Options:
  -r, --rpc URI    where to answer calls (default ${DEFAULT_RPC_URI})
  -p, --pub URI    also bind a PUB socket there and define publish()
  -t, --call-timeout MS
                   the budget of each call (default: none)
  -e, --expose NAME,...
                   only these functions may be called
${CURVE_SERVER_HELP}
${SCRIPT_OPTIONS_HELP}
  -h, --help       show this help

Examples:
  lomq serve prices.lua                      calls on ${DEFAULT_RPC_URI}
  lomq serve prices.lua --rpc tcp://0.0.0.0:9004 --pub tcp://0.0.0.0:9005
  lomq serve prices.lua -- EURUSD GBPUSD     the script sees arg[1], arg[2]
  lomq serve prices.lua --call-timeout 2000 --expose add,price
  lomq serve prices.lua --curve-secret-file server.key --curve-allow-file clients
  lomq call add 1 2                          from another terminal

Exit codes: 0 stopped by Ctrl+C, 1 a Lua error escaped or an address could not be
bound, 2 usage error or the script is missing or does not compile.`;

const SPECS: OptionSpec[] = [
  { name: "rpc", short: "r", takesValue: true },
  { name: "pub", short: "p", takesValue: true },
  { name: "call-timeout", short: "t", takesValue: true },
  { name: "expose", short: "e", takesValue: true },
  ...CURVE_SERVER_SPECS,
  ...SCRIPT_SPECS,
];

/** Runs `lomq serve`; returns the exit code. */
export function serve(args: string[]): Promise<number> {
  return runCommand({ name: "serve", help: SERVE_HELP, specs: SPECS }, args, async (parsed) => {
    const [scriptPath, ...scriptArgs] = parsed.positionals;
    if (scriptPath === undefined) throw new UsageError("missing the SCRIPT.lua to serve");
    const rpcUri = stringOption(parsed, "rpc", DEFAULT_RPC_URI);
    const pubUri = parsed.options.get("pub");
    const callTimeoutMs = numberOption(parsed, "call-timeout", { min: 0, max: 0x7fffffff }) ?? 0;
    const exposeList = parsed.options.get("expose");
    const expose = typeof exposeList === "string"
      ? exposeList.split(",").map((name) => name.trim()).filter((name) => name !== "")
      : undefined;
    const settings = scriptSettings(parsed);
    const security = curveServerSocketOptions(parsed);
    return await runScript({
      scriptPath,
      args: scriptArgs,
      version: VERSION,
      beforeScript: typeof pubUri === "string"
        ? async (host) => {
          const failure = await host.runChunk(publishChunk(pubUri), "=lomq serve --pub");
          return failure && `serve: ${failure.split("\n")[0]}`;
        }
        : undefined,
      afterTopLevel: typeof pubUri === "string"
        ? async (host) => {
          const failure = await host.runChunk(PUBLISH_KEPT_CHECK, "=lomq serve --pub");
          return failure && `serve: ${failure.split("\n")[0]}`;
        }
        : undefined,
      mainOverride: (host) =>
        serveFunctions(
          host,
          scriptPath,
          rpcUri,
          typeof pubUri === "string" ? pubUri : undefined,
          callTimeoutMs,
          security,
        ),
      expose,
      ...settings,
    });
  });
}

/** Binds the sockets and answers requests until the script is asked to stop. */
async function serveFunctions(
  host: ScriptHost,
  scriptPath: string,
  rpcUri: string,
  pubUri: string | undefined,
  callTimeoutMs = 0,
  security: SecurityOptions = {},
): Promise<number> {
  let rep: Socket | undefined;
  try {
    rep = createSocket("REP", security);
    await rep.bind(rpcUri);
  } catch (error) {
    if (!(error instanceof ZmqError)) throw error;
    await rep?.close(0);
    errorLine(`lomq serve: ${error.message}`);
    return EXIT_SERVE_FAILED;
  }
  errorLine(
    `lomq serve: serving ${scriptPath} on ${rep.endpoints.join(", ")}` +
      (security.curveServer ? ` (CURVE${security.curveAllowFile ? ", allow-listed" : ""})` : "") +
      (pubUri === undefined ? "" : `, publishing on ${pubUri}`),
  );
  const server = new RpcServer(rep, host.bindings.dispatcher, callTimeoutMs);
  try {
    await server.serveUntil(host.stop.signal);
  } finally {
    // Linger a moment: the answer to a call that was stopped is still on its way out.
    await rep.close(200);
  }
  return 0;
}

/**
 * Lua that binds the PUB socket and defines `publish`. It runs before the script, so
 * the dispatcher counts `publish` among the built-ins that clients cannot call.
 */
function publishChunk(uri: string): string {
  return `
local pub = LuaOverMQ.bind(${luaStringLiteral(uri)}, LuaOverMQ.PUB)
function publish(topic, value) return pub:send(topic, value) end
package.loaded["lomq serve publish"] = publish`;
}

/** After the top level: a script that defined its own `publish` hid the one --pub made. */
const PUBLISH_KEPT_CHECK = `
if publish ~= package.loaded["lomq serve publish"] then
  error("the script defines its own 'publish', which hides the one --pub provides; rename one of them", 0)
end`;

/** A Lua string literal for any text: every byte as a decimal escape. */
function luaStringLiteral(text: string): string {
  return `"${Array.from(new TextEncoder().encode(text), (b) => `\\${b}`).join("")}"`;
}
