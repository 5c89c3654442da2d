/**
 * REP: replies to requests, strictly one reply per request.
 *
 * @module
 */

import { EFSM } from "./errors.ts";
import { encodeMessage } from "./frame.ts";
import type { SocketOptions } from "./options.ts";
import type { Peer } from "./peer.ts";
import { Socket } from "./socket.ts";
import type { Frames } from "./types.ts";

function delimiterIndex(frames: Frames): number {
  for (let i = 0; i < frames.length; i++) if (frames[i].length === 0) return i;
  return -1;
}

/**
 * REP socket. Requests are fair-queued across connections (each connection keeps its own
 * receive queue bounded by the HWM; a full queue stops reading that connection only, so a
 * flooding client is slowed without hurting others).
 *
 * An incoming message is routing frames, an empty delimiter, then the body. tryRecv returns
 * the body and remembers the envelope; the next trySend prepends it and answers on the same
 * connection. A message without a delimiter or without a body is dropped, as libzmq does.
 *
 * Alternation: trySend without a pending request fails with EFSM. Unlike libzmq, receiving
 * while a reply is pending is allowed: the pending request is abandoned (its client gets no
 * answer; REQ clients time out), so a server that failed to answer can go on serving.
 * A reply to a connection that has gone is dropped silently and still counts as sent, as in
 * libzmq.
 *
 * Replies are not dropped at the HWM (an RPC server should not lose answers): instead a
 * connection whose outgoing queue reaches the HWM is not read until it drains, so a client
 * that sends requests without reading replies is throttled. As a safety net a reply is
 * dropped only past twice the HWM, which the throttle keeps from happening. Replies are
 * bounded in bytes too: one that would take the connection's queue past sndbufBytes drops
 * the connection (its client does not read; logged), as large replies could otherwise hold
 * gigabytes long before the HWM.
 */
export class RepSocket extends Socket {
  #envelope: Frames | null = null;
  #replyTo: Peer | null = null;

  /** Creates a REP socket; prefer `createSocket("REP", options)`. */
  constructor(options?: SocketOptions) {
    super("REP", options);
  }

  protected override canReceive(peer: Peer): boolean {
    const hwm = this.options.hwm;
    return peer.inbox.length < hwm && peer.out.length < hwm;
  }

  protected override admit(_peer: Peer, frames: Frames): boolean {
    const index = delimiterIndex(frames);
    return index >= 0 && index < frames.length - 1;
  }

  protected override deliver(peer: Peer, frames: Frames): Frames {
    const index = delimiterIndex(frames);
    this.#envelope = frames.slice(0, index + 1);
    this.#replyTo = peer;
    return frames.slice(index + 1);
  }

  protected sendMessage(frames: Frames): number {
    const peer = this.#replyTo;
    const envelope = this.#envelope;
    if (peer === null || envelope === null) return EFSM;
    this.#replyTo = null;
    this.#envelope = null;
    if (peer.conn !== null && !peer.removed && peer.out.length < 2 * this.options.hwm) {
      this.queueReply(peer, encodeMessage(frames, 0, envelope));
    }
    return 0;
  }
}
