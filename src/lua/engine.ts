/**
 * The Lua 5.4 engine: one wasmoon state driven through the raw C API.
 *
 * Scripts run on Lua threads that the host resumes. A host function that must wait
 * (for a request, a timer, a bind) yields the thread with a pending operation; the
 * host awaits it and resumes the thread with the results. Nothing awaits inside Lua,
 * which DESIGN-FACTS measured as slow and leaky in wasmoon.
 *
 * @module
 */

import { LuaWasm } from "wasmoon";
import {
  type HostFunction,
  LuaApi,
  type LuaModule,
  type LuaState,
  LuaStatus,
  LuaType,
  MULTRET,
  REGISTRY_INDEX,
  RIDX_GLOBALS,
  YIELD,
} from "./api.ts";
import { Decoder, Encoder } from "./codec.ts";
import { wasmLocation } from "./wasm.ts";

/**
 * What a host function hands the driver when it yields: an operation that pushes the
 * results onto the thread and returns how many it pushed.
 */
export type PendingOperation = (thread: LuaState) => number | Promise<number>;

/** The outcome of running a Lua thread to its end. */
export type ThreadOutcome =
  | { ok: true }
  | { ok: false; message: string; traceback: string };

/**
 * Runs `load` while capturing the exports of the WebAssembly instance it creates.
 * wasmoon's glue (an emscripten debug-style build) wraps every export in a function
 * that asserts the runtime is ready and forwards with `apply`; the hot path makes
 * dozens of calls per request, so it calls the instance's exports directly instead.
 */
async function captureWasmExports<T>(
  load: () => Promise<T>,
): Promise<{ value: T; exports: WebAssembly.Exports | undefined }> {
  const wasm = WebAssembly as unknown as Record<string, unknown>;
  const originals = {
    instantiate: WebAssembly.instantiate,
    instantiateStreaming: WebAssembly.instantiateStreaming,
  };
  let exports: WebAssembly.Exports | undefined;
  const keep = (result: unknown) => {
    const instance = (result as { instance?: WebAssembly.Instance }).instance ?? result;
    if (instance instanceof WebAssembly.Instance) exports ??= instance.exports;
    return result;
  };
  for (const [name, original] of Object.entries(originals)) {
    wasm[name] = (...args: unknown[]) =>
      (original as (...a: unknown[]) => Promise<unknown>).apply(WebAssembly, args).then(keep);
  }
  try {
    return { value: await load(), exports };
  } finally {
    Object.assign(wasm, originals);
  }
}

/** The module, with each `_lua*` function replaced by the instance's own export. */
function directExports(module: LuaModule, exports: WebAssembly.Exports | undefined): LuaModule {
  if (!exports) return module;
  const direct = Object.create(module) as Record<string, unknown>;
  for (const key of Object.keys(module)) {
    if (!key.startsWith("_lua")) continue;
    const raw = exports[key.slice(1)];
    if (typeof raw === "function") direct[key] = raw;
  }
  return direct as unknown as LuaModule;
}

/** One Lua state with lomq's host plumbing. */
export class LuaEngine {
  /** Raw API helpers. */
  readonly api: LuaApi;
  /** The main state. */
  readonly L: LuaState;
  /** A thread kept for protected calls from the host (dispatch, callbacks). */
  readonly callThread: LuaState;
  /** Decoder bound to this engine. */
  readonly decoder: Decoder;
  /** Encoder bound to this engine. */
  readonly encoder: Encoder;
  /** Threads the host drives; only these may wait in host functions. */
  readonly hostThreads: Set<LuaState> = new Set();

  #pending: PendingOperation | undefined;
  #halted = false;
  #nresPtr: number;

  private constructor(module: LuaModule) {
    this.api = new LuaApi(module);
    const m = module;
    this.L = m._luaL_newstate();
    m._luaL_openlibs(this.L);
    this.callThread = this.newThread();
    this.#nresPtr = m._malloc(4);
    this.decoder = new Decoder(this.api);
    this.encoder = new Encoder(this.api);
    // Continuation for waiting host functions: the host resumes with (ok, values...);
    // a false ok raises the second value as the error, in the script's own frame.
    this.api.yieldContinuation = m.addFunction((L: LuaState) => {
      const top = m._lua_gettop(L);
      if (!m._lua_toboolean(L, 1)) {
        m._lua_settop(L, 2);
        return m._lua_error(L);
      }
      return top - 1;
    }, "iiii");
  }

  /** Loads the wasm module and creates a fresh state with the standard libraries. */
  static async create(): Promise<LuaEngine> {
    const { value: wasm, exports } = await captureWasmExports(async () =>
      LuaWasm.initialize(await wasmLocation())
    );
    return new LuaEngine(directExports(wasm.module as unknown as LuaModule, exports));
  }

  /**
   * Stops driving scripts: a thread waiting now is never resumed, and {@link run}
   * reports it finished. For a stop that the script has no OnStop to take part in.
   */
  halt(): void {
    this.#halted = true;
  }

  /** Whether {@link halt} was called. */
  get halted(): boolean {
    return this.#halted;
  }

  /** The raw exports. */
  get m(): LuaModule {
    return this.api.m;
  }

  /** Creates a thread anchored in the registry so the collector keeps it. */
  newThread(): LuaState {
    const m = this.api.m;
    const thread = m._lua_newthread(this.L);
    m._luaL_ref(this.L, REGISTRY_INDEX);
    return thread;
  }

  /** Sets global `name` to a host function. */
  setGlobalFunction(name: string, fn: HostFunction): void {
    const m = this.api.m;
    m._lua_pushcclosure(this.L, this.api.cfunction(fn), 0);
    this.setGlobal(this.L, name);
  }

  /** Pops the top of `L` into global `name`. */
  setGlobal(L: LuaState, name: string): void {
    const m = this.api.m;
    m._lua_rawgeti(L, REGISTRY_INDEX, RIDX_GLOBALS);
    m._lua_rotate(L, -2, 1);
    m._lua_setfield(L, -2, this.api.cstr(name));
    m._lua_settop(L, -2);
  }

  /** Pushes global `name` (raw: no metamethods run) and returns its type. */
  getGlobal(L: LuaState, name: string | Uint8Array): number {
    const m = this.api.m;
    m._lua_rawgeti(L, REGISTRY_INDEX, RIDX_GLOBALS);
    if (typeof name === "string") this.api.pushString(L, name);
    else this.api.pushBytes(L, name);
    const type = m._lua_rawget(L, -2);
    m._lua_rotate(L, -2, 1);
    m._lua_settop(L, -2);
    return type;
  }

  /**
   * Compiles `source` onto the top of `L`. Returns undefined, or the compiler's message
   * (which names the chunk and line).
   */
  load(L: LuaState, source: Uint8Array, chunkName: string): string | undefined {
    const m = this.api.m;
    const name = this.api.cstr(chunkName);
    const status = source.length === 0
      ? m._luaL_loadbufferx(L, this.api.lenPtr, 0, name, 0)
      : m._luaL_loadbufferx(L, this.api.scratch(source), source.length, name, 0);
    if (status === LuaStatus.OK) return undefined;
    const message = this.api.describe(L, -1);
    this.api.pop(L);
    return message;
  }

  /**
   * Calls the function below `nargs` arguments on `L` in protected mode. Returns the
   * status; results (or the error value) are left on the stack.
   */
  pcall(L: LuaState, nargs: number, nresults = MULTRET): number {
    return this.api.m._lua_pcallk(L, nargs, nresults, 0, 0, 0);
  }

  /**
   * Yields the running host thread `L` from inside a host function, handing `operation`
   * to the driver. Must be the host function's return value (a {@link YIELD} request
   * that {@link LuaApi.cfunction} carries out). Raises a Lua error when
   * `L` is not a host-driven thread (a coroutine of the script, or a call from the host),
   * since only host threads can be suspended for I/O.
   */
  wait(L: LuaState, what: string, operation: PendingOperation): number {
    if (!this.hostThreads.has(L)) {
      return this.api.raise(
        L,
        `${what} cannot wait here: call it from the script's main code or main(), ` +
          `not from a coroutine, an RPC handler or OnStop`,
      );
    }
    this.#pending = operation;
    return YIELD;
  }

  /**
   * Runs the function below `nargs` arguments on top of `L` as a host thread to its end,
   * serving the operations it yields, and resolves with its outcome (results are dropped).
   */
  async run(L: LuaState, nargs: number): Promise<ThreadOutcome> {
    const m = this.api.m;
    const thread = this.newThread();
    m._lua_xmove(L, thread, nargs + 1);
    this.hostThreads.add(thread);
    try {
      for (;;) {
        const status = m._lua_resume(thread, 0, nargs, this.#nresPtr);
        if (status === LuaStatus.OK) {
          return { ok: true };
        }
        if (status !== LuaStatus.YIELD) {
          return { ok: false, ...this.#failure(thread) };
        }
        const operation = this.#pending;
        this.#pending = undefined;
        m._lua_settop(thread, 0);
        if (!operation) {
          // A bare coroutine.yield() at the top of a host thread: let I/O run, go on.
          await new Promise((resolve) => setTimeout(resolve, 0));
          nargs = 0;
          continue;
        }
        // The operation pushes its results after a `true` status; a failure replaces
        // them with `false, message`, which the continuation raises in the script.
        m._lua_pushboolean(thread, 1);
        try {
          const pushed = operation(thread);
          nargs = 1 + (typeof pushed === "number" ? pushed : await pushed);
          if (this.#halted) return { ok: true };
        } catch (error) {
          m._lua_settop(thread, 0);
          m._lua_pushboolean(thread, 0);
          this.api.pushString(thread, error instanceof Error ? error.message : String(error));
          nargs = 2;
        }
      }
    } finally {
      this.hostThreads.delete(thread);
      m._lua_settop(thread, 0);
    }
  }

  #failure(thread: LuaState): { message: string; traceback: string } {
    const m = this.api.m;
    const message = m._lua_type(thread, -1) === LuaType.STRING
      ? this.api.toText(thread, -1)
      : this.api.describe(thread, -1);
    m._luaL_traceback(this.L, thread, 0, 0);
    const traceback = this.api.toText(this.L, -1);
    this.api.pop(this.L);
    return { message, traceback };
  }
}
