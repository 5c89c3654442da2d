/**
 * The lomq RPC client: many concurrent calls over one DEALER connection.
 *
 * ```ts
 * import { Client } from "./mod.ts";
 * await using client = new Client("tcp://127.0.0.1:8004");
 * console.log(await client.call("add", 1, 2)); // 3
 * ```
 *
 * How replies find their calls: a REP server echoes every frame before the empty
 * delimiter (the envelope) in front of its reply, libzmq's REP as well as lomq's. Each
 * request carries a 4-byte call id in that envelope, so a reply is matched by its id,
 * not by its position. Matching by position (REP answers a connection in order) breaks
 * as soon as one request is lost, for instance in flight on a connection that drops
 * and reconnects: every later reply would then be handed to the wrong call. With ids,
 * a lost request only costs its own call a timeout, and the reply to a call that
 * already timed out is recognised and dropped when it arrives late.
 *
 * @module
 */

// SocketOptions from its own module: the Node build's types then stay free of Deno's.
import { createSocket, type Frames, type Socket } from "../zmtp/mod.ts";
import type { SocketOptions } from "../zmtp/options.ts";
import { type CurveClientOptions, curveSocketOptions } from "../zmtp/security.ts";
import { createDecoder, encodeRequest, type MapMode } from "./msgpack.ts";
import { parseCallReply, requestFrames } from "../rpc/wire.ts";
import {
  type FunctionInfo,
  FUNCTIONS_METHOD,
  IntrospectionReplyError,
  parseFunctionsPage,
} from "../rpc/introspection.ts";

/** Default endpoint of a LuaOverMQ RPC server. */
export const DEFAULT_RPC_URI = "tcp://127.0.0.1:8004";
/** Default per-call timeout. */
export const DEFAULT_TIMEOUT_MS = 5000;

/** The server answered `ERROR`. */
export class RpcError extends Error {
  /** The error class name, for logs and `instanceof`-free checks. */
  override name = "RpcError";
  /** The method that failed. */
  readonly method: string;
  /** The error value as the server sent it (usually a string, possibly a table). */
  readonly payload: unknown;

  /** `payload` is the decoded error value; the message shows it as text. */
  constructor(method: string, payload: unknown) {
    super(typeof payload === "string" ? payload : describePayload(payload));
    this.method = method;
    this.payload = payload;
  }
}

/** No reply came within the call's timeout. The client stays usable. */
export class RpcTimeoutError extends Error {
  /** The error class name, for logs and `instanceof`-free checks. */
  override name = "RpcTimeoutError";
  /** The method that timed out. */
  readonly method: string;
  /** The endpoint the client talks to. */
  readonly uri: string;
  /** The timeout that elapsed. */
  readonly timeoutMs: number;
  /**
   * Whether a connection to the server was up when the call gave up: false means nothing
   * accepted a connection (a wrong address, or the server is not running).
   */
  readonly connected: boolean;

  /**
   * Why the last attempt to connect failed during its handshake (a CURVE key the server
   * refused, a wrong server key, a mechanism mismatch), when that is what happened.
   */
  readonly handshakeFailure: string | undefined;

  /** Describes the timeout, saying whether the server was reachable at all, and if not why. */
  constructor(
    method: string,
    uri: string,
    timeoutMs: number,
    connected: boolean,
    handshakeFailure?: string,
  ) {
    super(
      connected
        ? `call '${method}' to ${uri} got no reply within ${timeoutMs} ms`
        : handshakeFailure !== undefined
        ? `call '${method}': ${refusedHandshakeText(uri, handshakeFailure, timeoutMs)}`
        : `call '${method}': could not connect to ${uri} within ${timeoutMs} ms (is the server running?)`,
    );
    this.handshakeFailure = connected ? undefined : handshakeFailure;
    this.method = method;
    this.uri = uri;
    this.timeoutMs = timeoutMs;
    this.connected = connected;
  }
}

/**
 * A connection attempt failed its handshake while the call waited for one, and the client
 * was made with `failOnHandshakeError`: the server is there but refused us (a CURVE key not
 * on its allow list, a wrong server key, another security mechanism). The client keeps
 * retrying in the background.
 */
export class RpcHandshakeError extends Error {
  /** The error class name, for logs and `instanceof`-free checks. */
  override name = "RpcHandshakeError";
  /** The method that was called. */
  readonly method: string;
  /** The endpoint the client talks to. */
  readonly uri: string;
  /** Why the handshake failed, as the socket saw it. */
  readonly reason: string;

  /** Describes the refusal and the call it ended. */
  constructor(method: string, uri: string, reason: string) {
    super(`call '${method}': ${refusedHandshakeText(uri, reason)}`);
    this.method = method;
    this.uri = uri;
    this.reason = reason;
  }
}

/**
 * What users read when a server was reached but refused the handshake (said by the client's
 * errors and `lomq bench`): `withinMs` when the caller gave up after that long.
 */
export function refusedHandshakeText(uri: string, reason: string, withinMs?: number): string {
  const within = withinMs === undefined ? "" : ` within ${withinMs} ms`;
  return `could not connect to ${uri}${within}: the server answered, but the handshake failed: ` +
    reason;
}

/** The client was closed before the call finished. */
export class ClientClosedError extends Error {
  /** The error class name, for logs and `instanceof`-free checks. */
  override name = "ClientClosedError";
}

/** Options of a {@linkcode Client}. */
export interface ClientOptions {
  /** Timeout of each call unless the call gives its own (default 5000 ms). */
  timeoutMs?: number;
  /**
   * How msgpack maps are returned: plain objects (default; keys become strings) or
   * `Map`s that keep integer keys distinct from string ones.
   */
  maps?: MapMode;
  /**
   * CURVE: encrypt and authenticate with the server whose public key is `serverKey` (Z85),
   * e.g. `{ curve: { serverKey: "rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7" } }`; without
   * `secretKey` the client gets an ephemeral key pair.
   */
  curve?: CurveClientOptions;
  /** Options of the underlying DEALER socket (reconnect interval, heartbeats...). */
  socket?: SocketOptions;
  /**
   * Calls waiting while no connection is up fail at once with {@linkcode RpcHandshakeError}
   * when an attempt fails its handshake, instead of waiting out their timeout while the
   * retries meet the same refusal: for one-shot callers such as `lomq call`. Default false:
   * a long-lived client waits, as libzmq does, for a server that may yet accept it.
   */
  failOnHandshakeError?: boolean;
}

/** Options of one call. */
export interface CallOptions {
  /** This call's timeout in ms; `Infinity` waits for ever. */
  timeoutMs?: number;
  /** Aborting rejects the call at once with the signal's reason. */
  signal?: AbortSignal;
}

/** A reply as it came: the status and the msgpack payload, undecoded. */
export interface RawReply {
  /** True for status `OK`, false for `ERROR`. */
  ok: boolean;
  /** The status frame as text (`OK` or `ERROR`). */
  status: string;
  /** The msgpack-encoded result or error value. */
  payload: Uint8Array;
}

interface PendingCall {
  method: string;
  resolve(reply: RawReply): void;
  reject(error: Error): void;
  timer: ReturnType<typeof setTimeout> | undefined;
  signal: AbortSignal | undefined;
  onAbort: (() => void) | undefined;
}

/**
 * An RPC client for lomq and LuaOverMQ servers. Calls may overlap freely: they are all
 * sent at once over one connection, and each resolves when its own reply arrives.
 *
 * Values: integral JS numbers are sent as msgpack integers and other numbers as floats
 * (wrap an integral float as `new Float(100)`); `bigint` for 64-bit integers; Uint8Array
 * for binary. Results: integers come back as numbers, or as `bigint` when a number would
 * lose precision (beyond 2^53); binary as Uint8Array.
 */
export class Client {
  /** The server's endpoint. */
  readonly uri: string;
  readonly #socket: Socket;
  readonly #timeoutMs: number;
  readonly #decode: (bytes: Uint8Array) => unknown;
  readonly #pending = new Map<number, PendingCall>();
  readonly #stop = new AbortController();
  #nextId = 1;
  #receiving: Promise<void> | undefined;
  #closed = false;
  #stopWatchingHandshakes: (() => void) | undefined;

  /** Connects (in the background, reconnecting by itself) to `uri`. */
  constructor(uri: string = DEFAULT_RPC_URI, options: ClientOptions = {}) {
    this.uri = uri;
    this.#timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    this.#decode = createDecoder(options.maps);
    this.#socket = createSocket("DEALER", {
      ...options.socket,
      ...curveSocketOptions(options.curve),
    });
    try {
      this.#socket.connect(uri);
    } catch (error) {
      void this.#socket.close(0);
      throw error;
    }
    if (options.failOnHandshakeError === true) this.#watchHandshakes();
  }

  #watchHandshakes(): void {
    this.#stopWatchingHandshakes = this.#socket.whenHandshakeFails((reason) => {
      if (this.#closed) return;
      this.#watchHandshakes();
      if (this.connected) return; // another connection is up: calls may still be answered
      for (const [id, call] of [...this.#pending]) {
        this.#settle(id)?.reject(new RpcHandshakeError(call.method, this.uri, reason));
      }
    });
  }

  /** Calls in flight: sent and not yet answered, timed out or aborted. */
  get pending(): number {
    return this.#pending.size;
  }

  /** Whether a connection to the server is up right now. */
  get connected(): boolean {
    return this.#socket.peerCount > 0;
  }

  #timeout(method: string, timeoutMs: number): RpcTimeoutError {
    const connected = this.connected;
    return new RpcTimeoutError(
      method,
      this.uri,
      timeoutMs,
      connected,
      connected ? undefined : this.#socket.lastHandshakeFailure,
    );
  }

  /**
   * Calls `method(...args)` on the server with the client's default timeout. Resolves
   * with the result; rejects with {@linkcode RpcError} when the server answers `ERROR`,
   * {@linkcode RpcTimeoutError} when no reply comes in time (and with
   * {@linkcode RpcHandshakeError} when the client fails on handshake errors).
   */
  call(method: string, ...args: unknown[]): Promise<unknown> {
    return this.callWith({}, method, ...args);
  }

  /** Like {@linkcode Client.call}, with this call's own timeout or abort signal. */
  async callWith(options: CallOptions, method: string, ...args: unknown[]): Promise<unknown> {
    const reply = await this.request(method, args, options);
    const value = this.#decode(reply.payload);
    if (reply.ok) return value;
    throw new RpcError(method, value);
  }

  /**
   * The functions the server lets clients call, sorted by name, with their parameter
   * names and whether they take `...` (the reserved method `lomq.functions`, every page of
   * it). Rejects with {@linkcode RpcError} when the server has no introspection (the
   * original LuaOverMQ answers `ERROR`, as for any unknown method), with
   * {@linkcode IntrospectionReplyError} when its answer is not a function list. The
   * timeout applies to each page.
   *
   * ```ts
   * await using client = new Client("tcp://127.0.0.1:8004");
   * for (const f of await client.functions()) console.log(f.name, f.params, f.vararg);
   * ```
   */
  async functions(options: CallOptions = {}): Promise<FunctionInfo[]> {
    const all: FunctionInfo[] = [];
    let after: Uint8Array | undefined;
    for (;;) {
      const args = after === undefined ? [] : [bytesOrText(after)];
      const reply = await this.request(FUNCTIONS_METHOD, args, options);
      const value = decodeObjects(reply.payload);
      if (!reply.ok) throw new RpcError(FUNCTIONS_METHOD, value);
      const page = parseFunctionsPage(value);
      for (const info of page.functions) {
        // Names strictly increase, so a server cannot keep the loop going with old ones.
        const name = nameBytes(info.name);
        if (after !== undefined && compareBytes(name, after) <= 0) {
          throw new IntrospectionReplyError(
            `the reply to ${FUNCTIONS_METHOD} is not a list: names out of order`,
          );
        }
        after = name;
        all.push(info);
      }
      if (all.length > MAX_FUNCTIONS_LISTED) {
        throw new IntrospectionReplyError(
          `the server lists more than ${MAX_FUNCTIONS_LISTED} functions; stopped reading`,
        );
      }
      if (!page.more || page.functions.length === 0) return all;
    }
  }

  /**
   * Sends one request and resolves with the reply undecoded (an `ERROR` reply resolves
   * too). Rejects only for a timeout, an abort, a closed client, an unencodable value or
   * (with `failOnHandshakeError`) a refused handshake.
   */
  request(method: string, args: readonly unknown[], options: CallOptions = {}): Promise<RawReply> {
    if (this.#closed) return Promise.reject(new ClientClosedError("the client is closed"));
    if (options.signal?.aborted) return Promise.reject(options.signal.reason);
    let body: Uint8Array;
    try {
      body = encodeRequest(method, args);
    } catch (error) {
      return Promise.reject(error);
    }
    const id = this.#nextId;
    // Wraps within 32 bits; ids of calls still pending are skipped.
    do {
      this.#nextId = this.#nextId === 0xffff_ffff ? 1 : this.#nextId + 1;
    } while (this.#pending.has(this.#nextId));
    const frames = requestFrames(id, body);
    const timeoutMs = options.timeoutMs ?? this.#timeoutMs;

    return new Promise<RawReply>((resolve, reject) => {
      const call: PendingCall = {
        method,
        resolve,
        reject,
        timer: undefined,
        signal: options.signal,
        onAbort: undefined,
      };
      this.#pending.set(id, call);
      if (Number.isFinite(timeoutMs)) {
        call.timer = setTimeout(() => {
          this.#settle(id)?.reject(
            this.#timeout(method, timeoutMs),
          );
        }, Math.max(0, timeoutMs));
      }
      if (call.signal) {
        call.onAbort = () => this.#settle(id)?.reject(call.signal!.reason);
        call.signal.addEventListener("abort", call.onAbort, { once: true });
      }
      this.#startReceiving();
      if (!this.#socket.trySend(frames)) void this.#sendLater(id, method, frames, timeoutMs);
    });
  }

  /** Sends once the connection has room again (more calls in flight than the HWM). */
  async #sendLater(id: number, method: string, frames: Frames, timeoutMs: number): Promise<void> {
    const wait = Number.isFinite(timeoutMs) ? timeoutMs : undefined;
    const sent = await this.#socket.send(frames, wait);
    if (!sent && !this.#closed) {
      this.#settle(id)?.reject(this.#timeout(method, timeoutMs));
    }
  }

  /** Removes a call from the pending set and clears its timer; undefined if already settled. */
  #settle(id: number): PendingCall | undefined {
    const call = this.#pending.get(id);
    if (!call) return undefined;
    this.#pending.delete(id);
    clearTimeout(call.timer);
    if (call.onAbort) call.signal?.removeEventListener("abort", call.onAbort);
    return call;
  }

  #startReceiving(): void {
    this.#receiving ??= this.#receiveLoop();
  }

  async #receiveLoop(): Promise<void> {
    const socket = this.#socket;
    const signal = this.#stop.signal;
    while (await socket.readable(undefined, signal)) {
      for (let frames = socket.tryRecv(); frames; frames = socket.tryRecv()) {
        this.#onReply(frames);
      }
    }
  }

  #onReply(frames: Frames): void {
    const reply = parseCallReply(frames);
    if (reply === undefined) return; // not a reply to this client
    const call = this.#settle(reply.id);
    if (!call) return; // the call timed out or was aborted: a late reply
    call.resolve({ ok: reply.ok, status: reply.status, payload: reply.payload });
  }

  /** Closes the connection; calls still pending reject with {@linkcode ClientClosedError}. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#stopWatchingHandshakes?.();
    for (const id of [...this.#pending.keys()]) {
      this.#settle(id)?.reject(new ClientClosedError("the client was closed during the call"));
    }
    this.#stop.abort();
    await this.#socket.close(0);
    await this.#receiving;
  }

  /** `await using client = new Client(...)` closes it at the end of the scope. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}

/** Bounds what {@linkcode Client.functions} keeps from a server that never ends its list. */
const MAX_FUNCTIONS_LISTED = 1_000_000;

/** Replies of `lomq.functions` are read with plain-object maps, whatever the client's mode. */
const decodeObjects = createDecoder("object");
const utf8 = new TextEncoder();
const strictUtf8 = new TextDecoder("utf-8", { fatal: true });

function nameBytes(name: string | Uint8Array): Uint8Array {
  return typeof name === "string" ? utf8.encode(name) : name;
}

/** A name sent back as it came: a str when it is UTF-8, else bin. */
function bytesOrText(bytes: Uint8Array): string | Uint8Array {
  try {
    return strictUtf8.decode(bytes);
  } catch {
    return bytes;
  }
}

function compareBytes(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return a[i] - b[i];
  return a.length - b.length;
}

function describePayload(payload: unknown): string {
  try {
    return JSON.stringify(
      payload,
      (_key, value) =>
        typeof value === "bigint"
          ? value.toString()
          : value instanceof Uint8Array
          ? `<${value.length} bytes>`
          : value,
    ) ??
      String(payload);
  } catch {
    return String(payload);
  }
}
