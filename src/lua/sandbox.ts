/**
 * The script sandbox: the standard-library functions that must not run as they are in
 * wasmoon's build, replaced by host functions that keep the engine and the process safe.
 *
 * Why: a JavaScript exception thrown inside the wasm (by emscripten's JS side of a libc
 * call) is not a Lua error. It unwinds through every Lua frame and protected call up to
 * the host, which leaves the Lua state inconsistent, and it used to end the process. The
 * library also blocks the event loop in C (reading standard input, some loops that depend
 * only on an argument), and reaches emscripten's file system held in memory rather than the
 * disk, with no bound counted by the engine's memory cap. What the audit found, per function:
 *
 * - `os.execute(cmd)` throws a TypeError (emscripten's `system` calls a `child_process`
 *   method that its minifier renamed); `os.execute()` claims a shell exists.
 * - Loading a damaged or crafted binary chunk (`load` of bytecode) corrupts the wasm heap:
 *   fuzzing `string.dump` output gave "RuntimeError: memory access out of bounds".
 * - Reading standard input (`io.read`, `io.lines()`, `io.stdin:read`, `dofile()`,
 *   `loadfile()`, `debug.debug()`) blocks the whole process while stdin is open and idle.
 * - `io.write` and `io.stdout:write` go through emscripten's tty, which keeps each line in a
 *   JavaScript array of bytes until a newline and then logs it as UTF-8 text: bytes are
 *   altered, and one 200 MB write without a newline stalled the process for 18 s.
 * - `io.open`, `io.lines(name)`, `io.input(name)`, `io.output(name)`, `io.tmpfile`,
 *   `os.remove`, `os.rename`, `os.tmpname`, `dofile(name)` and `loadfile(name)` work on an
 *   in-memory file system (never the real disk): files vanish with the process, real files
 *   cannot be read, and a 3 GB file lived in JavaScript memory outside the Lua heap's cap.
 * - `debug.sethook` replaces or removes lomq's count hook (preemption and call budgets), and
 *   `debug.debug` reads commands from standard input.
 * - `table.move(t, 1, 2^40, 1)` and `string.rep("", 2^40)` loop in C for hours, where the
 *   hook cannot preempt them; `string.rep("x", n)` copies byte by byte (5.5 s for 2^28).
 *
 * Unchanged because harmless: `collectgarbage` (even "stop": the allocator's cap still
 * counts every byte, and Lua collects in an emergency when an allocation fails), and
 * `debug.setcstacklimit` (a no-op in Lua 5.4.6 that returns 200). `print`, `os.exit` and
 * `os.getenv` are replaced by the runtime, not here. Pattern matching (`string.find` and the
 * rest) can still backtrack for a very long time in C on pathological patterns.
 *
 * ```ts
 * import { LuaEngine } from "./engine.ts";
 * import { installSandbox } from "./sandbox.ts";
 * const engine = await LuaEngine.create();
 * installSandbox(engine); // before the prelude and before any script code
 * ```
 *
 * @module
 */

import {
  type LuaModule,
  type LuaState,
  LuaType,
  MULTRET,
  REGISTRY_INDEX,
  RIDX_GLOBALS,
} from "./api.ts";
import { writeAllSync } from "../bytes.ts";
import type { LuaEngine } from "./engine.ts";

/** Why files cannot be opened: the one reason behind every file-name function. */
const NO_FILES = "scripts cannot open files (the engine's io library would reach a " +
  "file system held in memory, not the disk)";
/** Why standard input cannot be read. */
const NO_STDIN = "reading standard input would stop the whole server until input arrives";
/** Why io.stdout and io.stderr cannot be read. */
const WRITE_ONLY = "io.stdout and io.stderr can only be written";
/** Why binary chunks are refused. */
const NO_BINARY = "binary chunks are not accepted in lomq (Lua does not check bytecode, and " +
  "a damaged or crafted chunk corrupts the engine's memory); load source text instead";

/** `LUA_MAXINTEGER`. */
const MAX_INTEGER = 0x7fffffffffffffffn;
/** lstrlib's `MAXSIZE` in a wasm32 build: `INT_MAX`, the longest string `string.rep` makes. */
const MAX_REP_SIZE = 0x7fffffffn;
/**
 * The longest range `table.move` leaves to the C function (about 3 ms of work). A longer
 * one runs in a Lua loop instead: about as fast (60 against 50 ns an element), and lomq's
 * count hook sees its instructions, so it can preempt the move and stop it at a budget.
 * C chunks in a Lua loop would not do: the hook counts Lua instructions, not time.
 */
const MOVE_IN_C = 1 << 16;

/**
 * The Lua side of `table.move` for long ranges: ltablib's own loop, element by element with
 * the same metamethods and the same order (backwards when the ranges overlap that way).
 * The host function checked the arguments already.
 */
const MOVE_LOOP_SOURCE = `
return function(a1, f, e, t, a2, explicit)
  if t > e or t <= f or (explicit and a1 ~= a2) then
    for i = 0, e - f do a2[t + i] = a1[f + i] end
  else
    for i = e - f, 0, -1 do a2[t + i] = a1[f + i] end
  end
  return a2
end`;

const installed = new WeakSet<LuaEngine>();
const textEncoder = new TextEncoder();

/**
 * Makes the standard library of `engine`'s fresh state safe to run in lomq. Call it once,
 * right after {@link LuaEngine.create} and before the prelude, `installGlobals` or any
 * script code: it replaces functions in the library tables, and code that captured an
 * original before (a `local open = io.open`) would keep it. A second call does nothing.
 *
 * What scripts get afterwards (each replacement named in its Lua form):
 *
 * - `io.write`, `io.stdout:write`, `io.stderr:write`: write straight to the process's stdout
 *   or stderr, byte for byte and unbuffered (so they interleave with `print` in call order);
 *   numbers are written as Lua's `io.write` formats them. A failed write returns
 *   `nil, message`.
 * - `io.read`, `io.lines`, `file:read`, `file:lines`: raise an error (standard input would
 *   block the server, and no other file can be opened).
 * - `io.open`, `io.tmpfile`, `os.remove`, `os.rename`, `loadfile`: return `nil, message`;
 *   `io.input(name)`, `io.output(name)`, `os.tmpname`, `dofile`, `io.popen`: raise an error.
 *   `io.input()`/`io.output()` with no argument or a file handle work as before.
 * - `os.execute()` returns false (no shell) and `os.execute(cmd)` returns `nil, message`.
 * - `load` accepts source text only: a binary chunk, or a mode without "t", gives
 *   `nil, message`.
 * - `debug.sethook` and `debug.debug` raise an error.
 * - `string.rep` and `table.move` keep their results and errors but no longer loop in C
 *   without end: an empty `string.rep` returns at once, a long one is filled in large
 *   copies, and a long `table.move` runs as a Lua loop that lomq's hook can preempt.
 * - `package.searchers` keeps only the preload searcher: the standard file searchers looked
 *   in the in-memory file system (lomq's prelude adds its own searcher for real files).
 *
 * Every message reads "NAME is not available in lomq: REASON".
 */
export function installSandbox(engine: LuaEngine): void {
  if (installed.has(engine)) return;
  new Sandbox(engine, engine.m).install();
  installed.add(engine);
}

/** The replacement host functions of one engine, and the originals some delegate to. */
class Sandbox {
  readonly #engine: LuaEngine;
  readonly #m: LuaModule;
  /** Userdata addresses of io.stdin, io.stdout and io.stderr: how a handle is recognised. */
  #stdinPtr = 0;
  #stdoutPtr = 0;
  #stderrPtr = 0;

  constructor(engine: LuaEngine, m: LuaModule) {
    this.#engine = engine;
    this.#m = m;
  }

  install(): void {
    const m = this.#m;
    const L = this.#engine.L;
    const top = m._lua_gettop(L);
    try {
      this.#findStandardFiles(L);
      this.#installIo(L);
      this.#installOs(L);
      this.#installBase(L);
      this.#installDebug(L);
      this.#installStringAndTable(L);
      this.#installPackage(L);
    } finally {
      m._lua_settop(L, top);
    }
  }

  // ---- helpers ---------------------------------------------------------------------------

  /** Pushes library table `name` (a global) and checks it is there. */
  #pushLibrary(L: LuaState, name: string): void {
    if (this.#engine.getGlobal(L, name) !== LuaType.TABLE) {
      throw new Error(`cannot install the Lua sandbox: the standard library '${name}' is missing`);
    }
  }

  /** Pushes the table globals live in. */
  #pushGlobals(L: LuaState): void {
    this.#m._lua_rawgeti(L, REGISTRY_INDEX, RIDX_GLOBALS);
  }

  /**
   * Anchors the value of field `name` of the table on top in the registry and returns its
   * reference: the original that a replacement delegates to.
   */
  #keep(L: LuaState, name: string): number {
    const m = this.#m;
    if (m._lua_getfield(L, -1, this.#engine.api.cstr(name)) !== LuaType.FUNCTION) {
      throw new Error(`cannot install the Lua sandbox: '${name}' is not a function`);
    }
    return m._luaL_ref(L, REGISTRY_INDEX);
  }

  /** Sets field `name` of the table on top to host function `fn`. */
  #set(L: LuaState, name: string, fn: (L: LuaState) => number): void {
    const m = this.#m;
    const api = this.#engine.api;
    m._lua_pushcclosure(L, api.cfunction(fn), 0);
    m._lua_setfield(L, -2, api.cstr(name));
  }

  /** Sets field `name` of the table on top to a function that raises "not available". */
  #refuse(L: LuaState, name: string, label: string, reason: string): void {
    this.#set(L, name, (L) => this.#raise(L, unavailable(label, reason)));
  }

  /** Sets field `name` of the table on top to a function that returns `nil, message`. */
  #fail(L: LuaState, name: string, label: string, reason: string, check = 0): void {
    this.#set(L, name, (L) => {
      for (let arg = 1; arg <= check; arg++) this.#m._luaL_checklstring(L, arg, 0);
      return this.#nilMessage(L, unavailable(label, reason));
    });
  }

  /** Returns `nil, message` from a host function. */
  #nilMessage(L: LuaState, message: string): number {
    this.#m._lua_pushnil(L);
    this.#engine.api.pushString(L, message);
    return 2;
  }

  /** Raises `message` with the caller's position, as `luaL_error` does. Never returns. */
  #raise(L: LuaState, message: string): number {
    const m = this.#m;
    m._luaL_where(L, 1);
    this.#engine.api.pushString(L, message);
    m._lua_concat(L, 2);
    return m._lua_error(L);
  }

  /** Raises a standard "bad argument" error for argument `arg`. Never returns. */
  #argError(L: LuaState, arg: number, message: string): number {
    return this.#m._luaL_argerror(L, arg, this.#engine.api.cstr(message));
  }

  /**
   * Calls original `ref` with every value on the stack as its arguments, and returns all
   * its results. Only with arguments already checked: an argument error raised by the
   * original would name the function '?', since a host function called it.
   */
  #delegate(L: LuaState, ref: number, nresults = MULTRET): number {
    const m = this.#m;
    const nargs = m._lua_gettop(L);
    m._lua_rawgeti(L, REGISTRY_INDEX, BigInt(ref));
    m._lua_rotate(L, 1, 1);
    m._lua_callk(L, nargs, nresults, 0, 0);
    return m._lua_gettop(L);
  }

  #isNoneOrNil(L: LuaState, idx: number): boolean {
    return this.#m._lua_type(L, idx) <= LuaType.NIL;
  }

  // ---- io --------------------------------------------------------------------------------

  #findStandardFiles(L: LuaState): void {
    const m = this.#m;
    const api = this.#engine.api;
    this.#pushLibrary(L, "io");
    const address = (name: string) => {
      m._lua_getfield(L, -1, api.cstr(name));
      const ptr = m._lua_touserdata(L, -1);
      m._lua_settop(L, -2);
      if (ptr === 0) throw new Error(`cannot install the Lua sandbox: io.${name} is missing`);
      return ptr;
    };
    this.#stdinPtr = address("stdin");
    this.#stdoutPtr = address("stdout");
    this.#stderrPtr = address("stderr");
    m._lua_settop(L, -2);
  }

  /** The stream a FILE* userdata stands for, when it is stdout or stderr. */
  #streamOf(L: LuaState, idx: number): typeof Deno.stdout | typeof Deno.stderr | undefined {
    const ptr = this.#m._lua_touserdata(L, idx);
    if (ptr === this.#stdoutPtr) return Deno.stdout;
    if (ptr === this.#stderrPtr) return Deno.stderr;
    return undefined;
  }

  /**
   * Writes arguments `first..last` to `stream` as `io.write` would: strings as they are,
   * integers in `%d`, floats in `%.14g`. Returns undefined once written, or the error.
   */
  #write(
    L: LuaState,
    stream: { writeSync(p: Uint8Array): number },
    first: number,
    last: number,
  ): string | undefined {
    const m = this.#m;
    const api = this.#engine.api;
    const trim = new Set<number>();
    // Every argument becomes a string on the stack first: converting allocates, and an
    // allocation can grow the wasm memory, which would detach views taken earlier.
    for (let arg = first; arg <= last; arg++) {
      const type = m._lua_type(L, arg);
      if (type === LuaType.NUMBER) {
        const isFloat = !m._lua_isinteger(L, arg);
        m._lua_tolstring(L, arg, 0); // in place: tostring's format
        // tostring adds ".0" to an integral float; io.write's "%.14g" does not.
        if (isFloat && /^-?[0-9]+\.0$/.test(api.toText(L, arg))) trim.add(arg);
      } else if (type !== LuaType.STRING) {
        m._luaL_checklstring(L, arg, 0); // raises the standard "string expected" error
      }
    }
    const parts: Uint8Array[] = [];
    let total = 0;
    for (let arg = first; arg <= last; arg++) {
      const view = api.viewString(L, arg);
      const part = trim.has(arg) ? view.subarray(0, view.length - 2) : view;
      parts.push(part);
      total += part.length;
    }
    try {
      // One write for the usual small call, so a line is not split between writes.
      if (parts.length > 1 && total <= 65536) {
        const joined = new Uint8Array(total);
        let offset = 0;
        for (const part of parts) {
          joined.set(part, offset);
          offset += part.length;
        }
        writeAllSync(stream, joined);
      } else {
        for (const part of parts) writeAllSync(stream, part);
      }
    } catch (error) {
      return error instanceof Error ? error.message : String(error);
    }
    return undefined;
  }

  #installIo(L: LuaState): void {
    const m = this.#m;
    const api = this.#engine.api;
    this.#pushLibrary(L, "io");
    const ioWrite = this.#keep(L, "write");
    const ioInput = this.#keep(L, "input");
    const ioOutput = this.#keep(L, "output");

    this.#set(L, "write", (L) => {
      const last = m._lua_gettop(L);
      m._lua_getfield(L, REGISTRY_INDEX, api.cstr("_IO_output"));
      const stream = this.#streamOf(L, -1);
      if (stream === undefined) {
        m._lua_settop(L, -2);
        return this.#delegate(L, ioWrite); // io.output(io.stdin): the C library's answer
      }
      // The file stays on top, to be returned; the arguments keep their numbers for errors.
      const failure = this.#write(L, stream, 1, last);
      if (failure !== undefined) return this.#nilMessage(L, failure);
      return 1;
    });
    this.#refuse(L, "read", "io.read", NO_STDIN);
    this.#set(L, "lines", (L) => {
      const reason = this.#isNoneOrNil(L, 1) ? NO_STDIN : NO_FILES;
      return this.#raise(L, unavailable("io.lines", reason));
    });
    this.#set(L, "open", (L) => {
      m._luaL_checklstring(L, 1, 0);
      m._luaL_optlstring(L, 2, api.cstr("r"), 0);
      // liolib's l_checkmode, so that a wrong mode is still the script's error.
      if (!/^[rwa]\+?b*$/.test(this.#isNoneOrNil(L, 2) ? "r" : api.toText(L, 2))) {
        return this.#argError(L, 2, "invalid mode");
      }
      return this.#nilMessage(L, unavailable("io.open", NO_FILES));
    });
    this.#fail(L, "tmpfile", "io.tmpfile", NO_FILES);
    this.#set(L, "popen", (L) => {
      m._luaL_checklstring(L, 1, 0);
      return this.#raise(L, unavailable("io.popen", "lomq does not run other programs"));
    });
    const defaultFile = (label: string, original: number) => (L: LuaState) => {
      if (!this.#isNoneOrNil(L, 1)) {
        const type = m._lua_type(L, 1);
        if (type === LuaType.STRING || type === LuaType.NUMBER) {
          return this.#raise(L, unavailable(label, NO_FILES));
        }
        m._luaL_checkudata(L, 1, api.cstr("FILE*"));
      }
      return this.#delegate(L, original);
    };
    this.#set(L, "input", defaultFile("io.input", ioInput));
    this.#set(L, "output", defaultFile("io.output", ioOutput));
    m._lua_settop(L, -2);

    // Methods of file handles: the metatable's __index table, shared by every handle.
    m._lua_getfield(L, REGISTRY_INDEX, api.cstr("FILE*"));
    if (m._lua_getfield(L, -1, api.cstr("__index")) !== LuaType.TABLE) {
      throw new Error("cannot install the Lua sandbox: the FILE* methods are missing");
    }
    const fileWrite = this.#keep(L, "write");
    const fileHandle = api.cstr("FILE*");
    this.#set(L, "write", (L) => {
      m._luaL_checkudata(L, 1, fileHandle);
      const stream = this.#streamOf(L, 1);
      if (stream === undefined) return this.#delegate(L, fileWrite);
      const failure = this.#write(L, stream, 2, m._lua_gettop(L));
      if (failure !== undefined) return this.#nilMessage(L, failure);
      m._lua_settop(L, 1);
      return 1;
    });
    for (const method of ["read", "lines"]) {
      this.#set(L, method, (L) => {
        m._luaL_checkudata(L, 1, fileHandle);
        // Only the three standard files exist, since no other can be opened.
        const stdin = m._lua_touserdata(L, 1) === this.#stdinPtr;
        return this.#raise(L, unavailable(`file:${method}`, stdin ? NO_STDIN : WRITE_ONLY));
      });
    }
    m._lua_settop(L, -3);
  }

  // ---- os --------------------------------------------------------------------------------

  #installOs(L: LuaState): void {
    const m = this.#m;
    this.#pushLibrary(L, "os");
    this.#set(L, "execute", (L) => {
      // Lua's answer where no shell exists: false without a command, a failure with one.
      if (m._luaL_optlstring(L, 1, 0, 0) === 0) {
        m._lua_pushboolean(L, 0);
        return 1;
      }
      return this.#nilMessage(L, unavailable("os.execute", "lomq does not run other programs"));
    });
    this.#fail(L, "remove", "os.remove", NO_FILES, 1);
    this.#fail(L, "rename", "os.rename", NO_FILES, 2);
    this.#refuse(L, "tmpname", "os.tmpname", NO_FILES);
    m._lua_settop(L, -2);
  }

  // ---- base library ----------------------------------------------------------------------

  #installBase(L: LuaState): void {
    const m = this.#m;
    const api = this.#engine.api;
    this.#pushGlobals(L);
    const load = this.#keep(L, "load");
    this.#set(L, "dofile", (L) => {
      const reason = m._luaL_optlstring(L, 1, 0, 0) === 0 ? NO_STDIN : NO_FILES;
      return this.#raise(L, unavailable("dofile", reason));
    });
    this.#set(L, "loadfile", (L) => {
      const reason = m._luaL_optlstring(L, 1, 0, 0) === 0 ? NO_STDIN : NO_FILES;
      return this.#nilMessage(L, unavailable("loadfile", reason));
    });
    this.#set(L, "load", (L) => {
      // The checks of luaB_load, so that the original never raises for an argument.
      const chunkType = m._lua_type(L, 1);
      const isText = chunkType === LuaType.STRING || chunkType === LuaType.NUMBER;
      if (!isText) m._luaL_checktype(L, 1, LuaType.FUNCTION);
      if (!this.#isNoneOrNil(L, 2)) m._luaL_checklstring(L, 2, 0);
      if (!this.#isNoneOrNil(L, 3)) {
        m._luaL_checklstring(L, 3, 0);
        if (!api.toText(L, 3).includes("t")) return this.#nilMessage(L, NO_BINARY);
      }
      // LUA_SIGNATURE starts with ESC: Lua itself tells binary from text by that byte.
      if (isText && api.viewString(L, 1)[0] === 0x1b) return this.#nilMessage(L, NO_BINARY);
      if (m._lua_gettop(L) < 3) m._lua_settop(L, 3);
      api.pushString(L, "t");
      m._lua_copy(L, -1, 3);
      m._lua_settop(L, -2);
      const n = this.#delegate(L, load);
      // Messages luaL_error made inside load name the caller of load: here, this function.
      // Give them the script's position, which they have without the sandbox.
      if (
        n === 2 && m._lua_type(L, 1) === LuaType.NIL && m._lua_type(L, 2) === LuaType.STRING &&
        api.toText(L, 2) === "reader function must return a string"
      ) {
        m._luaL_where(L, 1);
        m._lua_rotate(L, 2, 1);
        m._lua_concat(L, 2);
        return 2;
      }
      // A reader function can still hand over bytecode: the forced mode "t" refuses it.
      if (
        n === 2 && m._lua_type(L, 1) === LuaType.NIL && m._lua_type(L, 2) === LuaType.STRING &&
        api.toText(L, 2).startsWith("attempt to load a binary chunk")
      ) {
        m._lua_settop(L, 0);
        return this.#nilMessage(L, NO_BINARY);
      }
      return n;
    });
    m._lua_settop(L, -2);
  }

  // ---- debug -----------------------------------------------------------------------------

  #installDebug(L: LuaState): void {
    this.#pushLibrary(L, "debug");
    this.#refuse(
      L,
      "sethook",
      "debug.sethook",
      "lomq's own hook preempts long computations and enforces call budgets, and a script " +
        "hook would replace it",
    );
    this.#refuse(L, "debug", "debug.debug", NO_STDIN);
    this.#m._lua_settop(L, -2);
  }

  // ---- string.rep and table.move ---------------------------------------------------------

  #installStringAndTable(L: LuaState): void {
    const m = this.#m;
    const api = this.#engine.api;

    this.#pushLibrary(L, "string");
    this.#set(L, "rep", (L) => {
      const sPtr = m._luaL_checklstring(L, 1, api.lenPtr);
      const l = api.readLen();
      const n = m._luaL_checkinteger(L, 2);
      const sepPtr = m._luaL_optlstring(L, 3, api.cstr(""), api.lenPtr);
      const lsep = api.readLen();
      const unit = l + lsep;
      // Nothing to copy: C would still loop n times (hours for a large n).
      if (n <= 0n || unit === 0) {
        m._lua_pushlstring(L, api.lenPtr, 0);
        return 1;
      }
      if (BigInt(unit) > MAX_REP_SIZE / n) return this.#raise(L, "resulting string too large");
      if (n === 1n) {
        m._lua_pushvalue(L, 1); // already a string: luaL_checklstring converted a number
        return 1;
      }
      // C copies piece by piece (20 s for a billion one-byte pieces); doubling copies of the
      // filled prefix make the same bytes in about thirty copies. The buffer is a userdata so
      // that the allocator's cap counts it, as it counts C's buffer.
      const total = Number(n) * unit - lsep;
      const buffer = m._lua_newuserdatauv(L, total, 0);
      const heap = m.HEAPU8; // after the allocation, which may have grown the memory
      heap.copyWithin(buffer, sPtr, sPtr + l);
      heap.copyWithin(buffer + l, sepPtr, sepPtr + lsep);
      for (let filled = unit; filled < total;) {
        const size = Math.min(filled, total - filled);
        heap.copyWithin(buffer + filled, buffer, buffer + size);
        filled += size;
      }
      m._lua_pushlstring(L, buffer, total);
      return 1;
    });
    m._lua_settop(L, -2);

    this.#pushLibrary(L, "table");
    const move = this.#keep(L, "move");
    const loop = this.#moveLoop(L);
    // The long path calls Lua with a continuation, so the hook may yield inside the loop;
    // once resumed, Lua finishes the call here with the loop's one result.
    const afterLoop = m.addFunction(() => 1, "iiii");
    const checkTable = (L: LuaState, arg: number, field: string) => {
      if (m._lua_type(L, arg) === LuaType.TABLE) return;
      // ltablib's checktab: anything whose metatable has the needed metamethod.
      const top = m._lua_gettop(L);
      let ok = false;
      if (m._lua_getmetatable(L, arg)) {
        api.pushString(L, field);
        ok = m._lua_rawget(L, -2) !== LuaType.NIL;
      }
      m._lua_settop(L, top);
      if (!ok) m._luaL_checktype(L, arg, LuaType.TABLE);
    };
    this.#set(L, "move", (L) => {
      const f = m._luaL_checkinteger(L, 2);
      const e = m._luaL_checkinteger(L, 3);
      const t = m._luaL_checkinteger(L, 4);
      const tt = this.#isNoneOrNil(L, 5) ? 1 : 5;
      checkTable(L, 1, "__index");
      checkTable(L, tt, "__newindex");
      if (e >= f) {
        if (!(f > 0n || e < MAX_INTEGER + f)) {
          return this.#argError(L, 3, "too many elements to move");
        }
        const count = e - f + 1n;
        if (!(t <= MAX_INTEGER - count + 1n)) {
          return this.#argError(L, 4, "destination wrap around");
        }
        if (count > BigInt(MOVE_IN_C)) {
          m._lua_rawgeti(L, REGISTRY_INDEX, BigInt(loop));
          m._lua_pushvalue(L, 1);
          m._lua_pushinteger(L, f);
          m._lua_pushinteger(L, e);
          m._lua_pushinteger(L, t);
          m._lua_pushvalue(L, tt);
          m._lua_pushboolean(L, tt === 5 ? 1 : 0);
          m._lua_callk(L, 6, 1, 0, afterLoop);
          return 1;
        }
      }
      m._lua_settop(L, tt === 5 ? 5 : 4);
      return this.#delegate(L, move, 1);
    });
    m._lua_settop(L, -2);
  }

  /** Compiles the Lua loop of `table.move` and returns its registry reference. */
  #moveLoop(L: LuaState): number {
    const engine = this.#engine;
    const m = this.#m;
    const failure = engine.load(L, textEncoder.encode(MOVE_LOOP_SOURCE), "=lomq-sandbox");
    if (failure !== undefined) throw new Error(`internal error in the Lua sandbox: ${failure}`);
    if (engine.pcall(L, 0, 1) !== 0) {
      throw new Error(`internal error in the Lua sandbox: ${engine.api.describe(L, -1)}`);
    }
    return m._luaL_ref(L, REGISTRY_INDEX);
  }

  // ---- package ---------------------------------------------------------------------------

  #installPackage(L: LuaState): void {
    const m = this.#m;
    this.#pushLibrary(L, "package");
    if (m._lua_getfield(L, -1, this.#engine.api.cstr("searchers")) !== LuaType.TABLE) {
      throw new Error("cannot install the Lua sandbox: package.searchers is missing");
    }
    // Keep [1], the preload searcher; [2..4] read files of the in-memory file system
    // (and would read standard input for a path such as /dev/stdin).
    for (let i = m._lua_rawlen(L, -1); i >= 2; i--) {
      m._lua_pushnil(L);
      m._lua_rawseti(L, -2, BigInt(i));
    }
    m._lua_settop(L, -3);
  }
}

/** The message of every replaced function: what is not available, and why. */
function unavailable(name: string, reason: string): string {
  return `${name} is not available in lomq: ${reason}`;
}
