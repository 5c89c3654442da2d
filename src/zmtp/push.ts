/**
 * PUSH: distributes messages round robin to PULL peers.
 *
 * @module
 */

import { EAGAIN, ENOTSUP } from "./errors.ts";
import { encodeMessage } from "./frame.ts";
import type { SocketOptions } from "./options.ts";
import { Socket } from "./socket.ts";
import type { Frames } from "./types.ts";

/**
 * PUSH socket. Messages go round robin to peers with room; at the HWM (or sndbufBytes) of
 * every connected peer trySend fails with EAGAIN and send() waits. With no connected peer, messages queue
 * (up to the HWM) on connect()ed peers that are down. Receiving is not supported (ENOTSUP).
 */
export class PushSocket extends Socket {
  /** Creates a PUSH socket; prefer `createSocket("PUSH", options)`. */
  constructor(options?: SocketOptions) {
    super("PUSH", options);
  }

  protected override recvState(): number {
    return ENOTSUP;
  }

  protected override admit(): boolean {
    // PULL peers never send; anything that arrives anyway is not for the application.
    return false;
  }

  protected sendMessage(frames: Frames): number {
    const chunk = encodeMessage(frames);
    const peer = this.pickRoundRobin(chunk.length);
    if (peer === undefined) return EAGAIN;
    this.queueTo(peer, chunk);
    return 0;
  }
}
