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

// A full specifier (the version of deno.json's import map, checked by tests/anywhere_test.ts)
// so that this module imports from any folder, without lomq's deno.json. The "unpack" entry is
// msgpackr in plain JS: its main entry under Deno reads an environment variable at import
// (a client program would need --allow-env) to load a native addon that Deno only runs with
// --allow-ffi.
// deno-lint-ignore no-import-prefix
import { Unpackr } from "npm:msgpackr@1.11.14/unpack";
import { MsgpackWriter } from "../msgpack/writer.ts";

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

/** Encodes one value as MessagePack. Throws {@linkcode EncodeError} when it cannot. */
export function encode(value: unknown): Uint8Array {
  const writer = new MsgpackWriter();
  writeValue(writer, value, 0);
  return writer.take();
}

/** Encodes an RPC request body: the array `[method, ...args]`. */
export function encodeRequest(method: string, args: readonly unknown[]): Uint8Array {
  return encode([method, ...args]);
}

function writeValue(w: MsgpackWriter, value: unknown, depth: number): void {
  if (depth > MAX_DEPTH) {
    throw new EncodeError(`value nested deeper than ${MAX_DEPTH} levels (a cycle?)`);
  }
  switch (typeof value) {
    case "undefined":
      return w.nil();
    case "boolean":
      return w.boolean(value);
    case "number":
      return writeNumber(w, value);
    case "bigint":
      return writeBigInt(w, value);
    case "string":
      return w.str(textEncoder.encode(value));
    case "object":
      break;
    default:
      throw new EncodeError(`cannot encode a ${typeof value} as MessagePack`);
  }
  if (value === null) return w.nil();
  if (value instanceof Float) return w.float64(value.value);
  if (value instanceof Uint8Array) return w.bin(value);
  if (ArrayBuffer.isView(value)) {
    return w.bin(new Uint8Array(value.buffer, value.byteOffset, value.byteLength));
  }
  if (value instanceof ArrayBuffer) return w.bin(new Uint8Array(value));
  if (Array.isArray(value)) {
    w.arrayHeader(value.length);
    for (const item of value) writeValue(w, item, depth + 1);
    return;
  }
  if (value instanceof Map) {
    w.mapHeader(value.size);
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
  w.mapHeader(entries.length);
  for (const [key, item] of entries) {
    w.str(textEncoder.encode(key));
    writeValue(w, item, depth + 1);
  }
}

function writeNumber(w: MsgpackWriter, value: number): void {
  // -0 is integral but a Lua integer cannot hold its sign; a float keeps it.
  if (!Number.isInteger(value) || Object.is(value, -0)) return w.float64(value);
  if (value >= -0x8000_0000 && value <= 0xffff_ffff) return w.int32(value);
  if (value > 0 && value < TWO_POW_64) return w.int64(BigInt(value));
  if (value < 0 && value >= -TWO_POW_63) return w.int64(BigInt(value));
  return w.float64(value);
}

function writeBigInt(w: MsgpackWriter, value: bigint): void {
  // Small values take the compact forms a number would.
  if (value >= -0x8000_0000n && value <= 0xffff_ffffn) return w.int32(Number(value));
  if (value > 0n && value <= UINT64_MAX) return w.int64(value);
  if (value < 0n && value >= INT64_MIN) return w.int64(value);
  throw new EncodeError(`integer ${value} does not fit in 64 bits`);
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
