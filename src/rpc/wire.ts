/**
 * The LuaOverMQ RPC wire format, in one place: what a request and a reply look like on
 * REP, ROUTER, REQ and DEALER sockets.
 *
 * - A request body is one frame: msgpack `[method, args...]`.
 * - A reply body is two frames: a status (`OK` or `ERROR`) and msgpack of the result or
 *   the error.
 * - In front of a body travel the routing frames (the envelope): every frame up to and
 *   including the first empty one (the delimiter). A REP server echoes the envelope of the
 *   request in front of its reply; lomq's REP socket does that itself, and a ROUTER server
 *   sends back what precedes {@linkcode bodyStart} (its ROUTER keeps the identity).
 * - lomq's clients put a 4-byte call id in the envelope ({@linkcode requestFrames}), so a
 *   reply names the call it answers ({@linkcode parseCallReply}).
 *
 * ```ts
 * import { parseCallReply, requestFrames, STATUS_OK } from "./wire.ts";
 * const frames = requestFrames(7, new Uint8Array([0x91, 0xa3, 0x61, 0x64, 0x64])); // ["add"]
 * const reply = parseCallReply([frames[0], frames[1], STATUS_OK, new Uint8Array([0x03])]);
 * console.log(reply?.id, reply?.ok); // 7 true
 * ```
 *
 * @module
 */

import type { Frames } from "../zmtp/mod.ts";
import { MsgpackWriter } from "../msgpack/writer.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** The status frame of a successful reply. */
export const STATUS_OK: Uint8Array = encoder.encode("OK");
/** The status frame of a failed reply. */
export const STATUS_ERROR: Uint8Array = encoder.encode("ERROR");

/** An empty frame: the delimiter between an envelope and a body. */
export const DELIMITER: Uint8Array = new Uint8Array(0);

/** Most bytes of a client's input an ERROR message repeats (a method name, say). */
export const MAX_ECHOED_BYTES = 256;

/** A reply body `[ERROR, msgpack str]` saying `message`. */
export function errorReply(message: string): Frames {
  const writer = new MsgpackWriter(message.length + 8);
  writer.str(encoder.encode(message));
  return [STATUS_ERROR, writer.take()];
}

/**
 * Bytes from a client (a method name) as text for an error message: at most
 * {@linkcode MAX_ECHOED_BYTES} of them, so an ERROR reply never echoes a client's megabytes.
 */
export function quoteInput(bytes: Uint8Array): string {
  if (bytes.length <= MAX_ECHOED_BYTES) return decoder.decode(bytes);
  // Cut on a character boundary: back off continuation bytes of a UTF-8 sequence.
  let end = MAX_ECHOED_BYTES;
  while (end > 0 && (bytes[end] & 0xc0) === 0x80) end--;
  return `${decoder.decode(bytes.subarray(0, end))}... (${bytes.length} bytes)`;
}

/**
 * Where the body starts in the frames of a ROUTER request once its identity is taken off
 * (`[routing..., "", body...]` from REQ clients and anything behind DEALER/ROUTER hops):
 * right after the first empty frame (the delimiter), or at 0 when there is none (a DEALER
 * that sends no delimiter). The frames before it go back unchanged in front of the reply.
 *
 * ```ts
 * import { bodyStart, DELIMITER } from "./wire.ts";
 * const hop = new Uint8Array([1]), body = new Uint8Array([0x91, 0xa0]);
 * console.log(bodyStart([hop, DELIMITER, body]), bodyStart([body])); // 2 0
 * ```
 */
export function bodyStart(frames: Frames): number {
  for (let i = 0; i < frames.length; i++) if (frames[i].length === 0) return i + 1;
  return 0;
}

/** A reply body taken apart. */
export interface Reply {
  /** True for status `OK`, false for `ERROR` (or any other status). */
  ok: boolean;
  /** The status frame as text. */
  status: string;
  /** The msgpack-encoded result or error value. */
  payload: Uint8Array;
}

/** Parses a reply body `[status, payload]`; undefined when it has another shape. */
export function parseReply(body: Frames): Reply | undefined {
  if (body.length !== 2) return undefined;
  const status = statusText(body[0]);
  return { ok: status === "OK", status, payload: body[1] };
}

/** A reply to a call made with {@linkcode requestFrames}. */
export interface CallReply extends Reply {
  /** The call id the reply's envelope carried. */
  id: number;
}

/**
 * The frames that send call `id` over a DEALER: `[id, "", body]`, the id as 4 big-endian
 * bytes. Any REP server echoes the envelope, so the reply names the call it answers.
 */
export function requestFrames(id: number, body: Uint8Array): Frames {
  const idFrame = new Uint8Array(4);
  new DataView(idFrame.buffer).setUint32(0, id);
  return [idFrame, DELIMITER, body];
}

/** The call id of a reply `[id, "", status, payload]`, or undefined when it is not one. */
export function replyId(frames: Frames): number | undefined {
  if (frames.length !== 4 || frames[0].length !== 4 || frames[1].length !== 0) return undefined;
  const idFrame = frames[0];
  return new DataView(idFrame.buffer, idFrame.byteOffset, 4).getUint32(0);
}

/** Parses a reply to {@linkcode requestFrames}; undefined when it is not one. */
export function parseCallReply(frames: Frames): CallReply | undefined {
  const id = replyId(frames);
  if (id === undefined) return undefined;
  const status = statusText(frames[2]);
  return { id, ok: status === "OK", status, payload: frames[3] };
}

function statusText(frame: Uint8Array): string {
  // The two statuses a server sends, without a TextDecoder call on the hot path.
  if (frame.length === 2 && frame[0] === 0x4f && frame[1] === 0x4b) return "OK";
  if (
    frame.length === 5 && frame[0] === 0x45 && frame[1] === 0x52 && frame[2] === 0x52 &&
    frame[3] === 0x4f && frame[4] === 0x52
  ) return "ERROR";
  return decoder.decode(frame);
}
