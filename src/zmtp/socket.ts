/**
 * The base class of every socket type: bind, connect with reconnection, the fair-queued
 * receive path, waiting for readability or room, options, and close with linger.
 *
 * Socket types subclass it and fill in the hooks (admission of incoming messages, delivery,
 * routing of outgoing ones). Nothing here throws out of the event loop: connection failures
 * close that connection and are otherwise invisible to the application, as in libzmq; they
 * are logged (src/log.ts): drops and refusals as warnings, ordinary connects and
 * disconnects at debug level, nothing when the application closes the socket.
 *
 * Every resource a peer can make a socket hold is bounded: queued output per connection
 * (hwm, sndbufBytes), received bytes across connections (hwm, rcvbufBytes), unfinished
 * messages (rcvbufBytes, stallTimeoutMs), connections (maxConnections) and, on PUB,
 * subscriptions (maxSubscriptions).
 *
 * @module
 */

import { log } from "../log.ts";
import {
  type CloseKind,
  Connection,
  type ConnectionHandler,
  type HoldAnswer,
} from "./connection.ts";
import { parseEndpoint } from "./endpoint.ts";
import { EAGAIN, EINVAL, ENOTSUP, EPROTONOSUPPORT, ETERM, ZmqError } from "./errors.ts";
import {
  type ResolvedOptions,
  resolveOptions,
  type SocketOptions,
  validateOption,
} from "./options.ts";
import { Peer } from "./peer.ts";
import { Queue } from "./queue.ts";
import { describeRemote, dial, listen, onWindows, type Stream, tuneAccepted } from "./transport.ts";
import type { Frames, SocketType } from "./types.ts";
import { sleep, turnDue, WaiterSet } from "./wait.ts";

/** A received message and the peer it came from. */
export interface Incoming {
  /** The sender. */
  peer: Peer;
  /** The message as the connection delivered it. */
  frames: Frames;
}

interface ListenerEntry {
  listener: Deno.Listener;
  loop: Promise<void>;
}

/** Milliseconds left before `deadline` (Infinity when there is none). */
function remaining(deadline: number): number {
  return deadline === Infinity ? Infinity : deadline - Date.now();
}

function deadlineOf(timeoutMs: number | undefined): number {
  return timeoutMs === undefined || timeoutMs < 0 ? Infinity : Date.now() + timeoutMs;
}

// What an accepted connection counts for in turnDue(), in bytes read.
const ACCEPT_COST = 4096;

function messageSize(frames: Frames): number {
  let size = 0;
  for (let i = 0; i < frames.length; i++) size += frames[i].length;
  return size;
}

function closeQuietly(transport: Stream): void {
  try {
    transport.close();
  } catch {
    // gone
  }
}

/**
 * A ZeroMQ socket. Create one with `createSocket(type, options)`.
 *
 * Timeouts: `undefined` or a negative number waits forever, 0 does not wait.
 * Sent frames are encoded (copied) by trySend/send, so the caller may reuse its buffers as
 * soon as the call returns. Received frames belong to the caller.
 */
export abstract class Socket {
  /** The socket type. */
  readonly type: SocketType;
  /** Actual bound endpoints (port 0 and ipc://* resolved), in bind order. */
  readonly endpoints: string[] = [];
  /** Errno of the last send/receive operation; 0 when it succeeded. */
  lastErrno = 0;

  /** Live options; connections read them when needed, so setOption applies at once. */
  protected readonly options: ResolvedOptions;
  /** Routable peers: accepted ones with a live connection, and every connect()ed one. */
  protected readonly peers: Peer[] = [];

  #ready = new Queue<Peer>();
  #prefetched: Incoming | undefined;
  // Connections whose writes wait until the received messages are served (see queueTo),
  // and the immediate that writes them anyway once the running task is done: one at a time,
  // left to run out rather than cleared, so a deferred write waits at most until then.
  #deferred: Connection<Peer>[] = [];
  #deferTimer: ReturnType<typeof setImmediate> | undefined;
  #readWaiters = new WaiterSet();
  #readWakeQueued = false;
  #progressWaiters = new WaiterSet();
  #handshakeFailureWaiters = new WaiterSet();
  #listeners: ListenerEntry[] = [];
  #connectors: Promise<void>[] = [];
  #connections = new Set<Connection<Peer>>();
  // rcvbufBytes accounting: bytes of complete messages in the peers' inboxes, bytes the
  // connections hold for messages still arriving, and the peers paused until the total
  // falls below the bound again.
  #received = 0;
  #held = 0;
  #starved = new Set<Peer>();
  #live = 0;
  #lastHandshakeFailure: string | undefined;
  #rr = 0;
  #closed = false;
  #closing: Promise<void> | undefined;
  #stop = new AbortController();
  #handler: ConnectionHandler<Peer>;

  /** Subclasses pass their type; options are validated (ZmqError EINVAL when bad). */
  protected constructor(type: SocketType, options?: SocketOptions) {
    this.type = type;
    this.options = resolveOptions(options);
    if (this.options.identity !== undefined) this.options.identity = this.options.identity.slice();
    this.#handler = {
      onReady: (conn) => this.#onReady(conn),
      onMessage: (conn, frames) => this.#onMessage(conn, frames),
      onSubscription: (conn, subscribe, prefix) => {
        if (conn.owner !== undefined) this.subscription(conn.owner, subscribe, prefix);
      },
      canReceive: (conn) => conn.owner === undefined || this.#mayReceive(conn.owner),
      hold: (conn, from, to) => this.#hold(conn.owner, from, to),
      onDrained: (conn) => {
        if (conn.owner !== undefined && conn.paused && this.#mayReceive(conn.owner)) {
          conn.resume();
        }
        this.#wakeProgress();
      },
      onIdle: () => this.#wakeProgress(),
      onClose: (conn, reason, kind) => this.#onClose(conn, reason, kind),
    };
  }

  /** Number of live, handshaken connections. */
  get peerCount(): number {
    return this.#live;
  }

  /**
   * Why the last connection that failed during its handshake was dropped (a CURVE or PLAIN
   * refusal, a wrong server key, a mechanism mismatch), until a connection succeeds; for
   * telling users more than "could not connect".
   */
  get lastHandshakeFailure(): string | undefined {
    return this.#lastHandshakeFailure;
  }

  /**
   * Calls `callback` with the reason the next time a connection fails during its handshake
   * (once; listen again for the one after), or never once the returned function is called
   * or the socket closes. For one-shot callers that would rather fail than wait for a retry
   * that meets the same refusal.
   */
  whenHandshakeFails(callback: (reason: string) => void): () => void {
    if (this.#closed) return noop;
    return this.#handshakeFailureWaiters.listen((failed) => {
      if (failed) callback(this.#lastHandshakeFailure ?? "the handshake failed");
    });
  }

  /** True once close() was called. */
  get closed(): boolean {
    return this.#closed;
  }

  // ---- hooks for socket types ------------------------------------------------------------

  /** Routes an outgoing message; returns 0 when queued (or dropped by design), else an errno. */
  protected abstract sendMessage(frames: Frames): number;

  /** Whether receiving is allowed now: 0, or the errno to report (ENOTSUP, EFSM). */
  protected recvState(): number {
    return 0;
  }

  /**
   * Whether the peer's connection may deliver another message; false pauses reading it.
   * By default the receive queue must be below the HWM.
   */
  protected canReceive(peer: Peer): boolean {
    return peer.inbox.length < this.options.hwm;
  }

  /** Decides on arrival whether a message is queued for the application (false drops it). */
  protected admit(_peer: Peer, _frames: Frames): boolean {
    return true;
  }

  /**
   * Decides when the application is about to see a message: returns what it will get, or
   * undefined to drop it. Must not change state (readable() calls it ahead of tryRecv()).
   */
  protected select(_peer: Peer, frames: Frames): Frames | undefined {
    return frames;
  }

  /** Called when tryRecv hands `frames` to the application; may record state (REP, REQ). */
  protected deliver(_peer: Peer, frames: Frames): Frames {
    return frames;
  }

  /**
   * Last check before a handshaken peer is attached: undefined accepts it, a string refuses
   * it for that reason (a duplicate identity).
   */
  protected acceptPeer(_peer: Peer, _conn: Connection<Peer>): string | undefined {
    return undefined;
  }

  /** A peer got a live connection. */
  protected peerAttached(_peer: Peer): void {}

  /** A peer lost its connection (persistent peers stay in `peers`). */
  protected peerDetached(_peer: Peer): void {}

  /** A ZMTP 3.1 SUBSCRIBE/CANCEL command arrived (PUB handles it). */
  protected subscription(_peer: Peer, _subscribe: boolean, _prefix: Uint8Array): void {}

  // ---- helpers for socket types ----------------------------------------------------------

  /**
   * Picks the next peer with room, round robin. Connected peers come first; a connect()ed
   * peer that is down gets messages only when no peer is connected, so they wait for its
   * reconnect (libzmq would queue there even while other peers are up).
   */
  protected pickRoundRobin(bytes: number): Peer | undefined {
    const peers = this.peers;
    const n = peers.length;
    let fallback = -1;
    for (let i = 0; i < n; i++) {
      const index = (this.#rr + i) % n;
      const peer = peers[index];
      if (!this.hasRoom(peer, bytes)) continue;
      if (peer.conn !== null) {
        this.#rr = index + 1;
        return peer;
      }
      if (fallback < 0) fallback = index;
    }
    if (fallback >= 0 && this.#live === 0) {
      this.#rr = fallback + 1;
      return peers[fallback];
    }
    return undefined;
  }

  /**
   * Whether `peer` may queue an encoded message of `bytes` more: below the HWM, and within
   * sndbufBytes unless its queue is empty (so one message may be larger than the bound).
   */
  protected hasRoom(peer: Peer, bytes: number): boolean {
    const out = peer.out;
    return out.length < this.options.hwm &&
      (out.length === 0 || out.bytes + bytes <= this.options.sndbufBytes);
  }

  /**
   * Queues a reply of a server socket (REP, ROUTER), unless the peer's queue would pass
   * sndbufBytes: a peer that does not read its replies is dropped (false) rather than let
   * them pile up without bound.
   */
  protected queueReply(peer: Peer, chunk: Uint8Array): boolean {
    const out = peer.out;
    if (out.length > 0 && out.bytes + chunk.length > this.options.sndbufBytes) {
      this.dropPeer(
        peer,
        `the peer does not read its replies: ${out.bytes + chunk.length} bytes queued, ` +
          `sndbufBytes ${this.options.sndbufBytes}`,
      );
      return false;
    }
    this.queueTo(peer, chunk);
    return true;
  }

  /** Drops the peer's connection for `reason` (logged as a warning). */
  protected dropPeer(peer: Peer, reason: string): void {
    peer.conn?.close(reason, "dropped");
  }

  /** Queues an encoded message to a peer and lets its connection (if any) write soon. */
  protected queueTo(peer: Peer, chunk: Uint8Array): void {
    peer.out.push(chunk);
    const conn = peer.conn;
    if (conn === null) return;
    // A lone reply is written at once, for latency. While more received messages wait to be
    // served, writes wait until they are (or a turn of the event loop passed): every write
    // costs a system call and wakes a client, which on a busy machine can take the CPU from
    // us before the waiting requests are served; a pipelining client's replies to one read
    // go out in one write.
    if (this.#prefetched !== undefined || this.#ready.length > 0) {
      this.#deferWrite(conn);
    } else {
      conn.kick();
      if (this.#deferred.length > 0) this.#writeDeferred();
    }
  }

  // ---- public API ------------------------------------------------------------------------

  /**
   * Listens on `endpoint` and resolves with the actual endpoint (port 0 resolved). Rejects
   * with a ZmqError naming the address and the reason (EADDRINUSE, EINVAL, ...).
   */
  async bind(endpoint: string): Promise<string> {
    this.#assertOpen();
    const parsed = parseEndpoint(endpoint);
    const bound = await listen(parsed);
    if (this.#closed) {
      bound.listener.close();
      throw new ZmqError(ETERM, `cannot bind ${bound.endpoint}: the socket was closed`);
    }
    this.endpoints.push(bound.endpoint);
    this.#listeners.push({
      listener: bound.listener,
      loop: this.#acceptLoop(bound.listener, bound.endpoint),
    });
    return bound.endpoint;
  }

  /**
   * Connects to `endpoint` in the background and returns at once; the connection is retried
   * with backoff (reconnectIvlMs doubling to reconnectIvlMaxMs) until close(). Messages sent
   * meanwhile queue up to the HWM. Throws ZmqError(EINVAL) for a malformed endpoint.
   */
  connect(endpoint: string): void {
    this.#assertOpen();
    const parsed = parseEndpoint(endpoint);
    if (parsed.transport === "tcp" && (parsed.host === "*" || parsed.port === 0)) {
      throw new ZmqError(
        EINVAL,
        `invalid endpoint '${endpoint}': connect needs a host and a port (not * or 0)`,
      );
    }
    if (parsed.transport === "ipc" && parsed.path === "*") {
      throw new ZmqError(EINVAL, `invalid endpoint '${endpoint}': connect needs an ipc path`);
    }
    if (parsed.transport === "ipc" && onWindows()) {
      // dial() would report it only in the background, where nobody sees it.
      throw new ZmqError(
        EPROTONOSUPPORT,
        "ipc is not supported on Windows (use tcp://127.0.0.1:PORT instead)",
      );
    }
    const peer = new Peer(true, endpoint);
    this.peers.push(peer);
    this.#connectors.push(this.#connectLoop(parsed, endpoint, peer));
  }

  /** A message already received, or undefined (lastErrno EAGAIN, EFSM, ENOTSUP or ETERM). */
  tryRecv(): Frames | undefined {
    const incoming = this.takeIncoming();
    return incoming === undefined ? undefined : this.deliver(incoming.peer, incoming.frames);
  }

  /**
   * The next received message and its sender, taken as tryRecv() takes it but not yet made
   * into what the application sees (deliver() is not called); undefined with lastErrno set
   * as tryRecv() sets it.
   */
  protected takeIncoming(): Incoming | undefined {
    if (this.#closed) {
      this.lastErrno = ETERM;
      return undefined;
    }
    const state = this.recvState();
    if (state !== 0) {
      this.lastErrno = state;
      return undefined;
    }
    const incoming = this.#prefetched ?? this.#pull();
    this.#prefetched = undefined;
    if (incoming === undefined) {
      if (this.#deferred.length > 0) this.#writeDeferred();
      this.lastErrno = EAGAIN;
      return undefined;
    }
    this.lastErrno = 0;
    return incoming;
  }

  /**
   * Resolves true as soon as tryRecv() would return a message; false on timeout, abort or
   * close. Never rejects.
   */
  readable(timeoutMs?: number, signal?: AbortSignal): Promise<boolean> {
    if (this.#closed) return Promise.resolve(false);
    if (this.#hasMessage()) return Promise.resolve(true);
    if (this.#deferred.length > 0) this.#writeDeferred();
    if (timeoutMs === 0 || signal?.aborted === true) return Promise.resolve(false);
    return this.#readWaiters.wait(
      timeoutMs === undefined || timeoutMs < 0 ? undefined : timeoutMs,
      signal,
    );
  }

  /**
   * Callback form of readable() for a server's hot loop: `callback(true)` once tryRecv()
   * would return a message, `callback(false)` when the socket closes or the returned function
   * is called first. When the outcome is already known it calls back before returning.
   */
  whenReadable(callback: (ready: boolean) => void): () => void {
    if (this.#closed) {
      callback(false);
      return noop;
    }
    if (this.#hasMessage()) {
      callback(true);
      return noop;
    }
    if (this.#deferred.length > 0) this.#writeDeferred();
    return this.#readWaiters.listen(callback);
  }

  /**
   * Waits up to `timeoutMs` for a message; undefined on timeout (lastErrno EAGAIN), abort,
   * close (ETERM) or when receiving is not allowed (EFSM, ENOTSUP).
   */
  async recv(timeoutMs?: number, signal?: AbortSignal): Promise<Frames | undefined> {
    const deadline = deadlineOf(timeoutMs);
    for (;;) {
      const frames = this.tryRecv();
      if (frames !== undefined || this.lastErrno !== EAGAIN) return frames;
      const left = remaining(deadline);
      if (left <= 0 || signal?.aborted === true) return undefined;
      await this.readable(left === Infinity ? undefined : left, signal);
      if (this.#closed) {
        this.lastErrno = ETERM;
        return undefined;
      }
    }
  }

  /**
   * Queues a message without waiting. Returns true when queued (or dropped by design, as PUB
   * does for a slow subscriber); false with lastErrno set when it would block (EAGAIN), is
   * out of turn (EFSM), unroutable (EHOSTUNREACH), unsupported (ENOTSUP), empty (EINVAL), or
   * the socket is closed (ETERM). Throws TypeError when `frames` is not an array of
   * Uint8Array.
   */
  trySend(frames: Frames): boolean {
    if (!Array.isArray(frames)) throw new TypeError("frames must be an array of Uint8Array");
    for (let i = 0; i < frames.length; i++) {
      if (!(frames[i] instanceof Uint8Array)) {
        throw new TypeError(`frame ${i} is not a Uint8Array`);
      }
    }
    if (this.#closed) {
      this.lastErrno = ETERM;
      return false;
    }
    if (frames.length === 0) {
      this.lastErrno = EINVAL;
      return false;
    }
    const errno = this.sendMessage(frames);
    this.lastErrno = errno;
    return errno === 0;
  }

  /**
   * Like trySend, but waits up to `timeoutMs` for room where the type blocks at the HWM
   * (PUSH, DEALER, REQ, and ROUTER toward a full peer). Resolves false on timeout (EAGAIN),
   * close (ETERM) or any other error.
   */
  async send(frames: Frames, timeoutMs?: number): Promise<boolean> {
    const deadline = deadlineOf(timeoutMs);
    for (;;) {
      if (this.trySend(frames)) return true;
      if (this.lastErrno !== EAGAIN) return false;
      const left = remaining(deadline);
      if (left <= 0) return false;
      await this.#progressWaiters.wait(left);
      if (this.#closed) {
        this.lastErrno = ETERM;
        return false;
      }
    }
  }

  /** Subscribes to messages whose first frame starts with `prefix` (SUB only). */
  subscribe(_prefix: Uint8Array | string): void {
    throw new ZmqError(ENOTSUP, `subscribe is only valid on SUB sockets, not ${this.type}`);
  }

  /** Removes one subscription made with subscribe() (SUB only). */
  unsubscribe(_prefix: Uint8Array | string): void {
    throw new ZmqError(ENOTSUP, `unsubscribe is only valid on SUB sockets, not ${this.type}`);
  }

  /**
   * Changes an option. hwm, maxMessageSize, heartbeatTimeoutMs, lingerMs, the reconnect
   * delays and the byte and connection bounds apply at once; identity, handshake, heartbeat
   * interval and stall timeout apply to connections (or unfinished messages) afterwards.
   * Throws ZmqError(EINVAL) for a bad value.
   */
  setOption<K extends keyof SocketOptions>(name: K, value: SocketOptions[K]): void {
    validateOption(name, value);
    const options = this.options as unknown as Record<string, unknown>;
    if (name === "identity") {
      options.identity = value === undefined ? undefined : (value as Uint8Array).slice();
      return;
    }
    if (value === undefined) {
      if (name !== "heartbeatTimeoutMs") {
        throw new ZmqError(EINVAL, `option ${name} cannot be unset`);
      }
    }
    options[name] = value;
    // A larger bound may let paused connections and blocked senders continue.
    if (name === "hwm" || name === "rcvbufBytes" || name === "sndbufBytes") {
      for (const peer of this.peers) {
        const conn = peer.conn;
        if (conn !== null && conn.paused && this.#mayReceive(peer)) conn.resume();
      }
      this.#wakeProgress();
    }
  }

  /** Reads an option's current value. */
  getOption<K extends keyof SocketOptions>(name: K): SocketOptions[K] {
    return (this.options as unknown as SocketOptions)[name];
  }

  /**
   * Closes the socket: stops listening and reconnecting, tries for up to `lingerMs` (default:
   * the lingerMs option) to flush queued messages, then closes every connection. Idempotent;
   * pending readable()/recv()/send() resolve at once with false/undefined.
   */
  close(lingerMs?: number): Promise<void> {
    if (this.#closing !== undefined) return this.#closing;
    this.#closed = true;
    if (this.#deferTimer !== undefined) clearImmediate(this.#deferTimer);
    this.#deferTimer = undefined;
    this.#writeDeferred();
    this.#readWaiters.wakeAll(false);
    this.#progressWaiters.wakeAll(false);
    this.#handshakeFailureWaiters.wakeAll(false);
    this.#closing = this.#shutdown(lingerMs ?? this.options.lingerMs);
    return this.#closing;
  }

  // ---- internals -------------------------------------------------------------------------

  #assertOpen(): void {
    if (this.#closed) throw new ZmqError(ETERM, "the socket is closed");
  }

  async #shutdown(lingerMs: number): Promise<void> {
    for (const { listener } of this.#listeners) {
      try {
        listener.close();
      } catch {
        // already closed
      }
    }
    await Promise.all(this.#listeners.map((entry) => entry.loop));
    if (lingerMs > 0) await this.#linger(lingerMs);
    this.#stop.abort();
    const connections = [...this.#connections];
    for (const conn of connections) conn.close("socket closed", "local");
    await Promise.all([...this.#connectors, ...connections.map((conn) => conn.done)]);
    for (const peer of this.peers) {
      peer.removed = true;
      peer.out.clear();
      peer.inbox.clear();
    }
    this.#ready.clear();
    this.#prefetched = undefined;
    this.#received = 0;
    this.#starved.clear();
  }

  /** Waits until every queued message was handed to the OS, or `ms` passed. */
  async #linger(ms: number): Promise<void> {
    const deadline = Date.now() + ms;
    for (;;) {
      let pending = false;
      for (const peer of this.peers) {
        if (peer.out.length > 0 && !peer.removed) pending = true;
      }
      for (const conn of this.#connections) if (!conn.isIdle) pending = true;
      const left = deadline - Date.now();
      if (!pending || left <= 0) return;
      await this.#progressWaiters.wait(Math.min(left, 50));
    }
  }

  /**
   * Wakes readers in a microtask of its own, never on the connection's parse path: a reader
   * may run a whole request handler (Lua included), which must not sit on top of the parser
   * of the connection it answers. Messages parsed from the same read are all queued by then.
   */
  #wakeReaders(): void {
    if (this.#readWakeQueued || this.#readWaiters.size === 0) return;
    this.#readWakeQueued = true;
    queueMicrotask(this.#wakeReadersNow);
  }

  #wakeReadersNow = (): void => {
    this.#readWakeQueued = false;
    if (this.#readWaiters.size === 0 || !this.#hasMessage()) return;
    this.#readWaiters.wakeAll(true);
  };

  #deferWrite(conn: Connection<Peer>): void {
    if (conn.deferred) return;
    conn.deferred = true;
    this.#deferred.push(conn);
    // Not setTimeout(0), which waits 1-2 ms and costs seven times as much to set (measured:
    // 2.2 µs against 0.3).
    this.#deferTimer ??= setImmediate(this.#deferTimeout);
  }

  #deferTimeout = (): void => {
    this.#deferTimer = undefined;
    this.#writeDeferred();
  };

  /** Starts the writers that waited for the received messages to be served. */
  #writeDeferred(): void {
    const deferred = this.#deferred;
    for (let i = 0; i < deferred.length; i++) {
      const conn = deferred[i];
      conn.deferred = false;
      conn.kick();
    }
    deferred.length = 0;
  }

  #wakeProgress(): void {
    this.#progressWaiters.wakeAll(true);
  }

  #hasMessage(): boolean {
    if (this.#closed || this.recvState() !== 0) return false;
    this.#prefetched ??= this.#pull();
    return this.#prefetched !== undefined;
  }

  /** Next admissible message, round robin over peers with queued messages. */
  #pull(): Incoming | undefined {
    const ready = this.#ready;
    for (;;) {
      const peer = ready.shift();
      if (peer === undefined) return undefined;
      const frames = peer.inbox.shift();
      if (peer.inbox.length > 0) ready.push(peer);
      else peer.queued = false;
      if (frames === undefined) continue;
      this.#received -= messageSize(frames);
      const conn = peer.conn;
      if (conn !== null && conn.paused && this.#mayReceive(peer)) conn.resume();
      if (this.#starved.size > 0) this.#feedStarved();
      const selected = this.select(peer, frames);
      if (selected !== undefined) return { peer, frames: selected };
    }
  }

  /**
   * Whether the peer's connection may deliver another message: the type's rule (the HWM),
   * then rcvbufBytes across the socket, which a peer with nothing queued may always pass by
   * one message, so that no connection waits for others to be drained.
   */
  #mayReceive(peer: Peer): boolean {
    if (!this.canReceive(peer)) return false;
    if (peer.inbox.length === 0 || this.#received + this.#held < this.options.rcvbufBytes) {
      return true;
    }
    this.#starved.add(peer);
    return false;
  }

  /** Lets the connections paused by rcvbufBytes read again once the socket is below it. */
  #feedStarved(): void {
    if (this.#received + this.#held >= this.options.rcvbufBytes) return;
    const starved = [...this.#starved];
    this.#starved.clear();
    for (const peer of starved) {
      const conn = peer.conn;
      if (conn !== null && conn.paused && this.#mayReceive(peer)) conn.resume();
    }
  }

  /**
   * A connection's bytes held for messages still arriving are to go from `from` to `to`.
   * Growth past rcvbufBytes (complete messages included) waits while complete messages are
   * queued, since the application taking them makes room (a slow application must not cost
   * a well-behaved sender its connection); with none queued, waiting could block the socket
   * on messages that never complete, so the connection is refused and closes.
   */
  #hold(peer: Peer | undefined, from: number, to: number): HoldAnswer {
    const held = this.#held - from + to;
    if (to > from && this.#received + held > this.options.rcvbufBytes) {
      if (this.#received === 0 || peer === undefined) return "refused";
      this.#starved.add(peer);
      return "wait";
    }
    this.#held = held;
    if (to < from && this.#starved.size > 0) this.#feedStarved();
    return "held";
  }

  #onReady(conn: Connection<Peer>): boolean {
    // During linger (closed, not yet stopped) reconnections may still deliver queued messages.
    if (this.#stop.signal.aborted) {
      conn.close("socket closed", "local");
      return false;
    }
    let peer = conn.owner;
    if (peer === undefined) {
      peer = new Peer(false);
      conn.owner = peer;
    }
    const refusal = this.acceptPeer(peer, conn);
    if (refusal !== undefined) {
      conn.close(refusal, "dropped");
      return false;
    }
    peer.conn = conn;
    conn.out = peer.out;
    this.#live++;
    this.#lastHandshakeFailure = undefined;
    if (!peer.persistent) this.peers.push(peer);
    this.peerAttached(peer);
    this.#wakeProgress();
    return true;
  }

  #onMessage(conn: Connection<Peer>, frames: Frames): void {
    const peer = conn.owner;
    if (peer === undefined || !this.admit(peer, frames)) return;
    this.#received += messageSize(frames);
    peer.inbox.push(frames);
    if (!peer.queued) {
      peer.queued = true;
      this.#ready.push(peer);
    }
    this.#wakeReaders();
  }

  #onClose(conn: Connection<Peer>, reason: string, kind: CloseKind): void {
    this.#connections.delete(conn);
    if (kind === "dropped" && !conn.handshaken) {
      this.#lastHandshakeFailure = reason;
      this.#handshakeFailureWaiters.wakeAll(true);
    }
    if (kind === "dropped") {
      if (log.warnEnabled) log.warn(`dropped ${this.#describe(conn)}: ${reason}`);
    } else if (kind === "ended" && log.debugEnabled) {
      log.debug(`disconnected ${this.#describe(conn)}: ${reason}`);
    }
    const peer = conn.owner;
    if (peer === undefined || peer.conn !== conn) return;
    this.#starved.delete(peer);
    peer.conn = null;
    this.#live--;
    if (!peer.persistent) {
      peer.removed = true;
      peer.out.clear();
      const index = this.peers.indexOf(peer);
      if (index >= 0) this.peers.splice(index, 1);
    }
    this.peerDetached(peer);
  }

  /** "REMOTE on TYPE ENDPOINT": which peer of which socket, for the log. */
  #describe(conn: { remote: string; endpoint: string }): string {
    return `${conn.remote} on ${this.type} ${conn.endpoint}`;
  }

  #startConnection(
    transport: Stream,
    remote: string,
    endpoint: string,
    peer: Peer | undefined,
  ): Connection<Peer> {
    const conn = new Connection<Peer>(
      transport,
      { socketType: this.type, options: this.options, remote, endpoint },
      this.#handler,
    );
    conn.owner = peer;
    this.#connections.add(conn);
    conn.start();
    return conn;
  }

  async #acceptLoop(listener: Deno.Listener, endpoint: string): Promise<void> {
    for (;;) {
      let transport: Deno.Conn;
      try {
        transport = await listener.accept();
      } catch (err) {
        if (this.#closed || err instanceof Deno.errors.BadResource) return;
        // Out of file descriptors and the like: keep serving the connections we have and
        // try again shortly instead of spinning.
        await sleep(100, this.#stop.signal);
        continue;
      }
      // A storm of connections, refused ones included, must not hold the thread (turnDue).
      if (turnDue(ACCEPT_COST)) await sleep(0);
      if (this.#closed) {
        closeQuietly(transport);
        return;
      }
      let remote: string;
      try {
        remote = describeRemote(transport);
      } catch {
        // The connection died between accept and now; nothing to serve.
        closeQuietly(transport);
        continue;
      }
      const max = this.options.maxConnections;
      if (this.#connections.size >= max) {
        // Closed before anything is allocated for it: the existing peers keep being served
        // and the process keeps descriptors for them.
        closeQuietly(transport);
        if (log.warnEnabled) {
          log.warn(
            `refused ${this.#describe({ remote, endpoint })}: too many connections: ` +
              `maxConnections ${max}`,
          );
        }
        continue;
      }
      tuneAccepted(transport);
      try {
        this.#startConnection(transport, remote, endpoint, undefined);
      } catch {
        // The connection died between accept and start; nothing to serve.
        closeQuietly(transport);
        continue;
      }
      if (log.debugEnabled) log.debug(`accepted ${this.#describe({ remote, endpoint })}`);
    }
  }

  async #connectLoop(
    parsed: ReturnType<typeof parseEndpoint>,
    endpoint: string,
    peer: Peer,
  ): Promise<void> {
    const signal = this.#stop.signal;
    let delay = this.options.reconnectIvlMs;
    while (!signal.aborted) {
      let transport: Stream | undefined;
      try {
        transport = await dial(parsed, signal);
      } catch {
        transport = undefined;
      }
      if (transport !== undefined) {
        if (signal.aborted) {
          closeQuietly(transport);
          return;
        }
        let conn: Connection<Peer> | undefined;
        try {
          conn = this.#startConnection(transport, describeRemote(transport), endpoint, peer);
        } catch {
          closeQuietly(transport);
        }
        if (conn !== undefined) {
          if (log.debugEnabled) log.debug(`connected ${this.#describe(conn)}`);
          await conn.done;
          if (conn.handshaken) delay = this.options.reconnectIvlMs;
        }
      }
      if (signal.aborted) return;
      await sleep(delay, signal);
      delay = Math.min(
        delay * 2,
        Math.max(this.options.reconnectIvlMaxMs, this.options.reconnectIvlMs),
      );
    }
  }
}

function noop(): void {}
