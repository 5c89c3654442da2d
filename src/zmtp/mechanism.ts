/**
 * ZMTP security mechanisms (RFC 23 "Security", RFC 24 PLAIN, RFC 25/26 CURVE) behind one
 * interface, so that a connection drives NULL, PLAIN and CURVE the same way: it sends what
 * {@linkcode Mechanism.greet} gives after its greeting, hands every command of the handshake
 * to {@linkcode Mechanism.handshake} until it yields the peer's metadata, and, for a mechanism
 * that encrypts, passes every frame through {@linkcode Mechanism.seal} and
 * {@linkcode Mechanism.open} afterwards.
 *
 * @module
 */

import { decodeProperties, encodeCommand, ProtocolError } from "./frame.ts";

/** What one handshake command led to. */
export interface HandshakeStep {
  /** A command to send in answer, already encoded. */
  reply?: Uint8Array;
  /** The peer's metadata (Socket-Type, Identity...), once the handshake is complete. */
  peer?: Map<string, Uint8Array>;
}

/** One side of one connection's security handshake, and the framing it imposes after it. */
export interface Mechanism {
  /** The name in the greeting: "NULL", "PLAIN" or "CURVE". */
  readonly name: string;
  /** The greeting's as-server bit. */
  readonly asServer: boolean;
  /** True when, after the handshake, every frame travels sealed in a MESSAGE command. */
  readonly encrypts: boolean;
  /** Who the peer is, for the log (its public key or user name), once known. */
  readonly peerName: string;
  /** The commands to send right after our greeting (possibly none). */
  greet(): Uint8Array[];
  /**
   * Processes a command received during the handshake; throws {@linkcode ProtocolError} when
   * the peer broke the mechanism, {@linkcode HandshakeRefused} when we refuse it.
   */
  handshake(name: string, data: Uint8Array): HandshakeStep;
  /** Turns wire-encoded frames (messages or commands) into MESSAGE commands (encrypts only). */
  seal(frames: Uint8Array): Uint8Array;
  /**
   * Opens a received MESSAGE (encrypts only; `message` is the frame's whole body, name
   * included): returns the inner frame's body, its flags in {@linkcode openedFlags}. Throws
   * ProtocolError when the frame is no MESSAGE or its box is malformed, forged or replayed.
   */
  open(message: Uint8Array): Uint8Array;
  /** Flags of the frame open() returned last: 1 more frames follow, 2 a command. */
  readonly openedFlags: number;
}

/** The peer is refused during the handshake; `reply` is the ERROR command to send it first. */
export class HandshakeRefused extends ProtocolError {
  /** The ERROR command (RFC 23) telling the peer why, sent before the connection closes. */
  readonly reply: Uint8Array;

  /** `reason` goes to our log; `peerReason` (at most 255 bytes) to the peer. */
  constructor(reason: string, peerReason: string) {
    super(reason);
    this.name = "HandshakeRefused";
    this.reply = encodeError(peerReason);
  }
}

/** Encodes an ERROR command (RFC 23: a one-byte length, then the reason, at most 255 bytes). */
export function encodeError(reason: string): Uint8Array {
  const bytes = new TextEncoder().encode(reason).subarray(0, 255);
  const data = new Uint8Array(1 + bytes.length);
  data[0] = bytes.length;
  data.set(bytes, 1);
  return encodeCommand("ERROR", data);
}

/** Throws the ProtocolError for a command that has no place at this point of the handshake. */
export function unexpected(mechanism: string, name: string): never {
  throw new ProtocolError(`unexpected ${name} command during the ${mechanism} handshake`);
}

/** RFC 23's NULL: READY with the metadata both ways, nothing checked, nothing encrypted. */
export class NullMechanism implements Mechanism {
  readonly name = "NULL";
  readonly asServer = false;
  readonly encrypts = false;
  readonly peerName = "";
  readonly openedFlags = 0;
  #metadata: Uint8Array;

  /** `metadata` is our encoded READY properties (see encodeProperties). */
  constructor(metadata: Uint8Array) {
    this.#metadata = metadata;
  }

  greet(): Uint8Array[] {
    return [encodeCommand("READY", this.#metadata)];
  }

  handshake(name: string, data: Uint8Array): HandshakeStep {
    if (name !== "READY") unexpected("NULL", name);
    return { peer: decodeProperties(data) };
  }

  seal(frames: Uint8Array): Uint8Array {
    return frames;
  }

  open(data: Uint8Array): Uint8Array {
    return data;
  }
}
