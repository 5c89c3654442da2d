/**
 * ZMTP 3.x framing (RFC 23 "Framing", "Commands"): the incremental frame reader, message and
 * command encoders, and the READY/PING helpers.
 *
 * The reader owns one reusable buffer per connection and parses many frames per socket read;
 * every declared size is checked against the limit before anything is allocated.
 *
 * @module
 */

import { copyBytes } from "../bytes.ts";
import { allocateMessage, allocatePooled, copyOf, POOL_MAX, POOL_MIN } from "./arena.ts";

/** A ZMTP major version, naming its framing: 1.0, 2.0 or 3.x. */
export type Framing = 1 | 2 | 3;

/** Frame flag: more frames of this message follow. */
export const FLAG_MORE = 1;
/** Frame flag: the size is 8 bytes instead of 1. */
export const FLAG_LONG = 2;
/** Frame flag: the frame is a command, not a message part. */
export const FLAG_COMMAND = 4;

/**
 * Most frames accepted in one incoming message. Each frame costs a JS object even when empty,
 * so without a count limit a peer could turn a 64 MiB message of 2-byte frames into gigabytes
 * of heap. Real envelopes use a handful of frames; 1024 leaves ample room. A message with more
 * frames closes the connection, like an oversize one.
 */
export const MAX_FRAMES_PER_MESSAGE = 1024;

/** Shared zero-length frame: empty frames (REQ delimiters) are frequent and cannot be mutated. */
export const EMPTY: Uint8Array = new Uint8Array(0);

/**
 * Smallest read buffer, what an idle connection keeps. A connection's buffer doubles when a
 * read fills it (a peer sending faster than we read in small pieces) up to
 * {@link READ_BUFFER_MAX}, and drops back to this size when the connection goes quiet.
 */
export const READ_BUFFER_MIN = 2 * 1024;
/** Largest read buffer; a frame that does not fit gets an array of its own. */
export const READ_BUFFER_MAX = 64 * 1024;
// A large frame's buffer starts at this size and doubles as data arrives, so a peer that
// declares 64 MiB and then sends nothing costs us 1 MiB, not 64.
const LARGE_FRAME_INITIAL = 1024 * 1024;
const TWO_32 = 0x1_0000_0000;

/**
 * Writes `value` (an integer below 2^53) as 8 bytes, big-endian: a long frame's size (every
 * ZMTP version) and a CURVE nonce's counter.
 */
export function writeUint64(out: Uint8Array, pos: number, value: number): void {
  const high = Math.floor(value / TWO_32);
  const low = value >>> 0;
  out[pos] = high >>> 24;
  out[pos + 1] = (high >>> 16) & 0xff;
  out[pos + 2] = (high >>> 8) & 0xff;
  out[pos + 3] = high & 0xff;
  out[pos + 4] = low >>> 24;
  out[pos + 5] = (low >>> 16) & 0xff;
  out[pos + 6] = (low >>> 8) & 0xff;
  out[pos + 7] = low & 0xff;
}

/** Reads 8 bytes, big-endian, as a number (exact below 2^53): see {@linkcode writeUint64}. */
export function readUint64(data: Uint8Array, pos: number): number {
  const high = ((data[pos] << 24) | (data[pos + 1] << 16) | (data[pos + 2] << 8) |
    data[pos + 3]) >>> 0;
  const low = ((data[pos + 4] << 24) | (data[pos + 5] << 16) | (data[pos + 6] << 8) |
    data[pos + 7]) >>> 0;
  return high * TWO_32 + low;
}

/** The peer broke the protocol; the connection must be closed. */
export class ProtocolError extends Error {
  /** Creates an error whose message says what the peer did wrong. */
  constructor(message: string) {
    super(message);
    this.name = "ProtocolError";
  }
}

/**
 * Incremental frame decoder over a reusable read buffer.
 *
 * Usage: `conn.read(reader.target())`, then `reader.commit(n)`, then call `next()` until it
 * returns false; after each true, `flags` and `body` describe the frame. Bodies are copies
 * (the buffer is reused; small ones share blocks, see arena.ts), except frames too big for
 * the buffer, which are read straight into their own array (a large one from the pool, which
 * its receiver may give back: arena.ts recycle).
 *
 * The buffer starts at `minBuffer` bytes and doubles, up to `maxBuffer`, whenever a read
 * fills it; once everything received is consumed and a read brought less than a quarter of
 * the buffer, the connection has gone quiet and the buffer shrinks back to `minBuffer`.
 * Idle connections thus cost little, and a busy one reads in large pieces.
 */
export class FrameReader {
  /** Largest frame body accepted; larger declared sizes throw ProtocolError. */
  maxFrameSize: number;
  /** Flags of the frame last returned by next(). */
  flags = 0;
  /** Body of the frame last returned by next(). */
  body: Uint8Array = EMPTY;
  /**
   * The framing read: 3 for ZMTP 3.x, 2 for ZMTP 2.0 (3.x without commands: `flags` never
   * has FLAG_COMMAND), 1 for ZMTP 1.0 (see legacy.ts). Set once the greeting has told.
   */
  framing: Framing = 3;

  #min: number;
  #max: number;
  #buf: Uint8Array;
  #view: DataView;
  #r = 0;
  #w = 0;
  // Bytes the last read into the buffer brought, and whether they filled what it offered.
  #lastRead = 0;
  #filled = false;
  // A frame too big for the buffer: its size (0 when there is none), and its own array,
  // allocated by target() only, so that `held` can announce every allocation beforehand.
  #large: Uint8Array<ArrayBuffer> | null = null;
  #largeSize = 0;
  #largeFill = 0;
  #largeFlags = 0;

  /** Creates a reader rejecting frames larger than `maxFrameSize` bytes. */
  constructor(maxFrameSize: number, minBuffer = READ_BUFFER_MIN, maxBuffer = READ_BUFFER_MAX) {
    this.maxFrameSize = maxFrameSize;
    this.#min = minBuffer;
    this.#max = Math.max(minBuffer, maxBuffer);
    this.#buf = new Uint8Array(minBuffer);
    this.#view = new DataView(this.#buf.buffer);
  }

  /** Size of the read buffer now (it grows and shrinks with the traffic). */
  get bufferSize(): number {
    return this.#buf.length;
  }

  /**
   * Bytes held for a frame too big for the buffer that is still arriving, counting the growth
   * the next target() will make, so that an owner bounding memory can refuse it first.
   */
  get held(): number {
    if (this.#largeSize === 0) return 0;
    const large = this.#large;
    if (large === null) return this.#initialSize();
    return this.#largeFill === large.length ? this.#grownSize(large.length) : large.length;
  }

  /** Whether a frame has been partly received, or received frames wait to be decoded. */
  get pending(): boolean {
    return this.#largeSize > 0 || this.#r < this.#w;
  }

  /**
   * Frees the array of a frame still arriving at once (the connection is gone), rather than
   * leaving up to maxMessageSize bytes to the collector. Only once no read is pending.
   */
  release(): void {
    this.#large?.buffer.transfer(0);
    this.#large = null;
    this.#largeSize = 0;
  }

  /** The region the next socket read should fill (never empty). */
  target(): Uint8Array {
    if (this.#largeSize > 0) {
      const large = this.#large;
      if (large === null) {
        // The frame's first bytes wait in the buffer; from now on it is read in place.
        const size = this.#initialSize();
        // A frame that fits at once may come from the pool: its receiver can give it back.
        const own = size === this.#largeSize && size >= POOL_MIN && size <= POOL_MAX
          ? allocatePooled(size)
          : new Uint8Array(size);
        own.set(this.#buf.subarray(this.#r, this.#w));
        this.#r = 0;
        this.#w = 0;
        // The read that began the frame says nothing about this connection's small reads:
        // the buffer keeps its size (resizing after every large frame cost 2% of a 100 KB
        // echo, and a small buffer means a small copy of the frame's first bytes above).
        this.#filled = false;
        this.#lastRead = this.#buf.length;
        this.#large = own;
        return own.subarray(this.#largeFill);
      }
      if (this.#largeFill === large.length) {
        // The old array is freed at once (transfer(0)), not left to the collector: 32 MiB of
        // garbage per doubling would make the memory a peer costs twice what is held for it.
        // A copy into a new array and a free take two thirds of the time of growing with
        // transfer(size) (measured, 1 to 64 MiB by doubling: 190 against 285 ms).
        const grown = new Uint8Array(this.#grownSize(large.length));
        grown.set(large);
        large.buffer.transfer(0);
        this.#large = grown;
        return grown.subarray(this.#largeFill);
      }
      return large.subarray(this.#largeFill);
    }
    const size = this.#buf.length;
    if (this.#r === this.#w) {
      this.#r = 0;
      this.#w = 0;
      if (this.#filled) {
        if (size < this.#max) this.#resize(size * 2);
      } else if (size > this.#min && this.#lastRead < size / 4) {
        this.#resize(this.#min);
      }
    } else if (this.#w === size) {
      if (this.#filled && size < this.#max) this.#resize(size * 2);
      else this.#compact();
    }
    return this.#buf.subarray(this.#w);
  }

  /** Records that the last read put `n` bytes into target(). */
  commit(n: number): void {
    if (this.#largeSize > 0) {
      this.#largeFill += n;
      return;
    }
    this.#filled = this.#w + n === this.#buf.length;
    this.#lastRead = n;
    this.#w += n;
  }

  /** Bytes received but not yet consumed (for the greeting, which is not framed). */
  available(): Uint8Array {
    return this.#buf.subarray(this.#r, this.#w);
  }

  /** Consumes `n` bytes of available(). */
  skip(n: number): void {
    this.#r += n;
  }

  /**
   * Decodes the next complete frame into `flags`/`body`. Returns false when more bytes are
   * needed; throws ProtocolError when the declared size exceeds the limit.
   */
  next(): boolean {
    if (this.#largeSize > 0) {
      if (this.#large === null || this.#largeFill < this.#largeSize) return false;
      this.flags = this.#largeFlags;
      this.body = this.#large;
      this.#large = null;
      this.#largeSize = 0;
      return true;
    }
    const buf = this.#buf;
    const r = this.#r;
    const avail = this.#w - r;
    if (avail < 2) return false;
    let flags = buf[r];
    let size: number;
    let header: number;
    if (this.framing === 1) {
      // ZMTP 1.0: the length comes first and counts the flags byte (see legacy.ts).
      if (flags === 0xff) {
        if (avail < 10) return false;
        const high = this.#view.getUint32(r + 1);
        size = this.#view.getUint32(r + 5) - 1;
        if (high !== 0) throw oversize(size, this.maxFrameSize, high);
        flags = buf[r + 9];
        header = 10;
      } else {
        size = flags - 1;
        flags = buf[r + 1];
        header = 2;
      }
      if (size < 0) throw new ProtocolError("ZMTP 1.0 frame of length 0 (it counts the flags)");
    } else if ((flags & FLAG_LONG) !== 0) {
      if (avail < 9) return false;
      const high = this.#view.getUint32(r + 1);
      size = this.#view.getUint32(r + 5);
      if (high !== 0) throw oversize(size, this.maxFrameSize, high);
      header = 9;
    } else {
      size = buf[r + 1];
      header = 2;
    }
    // Before 3.0 there are no commands: only MORE means anything to the caller.
    if (this.framing !== 3) flags &= FLAG_MORE;
    if (size > this.maxFrameSize) {
      throw oversize(size, this.maxFrameSize);
    }
    const end = r + header + size;
    if (end <= this.#w) {
      this.flags = flags;
      this.body = size === 0 ? EMPTY : copyOf(buf, r + header, end);
      this.#r = end;
      return true;
    }
    if (header + size > buf.length) {
      // Too big for the buffer: the frame gets its own array (see target()).
      this.#largeSize = size;
      this.#largeFill = this.#w - r - header;
      this.#largeFlags = flags;
      this.#r = r + header;
    }
    // A frame that runs past the end of the buffer gets room in target(), which can then
    // tell a busy connection (grow) from one that just needs compacting.
    return false;
  }

  #initialSize(): number {
    return Math.min(this.#largeSize, Math.max(LARGE_FRAME_INITIAL, this.#largeFill));
  }

  #grownSize(size: number): number {
    return Math.min(this.#largeSize, size * 2);
  }

  /** Replaces the buffer by one of `size` bytes, keeping the unconsumed bytes. */
  #resize(size: number): void {
    const next = new Uint8Array(size);
    next.set(this.#buf.subarray(this.#r, this.#w));
    this.#w -= this.#r;
    this.#r = 0;
    this.#buf = next;
    this.#view = new DataView(next.buffer);
    this.#filled = false;
  }

  #compact(): void {
    this.#buf.copyWithin(0, this.#r, this.#w);
    this.#w -= this.#r;
    this.#r = 0;
  }
}

/** `high`: the upper 32 bits of a 64-bit size, so that the message states it exactly. */
function oversize(size: number, max: number, high = 0): ProtocolError {
  const exact = high === 0 ? String(size) : String((BigInt(high) << 32n) + BigInt(size));
  return new ProtocolError(
    `frame of ${exact} bytes exceeds the maximum message size (maxMessageSize ${max})`,
  );
}

function frameHeaderSize(size: number): number {
  return size > 255 ? 9 : 2;
}

function writeFrame(out: Uint8Array, pos: number, flags: number, body: Uint8Array): number {
  const size = body.length;
  if (size > 255) {
    out[pos] = flags | FLAG_LONG;
    writeUint64(out, pos + 1, size);
    pos += 9;
  } else {
    out[pos] = flags;
    out[pos + 1] = size;
    pos += 2;
  }
  // Most frames of a reply are a few bytes (the status, a small result): copied by a loop,
  // without the cost of a call to set().
  copyBytes(out, pos, body, 0, size);
  return pos + size;
}

/**
 * Encodes a message to wire bytes: the frames of `head` (an envelope), then `frames` from
 * index `from`. The result is a fresh array, so callers may reuse their buffers right after.
 * Unless `shared` (it goes into more than one peer's queue), a large one is pooled: the
 * connection writing it gives it back (see allocateMessage).
 */
export function encodeMessage(
  frames: readonly Uint8Array[],
  from = 0,
  head?: readonly Uint8Array[],
  shared = false,
): Uint8Array {
  let total = 0;
  const headCount = head === undefined ? 0 : head.length;
  for (let i = 0; i < headCount; i++) {
    const size = head![i].length;
    total += frameHeaderSize(size) + size;
  }
  for (let i = from; i < frames.length; i++) {
    const size = frames[i].length;
    total += frameHeaderSize(size) + size;
  }
  const out = allocateMessage(total, shared);
  let pos = 0;
  const last = frames.length - 1;
  for (let i = 0; i < headCount; i++) {
    pos = writeFrame(out, pos, last >= from || i < headCount - 1 ? FLAG_MORE : 0, head![i]);
  }
  for (let i = from; i <= last; i++) {
    pos = writeFrame(out, pos, i < last ? FLAG_MORE : 0, frames[i]);
  }
  return out;
}

/** Encodes a command frame `name` + `data` (RFC 23: name-size, name, data). */
export function encodeCommand(name: string, data: Uint8Array = EMPTY): Uint8Array {
  const body = new Uint8Array(1 + name.length + data.length);
  body[0] = name.length;
  for (let i = 0; i < name.length; i++) body[1 + i] = name.charCodeAt(i);
  body.set(data, 1 + name.length);
  const out = new Uint8Array(frameHeaderSize(body.length) + body.length);
  writeFrame(out, 0, FLAG_COMMAND, body);
  return out;
}

/** A decoded command. */
export interface Command {
  /** Command name, e.g. "READY" (case as sent). */
  name: string;
  /** Command data after the name. */
  data: Uint8Array;
}

/** Splits a command frame body into name and data; throws ProtocolError when malformed. */
export function decodeCommand(body: Uint8Array): Command {
  if (body.length < 1) throw new ProtocolError("empty command frame");
  const nameLength = body[0];
  if (nameLength === 0 || 1 + nameLength > body.length) {
    throw new ProtocolError("malformed command frame");
  }
  let name = "";
  for (let i = 1; i <= nameLength; i++) name += String.fromCharCode(body[i]);
  return { name, data: body.subarray(1 + nameLength) };
}

/** Encodes READY with the given metadata properties (name, value pairs, in order). */
export function encodeReady(properties: ReadonlyArray<readonly [string, Uint8Array]>): Uint8Array {
  return encodeCommand("READY", encodeProperties(properties));
}

/**
 * Encodes metadata properties (RFC 23: name-size, name, 4-byte value-size, value), the data
 * of READY and, inside their boxes, of PLAIN's INITIATE and CURVE's INITIATE and READY.
 */
export function encodeProperties(
  properties: ReadonlyArray<readonly [string, Uint8Array]>,
): Uint8Array {
  let size = 0;
  for (const [name, value] of properties) size += 1 + name.length + 4 + value.length;
  const data = new Uint8Array(size);
  let pos = 0;
  for (const [name, value] of properties) {
    data[pos++] = name.length;
    for (let i = 0; i < name.length; i++) data[pos++] = name.charCodeAt(i);
    const n = value.length;
    data[pos++] = n >>> 24;
    data[pos++] = (n >>> 16) & 0xff;
    data[pos++] = (n >>> 8) & 0xff;
    data[pos++] = n & 0xff;
    data.set(value, pos);
    pos += n;
  }
  return data;
}

/**
 * Parses READY/INITIATE metadata. Names are lowercased because RFC 23 makes them
 * case-insensitive; throws ProtocolError when a declared length overruns the data.
 */
export function decodeProperties(data: Uint8Array): Map<string, Uint8Array> {
  const props = new Map<string, Uint8Array>();
  let pos = 0;
  while (pos < data.length) {
    const nameLength = data[pos++];
    if (nameLength === 0 || pos + nameLength + 4 > data.length) {
      throw new ProtocolError("malformed metadata in READY");
    }
    let name = "";
    for (let i = 0; i < nameLength; i++) name += String.fromCharCode(data[pos + i]);
    pos += nameLength;
    const valueLength = ((data[pos] << 24) | (data[pos + 1] << 16) | (data[pos + 2] << 8) |
      data[pos + 3]) >>> 0;
    pos += 4;
    if (valueLength > data.length - pos) throw new ProtocolError("malformed metadata in READY");
    props.set(name.toLowerCase(), data.subarray(pos, pos + valueLength));
    pos += valueLength;
  }
  return props;
}

/** Encodes PING with a TTL in deciseconds and a context (RFC 37: at most 16 bytes). */
export function encodePing(ttlDeciseconds: number, context: Uint8Array = EMPTY): Uint8Array {
  const data = new Uint8Array(2 + context.length);
  const ttl = Math.max(0, Math.min(0xffff, Math.floor(ttlDeciseconds)));
  data[0] = ttl >>> 8;
  data[1] = ttl & 0xff;
  data.set(context, 2);
  return encodeCommand("PING", data);
}

/** Decodes a string of Latin-1/ASCII bytes (READY values, command names). */
export function latin1(bytes: Uint8Array): string {
  let s = "";
  for (let i = 0; i < bytes.length; i++) s += String.fromCharCode(bytes[i]);
  return s;
}

/** Encodes an ASCII string as bytes (socket type names). */
export function ascii(text: string): Uint8Array {
  const out = new Uint8Array(text.length);
  for (let i = 0; i < text.length; i++) out[i] = text.charCodeAt(i) & 0xff;
  return out;
}

/** Joins byte arrays into a fresh one of its own (not an arena view: it may live long). */
export function concat(...chunks: Uint8Array[]): Uint8Array {
  let size = 0;
  for (const chunk of chunks) size += chunk.length;
  const out = new Uint8Array(size);
  let at = 0;
  for (const chunk of chunks) {
    out.set(chunk, at);
    at += chunk.length;
  }
  return out;
}
