/**
 * `coroutine.resume`, `coroutine.wrap`, `coroutine.status` and `coroutine.close` that keep
 * Lua's semantics while lomq pauses computing coroutines for time slices.
 *
 * When the count hook pauses a script coroutine, the coroutine yields to whoever resumed
 * it, with no values. These functions (C functions, like Lua's own) recognise that pause
 * and pass it up: they yield their own thread, with a continuation that resumes the
 * coroutine again, so the pause travels up to the host thread, which lets the event loop
 * run. The script sees nothing of it: values, errors and their positions are Lua's (the
 * error path of `wrap` is Lua's `auxwrap`), and while a coroutine is paused it counts as
 * running ("normal"), so another thread (OnStop) can neither resume nor close it.
 *
 * @module
 */

import { type LuaState, LuaStatus, LuaType, MULTRET, REGISTRY_INDEX } from "./api.ts";
import type { LuaEngine } from "./engine.ts";

/** `lua_upvalueindex(1)`. */
const UPVALUE_1 = REGISTRY_INDEX - 1;

/** Installs the coroutine functions in `engine`'s `coroutine` table (once, before scripts). */
export function installCoroutines(engine: LuaEngine): void {
  new Coroutines(engine).install();
}

class Coroutines {
  readonly #engine: LuaEngine;
  /** Coroutines paused for a slice while the pause travels up: they count as running. */
  readonly #paused = new Set<LuaState>();
  readonly #nres: number;
  /** Continuations after a passed-up pause, and the body shared by every wrap function. */
  readonly #resumeAgain: number;
  readonly #wrapAgain: number;
  readonly #wrapBody: number;

  constructor(engine: LuaEngine) {
    this.#engine = engine;
    const m = engine.m;
    this.#nres = m._malloc(4);
    this.#resumeAgain = m.addFunction(
      (L: LuaState) => this.#guard(L, () => this.#again(L, m._lua_tothread(L, 1), true)),
      "iiii",
    );
    this.#wrapAgain = m.addFunction(
      (L: LuaState) => this.#guard(L, () => this.#again(L, m._lua_tothread(L, UPVALUE_1), false)),
      "iiii",
    );
    this.#wrapBody = m.addFunction((L: LuaState) =>
      this.#guard(L, () => {
        const co = m._lua_tothread(L, UPVALUE_1);
        return this.#resume(L, co, m._lua_gettop(L), false);
      }), "ii");
  }

  install(): void {
    const engine = this.#engine;
    const m = engine.m;
    const api = engine.api;
    const L = engine.L;
    engine.getGlobal(L, "coroutine");
    const table = m._lua_gettop(L);
    // The originals, for coroutines that are not paused.
    m._lua_getfield(L, table, api.cstr("status"));
    const originalStatus = m._luaL_ref(L, REGISTRY_INDEX);
    m._lua_getfield(L, table, api.cstr("close"));
    const originalClose = m._luaL_ref(L, REGISTRY_INDEX);

    const define = (name: string, fn: (L: LuaState) => number) => {
      m._lua_pushcclosure(L, m.addFunction((T: LuaState) => this.#guard(T, () => fn(T)), "ii"), 0);
      m._lua_setfield(L, table, api.cstr(name));
    };
    define("resume", (T) => {
      const co = this.#coroutineArg(T);
      // [co, args...]: the args move to the coroutine; co stays at 1 for the continuation.
      return this.#resume(T, co, m._lua_gettop(T) - 1, true);
    });
    define("wrap", (T) => {
      m._luaL_checktype(T, 1, LuaType.FUNCTION);
      const co = m._lua_newthread(T);
      m._lua_pushvalue(T, 1);
      m._lua_xmove(T, co, 1);
      m._lua_pushcclosure(T, this.#wrapBody, 1);
      return 1;
    });
    define("status", (T) => {
      const co = this.#coroutineArg(T);
      if (this.#paused.has(co)) {
        api.pushString(T, "normal");
        return 1;
      }
      m._lua_rawgeti(T, REGISTRY_INDEX, BigInt(originalStatus));
      m._lua_pushvalue(T, 1);
      m._lua_callk(T, 1, 1, 0, 0);
      return 1;
    });
    define("close", (T) => {
      const co = this.#coroutineArg(T);
      if (this.#paused.has(co)) return api.raise(T, "cannot close a normal coroutine");
      m._lua_rawgeti(T, REGISTRY_INDEX, BigInt(originalClose));
      m._lua_rotate(T, 1, 1);
      m._lua_callk(T, m._lua_gettop(T) - 1, MULTRET, 0, 0);
      return m._lua_gettop(T);
    });
    m._lua_settop(L, table - 1);
  }

  /** Argument 1 as a coroutine, or Lua's own "thread expected" error. */
  #coroutineArg(L: LuaState): LuaState {
    const m = this.#engine.m;
    const co = m._lua_type(L, 1) === LuaType.THREAD ? m._lua_tothread(L, 1) : 0;
    if (co === 0) m._luaL_typeerror(L, 1, this.#engine.api.cstr("thread"));
    return co;
  }

  /** After a passed-up pause: `L` was resumed (with no values), so resume `co` again. */
  #again(L: LuaState, co: LuaState, forResume: boolean): number {
    this.#paused.delete(co);
    this.#engine.m._lua_settop(L, forResume ? 1 : 0);
    return this.#resume(L, co, 0, forResume);
  }

  /**
   * Lua's auxresume: moves `narg` values from the top of `L` into `co` and resumes it.
   * Returns `true, ...`/`false, err` for resume, or the values (raising the error) for a
   * wrap function. A pause of `co` is passed up by yielding `L`.
   */
  #resume(L: LuaState, co: LuaState, narg: number, forResume: boolean): number {
    const engine = this.#engine;
    const m = engine.m;
    if (this.#paused.has(co)) {
      return this.#refuse(L, "cannot resume non-suspended coroutine", forResume);
    }
    if (!m._lua_checkstack(co, narg)) {
      return this.#refuse(L, "too many arguments to resume", forResume);
    }
    m._lua_xmove(L, co, narg);
    for (;;) {
      const status = m._lua_resume(co, L, narg, this.#nres);
      const h = m.HEAPU8;
      const p = this.#nres;
      const nres = h[p] | (h[p + 1] << 8) | (h[p + 2] << 16) | (h[p + 3] << 24);
      if (status === LuaStatus.YIELD && nres === 0 && engine.takePreempted(co)) {
        if (engine.running !== undefined && m._lua_isyieldable(L)) {
          this.#paused.add(co);
          engine.notePreempted(L);
          // Unwinds; when L is resumed, Lua calls the continuation, which resumes co.
          return m._lua_yieldk(L, 0, 0, forResume ? this.#resumeAgain : this.#wrapAgain);
        }
        narg = 0; // cannot pass the pause up from here (a C boundary): go on at once
        continue;
      }
      if (status === LuaStatus.OK || status === LuaStatus.YIELD) {
        if (!m._lua_checkstack(L, nres + 1)) {
          m._lua_settop(co, -nres - 1);
          return this.#refuse(L, "too many results to resume", forResume);
        }
        if (forResume) m._lua_pushboolean(L, 1);
        m._lua_xmove(co, L, nres);
        return forResume ? nres + 1 : nres;
      }
      // An error (inside the coroutine, or a refusal by lua_resume): its value is on co.
      if (forResume) {
        // Moved first: co may be L itself (a coroutine resuming itself).
        m._lua_xmove(co, L, 1);
        m._lua_pushboolean(L, 0);
        m._lua_rotate(L, -2, 1);
        return 2;
      }
      m._lua_xmove(co, L, 1);
      let stat = m._lua_status(co);
      if (stat !== LuaStatus.OK && stat !== LuaStatus.YIELD) {
        // Closes its to-be-closed variables; the error object left may be a __close's.
        stat = m._lua_resetthread(co);
        m._lua_xmove(co, L, 1);
      }
      if (stat !== LuaStatus.ERRMEM && m._lua_type(L, -1) === LuaType.STRING) {
        this.#prependWhere(L);
      }
      return m._lua_error(L);
    }
  }

  /** A resume refused before the coroutine ran, as Lua reports it. */
  #refuse(L: LuaState, message: string, forResume: boolean): number {
    const m = this.#engine.m;
    if (forResume) m._lua_pushboolean(L, 0);
    this.#engine.api.pushString(L, message);
    if (forResume) return 2;
    this.#prependWhere(L);
    return m._lua_error(L);
  }

  /** As auxwrap: the string on top gets the position of the wrap function's caller. */
  #prependWhere(L: LuaState): void {
    const m = this.#engine.m;
    m._luaL_where(L, 1);
    m._lua_rotate(L, -2, 1);
    m._lua_concat(L, 2);
  }

  /** Runs a host function's body: a JS exception becomes a Lua error; Lua's unwinding passes. */
  #guard(L: LuaState, body: () => number): number {
    try {
      return body();
    } catch (error) {
      if (error === Infinity) throw error;
      return this.#engine.api.raise(L, error instanceof Error ? error.message : String(error));
    }
  }
}
