/**
 * The ZMTP 3.x greeting (RFC 23 section "Greeting", RFC 37).
 *
 * We always send the whole 64-byte greeting at once: libzmq sends its 10-byte signature and
 * then waits for ours before sending its version, so waiting for the peer first deadlocks.
 *
 * @module
 */

/** Size of a ZMTP 3.x greeting in bytes. */
export const GREETING_SIZE = 64;

/** The peer's greeting, as far as we care. */
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

/** Result of looking at the bytes of a greeting received so far. */
export type GreetingCheck =
  | { status: "partial" }
  | { status: "error"; reason: string }
  | { status: "done"; greeting: Greeting };

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

const PARTIAL: GreetingCheck = { status: "partial" };

/**
 * Checks the greeting bytes received so far (`bytes` may be shorter than, equal to, or longer
 * than 64 bytes; extra bytes are ignored). Validates each field as soon as it has arrived so
 * garbage is rejected after its first byte instead of after 64. The padding is never checked:
 * RFC 23 leaves it unspecified for interoperability with ZMTP 1.0 detection.
 */
export function parseGreeting(bytes: Uint8Array): GreetingCheck {
  const n = bytes.length;
  if (n === 0) return PARTIAL;
  if (bytes[0] !== 0xff) return { status: "error", reason: "not a ZMTP greeting (bad signature)" };
  if (n < 10) return PARTIAL;
  if ((bytes[9] & 1) !== 1) {
    return { status: "error", reason: "not a ZMTP 3 greeting (ZMTP 1.0 peer or garbage)" };
  }
  if (n < 11) return PARTIAL;
  const major = bytes[10];
  // A ZMTP 2.0 peer has its revision 1 here; ZMTP 1.0 peers were rejected above.
  if (major < 3) return { status: "error", reason: `unsupported ZMTP version ${major}` };
  if (n < GREETING_SIZE) return PARTIAL;
  const minor = bytes[11];
  let mechanism = "";
  for (let i = 12; i < 32 && bytes[i] !== 0; i++) mechanism += String.fromCharCode(bytes[i]);
  // RFC 23: a peer speaking a higher version must accept to talk ours; treat it as 3.1.
  const greeting: Greeting = {
    major: 3,
    minor: major > 3 ? 1 : minor,
    mechanism,
    asServer: bytes[32] === 1,
  };
  return { status: "done", greeting };
}
