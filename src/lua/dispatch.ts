/**
 * Serving one RPC request with the script: `[method, args...]` in, `OK`/`ERROR` + msgpack
 * out. The {@linkcode RequestHandler} behind `sock:process()` and `lomq serve`.
 *
 * The wire contract is the original LuaOverMQ's: the method is looked up as a global and
 * called in protected mode; 0 results reply nil, 1 the value, more an array. Unlike the
 * original, every malformed request gets an `ERROR` reply naming the problem, and only the
 * script's own Lua functions can be called (see {@linkcode Dispatcher}).
 *
 * Each call runs on a host thread of its own (reused while calls succeed): decoding, the
 * lookup, the call and the encoding of the reply all happen inside the thread, so every
 * allocation a request causes is protected (past the memory cap it fails as an `ERROR
 * "not enough memory"` reply), and the handler can be paused for a time slice, wait in
 * host functions, or be stopped at its budget without taking the server down.
 *
 * @module
 */

import { type LuaState, LuaStatus, LuaType, MULTRET, REGISTRY_INDEX, RIDX_GLOBALS } from "./api.ts";
import { CodecError } from "./codec.ts";
import type { HostThread, LuaEngine } from "./engine.ts";
import type { Frames } from "../zmtp/mod.ts";
import { ascii, latin1 } from "../zmtp/frame.ts";
import { errorReply, MAX_ECHOED_BYTES, quoteInput, STATUS_ERROR, STATUS_OK } from "../rpc/wire.ts";
import type { RequestHandler } from "../rpc/server.ts";
import {
  FUNCTIONS_METHOD,
  FUNCTIONS_PAGE_BYTES,
  FUNCTIONS_PAGE_SIZE,
} from "../rpc/introspection.ts";
import { log } from "../log.ts";

const encoder = new TextEncoder();
const NO_REQUEST = new Uint8Array(0);

/** Global names clients can never call, whatever they hold: the script's lifecycle. */
export const LIFECYCLE_NAMES: readonly string[] = ["main", "OnInit", "OnStop"];
const LIFECYCLE_BYTES = LIFECYCLE_NAMES.map((name) => encoder.encode(name));
const FUNCTIONS_METHOD_BYTES = encoder.encode(FUNCTIONS_METHOD);

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

function isLifecycleName(name: Uint8Array): boolean {
  for (const reserved of LIFECYCLE_BYTES) if (sameBytes(reserved, name)) return true;
  return false;
}

/**
 * Size of Lua 5.4's `lua_Debug` on wasm32 (4-byte int, pointer and size_t), and the
 * offsets of the `u` fields: `event`, `name`, `namewhat`, `what`, `source` and `srclen`
 * take 24 bytes, `currentline`, `linedefined`, `lastlinedefined` 12 more, then `nups`,
 * `nparams`, `isvararg` one byte each; `short_src[60]` and `i_ci` follow.
 */
const LUA_DEBUG_SIZE = 108;
const LUA_DEBUG_NPARAMS = 37;
const LUA_DEBUG_ISVARARG = 38;

/**
 * Lua that lists every Lua function reachable from the globals and the registry before the
 * script runs (the prelude's and the host's own): clients may not call them under any name.
 */
const HOST_FUNCTIONS_CHUNK = `
local blocked, seen = {}, {}
local getmetatable = debug.getmetatable
local function walk(t, depth)
  if seen[t] or depth > 10 then return end
  seen[t] = true
  for _, v in next, t do
    local kind = type(v)
    if kind == "function" then blocked[v] = true
    elseif kind == "table" then walk(v, depth + 1) end
  end
  local mt = getmetatable(t)
  if type(mt) == "table" then walk(mt, depth + 1) end
end
walk(_G, 0)
walk(debug.getregistry(), 0)
return blocked`;

/** How many method names the dispatcher remembers (a server's busiest few). */
const KNOWN_NAMES = 8;

/** A method name that passed the rules by name, and the function it called last. */
interface KnownName {
  /** The name as clients send it. */
  name: Uint8Array;
  /** The script's code page when the entry was made (the Lua string is in it). */
  codePage: unknown;
  /** Registry reference of the name as a Lua string (in the script's code page). */
  nameRef: bigint;
  /** Address of the function the global held when it last passed the rules by value, or 0. */
  functionAt: number;
  /** Registry reference keeping that function alive (its address stays its own), or 0. */
  functionRef: number;
}

/**
 * Calls script functions by name for requests.
 *
 * What a client may call, decided by value at every request: a global whose value is a Lua
 * function the script defined. Never a C function (so no standard-library function under
 * any name: `getenv = os.getenv` is refused), never a function of the host (the prelude,
 * `publish` of `lomq serve --pub`), never `main`, `OnInit` or `OnStop` (by name, and by
 * value under any other name they had once the script was loaded), never a name longer
 * than {@linkcode MAX_ECHOED_BYTES} bytes. {@linkcode Dispatcher.expose} narrows it to a
 * list of names. The reserved method `lomq.functions` (src/rpc/introspection.ts) is
 * answered before any lookup, by the same rules: it lists what a call would accept.
 */
export class Dispatcher implements RequestHandler {
  readonly #engine: LuaEngine;
  /** Idle call threads, reused while calls end normally. */
  readonly #free: HostThread[] = [];
  /** Registry reference of the table whose keys are functions clients may not call. */
  #blockedRef = 0;
  /** `#blockedRef` as lua_rawgeti takes it. */
  #blockedKey = 0n;
  /**
   * Method names called lately that passed the rules by name (see {@linkcode KnownName}):
   * a call by one of them skips those rules and making the Lua string of the name.
   */
  readonly #known: KnownName[] = [];
  #nextKnown = 0;
  #exposed: Set<string> | undefined;
  #narrowed: Set<string> | undefined;
  /** The request the entry function decodes. */
  #request: Uint8Array = NO_REQUEST;
  /** The reply the call thread produced (the payload may be a view of the encoder). */
  #reply: Frames = [];
  /** The array of the replies made by #replyOf. */
  readonly #replyFrames: Frames = [STATUS_OK, STATUS_OK];
  /** Replies of calls that finished after a pause, until their driver sends them. */
  readonly #lateReplies = new Map<HostThread, Frames>();
  readonly #entryPtr: number;
  readonly #continuationPtr: number;
  /** A `lua_Debug` for listing functions, allocated on first use. */
  #debugInfo = 0;

  constructor(engine: LuaEngine) {
    this.#engine = engine;
    this.#entryPtr = engine.api.cfunction((T) => this.#entry(T));
    this.#continuationPtr = engine.m.addFunction((T: LuaState, status: number) => {
      try {
        const results = this.#complete(T, status === LuaStatus.YIELD ? LuaStatus.OK : status);
        // A call that finishes after a pause replies later, when another call may have
        // used the encoder in between: keep a copy of its reply with its thread.
        this.#lateReplies.set(engine.running!, [this.#reply[0], this.#reply[1].slice()]);
        return results;
      } catch (error) {
        if (error === Infinity) throw error; // Lua unwinding through us
        return engine.api.raise(T, error instanceof Error ? error.message : String(error));
      }
    }, "iiii");
  }

  /**
   * Blocks every Lua function reachable now from the globals and the registry (the
   * prelude's and the host's own). Call once, after the host's globals are set up and
   * before the script runs.
   */
  blockHostFunctions(): void {
    const engine = this.#engine;
    const L = engine.L;
    const failure = engine.load(L, encoder.encode(HOST_FUNCTIONS_CHUNK), "=lomq-blocked");
    if (failure !== undefined || engine.pcall(L, 0, 1) !== LuaStatus.OK) {
      throw new Error(`internal error listing the host's functions: ${failure ?? "?"}`);
    }
    this.#blockedRef = engine.m._luaL_ref(L, REGISTRY_INDEX);
    this.#blockedKey = BigInt(this.#blockedRef);
    this.#forgetNames();
  }

  /**
   * Blocks the values `main`, `OnInit` and `OnStop` hold now, so that an alias of one
   * (`stop = OnStop`) cannot be called either. Called after the script's top level and
   * after OnInit.
   */
  blockLifecycle(): void {
    const engine = this.#engine;
    const m = engine.m;
    const L = engine.L;
    if (this.#blockedRef === 0) return;
    this.#forgetNames();
    for (const name of LIFECYCLE_NAMES) {
      if (engine.getGlobal(L, name) === LuaType.FUNCTION) {
        m._lua_rawgeti(L, REGISTRY_INDEX, this.#blockedKey);
        m._lua_pushvalue(L, -2);
        m._lua_pushboolean(L, 1);
        m._lua_rawset(L, -3);
        m._lua_settop(L, -2);
      }
      m._lua_settop(L, -2);
    }
  }

  /**
   * `LuaOverMQ.expose{...}`: from now on only these names (and those of earlier calls) can
   * be called. The names are the script's bytes (in its code page).
   */
  expose(names: readonly Uint8Array[]): void {
    this.#exposed ??= new Set();
    for (const name of names) this.#exposed.add(latin1(name));
    this.#forgetNames();
  }

  /** `lomq serve --expose`: only these names (as clients send them), whatever the script exposes. */
  narrow(names: readonly string[]): void {
    this.#narrowed = new Set(names.map((name) => latin1(encoder.encode(name))));
    this.#forgetNames();
  }

  /** How many global functions clients may call now (what `lomq.functions` would list). */
  callableCount(): number {
    return this.#callableGlobals(this.#engine.L, undefined).length;
  }

  /** Serves one request body; see {@linkcode RequestHandler.handle}. */
  handle(body: Frames, budgetMs: number): Frames | Promise<Frames> {
    if (body.length !== 1) {
      return errorReply(
        `a request is one frame holding msgpack [method, args...], got ${body.length} frames`,
      );
    }
    const engine = this.#engine;
    const thread = this.#free.pop() ?? engine.newHostThread("call");
    thread.budgetMs = budgetMs;
    thread.startedAt = 0;
    thread.callName = undefined;
    this.#request = body[0];
    engine.m._lua_pushcclosure(thread.state, this.#entryPtr, 0);
    const status = engine.step(thread, 0);
    // Decoded: the server may reuse the body's buffer once the reply is sent.
    this.#request = NO_REQUEST;
    if (status === LuaStatus.OK && thread.stopReason === undefined) {
      this.#free.push(thread);
      return this.#reply;
    }
    if (status === LuaStatus.YIELD && thread.stopReason === undefined) {
      return this.#finishLater(thread);
    }
    return this.#ended(thread, status);
  }

  /** A call that was paused or waits: drives it to its end, then replies. */
  async #finishLater(thread: HostThread): Promise<Frames> {
    const engine = this.#engine;
    const outcome = await engine.drive(thread, LuaStatus.YIELD);
    const reply = this.#lateReplies.get(thread);
    this.#lateReplies.delete(thread);
    if (outcome.ok && reply !== undefined) {
      this.#free.push(thread);
      return reply;
    }
    engine.release(thread);
    if (!outcome.ok && outcome.stopped) this.#logStopped(outcome.reason);
    if (outcome.ok) return errorReply("internal error: the call ended without a reply");
    return errorReply(outcome.stopped ? outcome.reason : outcome.message);
  }

  /** A call past its budget is the operator's business too (a halt is not). */
  #logStopped(reason: string): void {
    if (!this.#engine.halted) log.warn(`${reason}: stopped, and answered with ERROR`);
  }

  /** A call whose thread ended abnormally (stopped, or an error escaped the entry). */
  #ended(thread: HostThread, status: number): Frames {
    const engine = this.#engine;
    const T = thread.state;
    let reply: Frames;
    if (thread.stopReason !== undefined) this.#logStopped(thread.stopReason);
    if (status === LuaStatus.OK) {
      reply = this.#reply; // stopped, and the call itself replied with the reason
    } else if (thread.stopReason !== undefined) {
      reply = errorReply(thread.stopReason);
    } else if (status === LuaStatus.ERRMEM) {
      reply = errorReply("not enough memory");
    } else if (engine.m._lua_type(T, -1) === LuaType.STRING) {
      reply = errorReply(engine.api.toText(T, -1));
    } else {
      reply = errorReply("internal error while serving the request");
    }
    engine.release(thread);
    return reply;
  }

  /** The body of a call thread: decode, look up, call (yieldable), reply. */
  #entry(T: LuaState): number {
    const nargs = this.#prepare(T);
    if (nargs < 0) return 0;
    const status = this.#engine.m._lua_pcallk(T, nargs, MULTRET, 0, 0, this.#continuationPtr);
    return this.#complete(T, status);
  }

  /** Pushes the function and its arguments; -1 when the request was answered already. */
  #prepare(T: LuaState): number {
    const engine = this.#engine;
    const decoder = engine.decoder;
    try {
      const count = decoder.beginArray(this.#request);
      if (count === 0) return this.#fail("empty request: expected [method, args...]");
      // A name called before is found in place, with no view of it made. The cache never
      // holds lomq.functions, which is answered before any lookup.
      const knownIndex = decoder.takeKnownString(this.#known);
      let known: KnownName | undefined;
      let name: Uint8Array | undefined;
      if (knownIndex >= 0) {
        known = this.#known[knownIndex];
        name = known.name;
      } else {
        name = decoder.takeString();
        if (name === undefined) {
          return this.#fail(
            `the request's first element is a ${decoder.describeNext()}, ` +
              `expected the method name as a string`,
          );
        }
        // Before any lookup: no global of the script can stand in for it.
        if (sameBytes(name, FUNCTIONS_METHOD_BYTES)) {
          engine.running!.callName = name;
          return this.#listFunctions(T, count - 1);
        }
        // Not in the cache: takeKnownString compared it with every entry.
      }
      engine.running!.callName = name;
      if (!this.#lookup(T, name, known)) {
        return this.#fail(`function '${quoteInput(name)}' not found`);
      }
      decoder.pushValues(T, count - 1);
      decoder.finish();
      return count - 1;
    } catch (error) {
      if (error instanceof CodecError) return this.#fail(`bad request: ${error.message}`);
      throw error;
    }
  }

  /**
   * Pushes the function clients may call under `name` (as sent: UTF-8), or returns false;
   * `known` is the names cache's entry for it, if it has one.
   */
  #lookup(T: LuaState, name: Uint8Array, known: KnownName | undefined): boolean {
    const m = this.#engine.m;
    // The Lua string is the name in the code page it was made in (LuaOverMQ.encoding may
    // switch pages at any time).
    if (known !== undefined && known.codePage === this.#engine.api.codePage) {
      // The rules by name passed already; the value is looked up again (the script may
      // have assigned another), but the very function found callable last time passes.
      this.#engine.getGlobalByRef(T, known.nameRef);
      if (known.functionAt !== 0 && m._lua_topointer(T, -1) === known.functionAt) return true;
      if (this.#callableValue(T)) {
        this.#remember(T, known);
        return true;
      }
      m._lua_settop(T, -2);
      return false;
    }
    const local = this.#engine.api.toLocal(name);
    if (!this.#callableName(name, local)) return false;
    this.#engine.getGlobal(T, local);
    if (this.#callableValue(T)) {
      this.#remember(T, this.#learnName(T, name, local));
      return true;
    }
    this.#engine.m._lua_settop(T, -2);
    return false;
  }

  /** The entry of the names cache for `name`, if it has one. */
  #knownName(name: Uint8Array): KnownName | undefined {
    const known = this.#known;
    for (let i = 0; i < known.length; i++) {
      if (sameBytes(known[i].name, name)) return known[i];
    }
    return undefined;
  }

  /**
   * Caches `name`, which passed the rules by name, with the Lua string `local` (kept in the
   * registry, so a lookup needs no string made); the oldest entry makes room when full.
   */
  #learnName(T: LuaState, name: Uint8Array, local: Uint8Array): KnownName {
    const engine = this.#engine;
    const m = engine.m;
    const known = this.#known;
    const codePage = engine.api.codePage;
    let entry = this.#knownName(name); // known in another code page
    if (entry !== undefined) {
      m._luaL_unref(T, REGISTRY_INDEX, Number(entry.nameRef));
      this.#forgetFunction(T, entry);
    } else if (known.length < KNOWN_NAMES) {
      entry = { name: name.slice(), codePage, nameRef: 0n, functionAt: 0, functionRef: 0 };
      known.push(entry);
    } else {
      entry = known[this.#nextKnown];
      this.#nextKnown = (this.#nextKnown + 1) % KNOWN_NAMES;
      m._luaL_unref(T, REGISTRY_INDEX, Number(entry.nameRef));
      this.#forgetFunction(T, entry);
      entry.name = name.slice();
    }
    entry.codePage = codePage;
    engine.api.pushBytes(T, local);
    entry.nameRef = BigInt(m._luaL_ref(T, REGISTRY_INDEX));
    return entry;
  }

  /**
   * Records the callable function on top of `T` for `entry`: referenced from the registry,
   * so that its address cannot go to another object while the cache holds it.
   */
  #remember(T: LuaState, entry: KnownName): void {
    const m = this.#engine.m;
    this.#forgetFunction(T, entry);
    m._lua_pushvalue(T, -1);
    entry.functionRef = m._luaL_ref(T, REGISTRY_INDEX);
    entry.functionAt = m._lua_topointer(T, -1);
  }

  #forgetFunction(T: LuaState, entry: KnownName): void {
    if (entry.functionRef !== 0) this.#engine.m._luaL_unref(T, REGISTRY_INDEX, entry.functionRef);
    entry.functionRef = 0;
    entry.functionAt = 0;
  }

  /** Empties the names cache: the rules changed (what is blocked, what is exposed). */
  #forgetNames(): void {
    const m = this.#engine.m;
    const L = this.#engine.L;
    for (const entry of this.#known) {
      m._luaL_unref(L, REGISTRY_INDEX, Number(entry.nameRef));
      this.#forgetFunction(L, entry);
    }
    this.#known.length = 0;
    this.#nextKnown = 0;
  }

  /**
   * The rules by name: whether a global named `name` (as sent) and `local` (in the
   * script's code page) may be called, whatever it holds.
   */
  #callableName(name: Uint8Array, local: Uint8Array): boolean {
    if (name.length > MAX_ECHOED_BYTES || isLifecycleName(name)) return false;
    if (sameBytes(name, FUNCTIONS_METHOD_BYTES)) return false; // answered by the host
    if (this.#exposed !== undefined && !this.#exposed.has(latin1(local))) return false;
    if (this.#narrowed !== undefined && !this.#narrowed.has(latin1(name))) return false;
    return true;
  }

  /**
   * The rules by value: whether the value on top of `T` is a function clients may call (a
   * Lua function, not one of the host's nor a lifecycle function). Leaves the stack as it was.
   * `blockedAt`: where the table of blocked functions is on the stack, when pushed already.
   */
  #callableValue(T: LuaState, blockedAt = 0): boolean {
    const m = this.#engine.m;
    if (m._lua_type(T, -1) !== LuaType.FUNCTION || m._lua_iscfunction(T, -1)) return false;
    if (blockedAt === 0) {
      m._lua_rawgeti(T, REGISTRY_INDEX, this.#blockedKey);
      m._lua_pushvalue(T, -2);
      m._lua_rawget(T, -2);
      const blocked = m._lua_toboolean(T, -1) !== 0;
      m._lua_settop(T, -3);
      return !blocked;
    }
    m._lua_pushvalue(T, -1);
    m._lua_rawget(T, blockedAt);
    const blocked = m._lua_toboolean(T, -1) !== 0;
    m._lua_settop(T, -2);
    return !blocked;
  }

  /**
   * Answers {@linkcode FUNCTIONS_METHOD}: one page of the callable globals, sorted by
   * name, after the name given as the one argument (if any). Returns -1 (answered).
   */
  #listFunctions(T: LuaState, nargs: number): number {
    const engine = this.#engine;
    const m = engine.m;
    const api = engine.api;
    if (nargs > 1) {
      return this.#fail(
        `${FUNCTIONS_METHOD} takes at most one argument, the last name of the previous page; ` +
          `got ${nargs}`,
      );
    }
    let after: string | undefined;
    if (nargs === 1) {
      engine.decoder.pushValues(T, 1);
      const type = m._lua_type(T, -1);
      // Names past MAX_ECHOED_BYTES are never listed, so the first that many bytes of a
      // longer argument order the names just as the whole would (and cost nothing; code
      // pages are single-byte, so the UTF-8 of the head starts the UTF-8 of the whole).
      if (type === LuaType.STRING) {
        const head = api.viewString(T, -1).subarray(0, MAX_ECHOED_BYTES);
        after = latin1(api.toWire(head).subarray(0, MAX_ECHOED_BYTES));
      } else if (type !== LuaType.NIL) {
        return this.#fail(
          `${FUNCTIONS_METHOD}: its argument is the last name of the previous page, a string`,
        );
      }
      m._lua_settop(T, -2);
    }
    engine.decoder.finish();

    // Byte strings sort in byte order, and the default sort is the fastest there is.
    const names = this.#callableGlobals(T, after).sort();
    const page: { local: Uint8Array; params: Uint8Array[]; vararg: boolean }[] = [];
    let bytes = 0;
    for (const name of names) {
      if (page.length === FUNCTIONS_PAGE_SIZE) break;
      const local = api.toLocal(ascii(name));
      const entry = this.#signature(T, local);
      const size = 32 + local.length + entry.params.reduce((sum, p) => sum + p.length + 2, 0);
      if (page.length > 0 && bytes + size > FUNCTIONS_PAGE_BYTES) break;
      bytes += size;
      page.push({ local, ...entry });
    }

    const out = engine.encoder;
    out.reset();
    out.mapHeader(2);
    out.text("functions");
    out.arrayHeader(page.length);
    for (const { local, params, vararg } of page) {
      out.mapHeader(3);
      out.text("name");
      out.string(local);
      out.text("params");
      out.arrayHeader(params.length);
      for (const param of params) out.string(param);
      out.text("vararg");
      out.boolean(vararg);
    }
    out.text("more");
    out.boolean(page.length < names.length);
    this.#reply = [STATUS_OK, out.view()];
    return -1;
  }

  /**
   * The names (as clients send them, as byte strings) of every global clients may call
   * whose name sorts after `after`.
   */
  #callableGlobals(T: LuaState, after: string | undefined): string[] {
    const engine = this.#engine;
    const m = engine.m;
    const api = engine.api;
    const found: string[] = [];
    if (!m._lua_checkstack(T, 8)) throw new Error("Lua stack overflow listing the functions");
    m._lua_rawgeti(T, REGISTRY_INDEX, this.#blockedKey);
    const blocked = m._lua_gettop(T);
    m._lua_rawgeti(T, REGISTRY_INDEX, RIDX_GLOBALS);
    const globals = blocked + 1;
    m._lua_pushnil(T);
    while (m._lua_next(T, globals) !== 0) {
      if (m._lua_type(T, -2) === LuaType.STRING && this.#callableValue(T, blocked)) {
        const view = api.viewString(T, -2);
        if (api.codePage === undefined) {
          // The name is sent as it is: decided on the view, nothing copied.
          if (view.length <= MAX_ECHOED_BYTES) {
            const key = latin1(view);
            if ((after === undefined || key > after) && this.#callableName(view, view)) {
              found.push(key);
            }
          }
        } else {
          const local = view.slice();
          const name = api.toWire(local);
          // A name whose code-page form does not come back from its UTF-8 cannot be called.
          if (sameBytes(api.toLocal(name), local) && this.#callableName(name, local)) {
            const key = latin1(name);
            if (after === undefined || key > after) found.push(key);
          }
        }
      }
      m._lua_settop(T, -2);
    }
    m._lua_settop(T, -3);
    return found;
  }

  /**
   * The parameter names and `...` of global function `local`, from its debug information
   * through the C API (`lua_getinfo`, `lua_getlocal`): the script's `debug` table, which it
   * may have replaced, plays no part.
   */
  #signature(T: LuaState, local: Uint8Array): { params: Uint8Array[]; vararg: boolean } {
    const engine = this.#engine;
    const m = engine.m;
    const api = engine.api;
    this.#debugInfo ||= m._malloc(LUA_DEBUG_SIZE);
    const ar = this.#debugInfo;
    if (ar === 0) throw new Error("out of memory listing the functions");
    engine.getGlobal(T, local);
    m._lua_pushvalue(T, -1);
    m._lua_getinfo(T, api.cstr(">u"), ar); // pops the copy
    const nparams = m.HEAPU8[ar + LUA_DEBUG_NPARAMS];
    const vararg = m.HEAPU8[ar + LUA_DEBUG_ISVARARG] !== 0;
    const params: Uint8Array[] = [];
    for (let i = 1; i <= nparams; i++) {
      // With no activation record, the parameters of the function on top of the stack.
      const ptr = m._lua_getlocal(T, 0, i);
      params.push(ptr === 0 ? encoder.encode(`arg${i}`) : api.cString(ptr));
    }
    m._lua_settop(T, -2);
    return { params, vararg };
  }

  /** Encodes the reply of a finished call (`status` of its pcall); returns 0 results. */
  #complete(T: LuaState, status: number): number {
    const engine = this.#engine;
    const m = engine.m;
    const thread = engine.running!;
    if (thread.stopReason !== undefined) return this.#replyError(thread.stopReason);
    if (status === LuaStatus.ERRMEM) return this.#replyError("not enough memory");
    const encoder = engine.encoder;
    encoder.reset();
    try {
      if (status !== LuaStatus.OK) {
        encoder.value(T, -1);
        this.#reply = this.#replyOf(STATUS_ERROR, encoder.view());
        return 0;
      }
      const n = m._lua_gettop(T);
      if (n === 0) encoder.nil();
      else if (n === 1) encoder.value(T, 1);
      else {
        encoder.arrayHeader(n);
        for (let i = 1; i <= n; i++) encoder.value(T, i);
      }
      this.#reply = this.#replyOf(STATUS_OK, encoder.view());
      return 0;
    } catch (error) {
      if (!(error instanceof CodecError)) throw error;
      if (status !== LuaStatus.OK) return this.#replyError(engine.api.describe(T, -1));
      const method = quoteInput(thread.callName ?? new Uint8Array(0));
      return this.#replyError(`cannot send the result of '${method}': ${error.message}`);
    }
  }

  /** Sets an ERROR reply saying `message`; returns 0, the entry's result count. */
  #replyError(message: string): number {
    const encoder = this.#engine.encoder;
    encoder.reset();
    encoder.text(message);
    this.#reply = this.#replyOf(STATUS_ERROR, encoder.view());
    return 0;
  }

  /**
   * The reply `[status, payload]` in an array of the dispatcher's, reused by the next
   * reply (a handler's reply is valid until the next call; late replies are copied).
   */
  #replyOf(status: Uint8Array, payload: Uint8Array): Frames {
    const reply = this.#replyFrames;
    reply[0] = status;
    reply[1] = payload;
    return reply;
  }

  /** For #prepare: the request was answered with an ERROR saying `message`. */
  #fail(message: string): number {
    this.#replyError(message);
    return -1;
  }
}
