/**
 * ROUTER: addresses peers by identity.
 *
 * @module
 */

import { copyOf } from "./arena.ts";
import type { Connection } from "./connection.ts";
import { EAGAIN, EHOSTUNREACH, EINVAL, ETERM } from "./errors.ts";
import { encodeMessage, latin1 } from "./frame.ts";
import type { SocketOptions } from "./options.ts";
import type { Peer } from "./peer.ts";
import { Socket } from "./socket.ts";
import type { Frames } from "./types.ts";

/**
 * A message a server took with {@linkcode RouterSocket.takeRequest}: its frames after the
 * sender's identity, and whom the reply goes to ({@linkcode RouterSocket.reply}).
 */
export interface ServerRequest {
  /** The frames the sender sent (routing frames, delimiter, body); no identity frame. */
  readonly frames: Frames;
  /** The sender. */
  readonly peer: Peer;
  /** The sender's identity when it sent the request, as a map key. */
  readonly key: string;
}

/**
 * ROUTER socket. Every incoming message gets the sender's identity prepended: the Identity
 * the peer announced in READY, or else a generated 5-byte one (0x00 then a 32-bit counter,
 * as libzmq does). `trySend([identity, ...body])` routes to that peer.
 *
 * Sending behaves like libzmq with ZMQ_ROUTER_MANDATORY: an unknown or disconnected identity
 * fails with EHOSTUNREACH (so callers can report it) and a peer at its HWM with EAGAIN
 * (send() waits for room). A message that would take the peer's queue past sndbufBytes
 * drops that peer's connection instead (a peer that does not read its replies; logged) and
 * fails with EHOSTUNREACH. A second peer announcing an identity already in use is refused,
 * as libzmq does without ZMQ_ROUTER_HANDOVER.
 */
export class RouterSocket extends Socket {
  #byKey = new Map<string, Peer>();
  #nextId = (Math.random() * 0x1_0000_0000) >>> 0;
  /** The peer of the message delivered last (what a reply most likely goes back to). */
  #lastSender: Peer | undefined;

  /** Creates a ROUTER socket; prefer `createSocket("ROUTER", options)`. */
  constructor(options?: SocketOptions) {
    super("ROUTER", options);
  }

  protected override acceptPeer(peer: Peer, conn: Connection<Peer>): string | undefined {
    let identity = conn.peerIdentity;
    if (identity.length === 0) {
      identity = new Uint8Array(5);
      new DataView(identity.buffer).setUint32(1, this.#nextId);
      this.#nextId = (this.#nextId + 1) >>> 0;
    } else {
      identity = identity.slice();
    }
    const key = latin1(identity);
    const existing = this.#byKey.get(key);
    if (existing !== undefined && existing !== peer && existing.conn !== null) {
      return "the identity it announced is already in use by another peer";
    }
    peer.identity = identity;
    peer.key = key;
    this.#byKey.set(key, peer);
    return undefined;
  }

  protected override peerDetached(peer: Peer): void {
    if (this.#lastSender === peer) this.#lastSender = undefined;
    if (this.#byKey.get(peer.key) === peer) this.#byKey.delete(peer.key);
    // Whatever waits for a persistent peer was addressed to the identity it had; the next
    // connection may announce another.
    peer.out.clear();
  }

  protected override deliver(peer: Peer, frames: Frames): Frames {
    const out: Frames = new Array(frames.length + 1);
    // A copy, so that the application cannot change the peer's identity, but a view of a
    // shared block: a slice costs ten times as much (per message, 7% of a pipelined server).
    const identity = peer.identity;
    out[0] = copyOf(identity, 0, identity.length);
    this.#lastSender = peer;
    for (let i = 0; i < frames.length; i++) out[i + 1] = frames[i];
    return out;
  }

  /**
   * For a server (src/rpc/server.ts): the next message, like tryRecv() but without the
   * identity frame, which stays with the sender: the reply goes back with reply(), with no
   * identity copied, looked up or compared. undefined with lastErrno set as by tryRecv().
   */
  takeRequest(): ServerRequest | undefined {
    const incoming = this.takeIncoming();
    if (incoming === undefined) return undefined;
    const peer = incoming.peer;
    return { frames: incoming.frames, peer, key: peer.key };
  }

  /**
   * Sends the reply to `request`: the frames of `head` (its routing frames and delimiter, as
   * they came) then those of `body`, to the identity that sent it, as trySend() would
   * route `[identity, ...head, ...body]`. Returns 0 or the errno trySend() would set (also
   * in lastErrno): EHOSTUNREACH when no peer holds that identity any more (the client
   * left), EAGAIN at the peer's HWM, ETERM once closed.
   */
  reply(request: ServerRequest, head: Frames, body: Frames): number {
    const errno = this.#reply(request, head, body);
    this.lastErrno = errno;
    return errno;
  }

  #reply(request: ServerRequest, head: Frames, body: Frames): number {
    if (this.closed) return ETERM;
    const sender = request.peer;
    // The sender itself while it is connected under that identity; else whoever holds it.
    const peer = sender.conn !== null && sender.key === request.key
      ? sender
      : this.#byKey.get(request.key);
    if (peer === undefined || peer.conn === null) return EHOSTUNREACH;
    if (peer.out.length >= this.options.hwm) return EAGAIN;
    return this.queueReply(peer, encodeMessage(body, 0, head)) ? 0 : EHOSTUNREACH;
  }

  protected sendMessage(frames: Frames): number {
    if (frames.length < 2) return EINVAL;
    // A server replies to the request it just took: try that sender before building a key.
    const last = this.#lastSender;
    const peer = last !== undefined && sameBytes(last.identity, frames[0])
      ? last
      : this.#byKey.get(latin1(frames[0]));
    if (peer === undefined || peer.conn === null) return EHOSTUNREACH;
    if (peer.out.length >= this.options.hwm) return EAGAIN;
    return this.queueReply(peer, encodeMessage(frames, 1)) ? 0 : EHOSTUNREACH;
  }
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
