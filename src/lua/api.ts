/**
 * The raw Lua 5.4 C API as exported by wasmoon's Lua build (`wasm.ts` instantiates it).
 *
 * wasmoon's high-level API loses types (3.0 becomes 3, int64 rounds, strings stop at
 * NUL), so lomq talks to the Lua exports directly: a raw call costs about 0.04 us and
 * integers cross as BigInt, bytes as pointers into the wasm heap. This relies on the
 * exports and imports of that build, which is why the wasmoon version is pinned.
 *
 * @module
 */

/** A `lua_State*`: an address in the wasm heap. */
export type LuaState = number;

/** `lua_CFunction` implemented in JavaScript: returns the number of results. */
export type HostFunction = (L: LuaState) => number;

/** Lua type tags (`lua.h`). */
export const LuaType = {
  NONE: -1,
  NIL: 0,
  BOOLEAN: 1,
  LIGHTUSERDATA: 2,
  NUMBER: 3,
  STRING: 4,
  TABLE: 5,
  FUNCTION: 6,
  USERDATA: 7,
  THREAD: 8,
} as const;

/** Thread and call status codes (`lua.h`). */
export const LuaStatus = {
  OK: 0,
  YIELD: 1,
  ERRRUN: 2,
  ERRSYNTAX: 3,
  ERRMEM: 4,
  ERRERR: 5,
} as const;

/** `LUA_REGISTRYINDEX` for the default `LUAI_MAXSTACK` of one million. */
export const REGISTRY_INDEX = -1001000;
/** Registry slot holding the globals table (`LUA_RIDX_GLOBALS`). */
export const RIDX_GLOBALS = 2n;
/** `LUA_MULTRET`. */
export const MULTRET = -1;

/**
 * Returned by a host function made with {@link LuaApi.cfunction} to yield its thread
 * with no values; the thread resumes in {@link LuaApi.yieldContinuation}.
 */
export const YIELD = -1;

/** The Lua build's exports lomq uses, as `instantiateLua` in wasm.ts presents them. */
export interface LuaModule {
  HEAPU8: Uint8Array;
  _malloc(size: number): number;
  _free(ptr: number): void;
  _realloc(ptr: number, size: number): number;
  // deno-lint-ignore no-explicit-any
  addFunction(fn: (...args: any[]) => any, signature: string): number;
  /** The wasm stack pointer, restored after a JavaScript exception unwound wasm frames. */
  stackSave(): number;
  stackRestore(pointer: number): void;

  _luaL_newstate(): LuaState;
  _lua_newstate(alloc: number, ud: number): LuaState;
  _lua_atpanic(L: LuaState, panic: number): number;
  _lua_setwarnf(L: LuaState, warn: number, ud: number): void;
  _lua_sethook(L: LuaState, hook: number, mask: number, count: number): void;
  _lua_isyieldable(L: LuaState): number;
  _lua_iscfunction(L: LuaState, idx: number): number;
  _lua_tothread(L: LuaState, idx: number): LuaState;
  _luaL_openlibs(L: LuaState): void;
  _luaL_loadbufferx(L: LuaState, buf: number, size: number, name: number, mode: number): number;
  _luaL_traceback(L: LuaState, L1: LuaState, msg: number, level: number): void;
  _luaL_tolstring(L: LuaState, idx: number, len: number): number;
  _luaL_ref(L: LuaState, t: number): number;
  _luaL_unref(L: LuaState, t: number, ref: number): void;
  _luaL_newmetatable(L: LuaState, name: number): number;
  _luaL_testudata(L: LuaState, idx: number, name: number): number;
  _luaL_setmetatable(L: LuaState, name: number): void;
  _luaL_argerror(L: LuaState, arg: number, extramsg: number): number;
  _luaL_checklstring(L: LuaState, arg: number, len: number): number;
  _luaL_optlstring(L: LuaState, arg: number, def: number, len: number): number;
  _luaL_checkinteger(L: LuaState, arg: number): bigint;
  _luaL_checkudata(L: LuaState, arg: number, name: number): number;
  _luaL_checktype(L: LuaState, arg: number, type: number): void;
  _luaL_where(L: LuaState, level: number): void;
  _lua_getinfo(L: LuaState, what: number, ar: number): number;
  _lua_getlocal(L: LuaState, ar: number, n: number): number;
  _lua_concat(L: LuaState, n: number): void;
  _lua_copy(L: LuaState, from: number, to: number): void;

  _lua_close(L: LuaState): void;
  _lua_newthread(L: LuaState): LuaState;
  _lua_resume(L: LuaState, from: LuaState, nargs: number, nresults: number): number;
  _lua_status(L: LuaState): number;
  _lua_resetthread(L: LuaState): number;
  _luaL_typeerror(L: LuaState, arg: number, tname: number): number;
  _lua_yieldk(L: LuaState, nresults: number, ctx: number, k: number): number;
  _lua_error(L: LuaState): number;
  _lua_pcallk(
    L: LuaState,
    nargs: number,
    nresults: number,
    errfunc: number,
    ctx: number,
    k: number,
  ): number;
  _lua_callk(L: LuaState, nargs: number, nresults: number, ctx: number, k: number): void;

  _lua_gettop(L: LuaState): number;
  _lua_settop(L: LuaState, idx: number): void;
  _lua_absindex(L: LuaState, idx: number): number;
  _lua_pushvalue(L: LuaState, idx: number): void;
  _lua_rotate(L: LuaState, idx: number, n: number): void;
  _lua_checkstack(L: LuaState, n: number): number;
  _lua_xmove(from: LuaState, to: LuaState, n: number): void;

  _lua_type(L: LuaState, idx: number): number;
  _lua_isinteger(L: LuaState, idx: number): number;
  _lua_toboolean(L: LuaState, idx: number): number;
  _lua_tonumberx(L: LuaState, idx: number, isnum: number): number;
  _lua_tointegerx(L: LuaState, idx: number, isnum: number): bigint;
  _lua_tolstring(L: LuaState, idx: number, len: number): number;
  _lua_touserdata(L: LuaState, idx: number): number;
  _lua_topointer(L: LuaState, idx: number): number;
  _lua_rawlen(L: LuaState, idx: number): bigint;
  _lua_rawequal(L: LuaState, a: number, b: number): number;

  _lua_pushnil(L: LuaState): void;
  _lua_pushboolean(L: LuaState, b: number): void;
  _lua_pushinteger(L: LuaState, n: bigint): void;
  _lua_pushnumber(L: LuaState, n: number): void;
  _lua_pushlstring(L: LuaState, s: number, len: number): number;
  _lua_pushcclosure(L: LuaState, fn: number, n: number): void;
  _lua_pushlightuserdata(L: LuaState, p: number): void;

  _lua_createtable(L: LuaState, narr: number, nrec: number): void;
  _lua_newuserdatauv(L: LuaState, size: number, nuvalue: number): number;
  _lua_rawget(L: LuaState, idx: number): number;
  _lua_rawgeti(L: LuaState, idx: number, n: bigint): number;
  _lua_rawset(L: LuaState, idx: number): void;
  _lua_rawseti(L: LuaState, idx: number, n: bigint): void;
  _lua_getfield(L: LuaState, idx: number, k: number): number;
  _lua_setfield(L: LuaState, idx: number, k: number): void;
  _lua_next(L: LuaState, idx: number): number;
  _lua_setmetatable(L: LuaState, idx: number): number;
  _lua_getmetatable(L: LuaState, idx: number): number;
}

import { copyBytes } from "../bytes.ts";
import type { CodePage } from "./codepage.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/**
 * Thin helpers over the raw module: byte and string transfer through a reusable
 * scratch buffer in the wasm heap, and interned C strings for names.
 */
export class LuaApi {
  /** The raw exports. */
  readonly m: LuaModule;
  #scratch = 0;
  #scratchSize = 0;
  /** A 4-byte cell for `size_t*` out-parameters. */
  readonly lenPtr: number;
  #cstrings = new Map<string, number>();
  /** The `lua_KFunction` a yielded host function resumes in (set by the engine). */
  yieldContinuation = 0;
  /**
   * The code page strings have inside Lua (`--encoding`), or undefined: UTF-8, as on the
   * wire, and no transcoding. Text crossing between JavaScript (or the wire) and Lua goes
   * through {@link toLocal} and {@link toWire}.
   */
  codePage: CodePage | undefined;

  constructor(module: LuaModule) {
    this.m = module;
    this.lenPtr = module._malloc(8);
  }

  /** A NUL-terminated copy of `text` in the heap, kept for the life of the engine. */
  cstr(text: string): number {
    let ptr = this.#cstrings.get(text);
    if (ptr === undefined) {
      const bytes = encoder.encode(text);
      ptr = this.m._malloc(bytes.length + 1);
      this.m.HEAPU8.set(bytes, ptr);
      this.m.HEAPU8[ptr + bytes.length] = 0;
      this.#cstrings.set(text, ptr);
    }
    return ptr;
  }

  /** Copies `bytes` into the scratch buffer and returns its address (valid until the next call). */
  scratch(bytes: Uint8Array): number {
    return this.#scratchCopy(bytes, 0, bytes.length);
  }

  #scratchCopy(source: Uint8Array, start: number, n: number): number {
    if (n > this.#scratchSize) {
      if (this.#scratch) this.m._free(this.#scratch);
      this.#scratchSize = Math.max(n, 4096, this.#scratchSize * 2);
      this.#scratch = this.m._malloc(this.#scratchSize);
      if (!this.#scratch) throw new Error(`out of memory allocating ${n} bytes`);
    }
    copyBytes(this.m.HEAPU8, this.#scratch, source, start, n);
    return this.#scratch;
  }

  /** Pushes `bytes` as a Lua string, byte for byte. */
  pushBytes(L: LuaState, bytes: Uint8Array): void {
    this.pushRange(L, bytes, 0, bytes.length);
  }

  /** Pushes `source[start, start + n)` as a Lua string, byte for byte (no view made for it). */
  pushRange(L: LuaState, source: Uint8Array, start: number, n: number): void {
    if (n === 0) {
      this.m._lua_pushlstring(L, this.lenPtr, 0);
      return;
    }
    this.m._lua_pushlstring(L, this.#scratchCopy(source, start, n), n);
  }

  /** Pushes a JS string as Lua text (UTF-8, or the script's code page). */
  pushString(L: LuaState, text: string): void {
    this.pushBytes(L, this.toLocal(encoder.encode(text)));
  }

  /** UTF-8 bytes (from the wire, from JavaScript) as the script's text. */
  toLocal(utf8: Uint8Array): Uint8Array {
    const codePage = this.codePage;
    return codePage === undefined ? utf8 : codePage.fromUtf8(utf8);
  }

  /** The script's text as UTF-8 bytes (for the wire, for JavaScript, for the terminal). */
  toWire(local: Uint8Array): Uint8Array {
    const codePage = this.codePage;
    return codePage === undefined ? local : codePage.toUtf8(local);
  }

  /** The size_t written by the last call given `lenPtr`. */
  readLen(): number {
    const h = this.m.HEAPU8;
    const p = this.lenPtr;
    return (h[p] | (h[p + 1] << 8) | (h[p + 2] << 16)) + h[p + 3] * 0x1000000;
  }

  /**
   * A view of the string at `idx` (which must be a string: numbers would be converted
   * in place). The view aliases the heap: copy it before any call that may allocate.
   */
  viewString(L: LuaState, idx: number): Uint8Array {
    const ptr = this.stringAt(L, idx);
    const len = this.readLen();
    // A view made from the buffer costs two thirds of a subarray (no species lookup), and a
    // publisher makes two a message.
    return new Uint8Array(this.m.HEAPU8.buffer, ptr, len);
  }

  /**
   * The heap address of the string at `idx` (which must be a string), its length then in
   * {@linkcode readLen}: for reading it in place, without a view (valid as viewString's).
   */
  stringAt(L: LuaState, idx: number): number {
    return this.m._lua_tolstring(L, idx, this.lenPtr);
  }

  /** A copy of the string at `idx`. */
  toBytes(L: LuaState, idx: number): Uint8Array {
    return this.viewString(L, idx).slice();
  }

  /** The string at `idx` as text (lossy where not UTF-8; for messages, not data). */
  toText(L: LuaState, idx: number): string {
    return decoder.decode(this.toWire(this.viewString(L, idx)));
  }

  /** Any value rendered as `tostring` would, as text (may call `__tostring`). */
  describe(L: LuaState, idx: number): string {
    const ptr = this.m._luaL_tolstring(L, idx, this.lenPtr);
    const len = this.readLen();
    const text = decoder.decode(this.toWire(this.m.HEAPU8.subarray(ptr, ptr + len)));
    this.m._lua_settop(L, -2);
    return text;
  }

  /** A copy of the NUL-terminated C string at `ptr` (names Lua hands out, like a local's). */
  cString(ptr: number): Uint8Array {
    const heap = this.m.HEAPU8;
    const end = heap.indexOf(0, ptr);
    return heap.slice(ptr, end < 0 ? ptr : end);
  }

  /** Pops `n` values. */
  pop(L: LuaState, n = 1): void {
    this.m._lua_settop(L, -n - 1);
  }

  /**
   * Registers a JS function as a `lua_CFunction` and returns its table index. A JS
   * exception inside it becomes a Lua error; Lua's own unwinding (emscripten throws
   * `Infinity` for longjmp, used by lua_error and lua_yield) passes through untouched.
   */
  cfunction(fn: HostFunction): number {
    return this.m.addFunction((L: LuaState) => {
      let results: number;
      try {
        results = fn(L);
      } catch (error) {
        if (error === Infinity) throw error;
        return this.raise(L, error instanceof Error ? error.message : String(error));
      }
      // Yield outside the try block: emscripten unwinds by throwing, and a catch that
      // rethrows doubles the cost of the busiest path (a server waiting for requests).
      if (results === YIELD) {
        this.m._lua_settop(L, 0);
        return this.m._lua_yieldk(L, 0, 0, this.yieldContinuation);
      }
      return results;
    }, "ii");
  }

  /** Raises a Lua error with `message` from inside a host function (does not return). */
  raise(L: LuaState, message: string): number {
    this.pushString(L, message);
    return this.m._lua_error(L);
  }
}
