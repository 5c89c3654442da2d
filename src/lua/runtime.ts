/**
 * Running a LuaOverMQ script the way the trading terminal does: the top level, then
 * `OnInit(path)`, then `main()`; a stop signal calls `OnStop()` and wakes every wait.
 *
 * @module
 */

import { joinPath, parentFolder, resolvePath } from "../path.ts";
import { type LuaState, LuaType } from "./api.ts";
import { LuaOverMQBindings } from "./bindings.ts";
import { LuaEngine, type ThreadOutcome } from "./engine.ts";
import { preludeSource } from "./prelude.ts";
import { installSandbox } from "./sandbox.ts";
import type { CodePage } from "./codepage.ts";
import { log } from "../log.ts";
import { writeAllSync } from "../bytes.ts";
import { installCoroutines } from "./coroutines.ts";

/** How long `OnStop` gives `main()` to return unless it returns its own figure. */
export const DEFAULT_STOP_WAIT_MS = 5000;

/**
 * A second stop signal this soon after the first is the same one delivered twice: a
 * terminal sends Ctrl+C to the whole process group, and a task runner forwards it too.
 */
export const SAME_SIGNAL_MS = 500;

/** What to run. */
export interface ScriptOptions {
  /** Path of the Lua script. */
  scriptPath: string;
  /** Command-line arguments after the script: the script's `arg[1..n]`. */
  args?: string[];
  /** Version string exposed as `LuaOverMQ.version`. */
  version?: string;
  /**
   * Runs before the script, while globals it defines are still treated as built-ins
   * (not callable by clients): for host-provided globals such as `lomq serve`'s
   * `publish`. Returns an error text to stop with exit code 1.
   */
  beforeScript?: (script: ScriptHost) => Promise<string | undefined>;
  /**
   * Called after the top level ran, before OnInit/main. Returns an error text to stop
   * with exit code 1.
   */
  afterTopLevel?: (script: ScriptHost) => Promise<string | undefined>;
  /**
   * Runs instead of `main()` when given (e.g. `lomq serve`); `signals` stop the host it
   * follows (`lomq serve --watch` makes it follow each new version).
   */
  mainOverride?: (script: ScriptHost, signals: StopSignals) => Promise<number>;
  /** Lua heap limit in bytes (default 1 GiB): an allocation past it fails that call. */
  maxMemoryBytes?: number;
  /** Preemption slice in ms (default 5; 0 disables the hook). */
  sliceMs?: number;
  /** Only these functions may be called, whatever the script exposes (`lomq serve --expose`). */
  expose?: string[];
  /** The code page of the script's strings (`--encoding`); default UTF-8, no transcoding. */
  codePage?: CodePage;
}

/** Exit codes (Unix conventions). */
export const EXIT_OK = 0;
/** A Lua error escaped the script. */
export const EXIT_SCRIPT_ERROR = 1;
/** The script does not exist or does not compile. */
export const EXIT_USAGE = 2;

const stdoutEncoder = new TextEncoder();

/** Writes a line to stderr. */
export function errorLine(text: string): void {
  writeAllSync(Deno.stderr, stdoutEncoder.encode(text.endsWith("\n") ? text : text + "\n"));
}

/** The running script, as seen by callers that extend it (`lomq serve`). */
export class ScriptHost {
  /** The engine. */
  readonly engine: LuaEngine;
  /** The LuaOverMQ bindings. */
  readonly bindings: LuaOverMQBindings;
  /** Aborted when a stop is requested. */
  readonly stop: AbortController;
  /** Set by `os.exit(code)`: the exit code the process ends with. */
  exitCode: number | undefined;
  /** The files this version was loaded from: the script, then each module `require` read. */
  readonly files: string[] = [];
  readonly #replacements: ReplacementReport;

  constructor(
    engine: LuaEngine,
    bindings: LuaOverMQBindings,
    stop: AbortController,
    replacements: ReplacementReport,
  ) {
    this.engine = engine;
    this.bindings = bindings;
    this.stop = stop;
    this.#replacements = replacements;
  }

  /**
   * `os.exit(code)` from the script: every wait ends, no thread is resumed again, and the
   * script ends as if main had returned; a call in progress is answered with an ERROR.
   */
  exit(code: number): void {
    this.exitCode ??= code;
    this.stop.abort();
    this.engine.halt(`the script called os.exit(${code}): the server is stopping`);
  }

  /**
   * Runs Lua source as a host thread; returns an error text, or undefined. `pushArgs`
   * pushes the chunk's arguments (its `...`) and returns how many.
   */
  async runChunk(
    source: string,
    name: string,
    pushArgs?: (L: LuaState) => number,
  ): Promise<string | undefined> {
    const engine = this.engine;
    const failure = engine.load(engine.L, stdoutEncoder.encode(source), name);
    if (failure) return failure;
    const outcome = await engine.run(engine.L, pushArgs?.(engine.L) ?? 0, "chunk");
    if (outcome.ok || outcome.stopped) return undefined;
    return `${outcome.message}\n${outcome.traceback}`;
  }

  /**
   * Ends this version: halts its threads and closes its sockets, flushing what they queued
   * for up to `lingerMs`. Nothing refers to the engine afterwards, so its memory goes back.
   */
  async close(lingerMs: number): Promise<void> {
    this.#replacements.stop();
    this.stop.abort();
    this.engine.halt();
    await this.bindings.closeAll(lingerMs);
  }
}

/** A script loaded and started: ready for main(), or why it is not. */
export type LoadedScript =
  /** The top level and OnInit ran. */
  | { host: ScriptHost; failure?: undefined; stopped?: false }
  /** A stop was asked for (a signal, os.exit) before the script was ready. */
  | { host: ScriptHost; failure?: undefined; stopped: true }
  /**
   * It could not start: the exit code and the message (with `file:line` and, for a runtime
   * error, a traceback). `host` is there once the engine exists, to close.
   */
  | { host?: ScriptHost; failure: { code: number; message: string }; stopped?: false };

/**
 * Reads the script, sets up a fresh engine for it, and runs its top level (with the hooks
 * of `options`) and OnInit: everything before main(). `onCompiled` sees the host once the
 * script compiled, before its top level runs (for signal handling). Prints nothing: the
 * caller reports a failure.
 */
export async function loadScript(
  options: ScriptOptions,
  onCompiled?: (host: ScriptHost) => void,
): Promise<LoadedScript> {
  const scriptPath = options.scriptPath;
  let source: Uint8Array;
  try {
    source = await Deno.readFile(scriptPath);
  } catch (error) {
    const reason = error instanceof Deno.errors.NotFound
      ? "no such file"
      : error instanceof Error
      ? error.message
      : String(error);
    return {
      failure: { code: EXIT_USAGE, message: `cannot read script '${scriptPath}': ${reason}` },
    };
  }

  const stop = new AbortController();
  const engine = await LuaEngine.create({
    maxMemoryBytes: options.maxMemoryBytes,
    sliceMs: options.sliceMs,
    stopSignal: stop.signal,
  });
  const replacements = new ReplacementReport(engine);
  const bindings = new LuaOverMQBindings(
    engine,
    { stopSignal: stop.signal, codePageSet: () => replacements.watch() },
    options.version ?? "dev",
  );
  const host = new ScriptHost(engine, bindings, stop, replacements);
  host.files.push(resolvePath(scriptPath));
  if (options.codePage?.transcodes) engine.api.codePage = options.codePage;
  replacements.watch();
  installSandbox(engine);
  installCoroutines(engine);
  installGlobals(host, scriptPath, options.args ?? []);

  const L = engine.L;
  const preludeFailure = engine.load(L, stdoutEncoder.encode(preludeSource), "=lomq-prelude");
  if (preludeFailure) throw new Error(`internal error in the Lua prelude: ${preludeFailure}`);
  bindings.pushNatives(L);
  pushSearcher(engine, scriptPath, host.files);
  engine.m._lua_setfield(L, -2, engine.api.cstr("searcher"));
  if (engine.pcall(L, 1, 0) !== 0) {
    throw new Error(`internal error in the Lua prelude: ${engine.api.describe(L, -1)}`);
  }
  const fail = (code: number, message: string): LoadedScript => ({
    host,
    failure: { code, message },
  });
  const setupFailure = await options.beforeScript?.(host);
  if (setupFailure) return fail(EXIT_SCRIPT_ERROR, setupFailure);
  const dispatcher = bindings.dispatcher;
  dispatcher.blockHostFunctions();
  if (options.expose !== undefined) dispatcher.narrow(options.expose);

  const compileError = engine.load(L, source, "@" + scriptPath);
  if (compileError) return fail(EXIT_USAGE, compileError);
  onCompiled?.(host);

  // Once a stop was asked for (a signal, os.exit), the remaining phases do not start.
  const ended = () => engine.halted || stop.signal.aborted;
  const topLevel = await engine.run(L, 0, "the script's top level");
  if (!topLevel.ok && !topLevel.stopped) return fail(EXIT_SCRIPT_ERROR, describeFailure(topLevel));
  dispatcher.blockLifecycle();

  if (ended()) return { host, stopped: true };
  const afterFailure = await options.afterTopLevel?.(host);
  if (afterFailure) return fail(EXIT_SCRIPT_ERROR, afterFailure);

  if (ended()) return { host, stopped: true };
  const init = await runGlobal(engine, "OnInit", [resolvePath(scriptPath)]);
  if (init !== undefined) return fail(EXIT_SCRIPT_ERROR, init);
  dispatcher.blockLifecycle();
  if (ended()) return { host, stopped: true };
  return { host };
}

/** Runs a script to its end and returns the process exit code. */
export async function runScript(options: ScriptOptions): Promise<number> {
  const signals = new StopSignals();
  const loaded = await loadScript(options, (host) => signals.follow(host));
  const host = loaded.host;
  try {
    if (loaded.failure) {
      errorLine(`lomq: ${loaded.failure.message}`);
      return loaded.failure.code;
    }
    if (loaded.stopped) return loaded.host.exitCode ?? EXIT_OK;
    if (options.mainOverride) {
      const code = await options.mainOverride(loaded.host, signals);
      return loaded.host.exitCode ?? code;
    }
    const engine = loaded.host.engine;
    const failure = await runGlobal(engine, "main", []);
    if (failure !== undefined) {
      errorLine(`lomq: ${failure}`);
      return EXIT_SCRIPT_ERROR;
    }
    return loaded.host.exitCode ?? EXIT_OK;
  } finally {
    signals.uninstall();
    // Give queued messages (a last publish) a moment to leave before the sockets close.
    await host?.close(1000);
  }
}

/** The message of a failed phase: the error, then its traceback. */
function describeFailure(outcome: ThreadOutcome & { ok: false; stopped?: false }): string {
  return `${outcome.message}\n${outcome.traceback}`;
}

/**
 * Runs global function `name` with string arguments when the script defines it; returns
 * the failure's message when a Lua error escaped it (a stop request is not a failure).
 */
async function runGlobal(
  engine: LuaEngine,
  name: string,
  args: string[],
): Promise<string | undefined> {
  if (engine.getGlobal(engine.L, name) !== LuaType.FUNCTION) {
    engine.m._lua_settop(engine.L, -2);
    return undefined;
  }
  for (const arg of args) engine.api.pushString(engine.L, arg);
  const outcome = await engine.run(engine.L, args.length, name);
  return outcome.ok || outcome.stopped ? undefined : describeFailure(outcome);
}

/**
 * Ctrl+C and SIGTERM. The first calls OnStop on a thread of its own (even while a handler
 * or main computes: they yield every time slice) and wakes every wait; main then has
 * OnStop's figure in ms (default 5000) to return before the exit is forced. Without OnStop
 * the script is halted at once. A second signal within {@linkcode SAME_SIGNAL_MS} is the
 * first one delivered twice; a later one ends the process at once. The signals go to the
 * version of the script being served ({@link follow}), which `lomq serve --watch` changes.
 */
export class StopSignals {
  #host: ScriptHost | undefined;
  #listeners: [Deno.Signal, () => void][] = [];
  #forceTimer: ReturnType<typeof setTimeout> | undefined;
  #firstAt: number | undefined;

  /** From now on signals stop `host`; the first call starts listening. */
  follow(host: ScriptHost): void {
    this.#host = host;
    if (this.#listeners.length > 0) return;
    // Windows accepts only SIGINT and SIGBREAK; registering SIGTERM there throws.
    const names: Deno.Signal[] = Deno.build.os === "windows"
      ? ["SIGINT", "SIGBREAK"]
      : ["SIGINT", "SIGTERM"];
    for (const name of names) {
      const listener = () => this.#onSignal(name);
      Deno.addSignalListener(name, listener);
      this.#listeners.push([name, listener]);
    }
  }

  /** Whether a stop signal came. */
  get signalled(): boolean {
    return this.#firstAt !== undefined;
  }

  uninstall(): void {
    for (const [name, listener] of this.#listeners) Deno.removeSignalListener(name, listener);
    this.#listeners = [];
    clearTimeout(this.#forceTimer);
  }

  #onSignal(name: Deno.Signal): void {
    const code = name === "SIGTERM" ? 143 : 130;
    const now = performance.now();
    if (this.#firstAt !== undefined) {
      if (now - this.#firstAt < SAME_SIGNAL_MS) return;
      errorLine(`lomq: second ${name}: exiting now`);
      Deno.exit(code);
    }
    this.#firstAt = now;
    const host = this.#host!;
    host.stop.abort();
    const stopping = callOnStop(host);
    if (stopping === undefined) {
      // No OnStop: nothing in the script will end its loop, so the script is not resumed
      // again; runScript then closes the sockets and returns 0.
      host.engine.halt();
      return;
    }
    this.#forceExitIn(DEFAULT_STOP_WAIT_MS, code);
    stopping.waitMs.then((waitMs) => {
      if (waitMs !== undefined) this.#forceExitIn(waitMs - (performance.now() - now), code, waitMs);
    });
  }

  #forceExitIn(ms: number, code: number, waitMs = ms): void {
    clearTimeout(this.#forceTimer);
    this.#forceTimer = setTimeout(() => {
      errorLine(`lomq: main() did not return within ${Math.round(waitMs)} ms of OnStop; exiting`);
      Deno.exit(code);
    }, Math.max(0, ms));
  }
}

/**
 * Calls the script's `OnStop` on a thread of its own, when it has one (else undefined).
 * `waitMs` resolves with the number OnStop returned as soon as it returns it (how long main
 * gets to end), `done` once OnStop ended; a failure is reported on stderr.
 */
export function callOnStop(
  host: ScriptHost,
): { waitMs: Promise<number | undefined>; done: Promise<void> } | undefined {
  const engine = host.engine;
  const L = engine.L;
  if (engine.getGlobal(L, "OnStop") !== LuaType.FUNCTION) {
    engine.m._lua_settop(L, -2);
    return undefined;
  }
  let announce: (ms: number | undefined) => void = () => {};
  const waitMs = new Promise<number | undefined>((resolve) => announce = resolve);
  const done = engine.run(L, 0, "OnStop", (T) => {
    if (engine.m._lua_type(T, -1) !== LuaType.NUMBER) return;
    announce(Math.max(0, engine.m._lua_tonumberx(T, -1, 0)));
  }).then((outcome) => {
    announce(undefined);
    if (!outcome.ok && !outcome.stopped) errorLine(`lomq: OnStop failed: ${outcome.message}`);
  });
  return { waitMs, done };
}

/**
 * Says, at most every 10 s, how many characters the script's code page could not hold
 * (they became "?") or did not define (U+FFFD): never a crash, but not silent either.
 */
class ReplacementReport {
  #reported = 0;
  #timer: ReturnType<typeof setInterval> | undefined;
  #stopped = false;

  readonly #engine: LuaEngine;

  constructor(engine: LuaEngine) {
    this.#engine = engine;
  }

  /**
   * Starts the periodic report once a code page that transcodes is in force. With UTF-8 (the
   * default) nothing can be replaced, so there is no timer: the process's first timer loads
   * Deno's Node timers, about 8 ms of start-up.
   */
  watch(): void {
    if (this.#timer !== undefined || this.#stopped || this.#engine.api.codePage === undefined) {
      return;
    }
    this.#timer = setInterval(() => this.#report(this.#engine.api.codePage), 10_000);
    Deno.unrefTimer(this.#timer);
  }

  /** Stops reporting, after a last report of what is not reported yet. */
  stop(): void {
    this.#stopped = true;
    clearInterval(this.#timer);
    this.#report(this.#engine.api.codePage);
  }

  #report(codePage: CodePage | undefined): void {
    if (codePage === undefined || codePage.replaced === this.#reported) return;
    const n = codePage.replaced - this.#reported;
    this.#reported = codePage.replaced;
    log.warn(
      `${n} character${n === 1 ? "" : "s"} had no place in ${codePage.name} and ` +
        `were replaced ("?" toward the script, U+FFFD toward clients)`,
    );
  }
}

/** print, message, os.exit and os.getenv that reach the real process. */
function installGlobals(host: ScriptHost, scriptPath: string, args: string[]): void {
  const engine = host.engine;
  const m = engine.m;
  const api = engine.api;
  const L = engine.L;
  const tab = new Uint8Array([9]);
  const newline = new Uint8Array([10]);
  const joinArgs = (L: LuaState): Uint8Array[] => {
    const n = m._lua_gettop(L);
    const parts: Uint8Array[] = [];
    for (let i = 1; i <= n; i++) {
      if (i > 1) parts.push(tab);
      m._luaL_tolstring(L, i, api.lenPtr);
      // The terminal wants UTF-8, whatever the script's code page.
      parts.push(api.toWire(api.viewString(L, -1)).slice());
      api.pop(L);
    }
    parts.push(newline);
    return parts;
  };
  const concat = (parts: Uint8Array[]): Uint8Array => {
    const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
    let offset = 0;
    for (const part of parts) {
      out.set(part, offset);
      offset += part.length;
    }
    return out;
  };
  engine.setGlobalFunction("print", (L) => {
    writeAllSync(Deno.stdout, concat(joinArgs(L)));
    return 0;
  });
  // message(text [, icon]): the terminal's message box; here a line on stderr, which
  // says the level when the script gives one (1 info, 2 warning, 3 error).
  const levels = ["", "info: ", "warning: ", "error: "].map((text) => stdoutEncoder.encode(text));
  engine.setGlobalFunction("message", (L) => {
    const icon = m._lua_type(L, 2) === LuaType.NUMBER ? Number(m._lua_tonumberx(L, 2, 0)) : 0;
    m._lua_settop(L, 1);
    writeAllSync(Deno.stderr, concat([levels[icon] ?? levels[0], ...joinArgs(L)]));
    return 0;
  });
  // The terminal's debug-output channel.
  engine.setGlobalFunction("PrintDbgStr", (L) => {
    m._lua_settop(L, 1);
    writeAllSync(Deno.stderr, concat([stdoutEncoder.encode("debug: "), ...joinArgs(L)]));
    return 0;
  });
  const scriptFolder = parentFolder(scriptPath);
  engine.setGlobalFunction("getScriptPath", (L) => {
    api.pushString(L, scriptFolder);
    return 1;
  });
  engine.setGlobalFunction("getWorkingFolder", (L) => {
    api.pushString(L, Deno.cwd());
    return 1;
  });

  m._lua_rawgeti(L, -1001000, 2n);
  m._lua_getfield(L, -1, api.cstr("os"));
  m._lua_pushcclosure(
    L,
    api.cfunction((L) => {
      const type = m._lua_type(L, 1);
      const code = type === LuaType.BOOLEAN
        ? (m._lua_toboolean(L, 1) ? 0 : 1)
        : type === LuaType.NUMBER
        ? Number(m._lua_tonumberx(L, 1, 0)) & 0xff
        : 0;
      // Not Deno.exit: a reply being written, a publication queued and the sockets'
      // linger must not be cut off. The script ends here, as if main had returned.
      host.exit(code);
      return engine.stopHere(L, `the script called os.exit(${code})`);
    }),
    0,
  );
  m._lua_setfield(L, -2, api.cstr("exit"));
  m._lua_pushcclosure(
    L,
    api.cfunction((L) => {
      let value: string | undefined;
      try {
        value = Deno.env.get(api.toText(L, 1));
      } catch {
        value = undefined; // no --allow-env: behave as if unset
      }
      if (value === undefined) m._lua_pushnil(L);
      else api.pushString(L, value);
      return 1;
    }),
    0,
  );
  m._lua_setfield(L, -2, api.cstr("getenv"));
  m._lua_settop(L, -3);

  m._lua_createtable(L, args.length, 1);
  api.pushString(L, scriptPath);
  m._lua_rawseti(L, -2, 0n);
  args.forEach((arg, i) => {
    api.pushString(L, arg);
    m._lua_rawseti(L, -2, BigInt(i + 1));
  });
  engine.setGlobal(L, "arg");
}

/**
 * Pushes a package.searchers entry that loads modules from the host's file system; the path
 * of each module it loads is added to `loaded`.
 */
function pushSearcher(engine: LuaEngine, scriptPath: string, loaded: string[]): void {
  const m = engine.m;
  const api = engine.api;
  const roots = [parentFolder(scriptPath), Deno.cwd()];
  const fn = api.cfunction((L) => {
    const name = api.toText(L, 1);
    const relative = name.replaceAll(".", "/");
    const tried: string[] = [];
    for (const root of roots) {
      for (const candidate of [`${relative}.lua`, joinPath(relative, "init.lua")]) {
        const path = joinPath(root, candidate);
        let bytes: Uint8Array;
        try {
          bytes = Deno.readFileSync(path);
        } catch {
          tried.push(`\n\tno file '${path}'`);
          continue;
        }
        const failure = engine.load(L, bytes, "@" + path);
        if (failure) {
          throw new Error(`error loading module '${name}' from '${path}':\n\t${failure}`);
        }
        loaded.push(resolvePath(path));
        api.pushString(L, path);
        return 2;
      }
    }
    api.pushString(L, tried.join(""));
    return 1;
  });
  m._lua_pushcclosure(engine.L, fn, 0);
}
