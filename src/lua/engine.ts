/**
 * The Lua 5.4 engine: one state of wasmoon's Lua build, driven through the raw C API.
 *
 * Scripts run on Lua threads that the host resumes ({@linkcode HostThread}): the top level,
 * `OnInit`, `main`, `OnStop` and every RPC handler. A host function that must wait (for a
 * request, a timer, a bind) yields its thread with a pending operation; the host awaits it
 * and resumes the thread with the results. Nothing awaits inside Lua, which DESIGN-FACTS
 * measured as slow and leaky in wasmoon.
 *
 * A count hook keeps the server live while Lua computes: when a host thread has run for a
 * slice without waiting, the hook yields it, the event loop runs (heartbeats answered,
 * connections accepted, signals seen), and the thread resumes where it stopped. The same
 * hook ends a thread that must stop (a call past its budget, `os.exit`, a halt) even where
 * Lua cannot yield, by raising an error at every instruction until the thread unwinds.
 *
 * Every allocation of the state goes through an allocator with a cap: past it the allocation
 * fails, which Lua reports as a "not enough memory" error in the protected call that asked.
 *
 * @module
 */

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
import { eventLoopTurn } from "./turn.ts";
import { quoteInput } from "../rpc/wire.ts";
import { instantiateLua } from "./wasm.ts";

/**
 * What a host function hands the driver when it yields: an operation that pushes the
 * results onto the thread and returns how many it pushed.
 */
export type PendingOperation = (thread: LuaState) => number | Promise<number>;

/** The outcome of running a Lua thread to its end. */
export type ThreadOutcome =
  | { ok: true }
  | { ok: false; stopped: true; reason: string }
  | { ok: false; stopped?: false; message: string; traceback: string };

/** Settings of an engine. */
export interface EngineOptions {
  /** Most bytes the Lua heap may hold; an allocation past it fails (default 1 GiB). */
  maxMemoryBytes?: number;
  /**
   * How long a host thread may compute before it yields to the event loop, in ms
   * (default {@linkcode DEFAULT_SLICE_MS}). 0 removes the hook: Lua runs about twice as fast
   * in tight loops, but a computing handler then freezes the server and budgets cannot be
   * enforced.
   */
  sliceMs?: number;
  /** Aborted when the script is asked to stop: {@linkcode LuaEngine.signalFor} includes it. */
  stopSignal?: AbortSignal;
}

/** Default Lua heap limit. */
export const DEFAULT_MAX_MEMORY_BYTES = 1024 * 1024 * 1024;
/** Default preemption slice. */
export const DEFAULT_SLICE_MS = 5;

/**
 * Lua instructions between two runs of the hook. The cost of the hook is the per-instruction
 * check that Lua makes once any count hook is set, whatever the count; the count only sets
 * how often the clock is read (about every 50-100 µs at this value).
 */
const HOOK_INSTRUCTIONS = 10_000;
const MASK_COUNT = 8;

/** A Lua thread the host drives: it may wait in host functions and is preempted. */
export class HostThread {
  /** The thread. */
  readonly state: LuaState;
  /** Its registry reference, which keeps it alive. */
  readonly ref: number;
  /** What it runs ("main", "OnStop", "handler"...), for messages. */
  readonly kind: string;
  /** The budget of the call it runs, in ms; 0 for none. */
  budgetMs = 0;
  /** The method of the RPC call it runs, for messages. */
  callName: Uint8Array | undefined;
  /** When the budget started counting (performance.now()), 0 until the call first runs. */
  startedAt = 0;
  /** Set once the thread must stop: why. It is never resumed again. */
  stopReason: string | undefined;
  /** The operation a host function yielded for, taken by the driver. */
  pending: PendingOperation | undefined;
  /** A pending operation still outstanding while the thread was abandoned. */
  outstanding: Promise<unknown> | undefined;
  #abort: AbortController | undefined;

  constructor(state: LuaState, ref: number, kind: string) {
    this.state = state;
    this.ref = ref;
    this.kind = kind;
  }

  /** Aborted when the thread is stopped; created on first use. */
  get abortSignal(): AbortSignal {
    this.#abort ??= new AbortController();
    return this.#abort.signal;
  }

  /** Marks the thread stopped and ends its waits. */
  stop(reason: string): void {
    this.stopReason ??= reason;
    this.#abort?.abort();
  }

  /** Whether its budget is spent at `now`. */
  overBudget(now: number): boolean {
    return this.budgetMs > 0 && this.startedAt > 0 && now - this.startedAt >= this.budgetMs;
  }
}

/** One Lua state with lomq's host plumbing. */
export class LuaEngine {
  /** Raw API helpers. */
  readonly api: LuaApi;
  /** The main state. */
  readonly L: LuaState;
  /** Decoder bound to this engine. */
  readonly decoder: Decoder;
  /** Encoder bound to this engine. */
  readonly encoder: Encoder;
  /** The preemption slice in ms (0: no hook). */
  readonly sliceMs: number;

  readonly #threads = new Map<LuaState, HostThread>();
  readonly #stopSignal: AbortSignal | undefined;
  #halted = false;
  #nresPtr: number;
  #hookPtr = 0;
  /** The innermost host thread running now (a handler runs inside main's process()). */
  #running: HostThread | undefined;
  /** When the current slice began; 0 until the hook first runs in it. */
  #sliceStart = 0;
  /** The script coroutine the hook paused last, for the prelude's coroutine.resume. */
  #preemptedCoroutine = 0;
  #memoryUsed = 0;
  #memoryMax: number;

  private constructor(module: LuaModule, options: EngineOptions) {
    this.api = new LuaApi(module);
    const m = module;
    this.#memoryMax = options.maxMemoryBytes ?? DEFAULT_MAX_MEMORY_BYTES;
    this.sliceMs = options.sliceMs ?? DEFAULT_SLICE_MS;
    this.#stopSignal = options.stopSignal;
    this.L = m._lua_newstate(m.addFunction(this.#allocate, "iiiii"), 0);
    if (!this.L) throw new Error("cannot create the Lua state: out of memory");
    m._lua_atpanic(this.L, m.addFunction(this.#panic, "ii"));
    m._lua_setwarnf(this.L, m.addFunction(this.#warn, "viii"), 0);
    m._luaL_openlibs(this.L);
    if (this.sliceMs > 0) {
      // Set on the main state before any other thread exists: new threads inherit it.
      this.#hookPtr = m.addFunction(this.#hook, "vii");
      m._lua_sethook(this.L, this.#hookPtr, MASK_COUNT, HOOK_INSTRUCTIONS);
    }
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
  static async create(options: EngineOptions = {}): Promise<LuaEngine> {
    return new LuaEngine(await instantiateLua(), options);
  }

  /** The raw exports. */
  get m(): LuaModule {
    return this.api.m;
  }

  /** Bytes the Lua heap holds now. */
  get memoryUsed(): number {
    return this.#memoryUsed;
  }

  /** The Lua heap limit in bytes. */
  get memoryMax(): number {
    return this.#memoryMax;
  }

  // ---- threads ---------------------------------------------------------------------------

  /** A new host thread (empty stack); {@link release} it when done. */
  newHostThread(kind: string): HostThread {
    const m = this.api.m;
    const state = m._lua_newthread(this.L);
    const ref = m._luaL_ref(this.L, REGISTRY_INDEX);
    const thread = new HostThread(state, ref, kind);
    this.#threads.set(state, thread);
    return thread;
  }

  /**
   * Lets the collector have `thread`. A thread abandoned while an operation was outstanding
   * stays until that operation settles, since the operation still pushes its results.
   */
  release(thread: HostThread): void {
    const free = () => {
      this.#threads.delete(thread.state);
      this.api.m._luaL_unref(this.L, REGISTRY_INDEX, thread.ref);
    };
    if (thread.outstanding === undefined) free();
    else void thread.outstanding.finally(free);
  }

  /** The host thread `L` is, or undefined (a coroutine of the script, the main state). */
  hostThread(L: LuaState): HostThread | undefined {
    return this.#threads.get(L);
  }

  /** The innermost host thread running now. */
  get running(): HostThread | undefined {
    return this.#running;
  }

  /**
   * An abort signal for waits of `L`: aborted when the script is asked to stop or the
   * thread is stopped (its budget ran out).
   */
  signalFor(L: LuaState): AbortSignal | undefined {
    const thread = this.#threads.get(L);
    if (thread === undefined) return this.#stopSignal;
    if (this.#stopSignal === undefined) return thread.abortSignal;
    return AbortSignal.any([this.#stopSignal, thread.abortSignal]);
  }

  /**
   * Stops driving scripts: no host thread is resumed again, and a running one stops at its
   * next instruction. For a stop that the script has no OnStop to take part in, and for
   * `os.exit`.
   */
  halt(reason = "the script is stopping"): void {
    this.#halted = true;
    for (const thread of this.#threads.values()) thread.stop(reason);
  }

  /**
   * From inside a host function on `L` (such as `os.exit`): ends the running host thread
   * now, as the hook ends a stopped one. Never returns normally.
   */
  stopHere(L: LuaState, reason: string): number {
    const thread = this.#running;
    if (thread === undefined) return this.api.raise(L, reason);
    thread.stop(reason);
    this.#enforceStop(L, thread);
    return this.api.raise(L, reason);
  }

  /** Whether {@link halt} was called. */
  get halted(): boolean {
    return this.#halted;
  }

  /**
   * Resumes `thread` once with the `nargs` values on top of its stack and returns the
   * status: OK (finished: results on its stack), YIELD (suspended: see `pending`), or an
   * error status (the error value on its stack). A JavaScript exception escaping the wasm
   * (which Lua cannot catch) is reported as an error, and the thread must be abandoned.
   */
  step(thread: HostThread, nargs: number): number {
    const m = this.api.m;
    const outer = this.#running;
    // A slice starts whenever Lua gets control from the event loop.
    if (outer === undefined) this.#sliceStart = 0;
    this.#running = thread;
    const stack = m.stackSave();
    try {
      return m._lua_resume(
        thread.state,
        outer === undefined ? 0 : outer.state,
        nargs,
        this.#nresPtr,
      );
    } catch (error) {
      m.stackRestore(stack);
      thread.stop(`internal error: ${error instanceof Error ? error.message : String(error)}`);
      return LuaStatus.ERRRUN;
    } finally {
      this.#running = outer;
    }
  }

  /**
   * Continues a thread that {@link step} left suspended (status YIELD) until it finishes,
   * fails or must stop: serves the operations it waits for, and gives the event loop a
   * turn after each preemption.
   */
  async drive(thread: HostThread, status: number): Promise<ThreadOutcome> {
    const m = this.api.m;
    const T = thread.state;
    for (;;) {
      if (thread.stopReason !== undefined) {
        return { ok: false, stopped: true, reason: thread.stopReason };
      }
      if (status === LuaStatus.OK) return { ok: true };
      if (status !== LuaStatus.YIELD) return { ok: false, ...this.#failure(T) };
      const operation = thread.pending;
      thread.pending = undefined;
      // Drop what the thread yielded (a bare coroutine.yield(...) at its top), but nothing
      // below: a C function that yielded keeps its own values for its continuation.
      const h = m.HEAPU8;
      const p = this.#nresPtr;
      const yielded = h[p] | (h[p + 1] << 8) | (h[p + 2] << 16) | (h[p + 3] << 24);
      if (yielded > 0) m._lua_settop(T, -yielded - 1);
      let nargs = 0;
      if (operation === undefined) {
        // Preempted, or a bare coroutine.yield() at the top of the thread: let I/O run.
        await eventLoopTurn();
      } else {
        // The operation pushes its results after a `true` status; a failure replaces
        // them with `false, message`, which the continuation raises in the script.
        m._lua_pushboolean(T, 1);
        try {
          const pushed = operation(T);
          nargs = 1 +
            (typeof pushed === "number" ? pushed : await this.#withinBudget(thread, pushed));
        } catch (error) {
          m._lua_settop(T, 0);
          m._lua_pushboolean(T, 0);
          this.api.pushString(T, error instanceof Error ? error.message : String(error));
          nargs = 2;
        }
      }
      if (thread.budgetMs > 0 && thread.overBudget(performance.now())) {
        thread.stop(this.budgetMessage(thread));
      }
      if (thread.stopReason !== undefined) continue;
      status = this.step(thread, nargs);
    }
  }

  /** The message a call past its budget is stopped with. */
  budgetMessage(thread: HostThread): string {
    const what = thread.callName === undefined
      ? thread.kind
      : `call '${quoteInput(thread.callName)}'`;
    return `${what} exceeded ${thread.budgetMs} ms`;
  }

  /** Awaits an operation, or less when the thread's budget runs out first. */
  #withinBudget(thread: HostThread, operation: Promise<number>): Promise<number> {
    if (thread.budgetMs <= 0) return operation;
    const now = performance.now();
    if (thread.startedAt === 0) thread.startedAt = now;
    const left = thread.startedAt + thread.budgetMs - now;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const expired = new Promise<number>((resolve) => {
      timer = setTimeout(() => {
        thread.stop(this.budgetMessage(thread));
        // The operation may still push onto the thread: keep it alive until it settles.
        thread.outstanding = operation.catch(() => {});
        resolve(0);
      }, Math.max(0, left));
    });
    return Promise.race([operation, expired]).finally(() => clearTimeout(timer));
  }

  /**
   * Runs the function below `nargs` arguments on top of `L` as a host thread to its end,
   * serving the operations it yields, and resolves with its outcome. `results` may read
   * what the function returned (on the thread's stack) before the thread is released.
   */
  async run(
    L: LuaState,
    nargs: number,
    kind = "script",
    results?: (thread: LuaState) => void,
  ): Promise<ThreadOutcome> {
    const thread = this.newHostThread(kind);
    this.api.m._lua_xmove(L, thread.state, nargs + 1);
    try {
      const outcome = await this.drive(thread, this.step(thread, nargs));
      if (outcome.ok) results?.(thread.state);
      return outcome;
    } finally {
      this.release(thread);
    }
  }

  /**
   * Yields the running host thread `L` from inside a host function, handing `operation`
   * to the driver. Must be the host function's return value (a {@link YIELD} request
   * that {@link LuaApi.cfunction} carries out). Raises a Lua error when
   * `L` is not a host-driven thread (a coroutine of the script, or a call from the host),
   * or cannot yield here (inside a C function's callback, such as a table.sort comparator).
   */
  wait(L: LuaState, what: string, operation: PendingOperation): number {
    const thread = this.#threads.get(L);
    if (thread === undefined) {
      return this.api.raise(
        L,
        `${what} cannot wait here: call it from the script's main code, main(), OnStop ` +
          `or an RPC handler, not from a coroutine`,
      );
    }
    if (!this.api.m._lua_isyieldable(L)) {
      return this.api.raise(
        L,
        `${what} cannot wait here: it was called from inside a C function ` +
          `(a table.sort comparator, a metamethod called by the library, ...)`,
      );
    }
    thread.pending = operation;
    return YIELD;
  }

  /**
   * Whether the hook (or a nested resume passing a pause up) paused `co` for a time slice:
   * asked by the coroutine functions right after `co` yielded no values.
   */
  takePreempted(co: LuaState): boolean {
    if (this.#preemptedCoroutine !== co) return false;
    this.#preemptedCoroutine = 0;
    return true;
  }

  /**
   * Records that `L`, paused for a slice by a coroutine it resumed, now yields that pause
   * up to its own resumer (see coroutines.ts). A host thread needs no record: its driver
   * sees a yield without an operation.
   */
  notePreempted(L: LuaState): void {
    if (!this.#threads.has(L)) this.#preemptedCoroutine = L;
  }

  // ---- globals and calls -----------------------------------------------------------------

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
    this.api.m._lua_rawgeti(L, REGISTRY_INDEX, RIDX_GLOBALS);
    if (typeof name === "string") this.api.pushString(L, name);
    else this.api.pushBytes(L, name);
    return this.#takeGlobal(L);
  }

  /**
   * {@link getGlobal} by a registry reference to the name's Lua string (made once and kept),
   * so that a lookup repeated per request makes no string.
   */
  getGlobalByRef(L: LuaState, nameRef: bigint): number {
    const m = this.api.m;
    m._lua_rawgeti(L, REGISTRY_INDEX, RIDX_GLOBALS);
    m._lua_rawgeti(L, REGISTRY_INDEX, nameRef);
    return this.#takeGlobal(L);
  }

  // [globals, name] on top → [value]; the value's type.
  #takeGlobal(L: LuaState): number {
    const m = this.api.m;
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
    // Text only: Lua does not verify bytecode, and a damaged chunk can break the engine.
    const mode = this.api.cstr("t");
    const status = source.length === 0
      ? m._luaL_loadbufferx(L, this.api.lenPtr, 0, name, mode)
      : m._luaL_loadbufferx(L, this.api.scratch(source), source.length, name, mode);
    if (status === LuaStatus.OK) return undefined;
    const message = status === LuaStatus.ERRMEM ? "not enough memory" : this.api.describe(L, -1);
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

  // ---- callbacks from the wasm ------------------------------------------------------------

  /**
   * The state's allocator (`lua_Alloc`): the C library's, with a running total and a cap.
   * Lua passes the object type in `oldSize` when `pointer` is null; shrinking never fails.
   */
  #allocate = (_ud: number, pointer: number, oldSize: number, newSize: number): number => {
    const m = this.api.m;
    if (newSize === 0) {
      if (pointer !== 0) {
        this.#memoryUsed -= oldSize;
        m._free(pointer);
      }
      return 0;
    }
    const growth = pointer === 0 ? newSize : newSize - oldSize;
    if (growth > 0 && this.#memoryUsed + growth > this.#memoryMax) return 0;
    const block = m._realloc(pointer, newSize);
    if (block !== 0) this.#memoryUsed += growth;
    return block;
  };

  /** An error outside any protected call: Lua would abort the process right after. */
  #panic = (L: LuaState): number => {
    const m = this.api.m;
    const message = m._lua_type(L, -1) === LuaType.STRING ? this.api.toText(L, -1) : "?";
    throw new Error(`internal error: unprotected Lua error: ${message}`);
  };

  #warnings = false;
  #warningParts: string[] = [];

  /** `warn()`: off until "@on", as the stand-alone interpreter does; lines go to stderr. */
  #warn = (_ud: number, messagePtr: number, toContinue: number): void => {
    const heap = this.api.m.HEAPU8;
    let end = messagePtr;
    while (heap[end] !== 0) end++;
    const part = new TextDecoder().decode(heap.subarray(messagePtr, end));
    if (this.#warningParts.length === 0 && !toContinue && part.startsWith("@")) {
      if (part === "@on") this.#warnings = true;
      else if (part === "@off") this.#warnings = false;
      return;
    }
    this.#warningParts.push(part);
    if (toContinue) return;
    const text = this.#warningParts.join("");
    this.#warningParts = [];
    if (this.#warnings) console.error(`Lua warning: ${text}`);
  };

  /**
   * The count hook. It runs on whatever thread executes (a host thread or a coroutine of
   * the script), every {@link HOOK_INSTRUCTIONS} instructions, or at every instruction of
   * a thread that must stop.
   */
  #hook = (T: LuaState): void => {
    const thread = this.#running;
    if (thread === undefined) return; // the host's own protected calls
    const now = performance.now();
    if (thread.stopReason === undefined && thread.budgetMs > 0) {
      if (thread.startedAt === 0) thread.startedAt = now;
      else if (now - thread.startedAt >= thread.budgetMs) thread.stop(this.budgetMessage(thread));
    }
    if (thread.stopReason !== undefined) return this.#enforceStop(T, thread);
    if (this.#sliceStart === 0) {
      this.#sliceStart = now;
      return;
    }
    if (now - this.#sliceStart < this.sliceMs) return;
    const m = this.api.m;
    // Inside a C function's callback Lua cannot yield: try again at the next hook.
    if (!m._lua_isyieldable(T)) return;
    if (T !== thread.state) this.#preemptedCoroutine = T;
    m._lua_yieldk(T, 0, 0, 0);
  };

  /**
   * Ends a thread that must stop: it yields (the driver then never resumes it) where it
   * can, else an error is raised, and raised again at every instruction until it unwinds.
   */
  #enforceStop(T: LuaState, thread: HostThread): void {
    const m = this.api.m;
    m._lua_sethook(thread.state, this.#hookPtr, MASK_COUNT, 1);
    if (T !== thread.state) m._lua_sethook(T, this.#hookPtr, MASK_COUNT, 1);
    if (T === thread.state && m._lua_isyieldable(T)) {
      m._lua_yieldk(T, 0, 0, 0);
      return;
    }
    this.api.raise(T, thread.stopReason ?? "the script is stopping");
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
