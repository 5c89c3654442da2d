/**
 * DEALER: asynchronous request/reply without envelopes.
 *
 * @module
 */

import { EAGAIN } from "./errors.ts";
import { encodeMessage } from "./frame.ts";
import type { SocketOptions } from "./options.ts";
import { Socket } from "./socket.ts";
import type { Frames } from "./types.ts";

/**
 * DEALER socket. Outgoing messages go round robin to peers with room below the HWM and
 * sndbufBytes (EAGAIN, or waiting in send(), when every connected peer is full; with no
 * connected peer they queue, up to the HWM, on connect()ed peers that are down). Incoming
 * messages are fair-queued. Frames pass unchanged in both directions.
 */
export class DealerSocket extends Socket {
  /** Creates a DEALER socket; prefer `createSocket("DEALER", options)`. */
  constructor(options?: SocketOptions) {
    super("DEALER", options);
  }

  protected sendMessage(frames: Frames): number {
    const chunk = encodeMessage(frames);
    const peer = this.pickRoundRobin(chunk.length);
    if (peer === undefined) return EAGAIN;
    this.queueTo(peer, chunk);
    return 0;
  }
}
