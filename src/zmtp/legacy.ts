/**
 * What ZMTP 2.0 (RFC 15) and ZMTP 1.0 (RFC 13) peers need beyond the greeting: socket types
 * as numbers, and the ZMTP 1.0 framing of outgoing messages.
 *
 * ZMTP 2.0 frames are 3.x frames without commands (flags MORE 0x01 and LONG 0x02, then a 1-
 * or 8-byte size), so messages encoded for 3.x go to a 2.0 peer as they are, and are read by
 * the same FrameReader. ZMTP 1.0 frames put the length first, and count the flags byte in
 * it: a length below 255 takes one byte, a longer one 0xFF and 8 bytes. Sockets encode each
 * message once, in 3.x framing (a PUB shares it among subscribers), so a 1.0 connection
 * re-frames what it writes, at a copy's cost that only 1.0 peers pay.
 *
 * @module
 */

import { allocate } from "./arena.ts";
import { FLAG_LONG, FLAG_MORE, readUint64, writeUint64 } from "./frame.ts";
import type { PeerSocketType, SocketType } from "./types.ts";

/** Socket types by the number a ZMTP 2.0 greeting carries (RFC 15; libzmq's ZMQ_PAIR...). */
const SOCKET_TYPES: readonly PeerSocketType[] = [
  "PAIR",
  "PUB",
  "SUB",
  "REQ",
  "REP",
  "DEALER",
  "ROUTER",
  "PULL",
  "PUSH",
  "XPUB",
  "XSUB",
];

/** The socket type a ZMTP 2.0 greeting's number stands for, e.g. 3 → "REQ". */
export function socketTypeName(code: number): PeerSocketType {
  return SOCKET_TYPES[code] ?? `unknown socket type ${code}`;
}

/** The number our socket type has in a ZMTP 2.0 greeting, e.g. "REP" → 4. */
export function socketTypeCode(type: SocketType): number {
  return SOCKET_TYPES.indexOf(type);
}

/**
 * Re-frames encoded 3.x/2.0 frames (as encodeMessage makes them) in ZMTP 1.0 framing.
 *
 * @example
 * ```ts
 * toZmtp1(encodeMessage([ascii("ab")])); // [3, 0, 97, 98]: length 3 (flags + 2), flags, body
 * ```
 */
export function toZmtp1(chunk: Uint8Array): Uint8Array {
  let total = 0;
  for (let pos = 0; pos < chunk.length;) {
    const [header, size] = frameAt(chunk, pos);
    total += (size + 1 < 0xff ? 2 : 10) + size;
    pos += header + size;
  }
  const out = allocate(total);
  let w = 0;
  for (let pos = 0; pos < chunk.length;) {
    const [header, size] = frameAt(chunk, pos);
    const length = size + 1;
    if (length < 0xff) {
      out[w++] = length;
    } else {
      out[w] = 0xff;
      writeUint64(out, w + 1, length);
      w += 9;
    }
    out[w++] = chunk[pos] & FLAG_MORE;
    out.set(chunk.subarray(pos + header, pos + header + size), w);
    w += size;
    pos += header + size;
  }
  return out;
}

/** Header size and body size of the encoded frame at `pos`. */
function frameAt(chunk: Uint8Array, pos: number): [number, number] {
  if ((chunk[pos] & FLAG_LONG) === 0) return [2, chunk[pos + 1]];
  return [9, readUint64(chunk, pos + 1)];
}
