/**
 * JSON on the command line, without losing MessagePack's types.
 *
 * Arguments (`lomq call`): each is JSON, and a bare word that is not JSON is a string.
 * A number written with a `.` or an exponent is sent as a float (`1.0`), one without as
 * an integer (`1`), exactly even beyond 2^53. What cannot be sent as written is refused
 * rather than changed: an integer beyond 64 bits, a float beyond float64's range (`1E400`
 * would be Infinity) or a nonzero one below it (`1e-400` would be 0).
 *
 * Results (`lomq call`, `lomq sub`): integers print exactly, floats always show that
 * they are floats (`100.0`), and what JSON has no form for uses a one-key object:
 *
 * | MessagePack                      | JSON                              |
 * | -------------------------------- | --------------------------------- |
 * | bin (and non-UTF-8 str)          | `{"$bin": "<base64>"}`            |
 * | float NaN, Infinity, -Infinity   | `{"$float": "NaN"}`               |
 * | map with other than str/int keys | `{"$map": [[key, value], ...]}`   |
 * | ext                              | `{"$ext": [type, "<base64>"]}`    |
 *
 * Maps whose keys are all strings or integers print as objects (integer keys become
 * strings); if that would merge two keys (`1` and `"1"`), the map prints as `$map`.
 * The same `$bin`, `$float` and `$map` forms are accepted in arguments.
 *
 * @module
 */

import { Float } from "../client/msgpack.ts";
import { UsageError } from "./args.ts";

// ---- arguments ------------------------------------------------------------------------

type Reviver = (key: string, value: unknown, context?: { source?: string }) => unknown;

const INT64_MIN = -(1n << 63n);
const UINT64_MAX = (1n << 64n) - 1n;

/**
 * Parses one command-line argument into a value for the msgpack encoder: Float for
 * float literals, bigint for integers beyond 2^53, Uint8Array for `$bin`, Map for
 * `$map`. Text that is not JSON is a string, unless it starts like a JSON array, object
 * or string, in which case the mistake is reported ({@linkcode UsageError}).
 */
export function parseArgument(text: string): unknown {
  try {
    return JSON.parse(text, revive as Reviver);
  } catch (error) {
    if (error instanceof UsageError) throw error;
    if (/^\s*[[{"]/.test(text)) {
      throw new UsageError(`argument '${text}' is not valid JSON: ${(error as Error).message}`);
    }
    return text;
  }
}

function revive(_key: string, value: unknown, context?: { source?: string }): unknown {
  if (typeof value === "number") return reviveNumber(value, context?.source);
  if (value === null || typeof value !== "object" || Array.isArray(value)) return value;
  const keys = Object.keys(value);
  if (keys.length !== 1) return value;
  const inner = (value as Record<string, unknown>)[keys[0]];
  switch (keys[0]) {
    case "$bin":
      if (typeof inner !== "string") throw new UsageError(`"$bin" needs a base64 string`);
      return decodeBase64(inner);
    case "$float":
      return reviveFloat(inner);
    case "$map":
      return reviveMap(inner);
    default:
      return value;
  }
}

function reviveNumber(value: number, source: string | undefined): unknown {
  // Without the source text (an engine lacking JSON.parse source access) the type is a guess.
  if (source === undefined) return Number.isInteger(value) ? value : new Float(value);
  if (/[.eE]/.test(source)) return reviveFloatLiteral(value, source);
  // `-0` written without a point is the integer 0 (the encoder sends -0 as a float).
  if (Number.isSafeInteger(value)) return value === 0 ? 0 : value;
  const exact = BigInt(source);
  if (exact < INT64_MIN || exact > UINT64_MAX) {
    throw new UsageError(
      `integer ${source} does not fit in 64 bits (write ${source}.0 to send it as a float)`,
    );
  }
  return exact;
}

/**
 * A float literal, refused where float64 would silently change what it says: past the
 * largest float64 it would become Infinity, and a nonzero literal below the smallest
 * subnormal would become 0. (Rounding within float64's range is what a float is.)
 */
function reviveFloatLiteral(value: number, source: string): Float {
  if (!Number.isFinite(value)) {
    const sign = source.trim().startsWith("-") ? "-" : "";
    throw new UsageError(
      `number ${source} is too large for a float64 (the largest is about 1.8e308); ` +
        `to send ${sign}Infinity, write {"$float": "${sign}Infinity"}`,
    );
  }
  if (value === 0 && /[1-9]/.test(source.split(/[eE]/)[0])) {
    throw new UsageError(
      `number ${source} is too small for a float64 and would arrive as 0.0 ` +
        `(the smallest above 0 is about 4.9e-324)`,
    );
  }
  return new Float(value);
}

function reviveFloat(inner: unknown): Float {
  if (inner instanceof Float) return inner;
  if (typeof inner === "number") return new Float(inner);
  if (typeof inner === "bigint") return new Float(Number(inner));
  const named: Record<string, number> = {
    NaN: NaN,
    Infinity: Infinity,
    "-Infinity": -Infinity,
  };
  if (typeof inner === "string" && inner in named) return new Float(named[inner]);
  throw new UsageError(`"$float" needs a number or "NaN", "Infinity", "-Infinity"`);
}

function reviveMap(inner: unknown): Map<unknown, unknown> {
  const pairs = Array.isArray(inner) ? inner : undefined;
  if (!pairs || !pairs.every((pair) => Array.isArray(pair) && pair.length === 2)) {
    throw new UsageError(`"$map" needs an array of [key, value] pairs`);
  }
  return new Map(pairs as [unknown, unknown][]);
}

// ---- results --------------------------------------------------------------------------

/** A decoded MessagePack value that keeps every distinction JSON would lose. */
export type Tagged =
  | { type: "nil" }
  | { type: "bool"; value: boolean }
  | { type: "int"; value: bigint }
  | { type: "float"; value: number }
  | { type: "str"; value: string }
  | { type: "bin"; value: Uint8Array }
  | { type: "array"; value: Tagged[] }
  | { type: "map"; value: [Tagged, Tagged][] }
  | { type: "ext"; extType: number; value: Uint8Array };

/** A reply or publication that is not valid MessagePack. */
export class MalformedError extends Error {
  /** The error class name, for logs and `instanceof`-free checks. */
  override name = "MalformedError";
}

const MAX_DEPTH = 200;
const strictUtf8 = new TextDecoder("utf-8", { fatal: true });

/** Decodes one complete MessagePack value; throws {@linkcode MalformedError}. */
export function decodeTagged(bytes: Uint8Array): Tagged {
  const reader = new TaggedReader(bytes);
  const value = reader.value(0);
  if (reader.offset !== bytes.length) {
    throw new MalformedError(`${bytes.length - reader.offset} unexpected bytes after the value`);
  }
  return value;
}

class TaggedReader {
  readonly bytes: Uint8Array;
  readonly view: DataView;
  offset = 0;

  constructor(bytes: Uint8Array) {
    this.bytes = bytes;
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  #need(count: number): number {
    const at = this.offset;
    if (at + count > this.bytes.length) throw new MalformedError("truncated MessagePack value");
    this.offset += count;
    return at;
  }

  #u8(): number {
    return this.bytes[this.#need(1)];
  }

  #u16(): number {
    return this.view.getUint16(this.#need(2));
  }

  #u32(): number {
    return this.view.getUint32(this.#need(4));
  }

  #slice(length: number): Uint8Array {
    const at = this.#need(length);
    return this.bytes.slice(at, at + length);
  }

  value(depth: number): Tagged {
    if (depth > MAX_DEPTH) throw new MalformedError(`nested deeper than ${MAX_DEPTH} levels`);
    const tag = this.#u8();
    if (tag <= 0x7f) return { type: "int", value: BigInt(tag) };
    if (tag >= 0xe0) return { type: "int", value: BigInt(tag - 0x100) };
    if (tag <= 0x8f) return this.#map(tag & 0x0f, depth);
    if (tag <= 0x9f) return this.#array(tag & 0x0f, depth);
    if (tag <= 0xbf) return this.#str(tag & 0x1f);
    const view = this.view;
    switch (tag) {
      case 0xc0:
        return { type: "nil" };
      case 0xc2:
        return { type: "bool", value: false };
      case 0xc3:
        return { type: "bool", value: true };
      case 0xc4:
        return { type: "bin", value: this.#slice(this.#u8()) };
      case 0xc5:
        return { type: "bin", value: this.#slice(this.#u16()) };
      case 0xc6:
        return { type: "bin", value: this.#slice(this.#u32()) };
      case 0xc7:
        return this.#ext(this.#u8());
      case 0xc8:
        return this.#ext(this.#u16());
      case 0xc9:
        return this.#ext(this.#u32());
      case 0xca:
        return { type: "float", value: view.getFloat32(this.#need(4)) };
      case 0xcb:
        return { type: "float", value: view.getFloat64(this.#need(8)) };
      case 0xcc:
        return { type: "int", value: BigInt(this.#u8()) };
      case 0xcd:
        return { type: "int", value: BigInt(this.#u16()) };
      case 0xce:
        return { type: "int", value: BigInt(this.#u32()) };
      case 0xcf:
        return { type: "int", value: view.getBigUint64(this.#need(8)) };
      case 0xd0:
        return { type: "int", value: BigInt(view.getInt8(this.#need(1))) };
      case 0xd1:
        return { type: "int", value: BigInt(view.getInt16(this.#need(2))) };
      case 0xd2:
        return { type: "int", value: BigInt(view.getInt32(this.#need(4))) };
      case 0xd3:
        return { type: "int", value: view.getBigInt64(this.#need(8)) };
      case 0xd4:
        return this.#ext(1);
      case 0xd5:
        return this.#ext(2);
      case 0xd6:
        return this.#ext(4);
      case 0xd7:
        return this.#ext(8);
      case 0xd8:
        return this.#ext(16);
      case 0xd9:
        return this.#str(this.#u8());
      case 0xda:
        return this.#str(this.#u16());
      case 0xdb:
        return this.#str(this.#u32());
      case 0xdc:
        return this.#array(this.#u16(), depth);
      case 0xdd:
        return this.#array(this.#u32(), depth);
      case 0xde:
        return this.#map(this.#u16(), depth);
      case 0xdf:
        return this.#map(this.#u32(), depth);
      default:
        throw new MalformedError(`invalid MessagePack byte 0x${tag.toString(16)}`);
    }
  }

  #str(length: number): Tagged {
    const bytes = this.#slice(length);
    try {
      return { type: "str", value: strictUtf8.decode(bytes) };
    } catch {
      return { type: "bin", value: bytes }; // keep bytes that are not text exactly
    }
  }

  #ext(length: number): Tagged {
    const extType = this.view.getInt8(this.#need(1));
    return { type: "ext", extType, value: this.#slice(length) };
  }

  #array(count: number, depth: number): Tagged {
    // Every element takes at least a byte: a count beyond the input is a lie, not a hint.
    if (count > this.bytes.length - this.offset) throw new MalformedError("truncated array");
    const items: Tagged[] = [];
    for (let i = 0; i < count; i++) items.push(this.value(depth + 1));
    return { type: "array", value: items };
  }

  #map(count: number, depth: number): Tagged {
    if (count * 2 > this.bytes.length - this.offset) throw new MalformedError("truncated map");
    const entries: [Tagged, Tagged][] = [];
    for (let i = 0; i < count; i++) entries.push([this.value(depth + 1), this.value(depth + 1)]);
    return { type: "map", value: entries };
  }
}

/** Renders a tagged value as compact JSON text following the table in the module doc. */
export function taggedToJson(value: Tagged): string {
  switch (value.type) {
    case "nil":
      return "null";
    case "bool":
      return value.value ? "true" : "false";
    case "int":
      return value.value.toString();
    case "float":
      return floatToJson(value.value);
    case "str":
      return JSON.stringify(value.value);
    case "bin":
      return `{"$bin":${JSON.stringify(encodeBase64(value.value))}}`;
    case "ext":
      return `{"$ext":[${value.extType},${JSON.stringify(encodeBase64(value.value))}]}`;
    case "array":
      return `[${value.value.map(taggedToJson).join(",")}]`;
    case "map":
      return mapToJson(value.value);
  }
}

/** A float as JSON that still reads as a float: `100.0`, `-0.0`, `1e+300`. */
export function floatToJson(value: number): string {
  if (Number.isNaN(value)) return `{"$float":"NaN"}`;
  if (!Number.isFinite(value)) return `{"$float":"${value > 0 ? "Infinity" : "-Infinity"}"}`;
  if (Object.is(value, -0)) return "-0.0";
  const text = String(value);
  return /[.e]/.test(text) ? text : `${text}.0`;
}

function mapToJson(entries: [Tagged, Tagged][]): string {
  const keys: string[] = [];
  for (const [key] of entries) {
    if (key.type === "str") keys.push(key.value);
    else if (key.type === "int") keys.push(key.value.toString());
    else break;
  }
  if (keys.length === entries.length && new Set(keys).size === keys.length) {
    const fields = entries.map(([, item], i) => `${JSON.stringify(keys[i])}:${taggedToJson(item)}`);
    return `{${fields.join(",")}}`;
  }
  const pairs = entries.map(([key, item]) => `[${taggedToJson(key)},${taggedToJson(item)}]`);
  return `{"$map":[${pairs.join(",")}]}`;
}

/** Bytes as standard base64. */
export function encodeBase64(bytes: Uint8Array): string {
  let binary = "";
  const chunk = 0x8000;
  for (let i = 0; i < bytes.length; i += chunk) {
    binary += String.fromCharCode(...bytes.subarray(i, i + chunk));
  }
  return btoa(binary);
}

/** Standard base64 (padding optional) to bytes; throws {@linkcode UsageError} when invalid. */
export function decodeBase64(text: string): Uint8Array {
  let binary: string;
  try {
    binary = atob(text);
  } catch {
    throw new UsageError(`"$bin" value is not valid base64: ${JSON.stringify(text)}`);
  }
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  return bytes;
}

/** Bytes as lowercase hex, for `--msgpack-hex`. */
export function toHex(bytes: Uint8Array): string {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

/** Text for a topic frame: a JSON string, or `$bin` when it is not UTF-8. */
export function bytesToJsonText(bytes: Uint8Array): string {
  try {
    return JSON.stringify(strictUtf8.decode(bytes));
  } catch {
    return taggedToJson({ type: "bin", value: bytes });
  }
}
