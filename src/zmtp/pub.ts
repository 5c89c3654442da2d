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
 * supported (ENOTSUP).
 */
export class PubSocket extends Socket {
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

  protected sendMessage(frames: Frames): number {
    const topic = frames[0];
    let chunk: Uint8Array | undefined;
    for (const peer of this.peers) {
      if (peer.conn === null || peer.subs === null || !peer.subs.matches(topic)) continue;
      chunk ??= encodeMessage(frames);
      if (this.hasRoom(peer, chunk.length)) this.queueTo(peer, chunk);
    }
    return 0;
  }
}
