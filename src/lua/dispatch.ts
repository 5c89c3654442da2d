/**
 * Serving one RPC request: `[method, args...]` in, `OK`/`ERROR` + msgpack out.
 *
 * The wire contract is the original LuaOverMQ's: the method is looked up as a global
 * and called in protected mode; 0 results reply nil, 1 the value, more an array.
 * Unlike the original, every malformed request gets an `ERROR` reply naming the
 * problem, and only functions the script defined can be called.
 *
 * @module
 */

import { type LuaState, LuaStatus, LuaType, REGISTRY_INDEX } from "./api.ts";
import { CodecError } from "./codec.ts";
import type { LuaEngine } from "./engine.ts";

/** The status frame of a successful reply. */
export const STATUS_OK: Uint8Array = new TextEncoder().encode("OK");
/** The status frame of a failed reply. */
export const STATUS_ERROR: Uint8Array = new TextEncoder().encode("ERROR");

const textDecoder = new TextDecoder();

/** Calls script functions by name for requests. */
export class Dispatcher {
  #engine: LuaEngine;
  /** Registry reference of the table whose keys are functions clients may not call. */
  #blockedRef = 0;

  constructor(engine: LuaEngine) {
    this.#engine = engine;
  }

  /**
   * Blocks every function currently reachable as a global value (the standard library
   * and the host's own globals): a client may then call only what the script defines.
   */
  snapshotBuiltins(): void {
    const engine = this.#engine;
    const m = engine.m;
    const L = engine.L;
    m._lua_createtable(L, 0, 64);
    m._lua_rawgeti(L, REGISTRY_INDEX, 2n);
    m._lua_pushnil(L);
    while (m._lua_next(L, -2)) {
      if (m._lua_type(L, -1) === LuaType.FUNCTION) {
        m._lua_pushboolean(L, 1);
        m._lua_rawset(L, -5);
      } else {
        m._lua_settop(L, -2);
      }
    }
    m._lua_settop(L, -2);
    this.#blockedRef = m._luaL_ref(L, REGISTRY_INDEX);
  }

  /**
   * Serves one request body and returns the two reply frames. Never throws for bad
   * input: every failure becomes an `ERROR` reply. The payload frame is a view of the
   * encoder's buffer: send it (sockets copy on send) before the next request.
   */
  handle(frames: Uint8Array[]): Uint8Array[] {
    const engine = this.#engine;
    const D = engine.callThread;
    engine.m._lua_settop(D, 0);
    try {
      if (frames.length !== 1) {
        return this.#error(
          `a request is one frame holding msgpack [method, args...], got ${frames.length} frames`,
        );
      }
      const prepared = this.#prepare(D, frames[0]);
      if (typeof prepared === "string") return this.#error(prepared);
      const status = engine.pcall(D, prepared.nargs);
      if (status !== LuaStatus.OK) return this.#errorValue(D);
      return this.#results(D, prepared.name);
    } finally {
      engine.m._lua_settop(D, 0);
    }
  }

  /** Pushes the function and its arguments; returns an error message when it cannot. */
  #prepare(D: LuaState, body: Uint8Array): { nargs: number; name: Uint8Array } | string {
    const engine = this.#engine;
    const decoder = engine.decoder;
    try {
      const count = decoder.beginArray(body);
      if (count === 0) return "empty request: expected [method, args...]";
      const nameBytes = decoder.takeString();
      if (!nameBytes) {
        return `the request's first element is a ${decoder.describeNext()}, ` +
          `expected the method name as a string`;
      }
      const type = engine.getGlobal(D, nameBytes);
      if (type !== LuaType.FUNCTION || this.#isBlocked(D)) {
        return `function '${textDecoder.decode(nameBytes)}' not found`;
      }
      decoder.pushValues(D, count - 1);
      decoder.finish();
      return { nargs: count - 1, name: nameBytes };
    } catch (error) {
      if (error instanceof CodecError) return `bad request: ${error.message}`;
      throw error;
    }
  }

  #isBlocked(D: LuaState): boolean {
    const m = this.#engine.m;
    m._lua_rawgeti(D, REGISTRY_INDEX, BigInt(this.#blockedRef));
    m._lua_pushvalue(D, -2);
    m._lua_rawget(D, -2);
    const blocked = m._lua_toboolean(D, -1) !== 0;
    m._lua_settop(D, -3);
    return blocked;
  }

  #results(D: LuaState, name: Uint8Array): Uint8Array[] {
    const encoder = this.#engine.encoder;
    const m = this.#engine.m;
    const n = m._lua_gettop(D);
    encoder.reset();
    try {
      if (n === 0) encoder.nil();
      else if (n === 1) encoder.value(D, 1);
      else {
        encoder.arrayHeader(n);
        for (let i = 1; i <= n; i++) encoder.value(D, i);
      }
    } catch (error) {
      if (error instanceof CodecError) {
        const method = textDecoder.decode(name);
        return this.#error(`cannot send the result of '${method}': ${error.message}`);
      }
      throw error;
    }
    return [STATUS_OK, encoder.view()];
  }

  #errorValue(D: LuaState): Uint8Array[] {
    const encoder = this.#engine.encoder;
    encoder.reset();
    try {
      encoder.value(D, -1);
      return [STATUS_ERROR, encoder.view()];
    } catch (error) {
      if (!(error instanceof CodecError)) throw error;
      return this.#error(this.#engine.api.describe(D, -1));
    }
  }

  #error(message: string): Uint8Array[] {
    const encoder = this.#engine.encoder;
    encoder.reset();
    encoder.text(message);
    return [STATUS_ERROR, encoder.view()];
  }
}
