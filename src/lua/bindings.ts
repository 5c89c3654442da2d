/**
 * The `LuaOverMQ` module as Lua sees it: `bind`, `connect`, the socket methods and
 * the helpers, implemented as host functions over the raw C API.
 *
 * Methods that wait (`process`, `recv`, `call`, `bind`) yield the script's thread to
 * the host, which awaits the network and resumes it. `process()` serves a request
 * that is already queued without yielding at all, so a busy server pays no resume.
 *
 * @module
 */

import { type HostFunction, type LuaState, LuaType, REGISTRY_INDEX } from "./api.ts";
import { CodecError, FORM_ARRAY, FORM_BIN, FORM_MAP } from "./codec.ts";
import { CODE_PAGES, codePage } from "./codepage.ts";
import { Dispatcher } from "./dispatch.ts";
import type { LuaEngine } from "./engine.ts";
import { WaitClock } from "./wait_clock.ts";
import {
  createSocket,
  type Frames,
  type Socket,
  SOCKET_TYPES,
  type SocketOptions,
  type SocketType,
} from "../zmtp/mod.ts";
import { EAGAIN, EFSM, ENOTSUP, ETERM, ETIMEDOUT } from "../zmtp/errors.ts";
import { PubSocket } from "../zmtp/pub.ts";
import { sleep } from "../zmtp/wait.ts";
import { readSecretKeyFile } from "../zmtp/security.ts";
import { eventLoopTurn } from "./turn.ts";
import { IDLE, parseReply, RpcServer, SERVED } from "../rpc/mod.ts";

/**
 * Socket types by the original LuaOverMQ's numbers (libzmq's numbering, 1 PUB to
 * 8 PUSH), which is the order the ZMTP layer lists them in.
 */
export const SOCKET_TYPES_BY_NUMBER: readonly (SocketType | undefined)[] = [
  undefined,
  ...SOCKET_TYPES,
];

const SOCKET_METATABLE = "LuaOverMQ.socket";

/** What the bindings need from the script's lifecycle. */
export interface Lifecycle {
  /** Aborted when the script is asked to stop: waits end at once. */
  readonly stopSignal: AbortSignal;
  /** Called when `LuaOverMQ.encoding` sets a code page. */
  readonly codePageSet?: () => void;
}

/** One socket the script opened. */
interface Binding {
  id: number;
  socket: Socket;
  type: SocketType;
  errno: number;
  /** Timeout for `call()`, from the `timeout_ms` option. */
  callTimeoutMs: number | undefined;
  /** REP and ROUTER: serves `process()`. */
  server: RpcServer | undefined;
  /** Lent by the host (see {@linkcode LuaOverMQBindings.pushLent}): the host closes it. */
  lent?: boolean;
  /**
   * While the socket is open: where its userdata's block is, and the registry reference
   * that keeps the userdata there.
   */
  userdata?: { pointer: number; ref: number };
}

const textEncoder = new TextEncoder();

/** Installs and runs the LuaOverMQ module in an engine. */
export class LuaOverMQBindings {
  readonly #engine: LuaEngine;
  readonly #lifecycle: Lifecycle;
  /**
   * The open sockets by the address of their userdata's block. Each userdata is kept alive
   * by a registry reference while its socket is open, so no other value can be at that
   * address: a method call finds its socket with one lookup instead of a metatable check,
   * which cost a twentieth of a pipelined request.
   */
  readonly #sockets = new Map<number, Binding>();
  /** Sockets the script closed that are still delivering what they queued. */
  readonly #closing = new Set<Promise<void>>();
  #nextId = 1;
  /** Serves requests; call {@link Dispatcher.snapshotBuiltins} before the script runs. */
  readonly dispatcher: Dispatcher;

  readonly #version: string;
  readonly #clock = new WaitClock();

  constructor(engine: LuaEngine, lifecycle: Lifecycle, version: string) {
    this.#version = version;
    lifecycle.stopSignal.addEventListener("abort", () => this.#clock.stop(), { once: true });
    this.#engine = engine;
    this.#lifecycle = lifecycle;
    this.dispatcher = new Dispatcher(engine);
  }

  /**
   * Pushes the table of native functions the Lua prelude builds the module from:
   * `{bind, connect, time, sleep, recv_frames, request, encode, decode, forms, ...,
   * socket_methods = {...}}`.
   */
  pushNatives(L: LuaState): void {
    const engine = this.#engine;
    const m = engine.m;
    const api = engine.api;
    const fields: Record<string, HostFunction> = {
      version: (L) => {
        api.pushString(L, this.#version);
        return 1;
      },
      bind: (L) => this.#open(L, "bind"),
      connect: (L) => this.#open(L, "connect"),
      time: (L) => {
        m._lua_pushnumber(L, (performance.timeOrigin + performance.now()) / 1000);
        return 1;
      },
      // Wrapped by the prelude into sock:recv() and sock:call().
      recv_frames: (L) => this.#recvFrames(L),
      request: (L) => this.#request(L),
      sleep: (L) => {
        const ms = Math.max(0, numberArg(L, engine, 1) ?? 0);
        return engine.wait(L, "sleep()", async (T) => {
          await sleep(ms, engine.signalFor(T));
          return 0;
        });
      },
      expose: (L) => {
        if (m._lua_type(L, 1) !== LuaType.TABLE) {
          throw new Error(
            'expose: expected a list of function names, e.g. LuaOverMQ.expose{"add"}',
          );
        }
        const names: Uint8Array[] = [];
        const n = Number(m._lua_rawlen(L, 1));
        for (let i = 1; i <= n; i++) {
          if (m._lua_rawgeti(L, 1, BigInt(i)) !== LuaType.STRING) {
            throw new Error(`expose: entry ${i} is not a function name (a string)`);
          }
          names.push(api.toBytes(L, -1));
          m._lua_settop(L, -2);
        }
        this.dispatcher.expose(names);
        return 0;
      },
      encoding: (L) => {
        if (m._lua_type(L, 1) !== LuaType.NONE && m._lua_type(L, 1) !== LuaType.NIL) {
          const name = api.toText(L, 1);
          const page = codePage(name);
          if (page === undefined) {
            throw new Error(
              `LuaOverMQ.encoding: unknown encoding '${name}' (known: ${CODE_PAGES.join(", ")})`,
            );
          }
          api.codePage = page.transcodes ? page : undefined;
          this.#lifecycle.codePageSet?.();
        }
        api.pushString(L, api.codePage?.name ?? "utf-8");
        return 1;
      },
      // A topic received (UTF-8 on the wire) as the script's text.
      to_local: (L) => {
        api.pushBytes(L, api.toLocal(api.toBytes(L, 1)));
        return 1;
      },
      decode: (L) => {
        const bytes = api.toBytes(L, 1);
        m._lua_settop(L, 0);
        try {
          engine.decoder.pushDocument(L, bytes);
        } catch (error) {
          if (error instanceof CodecError) {
            m._lua_settop(L, 0);
            m._lua_pushnil(L);
            api.pushString(L, error.message);
            return 2;
          }
          throw error;
        }
        return 1;
      },
      encode: (L) => {
        engine.encoder.reset();
        engine.encoder.value(L, 1);
        api.pushBytes(L, engine.encoder.view()); // pushBytes copies it into Lua
        return 1;
      },
    };
    m._lua_createtable(L, 0, Object.keys(fields).length + 5);
    for (const [name, fn] of Object.entries(fields)) {
      m._lua_pushcclosure(L, api.cfunction(fn), 0);
      m._lua_setfield(L, -2, api.cstr(name));
    }
    // The weak table of forced forms: LuaOverMQ.array/map record the form here.
    m._lua_createtable(L, 0, 0);
    m._lua_createtable(L, 0, 1);
    api.pushString(L, "k");
    m._lua_setfield(L, -2, api.cstr("__mode"));
    m._lua_setmetatable(L, -2);
    m._lua_pushvalue(L, -1);
    engine.encoder.formsRef = m._luaL_ref(L, REGISTRY_INDEX);
    engine.decoder.formsRef = engine.encoder.formsRef;
    m._lua_setfield(L, -2, api.cstr("forms"));
    m._lua_pushinteger(L, BigInt(FORM_ARRAY));
    m._lua_setfield(L, -2, api.cstr("FORM_ARRAY"));
    m._lua_pushinteger(L, BigInt(FORM_MAP));
    m._lua_setfield(L, -2, api.cstr("FORM_MAP"));
    m._lua_pushinteger(L, BigInt(FORM_BIN));
    m._lua_setfield(L, -2, api.cstr("FORM_BIN"));

    const methods: Record<string, HostFunction> = {
      process: (L) => this.#process(L),
      send: (L) => this.#send(L),
      errno: (L) => {
        m._lua_pushinteger(L, BigInt(this.#self(L).errno));
        return 1;
      },
      close: (L) => {
        const binding = this.#self(L);
        this.#forget(L, binding);
        if (binding.lent) return 0;
        // Lingering goes on in the background; closeAll waits for it before the exit.
        const closing = binding.socket.close(numberArg(L, engine, 2) ?? 0).catch(() => {});
        this.#closing.add(closing);
        void closing.finally(() => this.#closing.delete(closing));
        return 0;
      },
      setsockopt: (L) => {
        const binding = this.#self(L);
        const option = parseOption(api.toText(L, 2), this.#optionValue(L, 3));
        if ("callTimeoutMs" in option) binding.callTimeoutMs = option.callTimeoutMs;
        else if ("serveBudgetMs" in option) setServeBudget(binding, option.serveBudgetMs);
        else binding.socket.setOption(option.key, option.value as never);
        return 0;
      },
      bind: (L) => {
        const binding = this.#self(L);
        const uri = this.#endpointArg(L, 2, "bind");
        return engine.wait(L, "sock:bind()", async (T) => {
          api.pushString(T, await binding.socket.bind(uri));
          return 1;
        });
      },
      connect: (L) => {
        const binding = this.#self(L);
        binding.socket.connect(this.#endpointArg(L, 2, "connect"));
        return 0;
      },
      stats: (L) => this.#stats(L),
      subscribe: (L) => this.#subscription(L, true),
      unsubscribe: (L) => this.#subscription(L, false),
      type: (L) => {
        api.pushString(L, this.#self(L).type);
        return 1;
      },
      endpoints: (L) => {
        const endpoints = this.#self(L).socket.endpoints;
        m._lua_createtable(L, endpoints.length, 0);
        endpoints.forEach((endpoint, i) => {
          api.pushString(L, endpoint);
          m._lua_rawseti(L, -2, BigInt(i + 1));
        });
        return 1;
      },
    };
    m._luaL_newmetatable(L, api.cstr(SOCKET_METATABLE));
    m._lua_createtable(L, 0, Object.keys(methods).length);
    for (const [name, fn] of Object.entries(methods)) {
      m._lua_pushcclosure(L, api.cfunction(fn), 0);
      m._lua_setfield(L, -2, api.cstr(name));
    }
    m._lua_pushvalue(L, -1);
    m._lua_setfield(L, -3, api.cstr("__index"));
    // Lua-side methods (recv, call, ...) are added to this same table by the prelude.
    m._lua_setfield(L, -3, api.cstr("socket_methods"));
    m._lua_pushcclosure(
      L,
      api.cfunction((L) => {
        const binding = this.#self(L);
        api.pushString(L, `LuaOverMQ.socket(${binding.type} #${binding.id})`);
        return 1;
      }),
      0,
    );
    m._lua_setfield(L, -2, api.cstr("__tostring"));
    api.pushString(L, SOCKET_METATABLE);
    m._lua_setfield(L, -2, api.cstr("__name"));
    m._lua_settop(L, -2); // the metatable lives on in the registry
  }

  /**
   * Pushes a socket the host owns onto `L` as a LuaOverMQ socket: the script uses it like
   * its own, but closing it (or {@link closeAll}) only lets go of it. `lomq serve --pub`
   * lends its PUB socket to each version of the script it serves.
   */
  pushLent(L: LuaState, socket: Socket): number {
    const binding: Binding = {
      id: this.#nextId++,
      socket,
      type: socket.type,
      errno: 0,
      callTimeoutMs: undefined,
      server: undefined,
      lent: true,
    };
    return this.#pushSocket(L, binding);
  }

  /** Closes every socket, flushing queued messages for up to `lingerMs`. */
  async closeAll(lingerMs: number): Promise<void> {
    const open = [...this.#sockets.values()];
    this.#sockets.clear();
    for (const binding of open) binding.userdata = undefined;
    const sockets = open.filter((binding) => !binding.lent);
    await Promise.allSettled([
      ...sockets.map((b) => b.socket.close(lingerMs)),
      ...this.#closing,
    ]);
  }

  #self(L: LuaState): Binding {
    const engine = this.#engine;
    const open = this.#sockets.get(engine.m._lua_touserdata(L, 1));
    if (open !== undefined) return open;
    if (engine.m._luaL_testudata(L, 1, engine.api.cstr(SOCKET_METATABLE)) === 0) {
      throw new Error(
        "expected a LuaOverMQ socket as the first argument (call methods as sock:method(...))",
      );
    }
    throw new Error("this LuaOverMQ socket is closed");
  }

  #endpointArg(L: LuaState, idx: number, how: string): string {
    if (this.#engine.m._lua_type(L, idx) !== LuaType.STRING) {
      throw new Error(`${how}: expected an address like tcp://127.0.0.1:8004 or ipc:///tmp/name`);
    }
    return this.#engine.api.toText(L, idx);
  }

  /** `LuaOverMQ.bind(uri, type [, options])` and `connect`: yields while binding. */
  #open(L: LuaState, how: "bind" | "connect"): number {
    const engine = this.#engine;
    const m = engine.m;
    const api = engine.api;
    const uri = this.#endpointArg(L, 1, `LuaOverMQ.${how}`);
    const type = socketTypeArg(L, engine, how);
    const options: SocketOptions = {};
    let callTimeoutMs: number | undefined;
    let serveBudgetMs = 0;
    if (m._lua_type(L, 3) === LuaType.TABLE) {
      m._lua_pushnil(L);
      while (m._lua_next(L, 3)) {
        if (m._lua_type(L, -2) === LuaType.STRING) {
          const option = parseOption(api.toText(L, -2), this.#optionValue(L, -1));
          if ("callTimeoutMs" in option) callTimeoutMs = option.callTimeoutMs;
          else if ("serveBudgetMs" in option) serveBudgetMs = option.serveBudgetMs;
          else (options as Record<string, unknown>)[option.key] = option.value;
        }
        m._lua_settop(L, -2);
      }
    }
    const socket = createSocket(type, options);
    const server = type === "REP" || type === "ROUTER"
      ? new RpcServer(socket, this.dispatcher, serveBudgetMs)
      : undefined;
    const binding: Binding = {
      id: this.#nextId++,
      socket,
      type,
      errno: 0,
      callTimeoutMs,
      server,
    };
    if (how === "connect") {
      // Connecting happens in the background: nothing to wait for.
      try {
        socket.connect(uri);
      } catch (error) {
        void socket.close(0).catch(() => {});
        throw error;
      }
      return this.#pushSocket(L, binding);
    }
    return engine.wait(L, "LuaOverMQ.bind()", async (T) => {
      try {
        await socket.bind(uri);
      } catch (error) {
        await socket.close(0).catch(() => {});
        throw error;
      }
      return this.#pushSocket(T, binding);
    });
  }

  /** Registers `binding` and pushes its userdata (the socket id) onto `L`. */
  #pushSocket(L: LuaState, binding: Binding): number {
    const m = this.#engine.m;
    // The userdata's address is what names the socket (see #sockets); one byte, unused, so
    // that the address lies inside this userdata's own block.
    const ptr = m._lua_newuserdatauv(L, 1, 0);
    m._luaL_setmetatable(L, this.#engine.api.cstr(SOCKET_METATABLE));
    m._lua_pushvalue(L, -1);
    binding.userdata = { pointer: ptr, ref: m._luaL_ref(L, REGISTRY_INDEX) };
    this.#sockets.set(ptr, binding);
    return 1;
  }

  /** Closed by the script: its userdata may be collected, and names a closed socket. */
  #forget(L: LuaState, binding: Binding): void {
    const userdata = binding.userdata;
    if (userdata === undefined) return;
    binding.userdata = undefined;
    this.#sockets.delete(userdata.pointer);
    this.#engine.m._luaL_unref(L, REGISTRY_INDEX, userdata.ref);
  }

  #optionValue(L: LuaState, idx: number): OptionValue {
    const m = this.#engine.m;
    const type = m._lua_type(L, idx);
    if (type === LuaType.NUMBER) return m._lua_tonumberx(L, idx, 0);
    if (type === LuaType.STRING) return this.#engine.api.toBytes(L, idx);
    if (type === LuaType.BOOLEAN) return m._lua_toboolean(L, idx) !== 0;
    if (type === LuaType.TABLE) {
      // A list of strings (curve_allow): its values 1..n.
      const list: Uint8Array[] = [];
      const table = m._lua_absindex(L, idx);
      for (let i = 1;; i++) {
        m._lua_rawgeti(L, table, BigInt(i));
        const ok = m._lua_type(L, -1) === LuaType.STRING;
        if (ok) list.push(this.#engine.api.toBytes(L, -1));
        m._lua_settop(L, -2);
        if (!ok) break;
      }
      return list;
    }
    return undefined;
  }

  /**
   * `sock:process([timeout_ms])`: serves one request; 0 on success or timeout. A request
   * already queued is served without yielding; a handler that waits or is paused makes the
   * script wait for its reply.
   */
  #process(L: LuaState): number {
    const engine = this.#engine;
    const m = engine.m;
    const binding = this.#self(L);
    const server = binding.server;
    if (server === undefined) {
      binding.errno = ENOTSUP;
      m._lua_pushinteger(L, BigInt(ENOTSUP));
      return 1;
    }
    if (engine.hostThread(L)?.kind === "call") {
      throw new Error("process() cannot be called from an RPC handler");
    }
    if (!m._lua_isyieldable(L)) {
      throw new Error(
        "process() cannot be called from inside a C function (a table.sort comparator, a " +
          "metamethod called by the library, ...)",
      );
    }
    binding.errno = 0;
    // The errno of a served request is nonzero when a ROUTER reply could not be routed.
    const answer = (T: LuaState): number => {
      const errno = server.lastErrno;
      binding.errno = errno;
      // No BigInt made for the answer of nearly every call.
      m._lua_pushinteger(T, errno === 0 ? 0n : BigInt(errno));
      return 1;
    };
    const served = server.serveNext();
    if (served === SERVED) return answer(L);
    if (served !== IDLE) {
      return engine.wait(L, "process()", async (T) => {
        await served;
        return answer(T);
      });
    }
    const timeoutMs = numberArg(L, engine, 2);
    if (timeoutMs !== undefined && timeoutMs <= 0) {
      m._lua_pushinteger(L, 0n);
      return 1;
    }
    return engine.wait(L, "process()", (T) =>
      new Promise<number>((resolve, reject) => {
        // Called back from the socket's wake-up: it must not throw there.
        let settled = false;
        const finish = (ready: boolean): void => {
          if (settled) return;
          settled = true;
          this.#clock.end();
          try {
            if (!ready) {
              if (binding.userdata === undefined) binding.errno = ETERM;
              m._lua_pushinteger(T, BigInt(binding.errno));
              return resolve(1);
            }
            const next = server.serveNext();
            if (next === IDLE || next === SERVED) return resolve(answer(T));
            next.then(() => resolve(answer(T)), reject);
          } catch (error) {
            reject(error);
          }
        };
        if (this.#lifecycle.stopSignal.aborted) {
          // Stopping: return at once, but through a macrotask so timers (the forced
          // exit) still fire when a script keeps calling process() in a loop.
          void sleep(0).then(() => finish(false));
          return;
        }
        const cancel = binding.socket.whenReadable(finish);
        if (!settled) this.#clock.begin(timeoutMs, cancel);
      }));
  }

  /** `sock:send(topic, value)` (two frames) or `sock:send(frame)`; 0 or an errno. */
  #send(L: LuaState): number {
    const engine = this.#engine;
    const m = engine.m;
    const binding = this.#self(L);
    const nargs = m._lua_gettop(L);
    const frames: Frames = [];
    let value: Uint8Array | undefined;
    if (nargs >= 3) {
      engine.encoder.reset();
      engine.encoder.value(L, 3);
      value = engine.encoder.view(); // trySend copies before returning
    }
    // The topic may be a view of the Lua heap (trySend copies it too): taken after the
    // value, whose encoding could grow the heap and so detach an earlier view. A slice
    // here cost a tenth of a publisher loop's time.
    if (nargs >= 2) frames.push(this.#frameArg(L, 2));
    if (value !== undefined) frames.push(value);
    if (frames.length === 0) {
      throw new Error("send: nothing to send (expected sock:send(topic, value))");
    }
    const socket = binding.socket;
    const sent = socket.trySend(frames);
    binding.errno = sent ? 0 : socket.lastErrno || EAGAIN;
    // A loop of sends never waits: let the writers run each batch, or the queues fill to the
    // HWM and drop while the subscribers wait (from an RPC handler or a coroutine the
    // sends go out when it returns or yields).
    if (
      socket instanceof PubSocket && socket.flushDue && engine.hostThread(L) !== undefined &&
      m._lua_isyieldable(L)
    ) {
      socket.flushStarted();
      return engine.wait(L, "send()", async (T) => {
        await eventLoopTurn();
        m._lua_pushinteger(T, 0n);
        return 1;
      });
    }
    // PUSH and DEALER wait for room at the high-water mark, as in libzmq, where the
    // script can wait; from an RPC handler or a coroutine they report EAGAIN instead.
    const blocks = binding.type === "PUSH" || binding.type === "DEALER";
    if (
      binding.errno === EAGAIN && blocks && engine.hostThread(L) !== undefined &&
      m._lua_isyieldable(L)
    ) {
      // The encoder's view is reused, the topic's is of the Lua heap.
      const copies = frames.map((frame) => frame.slice());
      return engine.wait(L, "send()", async (T) => {
        const ok = await binding.socket.send(copies);
        binding.errno = ok ? 0 : binding.socket.lastErrno || ETERM;
        m._lua_pushinteger(T, BigInt(binding.errno));
        return 1;
      });
    }
    m._lua_pushinteger(L, BigInt(binding.errno));
    return 1;
  }

  /** `pub:stats()`: {sent=, dropped=, subscribers=} of a PUB socket. */
  #stats(L: LuaState): number {
    const binding = this.#self(L);
    const socket = binding.socket;
    if (!(socket instanceof PubSocket)) {
      throw new Error(`stats works on PUB sockets, this is ${binding.type}`);
    }
    const m = this.#engine.m;
    const stats = socket.stats;
    m._lua_createtable(L, 0, 3);
    for (const [name, value] of Object.entries(stats)) {
      m._lua_pushinteger(L, BigInt(value));
      m._lua_setfield(L, -2, this.#engine.api.cstr(name));
    }
    return 1;
  }

  #frameArg(L: LuaState, idx: number): Uint8Array {
    const api = this.#engine.api;
    const type = this.#engine.m._lua_type(L, idx);
    // Topics are text: UTF-8 on the wire, whatever the script's code page.
    if (type === LuaType.STRING) return api.toWire(api.viewString(L, idx));
    if (type === LuaType.NUMBER) return textEncoder.encode(api.describe(L, idx));
    throw new Error(`send: a topic must be a string, got ${typeName(type)}`);
  }

  #subscription(L: LuaState, on: boolean): number {
    const binding = this.#self(L);
    if (binding.type !== "SUB") {
      throw new Error(
        `${on ? "subscribe" : "unsubscribe"} works on SUB sockets, this is ${binding.type}`,
      );
    }
    const api = this.#engine.api;
    const prefix = this.#engine.m._lua_type(L, 2) === LuaType.STRING
      ? api.toWire(api.viewString(L, 2)).slice()
      : new Uint8Array(0);
    if (on) binding.socket.subscribe(prefix);
    else binding.socket.unsubscribe(prefix);
    return 0;
  }

  /**
   * `natives.recv_frames(sock [, timeout_ms])` → `true, frame1, frame2, ...` or
   * `false, errno`. The prelude turns this into `sock:recv()`.
   */
  #recvFrames(L: LuaState): number {
    const engine = this.#engine;
    const m = engine.m;
    const binding = this.#self(L);
    const timeoutMs = numberArg(L, engine, 2);
    const pushFrames = (T: LuaState, frames: Frames | undefined): number => {
      if (!frames) {
        binding.errno = binding.userdata !== undefined ? EAGAIN : ETERM;
        m._lua_pushboolean(T, 0);
        m._lua_pushinteger(T, BigInt(binding.errno));
        return 2;
      }
      binding.errno = 0;
      m._lua_checkstack(T, frames.length + 2);
      m._lua_pushboolean(T, 1);
      for (const frame of frames) engine.api.pushBytes(T, frame);
      return frames.length + 1;
    };
    const ready = binding.socket.tryRecv();
    if (ready || (timeoutMs !== undefined && timeoutMs <= 0)) {
      m._lua_settop(L, 0);
      return pushFrames(L, ready);
    }
    return engine.wait(L, "recv()", async (T) => {
      const frames = await binding.socket.recv(timeoutMs, engine.signalFor(T));
      return pushFrames(T, frames);
    });
  }

  /**
   * `natives.request(sock, method, ...)`: one RPC call over REQ or DEALER. Returns
   * `true, status, payload` or `false, errno, message`.
   */
  #request(L: LuaState): number {
    const engine = this.#engine;
    const m = engine.m;
    const api = engine.api;
    const binding = this.#self(L);
    if (binding.type !== "REQ" && binding.type !== "DEALER") {
      throw new Error(`call() works on REQ and DEALER sockets, this is ${binding.type}`);
    }
    if (m._lua_type(L, 2) !== LuaType.STRING) {
      throw new Error("call: the method name must be a string");
    }
    const nargs = m._lua_gettop(L) - 1;
    const encoder = engine.encoder;
    encoder.reset();
    encoder.arrayHeader(nargs);
    for (let i = 2; i <= nargs + 1; i++) encoder.value(L, i);
    const request = encoder.take();
    const frames = binding.type === "DEALER" ? [new Uint8Array(0), request] : [request];
    const timeoutMs = binding.callTimeoutMs;
    const method = api.toText(L, 2);
    return engine.wait(L, "call()", async (T) => {
      const fail = (errno: number, message: string): number => {
        binding.errno = errno;
        m._lua_pushboolean(T, 0);
        m._lua_pushinteger(T, BigInt(errno));
        api.pushString(T, message);
        return 3;
      };
      if (!(await binding.socket.send(frames, timeoutMs))) {
        return fail(
          binding.socket.lastErrno || EAGAIN,
          `call '${method}': could not send the request`,
        );
      }
      const deadline = timeoutMs === undefined ? undefined : Date.now() + timeoutMs;
      for (;;) {
        const left = deadline === undefined ? undefined : Math.max(0, deadline - Date.now());
        const frames = await binding.socket.recv(left, engine.signalFor(T));
        if (!frames) {
          return fail(ETIMEDOUT, `call '${method}' timed out after ${timeoutMs} ms`);
        }
        // A DEALER sees the empty delimiter it sent in front of the reply.
        const body = binding.type === "DEALER"
          ? frames.slice(frames.findIndex((frame) => frame.length === 0) + 1)
          : frames;
        const reply = parseReply(body);
        if (reply === undefined) {
          return fail(EFSM, `call '${method}': the reply has ${body.length} frames, expected 2`);
        }
        binding.errno = 0;
        m._lua_pushboolean(T, 1);
        api.pushString(T, reply.status);
        api.pushBytes(T, reply.payload);
        return 3;
      }
    });
  }
}

const NUMERIC_OPTIONS: Record<string, keyof SocketOptions> = {
  hwm: "hwm",
  maxmsgsize: "maxMessageSize",
  handshake_timeout_ms: "handshakeTimeoutMs",
  heartbeat_ivl_ms: "heartbeatIvlMs",
  heartbeat_timeout_ms: "heartbeatTimeoutMs",
  linger_ms: "lingerMs",
  reconnect_ivl_ms: "reconnectIvlMs",
  reconnect_ivl_max_ms: "reconnectIvlMaxMs",
  sndbuf_bytes: "sndbufBytes",
  rcvbuf_bytes: "rcvbufBytes",
  stall_timeout_ms: "stallTimeoutMs",
  max_connections: "maxConnections",
  max_subscriptions: "maxSubscriptions",
};

/** A Lua option value: a number, a string, a boolean, or a list of strings. */
type OptionValue = number | Uint8Array | boolean | Uint8Array[] | undefined;

/** A socket option by its Lua name, checked: a socket option, or one of lomq's RPC. */
type ParsedOption =
  | { key: keyof SocketOptions; value: unknown }
  | { callTimeoutMs: number }
  | { serveBudgetMs: number };

function parseOption(name: string, value: OptionValue): ParsedOption {
  if (name === "timeout_ms") {
    if (typeof value !== "number") throw new Error("option timeout_ms must be a number");
    return { callTimeoutMs: value };
  }
  if (name === "call_timeout_ms") {
    if (typeof value !== "number" || !(value >= 0) || !Number.isFinite(value)) {
      throw new Error("option call_timeout_ms must be a number of milliseconds (0: no budget)");
    }
    return { serveBudgetMs: value };
  }
  if (name === "identity") {
    if (!(value instanceof Uint8Array)) throw new Error("option identity must be a string");
    return { key: "identity", value };
  }
  const security = parseSecurityOption(name, value);
  if (security !== undefined) return security;
  const key = NUMERIC_OPTIONS[name];
  if (!key) {
    const known = [
      ...Object.keys(NUMERIC_OPTIONS),
      "identity",
      "timeout_ms",
      "call_timeout_ms",
      ...SECURITY_LUA_NAMES,
    ].join(", ");
    throw new Error(`unknown socket option '${name}' (known: ${known})`);
  }
  if (typeof value !== "number") throw new Error(`option ${name} must be a number`);
  return { key, value };
}

const SECURITY_LUA_NAMES = [
  "curve_server",
  "curve_secretkey",
  "curve_secretkey_file",
  "curve_publickey",
  "curve_serverkey",
  "curve_allow",
  "curve_allow_file",
  "plain_server",
  "plain_username",
  "plain_password",
  "plain_users_file",
];

const textDecoder = new TextDecoder();

/**
 * libzmq's security options by their names (ZMQ_CURVE_SERVER is curve_server): keys as Z85
 * strings or 32 raw bytes, files by path; undefined for any other name.
 */
function parseSecurityOption(name: string, value: OptionValue): ParsedOption | undefined {
  const text = (what: string): string => {
    if (!(value instanceof Uint8Array)) throw new Error(`option ${name} must be ${what}`);
    return textDecoder.decode(value);
  };
  const flag = (): boolean => {
    if (typeof value === "boolean") return value;
    if (typeof value === "number") return value !== 0;
    throw new Error(`option ${name} must be true or false`);
  };
  const key = (): Uint8Array => {
    if (!(value instanceof Uint8Array)) {
      throw new Error(`option ${name} must be a key: 40 Z85 characters or 32 bytes`);
    }
    return value;
  };
  switch (name) {
    case "curve_server":
      return { key: "curveServer", value: flag() };
    case "plain_server":
      return { key: "plainServer", value: flag() };
    case "curve_secretkey":
      return { key: "curveSecretKey", value: key() };
    case "curve_publickey":
      return { key: "curvePublicKey", value: key() };
    case "curve_serverkey":
      return { key: "curveServerKey", value: key() };
    case "curve_secretkey_file":
      return { key: "curveSecretKey", value: readSecretKeyFile(text("a file path")) };
    case "curve_allow":
      if (!Array.isArray(value)) {
        throw new Error('option curve_allow must be a list of public keys: { "Z85...", ... }');
      }
      return { key: "curveAllow", value };
    case "curve_allow_file":
      return { key: "curveAllowFile", value: text("a file path") };
    case "plain_users_file":
      return { key: "plainUsersFile", value: text("a file path") };
    case "plain_username":
      return { key: "plainUsername", value: text("a string") };
    case "plain_password":
      return { key: "plainPassword", value: text("a string") };
  }
  return undefined;
}

/** `call_timeout_ms` on a socket: the budget of each call it serves. */
function setServeBudget(binding: Binding, ms: number): void {
  if (binding.server === undefined) {
    throw new Error(
      `option call_timeout_ms applies to REP and ROUTER sockets, not ${binding.type}`,
    );
  }
  binding.server.callTimeoutMs = ms;
}

function socketTypeArg(L: LuaState, engine: LuaEngine, how: string): SocketType {
  const m = engine.m;
  const type = m._lua_type(L, 2);
  let name: SocketType | undefined;
  if (type === LuaType.NUMBER) {
    const n = Number(m._lua_tonumberx(L, 2, 0));
    name = SOCKET_TYPES_BY_NUMBER[n];
    if (!name) {
      throw new Error(
        `LuaOverMQ.${how}: unknown socket type ${n} (1 PUB, 2 SUB, 3 REQ, 4 REP, 5 DEALER, 6 ROUTER, 7 PULL, 8 PUSH)`,
      );
    }
  } else if (type === LuaType.STRING) {
    const text = engine.api.toText(L, 2).toUpperCase();
    name = SOCKET_TYPES.find((t) => t === text);
    if (!name) throw new Error(`LuaOverMQ.${how}: unknown socket type '${text}'`);
  } else {
    throw new Error(
      `LuaOverMQ.${how}: the second argument must be a socket type such as LuaOverMQ.REP`,
    );
  }
  return name;
}

function numberArg(L: LuaState, engine: LuaEngine, idx: number): number | undefined {
  const m = engine.m;
  if (m._lua_type(L, idx) !== LuaType.NUMBER) return undefined;
  return m._lua_tonumberx(L, idx, 0);
}

function typeName(type: number): string {
  return [
    "nil",
    "boolean",
    "userdata",
    "number",
    "string",
    "table",
    "function",
    "userdata",
    "thread",
  ][
    type
  ] ?? "no value";
}
