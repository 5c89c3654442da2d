/**
 * PUB: publishes messages to subscribers whose subscriptions match the first frame.
 *
 * @module
 */

import { ENOTSUP } from "./errors.ts";
import { encodeMessage } from "./frame.ts";
import type { SocketOptions } from "./options.ts";
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
 * trySend never blocks and returns true: a subscriber whose queue already holds HWM messages
 * misses this message, others are unaffected. A matching message is encoded once and shared
 * by every subscriber's queue. Receiving is not supported (ENOTSUP).
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
    if (peer.subs === null) return;
    if (subscribe) peer.subs.add(prefix);
    else peer.subs.remove(prefix);
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
    const hwm = this.options.hwm;
    let chunk: Uint8Array | undefined;
    for (const peer of this.peers) {
      if (peer.conn === null || peer.subs === null || peer.out.length >= hwm) continue;
      if (!peer.subs.matches(topic)) continue;
      chunk ??= encodeMessage(frames);
      this.queueTo(peer, chunk);
    }
    return 0;
  }
}
