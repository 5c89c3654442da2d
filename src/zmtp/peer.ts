/**
 * The socket-side record of one peer (libzmq's "pipe"): its queues, and the connection that
 * currently carries it.
 *
 * A bound socket gets one Peer per accepted connection, gone when the connection closes. A
 * connect() gets one persistent Peer that outlives its connections, so messages sent while
 * disconnected wait (up to the HWM) and go out after the reconnect.
 *
 * @module
 */

import type { Connection } from "./connection.ts";
import { EMPTY } from "./frame.ts";
import { ByteQueue, Queue } from "./queue.ts";
import type { SubscriptionSet } from "./subscriptions.ts";
import type { Frames } from "./types.ts";

/** One peer of a socket. */
export class Peer {
  /** The live, handshaken connection, or null while there is none. */
  conn: Connection<Peer> | null = null;
  /** Encoded outgoing messages (each entry is one whole message), with their total size. */
  readonly out: ByteQueue = new ByteQueue();
  /** Received messages not yet taken by the application. */
  readonly inbox: Queue<Frames> = new Queue();
  /** True for a connect()ed peer, which survives disconnects. */
  readonly persistent: boolean;
  /** The endpoint a persistent peer connects to (empty for accepted peers). */
  readonly endpoint: string;
  /** Routing identity (ROUTER). */
  identity: Uint8Array = EMPTY;
  /** `identity` as a map key (ROUTER). */
  key = "";
  /** What the peer subscribed to (PUB). */
  subs: SubscriptionSet | null = null;
  /** Whether the peer sits in the socket's fair-queue list. */
  queued = false;
  /** No longer routable: an accepted peer whose connection closed, or the socket closed. */
  removed = false;

  /** Creates a peer; `endpoint` is set for connect()ed (persistent) peers. */
  constructor(persistent: boolean, endpoint = "") {
    this.persistent = persistent;
    this.endpoint = endpoint;
  }
}
