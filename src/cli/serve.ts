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
import {
  callOnStop,
  errorLine,
  loadScript,
  runScript,
  type ScriptHost,
  type ScriptOptions,
  type StopSignals,
} from "../lua/runtime.ts";
import { VERSION } from "../version.ts";
import {
  createSocket,
  type Frames,
  type SecurityOptions,
  type Socket,
  ZmqError,
} from "../zmtp/mod.ts";
import { type RequestHandler, RpcServer } from "../rpc/mod.ts";
import {
  type CommandModule,
  flag,
  numberOption,
  type OptionSpec,
  runCommand,
  stringOption,
  UsageError,
} from "./args.ts";
import { FileWatcher } from "./watch.ts";
import { CURVE_SERVER_HELP, CURVE_SERVER_SPECS, curveServerSocketOptions } from "./security.ts";
import { SCRIPT_OPTIONS_HELP, SCRIPT_SPECS, scriptSettings } from "./script_options.ts";

/** Exit code when serving cannot start (an address in use, a bad endpoint). */
export const EXIT_SERVE_FAILED = 1;

/** Help text for `lomq serve`. */
export const SERVE_HELP = `Usage: lomq serve SCRIPT.lua [--rpc URI] [--pub URI] [--call-timeout MS]
                  [--expose NAME,...] [--watch] [--max-memory MB]
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

With --watch, a change to the script (or to a module it required) is served
without dropping a connection: the new version loads beside the running one
(top level and OnInit) and takes over from the next request; the old one
answers the call it is serving, gets OnStop, and is closed. A version that does
not load (a syntax error, an error at its top level) is reported with its
file:line, and the running version keeps serving until the next save.

Options:
  -r, --rpc URI    where to answer calls (default ${DEFAULT_RPC_URI})
  -p, --pub URI    also bind a PUB socket there and define publish()
  -t, --call-timeout MS
                   the budget of each call (default: none)
  -e, --expose NAME,...
                   only these functions may be called
  -w, --watch      serve each new version of the script when it is saved
${CURVE_SERVER_HELP}
${SCRIPT_OPTIONS_HELP}
  -h, --help       show this help

Examples:
  lomq serve prices.lua                      calls on ${DEFAULT_RPC_URI}
  lomq serve prices.lua --rpc tcp://0.0.0.0:9004 --pub tcp://0.0.0.0:9005
  lomq serve prices.lua -- EURUSD GBPUSD     the script sees arg[1], arg[2]
  lomq serve prices.lua --call-timeout 2000 --expose add,price
  lomq serve --watch prices.lua              reloads prices.lua when it is saved
  lomq serve prices.lua --curve-secret-file server.key --curve-allow-file clients
  lomq call add 1 2                          from another terminal

Exit codes: 0 stopped by Ctrl+C, 1 a Lua error escaped or an address could not be
bound, 2 usage error or the script is missing or does not compile.`;

const SPECS: OptionSpec[] = [
  { name: "rpc", short: "r", takesValue: true },
  { name: "pub", short: "p", takesValue: true },
  { name: "call-timeout", short: "t", takesValue: true },
  { name: "expose", short: "e", takesValue: true },
  { name: "watch", short: "w", takesValue: false },
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
    const security = curveServerSocketOptions(parsed);
    const publisher = typeof pubUri === "string" ? new Publisher(pubUri, security) : undefined;
    const options: ScriptOptions = {
      scriptPath,
      args: scriptArgs,
      version: VERSION,
      beforeScript: publisher && ((host) => publisher.define(host)),
      afterTopLevel: publisher && ((host) => publisher.check(host)),
      expose,
      ...scriptSettings(parsed),
    };
    try {
      return await runScript({
        ...options,
        mainOverride: (host, signals) =>
          serveFunctions(host, signals, {
            scriptPath,
            rpcUri,
            pubUri: publisher?.uri,
            callTimeoutMs,
            reload: flag(parsed, "watch") ? options : undefined,
            security,
          }),
      });
    } finally {
      await publisher?.close();
    }
  });
}

/** How {@linkcode serveFunctions} serves. */
interface ServeSettings {
  /** The script as named on the command line. */
  scriptPath: string;
  rpcUri: string;
  pubUri: string | undefined;
  callTimeoutMs: number;
  /** With `--watch`: how to load each new version. */
  reload: ScriptOptions | undefined;
  /** CURVE for both sockets (`--curve-secret-file`, `--curve-allow-file`). */
  security: SecurityOptions;
}

/** Binds the REP socket and answers requests until the script is asked to stop. */
async function serveFunctions(
  host: ScriptHost,
  signals: StopSignals,
  settings: ServeSettings,
): Promise<number> {
  let rep: Socket | undefined;
  try {
    rep = createSocket("REP", settings.security);
    await rep.bind(settings.rpcUri);
  } catch (error) {
    if (!(error instanceof ZmqError)) throw error;
    await rep?.close(0);
    errorLine(`lomq serve: ${error.message}`);
    return EXIT_SERVE_FAILED;
  }
  errorLine(
    `lomq serve: serving ${settings.scriptPath} on ${rep.endpoints.join(", ")}` +
      (settings.security.curveServer
        ? ` (CURVE${settings.security.curveAllowFile ? ", allow-listed" : ""})`
        : "") +
      (settings.pubUri === undefined ? "" : `, publishing on ${settings.pubUri}`) +
      (settings.reload === undefined ? "" : ", reloading it when it changes"),
  );
  const versions = new Versions(host, signals);
  const server = new RpcServer(rep, versions, settings.callTimeoutMs);
  const reloader = settings.reload && new Reloader(settings.reload, versions);
  try {
    await server.serveUntil(versions.stopped);
  } finally {
    await reloader?.close();
    // Linger a moment: the answer to a call that was stopped is still on its way out.
    await rep.close(200);
    // The first version is closed by runScript; a later one is closed here.
    if (versions.current !== host) await versions.current.close(1000);
  }
  return versions.current.exitCode ?? 0;
}

/**
 * The version of the script being served, and the ones on their way out. Each request goes
 * to the version current when it arrives; a replaced version finishes the call it is
 * serving, then gets its OnStop and is closed.
 */
class Versions implements RequestHandler {
  /** The version that serves new requests. */
  current: ScriptHost;
  readonly #signals: StopSignals;
  readonly #stop = new AbortController();
  /** The call the current version is serving, if it waits or was paused. */
  #inFlight: Promise<unknown> | undefined;
  readonly #retiring = new Set<Promise<void>>();

  constructor(first: ScriptHost, signals: StopSignals) {
    this.current = first;
    this.#signals = signals;
    this.#follow(first);
  }

  /** Aborted when serving ends: a stop signal, or `os.exit` in the current version. */
  get stopped(): AbortSignal {
    return this.#stop.signal;
  }

  handle(body: Frames, budgetMs: number): Frames | Promise<Frames> {
    const reply = this.current.bindings.dispatcher.handle(body, budgetMs);
    if (reply instanceof Promise) this.#inFlight = reply;
    return reply;
  }

  /**
   * Serves `next` from the next request on, and retires the version it replaces once that
   * version's call in flight (if any) is answered.
   */
  replace(next: ScriptHost): void {
    const old = this.current;
    const inFlight = this.#inFlight;
    this.#inFlight = undefined;
    this.current = next;
    this.#follow(next);
    const retiring = retire(old, inFlight);
    this.#retiring.add(retiring);
    void retiring.finally(() => this.#retiring.delete(retiring));
  }

  /** Waits for the replaced versions to be closed. */
  async settle(): Promise<void> {
    await Promise.allSettled([...this.#retiring]);
  }

  /** Signals stop `host`; its stop (a signal or os.exit) ends serving while it is current. */
  #follow(host: ScriptHost): void {
    this.#signals.follow(host);
    host.stop.signal.addEventListener("abort", () => {
      if (this.current === host) this.#stop.abort();
    }, { once: true });
  }
}

/** How long a replaced version's OnStop may take before the version is halted. */
const RETIRE_WAIT_MS = 5000;

/** Ends a replaced version: after its call in flight, OnStop (bounded), then close it. */
async function retire(old: ScriptHost, inFlight: Promise<unknown> | undefined): Promise<void> {
  await inFlight?.catch(() => {});
  old.stop.abort();
  const stopping = callOnStop(old);
  if (stopping !== undefined) {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const late = new Promise<void>((resolve) => timer = setTimeout(resolve, RETIRE_WAIT_MS));
    await Promise.race([stopping.done, late]);
    clearTimeout(timer);
  }
  await old.close(200);
}

/**
 * `--watch`: loads a new version of the script whenever it or a module it required
 * changes, and hands it the socket once it loaded; a version that fails to load is
 * reported and the running one keeps serving.
 */
class Reloader {
  readonly #options: ScriptOptions;
  readonly #versions: Versions;
  readonly #watcher: FileWatcher;
  /** The load in progress, and whether another change came while it ran. */
  #loading: Promise<void> | undefined;
  #loadingHost: ScriptHost | undefined;
  #again = false;
  #closed = false;

  constructor(options: ScriptOptions, versions: Versions) {
    this.#options = options;
    this.#versions = versions;
    this.#watcher = new FileWatcher(() => this.#changed());
    this.#watcher.watch(versions.current.files);
  }

  async close(): Promise<void> {
    this.#closed = true;
    this.#watcher.close();
    this.#loadingHost?.engine.halt();
    await this.#loading;
    await this.#versions.settle();
  }

  #changed(): void {
    if (this.#closed) return;
    if (this.#loading !== undefined) {
      // A version still loading (a top level that computes or hangs) is out of date: stop
      // it and load the newest.
      this.#again = true;
      this.#loadingHost?.engine.halt("the script changed again while it was loading");
      return;
    }
    this.#loading = this.#reload().finally(() => {
      this.#loading = undefined;
      this.#loadingHost = undefined;
      if (this.#again && !this.#closed) {
        this.#again = false;
        this.#changed();
      }
    });
  }

  async #reload(): Promise<void> {
    const name = this.#options.scriptPath;
    const loaded = await loadScript(this.#options, (host) => this.#loadingHost = host);
    const host = loaded.host;
    // Watch what this attempt read, so that fixing a module it failed in reloads too.
    if (host !== undefined) this.#watcher.watch([...host.files, ...this.#versions.current.files]);
    if (this.#closed || this.#again || loaded.failure || loaded.stopped) {
      await host?.close(0);
      if (this.#closed || this.#again) return;
      const why = loaded.failure?.message ??
        (host?.exitCode === undefined
          ? "it was stopped while loading"
          : `its top level called os.exit(${host.exitCode})`);
      errorLine(
        `lomq serve: ${name} changed but did not load, so the previous version keeps ` +
          `serving:\n${indent(why)}\nlomq serve: fix the script and save it again`,
      );
      return;
    }
    this.#versions.replace(loaded.host);
    this.#watcher.watch(loaded.host.files);
    const count = loaded.host.bindings.dispatcher.callableCount();
    errorLine(`lomq serve: reloaded ${name} (${count} function${count === 1 ? "" : "s"})`);
  }
}

function indent(text: string): string {
  return text.trimEnd().split("\n").map((line) => `  ${line}`).join("\n");
}

/**
 * `--pub URI`: the PUB socket, bound once and lent to every version of the script, and the
 * `publish` global each version gets before its top level runs.
 */
class Publisher {
  readonly uri: string;
  readonly #security: SecurityOptions;
  #socket: Socket | undefined;

  constructor(uri: string, security: SecurityOptions) {
    this.uri = uri;
    this.#security = security;
  }

  /** Binds the socket (the first time) and defines `publish` in `host`. */
  async define(host: ScriptHost): Promise<string | undefined> {
    if (this.#socket === undefined) {
      const socket = createSocket("PUB", this.#security);
      try {
        await socket.bind(this.uri);
      } catch (error) {
        await socket.close(0);
        if (!(error instanceof ZmqError)) throw error;
        return `serve: ${error.message}`;
      }
      this.#socket = socket;
    }
    const socket = this.#socket;
    const failure = await host.runChunk(
      PUBLISH_CHUNK,
      "=lomq serve --pub",
      (L) => host.bindings.pushLent(L, socket),
    );
    return failure && `serve: ${failure.split("\n")[0]}`;
  }

  /** After the top level: a script that defined its own `publish` hid the one --pub made. */
  async check(host: ScriptHost): Promise<string | undefined> {
    const failure = await host.runChunk(PUBLISH_KEPT_CHECK, "=lomq serve --pub");
    return failure && `serve: ${failure.split("\n")[0]}`;
  }

  /** Closes the socket, giving a last publication a moment to leave. */
  async close(): Promise<void> {
    await this.#socket?.close(1000);
  }
}

/**
 * Lua that defines `publish` on the PUB socket it is given. It runs before the script, so
 * the dispatcher counts `publish` among the built-ins that clients cannot call.
 */
const PUBLISH_CHUNK = `
local pub = ...
function publish(topic, value) return pub:send(topic, value) end
package.loaded["lomq serve publish"] = publish`;

/** After the top level: a script that defined its own `publish` hid the one --pub made. */
const PUBLISH_KEPT_CHECK = `
if publish ~= package.loaded["lomq serve publish"] then
  error("the script defines its own 'publish', which hides the one --pub provides; rename one of them", 0)
end`;

/** `lomq serve`, for the command table. */
export const COMMAND: CommandModule = { help: SERVE_HELP, main: serve };
