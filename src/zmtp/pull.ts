/**
 * PULL: receives messages from PUSH peers.
 *
 * @module
 */

import { ENOTSUP } from "./errors.ts";
import type { SocketOptions } from "./options.ts";
import { Socket } from "./socket.ts";

/** PULL socket: fair-queues incoming messages; sending is not supported (ENOTSUP). */
export class PullSocket extends Socket {
  /** Creates a PULL socket; prefer `createSocket("PULL", options)`. */
  constructor(options?: SocketOptions) {
    super("PULL", options);
  }

  protected sendMessage(): number {
    return ENOTSUP;
  }
}
