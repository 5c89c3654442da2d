/**
 * REQ: sends a request, then receives its reply, strictly alternating.
 *
 * @module
 */

import { EAGAIN, EFSM } from "./errors.ts";
import { EMPTY, encodeMessage } from "./frame.ts";
import type { SocketOptions } from "./options.ts";
import type { Peer } from "./peer.ts";
import { Socket } from "./socket.ts";
import type { Frames } from "./types.ts";

const DELIMITER: readonly Uint8Array[] = [EMPTY];

/**
 * REQ socket. Each request goes, with an empty delimiter frame in front, to one peer chosen
 * round robin; only that peer's reply (delimiter stripped) is accepted, anything else is
 * dropped. A second send before the reply fails with EFSM, as does recv with no request out.
 *
 * There is no automatic recovery when the reply never comes (the peer died, the request was
 * lost): after a timeout, close() this socket and create a new one, which is the reset
 * libzmq users know as "lazy pirate".
 */
export class ReqSocket extends Socket {
  #target: Peer | null = null;

  /** Creates a REQ socket; prefer `createSocket("REQ", options)`. */
  constructor(options?: SocketOptions) {
    super("REQ", options);
  }

  protected override recvState(): number {
    return this.#target === null ? EFSM : 0;
  }

  protected override select(peer: Peer, frames: Frames): Frames | undefined {
    if (peer !== this.#target || frames.length < 2 || frames[0].length !== 0) return undefined;
    return frames.slice(1);
  }

  protected override deliver(_peer: Peer, frames: Frames): Frames {
    this.#target = null;
    return frames;
  }

  protected sendMessage(frames: Frames): number {
    if (this.#target !== null) return EFSM;
    const chunk = encodeMessage(frames, 0, DELIMITER);
    const peer = this.pickRoundRobin(chunk.length);
    if (peer === undefined) return EAGAIN;
    this.queueTo(peer, chunk);
    this.#target = peer;
    return 0;
  }
}
