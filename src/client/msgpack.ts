/**
 * MessagePack encoding for lomq requests, with the one control JavaScript numbers lack:
 * saying "this is a float" for an integral value.
 *
 * A JS number is a double, so `100` and `100.0` are the same value. The encoder sends
 * integral numbers as msgpack integers (what a Lua function comparing `math.type(x)`
 * expects for counts and ids) and every other number as float64. To send an integral
 * float, wrap it: `new Float(100)` goes out as float64 100.0.
 *
 * Decoding replies uses msgpackr (see {@linkcode createDecoder}): it is fast and, with
 * `int64AsType: "auto"`, gives a `bigint` exactly where a number would lose precision.
 *
 * @module
 */

import { Unpackr } from "msgpackr";

/** A number that is sent as a msgpack float64 even when it is integral. */
export class Float {
  /** The value. */
  readonly value: number;

  /** Wraps `value`; `new Float(100)` is sent as 100.0. */
  constructor(value: number) {
    this.value = value;
  }

  /** JSON shows the bare number. */
  toJSON(): number {
    return this.value;
  }
}

/** Thrown when a value has no MessagePack form (a function, a cycle, a huge bigint...). */
export class EncodeError extends Error {
  /** The error class name, for logs and `instanceof`-free checks. */
  override name = "EncodeError";
}

/** Nesting deeper than this is refused: it is almost always a cyclic structure. */
export const MAX_DEPTH = 100;

const UINT64_MAX = (1n << 64n) - 1n;
const INT64_MIN = -(1n << 63n);
const TWO_POW_63 = 2 ** 63;
const TWO_POW_64 = 2 ** 64;
const textEncoder = new TextEncoder();

/** A growable byte buffer with the few writes msgpack needs. */
class Writer {
  bytes = new Uint8Array(256);
  view = new DataView(this.bytes.buffer);
  length = 0;

  ensure(extra: number): void {
    const needed = this.length + extra;
    if (needed <= this.bytes.length) return;
    let size = this.bytes.length * 2;
    while (size < needed) size *= 2;
    const grown = new Uint8Array(size);
    grown.set(this.bytes.subarray(0, this.length));
    this.bytes = grown;
    this.view = new DataView(grown.buffer);
  }

  u8(value: number): void {
    this.ensure(1);
    this.bytes[this.length++] = value;
  }

  u8u8(tag: number, value: number): void {
    this.ensure(2);
    this.bytes[this.length++] = tag;
    this.bytes[this.length++] = value;
  }

  u16(tag: number, value: number): void {
    this.ensure(3);
    this.bytes[this.length] = tag;
    this.view.setUint16(this.length + 1, value);
    this.length += 3;
  }

  u32(tag: number, value: number): void {
    this.ensure(5);
    this.bytes[this.length] = tag;
    this.view.setUint32(this.length + 1, value);
    this.length += 5;
  }

  raw(bytes: Uint8Array): void {
    this.ensure(bytes.length);
    this.bytes.set(bytes, this.length);
    this.length += bytes.length;
  }
}

/** Encodes one value as MessagePack. Throws {@linkcode EncodeError} when it cannot. */
export function encode(value: unknown): Uint8Array {
  const writer = new Writer();
  writeValue(writer, value, 0);
  return writer.bytes.slice(0, writer.length);
}

/** Encodes an RPC request body: the array `[method, ...args]`. */
export function encodeRequest(method: string, args: readonly unknown[]): Uint8Array {
  return encode([method, ...args]);
}

function writeValue(w: Writer, value: unknown, depth: number): void {
  if (depth > MAX_DEPTH) {
    throw new EncodeError(`value nested deeper than ${MAX_DEPTH} levels (a cycle?)`);
  }
  switch (typeof value) {
    case "undefined":
      return w.u8(0xc0);
    case "boolean":
      return w.u8(value ? 0xc3 : 0xc2);
    case "number":
      return writeNumber(w, value);
    case "bigint":
      return writeBigInt(w, value);
    case "string":
      return writeString(w, value);
    case "object":
      break;
    default:
      throw new EncodeError(`cannot encode a ${typeof value} as MessagePack`);
  }
  if (value === null) return w.u8(0xc0);
  if (value instanceof Float) return writeFloat(w, value.value);
  if (value instanceof Uint8Array) return writeBinary(w, value);
  if (ArrayBuffer.isView(value)) {
    return writeBinary(w, new Uint8Array(value.buffer, value.byteOffset, value.byteLength));
  }
  if (value instanceof ArrayBuffer) return writeBinary(w, new Uint8Array(value));
  if (Array.isArray(value)) {
    writeHeader(w, value.length, 0x90, 0xdc, 0xdd);
    for (const item of value) writeValue(w, item, depth + 1);
    return;
  }
  if (value instanceof Map) {
    writeHeader(w, value.size, 0x80, 0xde, 0xdf);
    for (const [key, item] of value) {
      writeValue(w, key, depth + 1);
      writeValue(w, item, depth + 1);
    }
    return;
  }
  const prototype = Object.getPrototypeOf(value);
  if (prototype !== Object.prototype && prototype !== null) {
    const name = (value as object).constructor?.name ?? "object";
    throw new EncodeError(
      `cannot encode a ${name} as MessagePack (use plain objects, arrays, Maps, Uint8Array)`,
    );
  }
  // Like JSON.stringify, a property holding undefined is left out rather than sent as nil.
  const entries = Object.entries(value as Record<string, unknown>).filter(([, v]) =>
    v !== undefined
  );
  writeHeader(w, entries.length, 0x80, 0xde, 0xdf);
  for (const [key, item] of entries) {
    writeString(w, key);
    writeValue(w, item, depth + 1);
  }
}

function writeHeader(w: Writer, length: number, fix: number, tag16: number, tag32: number): void {
  if (length < 16) w.u8(fix | length);
  else if (length < 0x10000) w.u16(tag16, length);
  else w.u32(tag32, length);
}

function writeNumber(w: Writer, value: number): void {
  // -0 is integral but a Lua integer cannot hold its sign; a float keeps it.
  if (!Number.isInteger(value) || Object.is(value, -0)) return writeFloat(w, value);
  if (value >= 0) {
    if (value < 0x80) return w.u8(value);
    if (value < 0x100) return w.u8u8(0xcc, value);
    if (value < 0x10000) return w.u16(0xcd, value);
    if (value < 0x1_0000_0000) return w.u32(0xce, value);
    if (value < TWO_POW_64) return writeUint64(w, BigInt(value));
    return writeFloat(w, value);
  }
  if (value >= -32) return w.u8(value & 0xff);
  if (value >= -0x80) return w.u8u8(0xd0, value & 0xff);
  if (value >= -0x8000) return w.u16(0xd1, value & 0xffff);
  if (value >= -0x8000_0000) return w.u32(0xd2, value >>> 0);
  if (value >= -TWO_POW_63) return writeInt64(w, BigInt(value));
  return writeFloat(w, value);
}

function writeBigInt(w: Writer, value: bigint): void {
  // Small values take the compact forms a number would.
  if (value >= -0x8000_0000n && value <= 0xffff_ffffn) return writeNumber(w, Number(value));
  if (value > 0n && value <= UINT64_MAX) return writeUint64(w, value);
  if (value < 0n && value >= INT64_MIN) return writeInt64(w, value);
  throw new EncodeError(`integer ${value} does not fit in 64 bits`);
}

function writeUint64(w: Writer, value: bigint): void {
  w.ensure(9);
  w.bytes[w.length] = 0xcf;
  w.view.setBigUint64(w.length + 1, value);
  w.length += 9;
}

function writeInt64(w: Writer, value: bigint): void {
  w.ensure(9);
  w.bytes[w.length] = 0xd3;
  w.view.setBigInt64(w.length + 1, value);
  w.length += 9;
}

function writeFloat(w: Writer, value: number): void {
  w.ensure(9);
  w.bytes[w.length] = 0xcb;
  w.view.setFloat64(w.length + 1, value);
  w.length += 9;
}

function writeString(w: Writer, value: string): void {
  const bytes = textEncoder.encode(value);
  const length = bytes.length;
  if (length < 32) w.u8(0xa0 | length);
  else if (length < 0x100) w.u8u8(0xd9, length);
  else if (length < 0x10000) w.u16(0xda, length);
  else w.u32(0xdb, length);
  w.raw(bytes);
}

function writeBinary(w: Writer, bytes: Uint8Array): void {
  const length = bytes.length;
  if (length < 0x100) w.u8u8(0xc4, length);
  else if (length < 0x10000) w.u16(0xc5, length);
  else w.u32(0xc6, length);
  w.raw(bytes);
}

/** How msgpack maps come back from {@linkcode createDecoder}. */
export type MapMode = "object" | "map";

/**
 * A decoder for replies: integers as numbers, or as `bigint` beyond 2^53; `bin` as
 * Uint8Array; maps as plain objects (keys become strings, so a Lua table with both
 * `1` and `"1"` keys loses one) or, with `"map"`, as `Map`s with their exact keys.
 */
export function createDecoder(maps: MapMode = "object"): (bytes: Uint8Array) => unknown {
  const unpackr = new Unpackr({
    useRecords: false,
    mapsAsObjects: maps === "object",
    // msgpackr implements "auto" (README, unpack.js) but its typings omit it.
    int64AsType: "auto" as "bigint",
  });
  return (bytes) => unpackr.unpack(bytes);
}
