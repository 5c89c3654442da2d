/**
 * Receiving what a LuaOverMQ script publishes with `pub:send(topic, value)`.
 *
 * ```ts
 * import { Subscriber } from "./mod.ts";
 * await using sub = new Subscriber("tcp://127.0.0.1:8005", ["quotes."]);
 * for await (const { topic, value } of sub) console.log(topic, value);
 * ```
 *
 * @module
 */

import { createSocket, type Socket } from "../zmtp/mod.ts";
import type { SocketOptions } from "../zmtp/options.ts";
import { type CurveClientOptions, curveSocketOptions } from "../zmtp/security.ts";
import { createDecoder, type MapMode } from "./msgpack.ts";

/** Default endpoint of a LuaOverMQ publisher. */
export const DEFAULT_PUB_URI = "tcp://127.0.0.1:8005";

/** One publication. */
export interface Publication {
  /** The topic frame as text (invalid UTF-8 is replaced; see `topicBytes`). */
  topic: string;
  /** The topic frame as sent. */
  topicBytes: Uint8Array;
  /** The decoded value; undefined when the message was not `topic, msgpack(value)`. */
  value: unknown;
  /** Every frame as received, for messages that do not follow the LuaOverMQ framing. */
  frames: Uint8Array[];
}

/** Options of a {@linkcode Subscriber}. */
export interface SubscriberOptions {
  /** How msgpack maps are returned (see {@linkcode MapMode}); default plain objects. */
  maps?: MapMode;
  /**
   * CURVE: encrypt and authenticate with the server whose public key is `serverKey` (Z85),
   * e.g. `{ curve: { serverKey: "rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7" } }`; without
   * `secretKey` the client gets an ephemeral key pair.
   */
  curve?: CurveClientOptions;
  /** Options of the underlying SUB socket. */
  socket?: SocketOptions;
}

const textDecoder = new TextDecoder();

/**
 * A SUB connection to a publisher, read as an async iterator of {@linkcode Publication}s.
 * Subscriptions are topic prefixes; none (or `""`) means everything. The iteration ends
 * when the subscriber is closed (or the loop is left with `break`, which closes it).
 *
 * As with any ZeroMQ subscriber, messages published before the connection and its
 * subscriptions reach the publisher are not received.
 */
export class Subscriber implements AsyncIterable<Publication> {
  /** The publisher's endpoint. */
  readonly uri: string;
  readonly #socket: Socket;
  readonly #decode: (bytes: Uint8Array) => unknown;
  readonly #stop = new AbortController();

  /** Connects to `uri` and subscribes to each topic prefix (all topics when none). */
  constructor(
    uri: string = DEFAULT_PUB_URI,
    topics: readonly string[] = [],
    options: SubscriberOptions = {},
  ) {
    this.uri = uri;
    this.#decode = createDecoder(options.maps);
    this.#socket = createSocket("SUB", {
      ...options.socket,
      ...curveSocketOptions(options.curve),
    });
    try {
      for (const topic of topics.length === 0 ? [""] : topics) this.#socket.subscribe(topic);
      this.#socket.connect(uri);
    } catch (error) {
      void this.#socket.close(0);
      throw error;
    }
  }

  /** Whether a connection to the publisher is up right now. */
  get connected(): boolean {
    return this.#socket.peerCount > 0;
  }

  /** Adds a topic prefix. */
  subscribe(topic: string | Uint8Array): void {
    this.#socket.subscribe(topic);
  }

  /** Removes a topic prefix added before. */
  unsubscribe(topic: string | Uint8Array): void {
    this.#socket.unsubscribe(topic);
  }

  /**
   * The next publication, or undefined after `timeoutMs` (wait for ever when omitted),
   * when `signal` aborts, or once the subscriber is closed.
   */
  async next(timeoutMs?: number, signal?: AbortSignal): Promise<Publication | undefined> {
    // A message already queued needs no waiting and no combined signal.
    const queued = this.#socket.tryRecv();
    if (queued) return this.#publication(queued);
    const signals = signal ? AbortSignal.any([signal, this.#stop.signal]) : this.#stop.signal;
    const frames = await this.#socket.recv(timeoutMs, signals);
    return frames ? this.#publication(frames) : undefined;
  }

  #publication(frames: Uint8Array[]): Publication {
    const topicBytes = frames[0];
    let value: unknown = undefined;
    if (frames.length === 2) {
      try {
        value = this.#decode(frames[1]);
      } catch {
        value = undefined; // not msgpack: the caller still has the raw frames
      }
    }
    return { topic: textDecoder.decode(topicBytes), topicBytes, value, frames };
  }

  /** Iterates publications until the subscriber is closed. */
  async *[Symbol.asyncIterator](): AsyncGenerator<Publication> {
    try {
      for (;;) {
        const publication = await this.next();
        if (!publication) return;
        yield publication;
      }
    } finally {
      await this.close();
    }
  }

  /** Disconnects; a pending {@linkcode Subscriber.next} resolves undefined. */
  async close(): Promise<void> {
    this.#stop.abort();
    await this.#socket.close(0);
  }

  /** `await using sub = new Subscriber(...)` closes it at the end of the scope. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}
