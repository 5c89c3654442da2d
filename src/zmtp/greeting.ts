/**
 * The greeting: ZMTP 3.x (RFC 23 "Greeting", RFC 37) and the version detection that lets
 * ZMTP 2.0 (RFC 15) and ZMTP 1.0 (RFC 13) peers in, as libzmq 4.3 does.
 *
 * We send our 10-byte signature at once, our major version once the peer's signature shows
 * it is versioned, and the rest once its revision byte (offset 10) says which protocol it
 * speaks: the rest of a 3.x greeting for 3.x, a socket type byte for 2.0 and for a
 * versioned 1.0. A peer whose first bytes are not a signature speaks ZMTP 1.0 without a
 * version: it reads our signature as the header of our identity frame. Sending anything
 * past the signature before that would break both kinds of old peer; waiting for the peer
 * to speak first deadlocks against libzmq, which also waits for our signature.
 *
 * @module
 */

/** Size of a ZMTP 3.x greeting in bytes. */
export const GREETING_SIZE = 64;
/** Size of the signature, the part of every greeting sent before knowing the peer. */
export const SIGNATURE_SIZE = 10;
/** Size of a ZMTP 2.0 greeting (and a versioned 1.0 one): signature, revision, socket type. */
export const LEGACY_GREETING_SIZE = 12;
/** Offset of the revision (3.x: major version) byte. */
export const REVISION_OFFSET = 10;

/** The peer's 3.x greeting, as far as we care. */
export interface Greeting {
  /** Major version; always 3 here (higher majors are treated as 3, see parseGreeting). */
  major: number;
  /** Minor version: 0 means ZMTP 3.0 (subscriptions travel as messages), 1 or more is 3.1. */
  minor: number;
  /** Security mechanism name, e.g. "NULL". */
  mechanism: string;
  /** The as-server flag. */
  asServer: boolean;
}

/**
 * Result of looking at the bytes of a greeting received so far:
 * - "partial": more bytes needed; `signature` once the peer's versioned signature is in
 *   (our major version may go out), `revision` once its revision byte is (0 = ZMTP 1.0
 *   with a version, 1 = ZMTP 2.0, 3 = ZMTP 3.x; so the rest of ours may go out);
 * - "zmtp1": a ZMTP 1.0 peer without a version; the bytes received begin its identity frame
 *   and must not be consumed;
 * - "legacy": the 12-byte greeting of a 2.0 (revision 1) or versioned 1.0 (revision 0) peer;
 * - "done": a 3.x greeting (64 bytes).
 */
export type GreetingCheck =
  | { status: "partial"; signature: boolean; revision: number | undefined }
  | { status: "error"; reason: string }
  | { status: "zmtp1" }
  | { status: "legacy"; revision: number; socketType: number }
  | { status: "done"; greeting: Greeting };

/**
 * Builds our signature: 0xFF, the length of our identity frame in ZMTP 1.0 terms (identity
 * plus the flags byte) as 8 bytes, 0x7F. A 3.x or 2.0 peer ignores the middle bytes; a 1.0
 * peer reads the whole as a long frame header (RFC 15 "Backwards Interoperability").
 */
export function buildSignature(identityLength = 0): Uint8Array {
  const s = new Uint8Array(SIGNATURE_SIZE);
  s[0] = 0xff;
  new DataView(s.buffer).setUint32(5, identityLength + 1);
  s[9] = 0x7f;
  return s;
}

/** Builds our greeting: signature, version 3.1, the mechanism, as-server, zero filler. */
export function buildGreeting(mechanism = "NULL", asServer = false): Uint8Array {
  const g = new Uint8Array(GREETING_SIZE);
  g[0] = 0xff;
  g[9] = 0x7f;
  g[10] = 3;
  g[11] = 1;
  for (let i = 0; i < mechanism.length && i < 20; i++) g[12 + i] = mechanism.charCodeAt(i);
  g[32] = asServer ? 1 : 0;
  return g;
}

const PARTIAL: GreetingCheck = { status: "partial", signature: false, revision: undefined };
const SIGNED: GreetingCheck = { status: "partial", signature: true, revision: undefined };
const ZMTP1: GreetingCheck = { status: "zmtp1" };
const BAD_SIGNATURE: GreetingCheck = {
  status: "error",
  reason: "not a ZMTP greeting (bad signature)",
};
// A ZMTP 1.0 identity is at most 255 bytes, so its frame's length (with the flags) 256.
const MAX_ZMTP1_IDENTITY_LENGTH = 256;

/**
 * Checks the greeting bytes received so far (`bytes` may be shorter or longer than the
 * greeting; extra bytes are ignored). Validates each field as soon as it has arrived so
 * garbage is rejected early: a ZMTP 1.0 identity frame's flags must have their reserved bits
 * clear, which an HTTP request or TLS hello does not. The 3.x padding is never checked:
 * RFC 23 leaves it unspecified.
 */
export function parseGreeting(bytes: Uint8Array): GreetingCheck {
  const n = bytes.length;
  if (n === 0) return PARTIAL;
  if (bytes[0] !== 0xff) {
    // ZMTP 1.0 short frame: length (counting the flags byte, so not 0), flags (MORE only).
    if (bytes[0] === 0) return BAD_SIGNATURE;
    if (n < 2) return PARTIAL;
    return (bytes[1] & 0xfe) === 0 ? ZMTP1 : BAD_SIGNATURE;
  }
  if (n < SIGNATURE_SIZE) return PARTIAL;
  if ((bytes[9] & 1) === 0) {
    // ZMTP 1.0 long frame: its flags byte is byte 9, and its length an identity's.
    const view = new DataView(bytes.buffer, bytes.byteOffset, SIGNATURE_SIZE);
    const length = view.getUint32(5);
    const valid = bytes[9] === 0 && view.getUint32(1) === 0 && length > 0 &&
      length <= MAX_ZMTP1_IDENTITY_LENGTH;
    return valid ? ZMTP1 : BAD_SIGNATURE;
  }
  if (n <= REVISION_OFFSET) return SIGNED;
  const revision = bytes[REVISION_OFFSET];
  // Revision 2 was never defined; libzmq would take it for 3.x, but no peer sends it.
  if (revision === 2) return { status: "error", reason: "unknown ZMTP revision 2" };
  if (revision < 2) {
    if (n < LEGACY_GREETING_SIZE) return { status: "partial", signature: true, revision };
    return { status: "legacy", revision, socketType: bytes[11] };
  }
  if (n < GREETING_SIZE) return { status: "partial", signature: true, revision };
  const minor = bytes[11];
  let mechanism = "";
  for (let i = 12; i < 32 && bytes[i] !== 0; i++) mechanism += String.fromCharCode(bytes[i]);
  // RFC 23: a peer speaking a higher version must accept to talk ours; treat it as 3.1.
  const greeting: Greeting = {
    major: 3,
    minor: revision > 3 ? 1 : minor,
    mechanism,
    asServer: bytes[32] === 1,
  };
  return { status: "done", greeting };
}
