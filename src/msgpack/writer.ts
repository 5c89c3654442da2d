/**
 * The byte-level MessagePack writer shared by the Lua codec (values from the Lua stack)
 * and the TypeScript client (values from JavaScript): one place for the wire forms.
 *
 * Every integer goes out in its smallest form, a non-negative one past 32 bits as uint64
 * (as msgpack-c, the original LuaOverMQ's codec, does), floats always as float64.
 *
 * @module
 */

import { copyBytes } from "../bytes.ts";

/** A growable buffer that MessagePack is written into. */
export class MsgpackWriter {
  /** The buffer; only the first {@link length} bytes are written. */
  buf: Uint8Array;
  /** A view of {@link buf} for multi-byte writes. */
  view: DataView;
  /** Bytes written so far. */
  length = 0;
  // The view written() made last, and the buffer it is a view of.
  #written: Uint8Array | undefined;
  #writtenOf: Uint8Array | undefined;

  constructor(initialSize = 256) {
    this.buf = new Uint8Array(initialSize);
    this.view = new DataView(this.buf.buffer);
  }

  /** Starts over, keeping the buffer. */
  reset(): void {
    this.length = 0;
  }

  /** A copy of what was written. */
  take(): Uint8Array {
    return this.buf.slice(0, this.length);
  }

  /** A view of what was written, valid until the next write or reset. */
  written(): Uint8Array {
    // The same view again while it covers the same bytes: a server's replies are often of
    // one size, and a view costs more to make than a small reply to encode.
    const last = this.#written;
    if (last !== undefined && last.length === this.length && this.#writtenOf === this.buf) {
      return last;
    }
    this.#writtenOf = this.buf;
    // Cheaper than subarray (see arena.ts); buf always starts its buffer.
    return this.#written = new Uint8Array(this.buf.buffer, 0, this.length);
  }

  /** Makes room for `n` more bytes. */
  ensure(n: number): void {
    const needed = this.length + n;
    if (needed <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < needed) size *= 2;
    const grown = new Uint8Array(size);
    grown.set(this.buf.subarray(0, this.length));
    this.buf = grown;
    this.view = new DataView(grown.buffer);
  }

  /** One raw byte (also a whole fixint, nil, true or false). */
  byte(b: number): void {
    this.ensure(1);
    this.buf[this.length++] = b;
  }

  /** nil. */
  nil(): void {
    this.byte(0xc0);
  }

  /** A boolean. */
  boolean(value: boolean): void {
    this.byte(value ? 0xc3 : 0xc2);
  }

  /** An integer in int32 or uint32 range, in its smallest form. */
  int32(n: number): void {
    if (n >= -32 && n <= 127) return this.byte(n & 0xff);
    this.ensure(5);
    const p = this.length;
    const buf = this.buf;
    if (n >= 0) {
      if (n <= 0xff) {
        buf[p] = 0xcc;
        buf[p + 1] = n;
        this.length += 2;
      } else if (n <= 0xffff) {
        buf[p] = 0xcd;
        this.view.setUint16(p + 1, n);
        this.length += 3;
      } else {
        buf[p] = 0xce;
        this.view.setUint32(p + 1, n);
        this.length += 5;
      }
    } else if (n >= -0x80) {
      buf[p] = 0xd0;
      this.view.setInt8(p + 1, n);
      this.length += 2;
    } else if (n >= -0x8000) {
      buf[p] = 0xd1;
      this.view.setInt16(p + 1, n);
      this.length += 3;
    } else {
      buf[p] = 0xd2;
      this.view.setInt32(p + 1, n);
      this.length += 5;
    }
  }

  /**
   * An integer outside the 32-bit ranges (the caller checks it fits 64 bits): uint64 when
   * non-negative, else int64.
   */
  int64(v: bigint): void {
    this.ensure(9);
    const p = this.length;
    if (v >= 0n) {
      this.buf[p] = 0xcf;
      this.view.setBigUint64(p + 1, v);
    } else {
      this.buf[p] = 0xd3;
      this.view.setBigInt64(p + 1, v);
    }
    this.length += 9;
  }

  /** A float64, even when the value is integral. */
  float64(value: number): void {
    this.ensure(9);
    this.buf[this.length] = 0xcb;
    this.view.setFloat64(this.length + 1, value);
    this.length += 9;
  }

  /** A str holding `bytes` (which should be UTF-8). */
  str(bytes: Uint8Array): void {
    this.strRange(bytes, 0, bytes.length);
  }

  /** A str holding `source[start, start + n)`: no view made for it (see bytes.ts). */
  strRange(source: Uint8Array, start: number, n: number): void {
    if (n < 32) this.byte(0xa0 | n);
    else this.#sized(n, 0xd9, 0xda, 0xdb);
    this.rawRange(source, start, n);
  }

  /** A bin holding `bytes`. */
  bin(bytes: Uint8Array): void {
    this.binRange(bytes, 0, bytes.length);
  }

  /** A bin holding `source[start, start + n)`. */
  binRange(source: Uint8Array, start: number, n: number): void {
    this.#sized(n, 0xc4, 0xc5, 0xc6);
    this.rawRange(source, start, n);
  }

  /** An array header for `n` elements. */
  arrayHeader(n: number): void {
    if (n < 16) this.byte(0x90 | n);
    else this.#sized(n, -1, 0xdc, 0xdd);
  }

  /** A map header for `n` pairs. */
  mapHeader(n: number): void {
    if (n < 16) this.byte(0x80 | n);
    else this.#sized(n, -1, 0xde, 0xdf);
  }

  /**
   * Reserves room for a map header whose count is known only after the pairs are
   * written; {@link finishMapHeader} fills it in and closes the gap.
   */
  reserveMapHeader(): number {
    this.ensure(5);
    const at = this.length;
    this.length += 5;
    return at;
  }

  /** Writes the header reserved at `at` for `count` pairs, in its smallest form. */
  finishMapHeader(at: number, count: number): void {
    const buf = this.buf;
    if (count < 16) {
      buf[at] = 0x80 | count;
      buf.copyWithin(at + 1, at + 5, this.length);
      this.length -= 4;
    } else if (count < 0x10000) {
      buf[at] = 0xde;
      this.view.setUint16(at + 1, count);
      buf.copyWithin(at + 3, at + 5, this.length);
      this.length -= 2;
    } else {
      buf[at] = 0xdf;
      this.view.setUint32(at + 1, count);
    }
  }

  /** Raw bytes, as they are. */
  raw(bytes: Uint8Array): void {
    this.rawRange(bytes, 0, bytes.length);
  }

  /** `source[start, start + n)`, as it is. */
  rawRange(source: Uint8Array, start: number, n: number): void {
    this.ensure(n);
    copyBytes(this.buf, this.length, source, start, n);
    this.length += n;
  }

  /** A tag with an 8-, 16- or 32-bit size (`tag8` -1: no 8-bit form). */
  #sized(n: number, tag8: number, tag16: number, tag32: number): void {
    this.ensure(5);
    const p = this.length;
    if (n < 0x100 && tag8 >= 0) {
      this.buf[p] = tag8;
      this.buf[p + 1] = n;
      this.length += 2;
    } else if (n < 0x10000) {
      this.buf[p] = tag16;
      this.view.setUint16(p + 1, n);
      this.length += 3;
    } else {
      this.buf[p] = tag32;
      this.view.setUint32(p + 1, n);
      this.length += 5;
    }
  }
}
