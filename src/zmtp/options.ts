/**
 * Socket options: the public interface, defaults, and validation.
 *
 * @module
 */

import { EINVAL, ZmqError } from "./errors.ts";
import { SECURITY_OPTIONS, type SecurityOptions, validateSecurityOption } from "./security.ts";

/**
 * Options of a socket; every field is optional and has a libzmq-like default. The security
 * ones (CURVE, PLAIN; NULL by default) are described in {@linkcode SecurityOptions}.
 */
export interface SocketOptions extends SecurityOptions {
  /** High-water mark in messages, per connection, for sending and receiving (default 1000). */
  hwm?: number;
  /** Largest incoming message in bytes; a larger one closes that connection (default 64 MiB). */
  maxMessageSize?: number;
  /** A peer that has not completed greeting and READY by then is dropped (default 10000). */
  handshakeTimeoutMs?: number;
  /** Interval between PINGs we send; 0 disables heartbeats (default 0). */
  heartbeatIvlMs?: number;
  /**
   * A connection that received nothing this long after one of our PINGs is closed.
   * Unset means heartbeatIvlMs, as libzmq does.
   */
  heartbeatTimeoutMs?: number;
  /** Identity sent in READY (REQ, DEALER, ROUTER); ROUTER peers route by it. 0-255 bytes. */
  identity?: Uint8Array;
  /** How long close() tries to flush queued messages (default 0: drop them). */
  lingerMs?: number;
  /** First delay before reconnecting a connect()ed endpoint (default 100). */
  reconnectIvlMs?: number;
  /** The reconnect delay doubles after each failure up to this (default 5000). */
  reconnectIvlMaxMs?: number;
  /**
   * Bytes of encoded messages queued to send, per connection (default 64 MiB). A message is
   * always accepted by an empty queue, so one message may be larger. Past the bound REP and
   * ROUTER drop the connection (its peer does not read its replies), PUB skips the message
   * for that subscriber, and DEALER, PUSH and REQ treat the peer as full, as at the HWM.
   */
  sndbufBytes?: number;
  /**
   * Bytes received and not yet taken by the application, across all the socket's
   * connections (default 256 MiB): complete messages waiting, plus what is held for messages
   * still arriving. Complete messages that reach it stop the delivering connection from
   * being read until the application catches up (each connection may always deliver one);
   * a message still arriving that would pass it closes its connection, so unfinished
   * messages never block the socket.
   */
  rcvbufBytes?: number;
  /**
   * A connection in the middle of a message (a frame or a multipart message partly
   * received) that receives nothing for this long is dropped; 0 never drops (default 30000).
   * One timer per unfinished message checks for progress every stallTimeoutMs, so the drop
   * comes one to two of them after the last byte.
   */
  stallTimeoutMs?: number;
  /**
   * Connections a socket keeps at once (default 10000); one accepted beyond it is closed
   * before its handshake, so the process never runs out of file descriptors.
   */
  maxConnections?: number;
  /**
   * Distinct prefixes a subscriber may hold on a PUB socket (default 10000); a subscriber
   * that sends more is dropped, as is one whose prefixes hold more than
   * {@linkcode MAX_SUBSCRIPTION_BYTES} bytes in total.
   */
  maxSubscriptions?: number;
}

/**
 * Options with every default filled in; heartbeatTimeoutMs stays optional (derived), and so do
 * the security options (unset: NULL).
 */
export interface ResolvedOptions extends SecurityOptions {
  /** See {@linkcode SocketOptions.hwm}. */
  hwm: number;
  /** See {@linkcode SocketOptions.maxMessageSize}. */
  maxMessageSize: number;
  /** See {@linkcode SocketOptions.handshakeTimeoutMs}. */
  handshakeTimeoutMs: number;
  /** See {@linkcode SocketOptions.heartbeatIvlMs}. */
  heartbeatIvlMs: number;
  /** See {@linkcode SocketOptions.heartbeatTimeoutMs}. */
  heartbeatTimeoutMs: number | undefined;
  /** See {@linkcode SocketOptions.identity}. */
  identity: Uint8Array | undefined;
  /** See {@linkcode SocketOptions.lingerMs}. */
  lingerMs: number;
  /** See {@linkcode SocketOptions.reconnectIvlMs}. */
  reconnectIvlMs: number;
  /** See {@linkcode SocketOptions.reconnectIvlMaxMs}. */
  reconnectIvlMaxMs: number;
  /** See {@linkcode SocketOptions.sndbufBytes}. */
  sndbufBytes: number;
  /** See {@linkcode SocketOptions.rcvbufBytes}. */
  rcvbufBytes: number;
  /** See {@linkcode SocketOptions.stallTimeoutMs}. */
  stallTimeoutMs: number;
  /** See {@linkcode SocketOptions.maxConnections}. */
  maxConnections: number;
  /** See {@linkcode SocketOptions.maxSubscriptions}. */
  maxSubscriptions: number;
}

/**
 * Most bytes of distinct prefixes one subscriber may hold on a PUB socket (1 MiB); a
 * subscriber past it is dropped. Each prefix must also fit in maxMessageSize.
 */
export const MAX_SUBSCRIPTION_BYTES: number = 1024 * 1024;

/** Default options. */
export const DEFAULT_OPTIONS: Readonly<ResolvedOptions> = {
  hwm: 1000,
  maxMessageSize: 64 * 1024 * 1024,
  handshakeTimeoutMs: 10_000,
  heartbeatIvlMs: 0,
  heartbeatTimeoutMs: undefined,
  identity: undefined,
  lingerMs: 0,
  reconnectIvlMs: 100,
  reconnectIvlMaxMs: 5000,
  sndbufBytes: 64 * 1024 * 1024,
  rcvbufBytes: 256 * 1024 * 1024,
  stallTimeoutMs: 30_000,
  maxConnections: 10_000,
  maxSubscriptions: 10_000,
};

// Node's timers clamp larger delays to 1 ms, which would turn a typo into a busy loop.
const MAX_DELAY = 0x7fff_ffff;

type NumericOption = Exclude<keyof SocketOptions, "identity" | keyof SecurityOptions>;

const LIMITS: Readonly<Record<NumericOption, [number, number]>> = {
  hwm: [1, 0x7fff_ffff],
  maxMessageSize: [0, 0xffff_ffff],
  handshakeTimeoutMs: [0, MAX_DELAY],
  heartbeatIvlMs: [0, MAX_DELAY],
  heartbeatTimeoutMs: [0, MAX_DELAY],
  lingerMs: [0, MAX_DELAY],
  reconnectIvlMs: [1, MAX_DELAY],
  reconnectIvlMaxMs: [1, MAX_DELAY],
  // Up to 2^53 - 1: byte counts are plain numbers, not 32-bit integers.
  sndbufBytes: [1, Number.MAX_SAFE_INTEGER],
  rcvbufBytes: [1, Number.MAX_SAFE_INTEGER],
  stallTimeoutMs: [0, MAX_DELAY],
  maxConnections: [1, 0x7fff_ffff],
  maxSubscriptions: [1, 0x7fff_ffff],
};

/** Throws ZmqError(EINVAL) unless `value` is acceptable for option `name`. */
export function validateOption<K extends keyof SocketOptions>(
  name: K,
  value: SocketOptions[K],
): void {
  if (name === "identity") {
    if (value === undefined) return;
    if (!(value instanceof Uint8Array) || value.length > 255) {
      throw new ZmqError(EINVAL, "option identity must be a Uint8Array of at most 255 bytes");
    }
    return;
  }
  if (SECURITY_OPTIONS.has(name)) {
    return validateSecurityOption(name as keyof SecurityOptions, value);
  }
  const limits = LIMITS[name as NumericOption];
  if (limits === undefined) throw new ZmqError(EINVAL, `unknown socket option '${String(name)}'`);
  if (value === undefined && name === "heartbeatTimeoutMs") return;
  if (
    typeof value !== "number" || !Number.isInteger(value) || value < limits[0] ||
    value > limits[1]
  ) {
    throw new ZmqError(
      EINVAL,
      `option ${name} must be an integer from ${limits[0]} to ${limits[1]}, got ${String(value)}`,
    );
  }
}

/** Validates `options` and fills in the defaults. */
export function resolveOptions(options: SocketOptions = {}): ResolvedOptions {
  const resolved: ResolvedOptions = { ...DEFAULT_OPTIONS };
  for (const key of Object.keys(options) as (keyof SocketOptions)[]) {
    const value = options[key];
    if (value === undefined) continue;
    validateOption(key, value);
    (resolved as unknown as Record<string, unknown>)[key] = value;
  }
  return resolved;
}

/** The effective heartbeat timeout: the explicit one, else the interval (libzmq's rule). */
export function heartbeatTimeout(options: ResolvedOptions): number {
  return options.heartbeatTimeoutMs ?? options.heartbeatIvlMs;
}
