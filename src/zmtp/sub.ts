/**
 * SUB: receives the messages of PUB peers that match its subscriptions.
 *
 * @module
 */

import { ENOTSUP } from "./errors.ts";
import type { SocketOptions } from "./options.ts";
import type { Peer } from "./peer.ts";
import { Socket } from "./socket.ts";
import { SubscriptionSet } from "./subscriptions.ts";
import type { Frames } from "./types.ts";

const encoder = new TextEncoder();

function prefixBytes(prefix: Uint8Array | string): Uint8Array {
  return typeof prefix === "string" ? encoder.encode(prefix) : prefix;
}

/**
 * SUB socket. Subscriptions are remembered and sent to every peer, including peers that
 * connect later: as SUBSCRIBE/CANCEL commands to ZMTP 3.1 peers and as messages starting
 * with byte 1/0 to ZMTP 3.0, 2.0 and 1.0 peers. Only the first subscribe of a prefix and the cancel of
 * its last subscription go on the wire. Messages are also filtered locally, so nothing that
 * is not subscribed reaches the application even from a publisher that does not filter.
 * Incoming messages are fair-queued; sending is not supported (ENOTSUP).
 */
export class SubSocket extends Socket {
  #subs = new SubscriptionSet();

  /** Creates a SUB socket; prefer `createSocket("SUB", options)`. */
  constructor(options?: SocketOptions) {
    super("SUB", options);
  }

  /** Subscribes to messages whose first frame starts with `prefix` (strings are UTF-8). */
  override subscribe(prefix: Uint8Array | string): void {
    const bytes = prefixBytes(prefix);
    if (!this.#subs.add(bytes)) return;
    for (const peer of this.peers) peer.conn?.sendSubscription(true, bytes);
  }

  /** Removes one subscription to `prefix`; unknown prefixes are ignored. */
  override unsubscribe(prefix: Uint8Array | string): void {
    const bytes = prefixBytes(prefix);
    if (!this.#subs.remove(bytes)) return;
    for (const peer of this.peers) peer.conn?.sendSubscription(false, bytes);
  }

  protected override peerAttached(peer: Peer): void {
    for (const prefix of this.#subs.prefixes()) peer.conn?.sendSubscription(true, prefix);
  }

  protected override admit(_peer: Peer, frames: Frames): boolean {
    return this.#subs.matches(frames[0]);
  }

  protected sendMessage(): number {
    return ENOTSUP;
  }
}
