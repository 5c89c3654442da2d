/**
 * Types shared by every module of the ZMTP layer.
 *
 * @module
 */

/** A message: one or more frames (ZeroMQ "message parts"). */
export type Frames = Uint8Array[];

/** The socket types lomq implements. */
export type SocketType = "PUB" | "SUB" | "REQ" | "REP" | "DEALER" | "ROUTER" | "PULL" | "PUSH";

/**
 * Every socket type name a peer may announce in READY, including the ones lomq does not
 * implement but must recognise to accept (XPUB, XSUB) or refuse (PAIR...) peers correctly.
 */
export type PeerSocketType = SocketType | "XPUB" | "XSUB" | "PAIR" | string;

/** Socket types each type may talk to (RFC 23 table; libzmq refuses the rest). */
export const COMPATIBLE_PEERS: Readonly<Record<SocketType, readonly string[]>> = {
  REQ: ["REP", "ROUTER"],
  REP: ["REQ", "DEALER"],
  DEALER: ["REP", "DEALER", "ROUTER"],
  ROUTER: ["REQ", "DEALER", "ROUTER"],
  PUB: ["SUB", "XSUB"],
  SUB: ["PUB", "XPUB"],
  PUSH: ["PULL"],
  PULL: ["PUSH"],
};
