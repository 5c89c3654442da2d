/**
 * PUB: publishes messages to subscribers whose subscriptions match the first frame.
 *
 * @module
 */

import { ENOTSUP } from "./errors.ts";
import { encodeMessage } from "./frame.ts";
import { MAX_SUBSCRIPTION_BYTES, type SocketOptions } from "./options.ts";
import type { Peer } from "./peer.ts";
import { Socket } from "./socket.ts";
import { SubscriptionSet } from "./subscriptions.ts";
import type { Frames } from "./types.ts";

/** What a PUB socket did with the messages given to it (`pub:stats()` in Lua). */
export interface PubStats {
  /** Messages given to send (whether or not any subscriber wanted them). */
  sent: number;
  /**
   * Copies not queued because a subscriber's queue was full (HWM or sndbufBytes): a message
   * missed by two subscribers counts twice.
   */
  dropped: number;
  /** Subscribers connected now. */
  subscribers: number;
}

/**
 * Messages queued between two chances for the writers: half the HWM, so that a subscriber
 * that keeps up never reaches it, and at most 512, so a turn costs little per message.
 */
export function flushBatch(hwm: number): number {
  return Math.max(1, Math.min(512, Math.floor(hwm / 2)));
}

/**
 * PUB socket. Each subscriber has its own prefix multiset (subscribing twice needs two
 * cancels; the empty prefix matches everything). Subscriptions arrive as ZMTP 3.1
 * SUBSCRIBE/CANCEL commands or as ZMTP 3.0-style messages whose first byte is 1 or 0; any
 * other incoming message is ignored.
 *
 * A subscriber may hold maxSubscriptions distinct prefixes, of at most
 * {@linkcode MAX_SUBSCRIPTION_BYTES} bytes in all (each also within maxMessageSize); one that
 * sends more is dropped (logged), so that no subscriber can make us hold unbounded memory.
 *
 * trySend never blocks and returns true: a subscriber whose queue already holds HWM messages,
 * or would pass sndbufBytes with this one, misses this message; others are unaffected. A
 * matching message is encoded once and shared by every subscriber's queue. Receiving is not
 * supported (ENOTSUP). What was sent and dropped is counted ({@linkcode PubSocket.stats}).
 *
 * A publisher that never waits (a loop of sends) gives the writers no chance to run, so its
 * queues would fill to the HWM and drop while the subscribers are idle: after
 * {@linkcode flushBatch} queued messages {@linkcode PubSocket.flushDue} says it is time to
 * let them write (the Lua binding then gives the event loop a turn).
 */
export class PubSocket extends Socket {
  #sent = 0;
  #dropped = 0;
  #unflushed = 0;

  /** Creates a PUB socket; prefer `createSocket("PUB", options)`. */
  constructor(options?: SocketOptions) {
    super("PUB", options);
  }

  protected override recvState(): number {
    return ENOTSUP;
  }

  protected override peerAttached(peer: Peer): void {
    peer.subs = new SubscriptionSet();
  }

  protected override peerDetached(peer: Peer): void {
    // A reconnecting subscriber sends its subscriptions again.
    peer.subs?.clear();
    peer.out.clear();
  }

  protected override subscription(peer: Peer, subscribe: boolean, prefix: Uint8Array): void {
    const subs = peer.subs;
    if (subs === null) return;
    if (!subscribe) {
      subs.remove(prefix);
      return;
    }
    if (!subs.add(prefix)) return;
    const max = this.options.maxSubscriptions;
    if (subs.size > max) {
      this.dropPeer(peer, `too many subscriptions: more than maxSubscriptions ${max} prefixes`);
    } else if (subs.bytes > MAX_SUBSCRIPTION_BYTES) {
      this.dropPeer(
        peer,
        `too many subscriptions: their prefixes take more than ${MAX_SUBSCRIPTION_BYTES} bytes`,
      );
    }
  }

  protected override admit(peer: Peer, frames: Frames): boolean {
    const first = frames[0];
    if (frames.length === 1 && first.length > 0 && first[0] <= 1) {
      this.subscription(peer, first[0] === 1, first.subarray(1));
    }
    return false;
  }

  /** Counts of what this socket did with the messages given to it. */
  get stats(): PubStats {
    return { sent: this.#sent, dropped: this.#dropped, subscribers: this.peerCount };
  }

  /** True once {@linkcode flushBatch} messages were queued since the last flushStarted(). */
  get flushDue(): boolean {
    return this.#unflushed >= flushBatch(this.options.hwm);
  }

  /** The caller lets the writers run now: counting towards the next flush starts again. */
  flushStarted(): void {
    this.#unflushed = 0;
  }

  protected sendMessage(frames: Frames): number {
    const topic = frames[0];
    let chunk: Uint8Array | undefined;
    let queued = false;
    this.#sent++;
    for (const peer of this.peers) {
      if (peer.conn === null || peer.subs === null || !peer.subs.matches(topic)) continue;
      chunk ??= encodeMessage(frames, 0, undefined, true);
      if (this.hasRoom(peer, chunk.length)) {
        this.queueTo(peer, chunk);
        queued = true;
      } else {
        this.#dropped++;
      }
    }
    if (queued) this.#unflushed++;
    return 0;
  }
}
