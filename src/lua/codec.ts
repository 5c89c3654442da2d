/**
 * MessagePack straight onto the Lua stack and back, with exact types.
 *
 * Decoding pushes values with the raw C API as it reads, so no JavaScript object
 * is built per request; encoding walks the Lua value on the stack and writes bytes.
 * The rules (the wire contract of LuaOverMQ, made exact):
 * - integers are Lua 64-bit integers both ways; a uint64 above int64 max is refused;
 * - floats stay floats: a Lua float goes out as float64 even when integral;
 * - str and bin both become Lua strings byte for byte; a Lua string goes out as str
 *   when it is valid UTF-8, as bin otherwise;
 * - a table goes out as an array exactly when its keys are 1..n (n >= 1), else as a
 *   map with every key type kept; `LuaOverMQ.array`/`map` force the form;
 * - ext types, cycles and nesting deeper than {@link MAX_DEPTH} are errors, never crashes;
 * - functions, userdata and threads go out as nil, as the original did.
 *
 * @module
 */

import { type LuaApi, type LuaState, LuaType, REGISTRY_INDEX } from "./api.ts";
import { MsgpackWriter } from "../msgpack/writer.ts";

/** Deepest nesting of arrays/maps accepted in either direction. */
export const MAX_DEPTH = 100;

/**
 * Most values pushed onto the Lua stack at once (a call's arguments). Lua's own limit is
 * LUAI_MAXSTACK, one million slots per thread, shared with the frames below.
 */
export const MAX_STACK_VALUES = 900_000;

/** A value that cannot cross between MessagePack and Lua; the message says why. */
export class CodecError extends Error {
  override name = "CodecError";
}

const INT64_MAX = 0x7fffffffffffffffn;
const textEncoder = new TextEncoder();

/** -32..255 as BigInt, so the commonest integers cross into Lua without an allocation. */
const SMALL_INTEGERS: readonly bigint[] = Array.from({ length: 288 }, (_, i) => BigInt(i - 32));

/**
 * Table forms, kept in a weak table keyed by the table: `LuaOverMQ.array(t)` (an array of
 * `#t` elements), `LuaOverMQ.map(t)`, `LuaOverMQ.array(t, n)` (n >= 0: exactly n elements),
 * and arrays decoded from msgpack whose length the table alone cannot tell (empty, or with
 * nils), stored as `DECODED_ARRAY - n`.
 */
export const FORM_ARRAY = -1;
/** See {@link FORM_ARRAY}. */
export const FORM_MAP = -2;
/** See {@link FORM_ARRAY}: `LuaOverMQ.bin(s)`, a table `{s}` sent as msgpack bin. */
export const FORM_BIN = -3;
/**
 * See {@link FORM_ARRAY}: a decoded array of n elements is recorded as `DECODED_ARRAY - n`,
 * and goes back as an array of n elements, or more if the script added keys beyond n.
 */
export const DECODED_ARRAY = -4;

/** Decodes MessagePack bytes onto a Lua stack. */
export class Decoder {
  /** Registry reference of the weak table of forms (see {@link FORM_ARRAY}), or 0. */
  formsRef = 0;
  #api: LuaApi;
  #buf: Uint8Array = new Uint8Array(0);
  #viewCache: DataView | undefined;
  #pos = 0;
  /** Table slots this message may still preallocate (see #slots). */
  #preallocate = 0;

  constructor(api: LuaApi) {
    this.#api = api;
  }

  /**
   * Reads the header of a request `[method, args...]`: returns the number of
   * elements and leaves the position at the first one. Throws CodecError when the
   * bytes are not a msgpack array.
   */
  beginArray(bytes: Uint8Array): number {
    this.#reset(bytes);
    if (bytes.length === 0) throw new CodecError("empty request: expected a msgpack array");
    const b = this.#buf[this.#pos];
    let count: number;
    if ((b & 0xf0) === 0x90) {
      this.#pos++;
      count = b & 0x0f;
    } else if (b === 0xdc) {
      this.#need(3);
      count = this.#view.getUint16(this.#pos + 1);
      this.#pos += 3;
    } else if (b === 0xdd) {
      this.#need(5);
      count = this.#view.getUint32(this.#pos + 1);
      this.#pos += 5;
    } else {
      throw new CodecError(`request is a msgpack ${describeByte(b)}, expected an array`);
    }
    this.#checkCount(count);
    return count;
  }

  /**
   * When the next value is a string, returns its bytes (a view) and moves past it;
   * otherwise returns undefined and leaves the position unchanged.
   */
  takeString(): Uint8Array | undefined {
    const len = this.#stringHeader();
    if (len < 0) return undefined;
    const out = this.#buf.subarray(this.#pos, this.#pos + len);
    this.#pos += len;
    return out;
  }

  /**
   * When the next value is a string equal to the `name` of one of `candidates`, moves past it
   * and returns that candidate's index; otherwise returns -1 and leaves the position
   * unchanged. Compares in place: no view of the string is made.
   */
  takeKnownString(candidates: readonly { readonly name: Uint8Array }[]): number {
    const start = this.#pos;
    const len = this.#stringHeader();
    if (len < 0) return -1;
    const buf = this.#buf;
    const at = this.#pos;
    for (let i = 0; i < candidates.length; i++) {
      const name = candidates[i].name;
      if (name.length !== len) continue;
      let k = 0;
      while (k < len && name[k] === buf[at + k]) k++;
      if (k === len) {
        this.#pos = at + len;
        return i;
      }
    }
    this.#pos = start;
    return -1;
  }

  /**
   * When the next value is a string, moves past its header and returns its length (its bytes
   * are all there: CodecError otherwise); -1, position unchanged, for another type.
   */
  #stringHeader(): number {
    if (this.#pos >= this.#buf.length) return -1;
    const b = this.#buf[this.#pos];
    let len: number;
    let head: number;
    if ((b & 0xe0) === 0xa0) {
      len = b & 0x1f;
      head = 1;
    } else if (b === 0xd9) {
      this.#need(2);
      len = this.#buf[this.#pos + 1];
      head = 2;
    } else if (b === 0xda) {
      this.#need(3);
      len = this.#view.getUint16(this.#pos + 1);
      head = 3;
    } else if (b === 0xdb) {
      this.#need(5);
      len = this.#view.getUint32(this.#pos + 1);
      head = 5;
    } else {
      return -1;
    }
    this.#pos += head;
    this.#need(len);
    return len;
  }

  /** The type of the next value, in words, for error messages. */
  describeNext(): string {
    return this.#pos < this.#buf.length ? describeByte(this.#buf[this.#pos]) : "nothing";
  }

  /**
   * Pushes the next `count` values onto `L`. The count must have come from this message
   * (each value takes at least one of its bytes), so it is checked against the bytes left
   * before the stack grows.
   */
  pushValues(L: LuaState, count: number): void {
    this.#checkCount(count);
    if (count > MAX_STACK_VALUES || !this.#api.m._lua_checkstack(L, count + 4)) {
      throw new CodecError(
        `too many values (${count}): a Lua call takes at most about ${MAX_STACK_VALUES} ` +
          `arguments; send them in an array instead`,
      );
    }
    for (let i = 0; i < count; i++) this.#push(L, 0);
  }

  /** Pushes one whole msgpack document onto `L`; trailing bytes are an error. */
  pushDocument(L: LuaState, bytes: Uint8Array): void {
    this.#reset(bytes);
    if (!this.#api.m._lua_checkstack(L, 5)) throw new CodecError("Lua stack overflow");
    this.#push(L, 0);
    this.finish();
  }

  /** Throws when bytes remain after the last value. */
  finish(): void {
    if (this.#pos !== this.#buf.length) {
      throw new CodecError(
        `${this.#buf.length - this.#pos} unexpected bytes after the msgpack value`,
      );
    }
  }

  #reset(bytes: Uint8Array): void {
    this.#buf = bytes;
    this.#viewCache = undefined;
    this.#pos = 0;
    this.#preallocate = bytes.length;
  }

  /** A declared element count is a lie when fewer bytes remain than elements. */
  #checkCount(count: number): void {
    if (count > this.#buf.length - this.#pos) {
      throw new CodecError(
        `truncated msgpack: ${count} elements declared, only ${
          this.#buf.length - this.#pos
        } bytes remain`,
      );
    }
  }

  /**
   * How many of `count` declared slots a table gets up front. Every element of every
   * nested array or map takes at least one byte of the message, so all the preallocations
   * of one message together never need more slots than it has bytes: a message of nested
   * headers that each claim the bytes left cannot make us allocate depth times its size.
   */
  #slots(count: number): number {
    const slots = Math.min(count, this.#preallocate);
    this.#preallocate -= slots;
    return slots;
  }

  /** Made on first use: most requests hold only one-byte integers and short strings. */
  get #view(): DataView {
    const buf = this.#buf;
    return this.#viewCache ??= new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  }

  #need(n: number): void {
    if (this.#pos + n > this.#buf.length) {
      throw new CodecError("truncated msgpack: the message ends inside a value");
    }
  }

  #push(L: LuaState, depth: number): void {
    const m = this.#api.m;
    this.#need(1);
    const buf = this.#buf;
    const b = buf[this.#pos++];
    if (b <= 0x7f) return m._lua_pushinteger(L, SMALL_INTEGERS[b + 32]);
    if (b >= 0xe0) return m._lua_pushinteger(L, SMALL_INTEGERS[b - 0x100 + 32]);
    if ((b & 0xe0) === 0xa0) return this.#pushText(L, b & 0x1f);
    if ((b & 0xf0) === 0x90) return this.#pushArray(L, b & 0x0f, depth);
    if ((b & 0xf0) === 0x80) return this.#pushMap(L, b & 0x0f, depth);
    const p = this.#pos;
    switch (b) {
      case 0xc0:
        return m._lua_pushnil(L);
      case 0xc2:
        return m._lua_pushboolean(L, 0);
      case 0xc3:
        return m._lua_pushboolean(L, 1);
      case 0xc4:
        this.#need(1);
        this.#pos += 1;
        return this.#pushBytes(L, buf[p]);
      case 0xd9:
        this.#need(1);
        this.#pos += 1;
        return this.#pushText(L, buf[p]);
      case 0xc5:
        this.#need(2);
        this.#pos += 2;
        return this.#pushBytes(L, this.#view.getUint16(p));
      case 0xda:
        this.#need(2);
        this.#pos += 2;
        return this.#pushText(L, this.#view.getUint16(p));
      case 0xc6:
        this.#need(4);
        this.#pos += 4;
        return this.#pushBytes(L, this.#view.getUint32(p));
      case 0xdb:
        this.#need(4);
        this.#pos += 4;
        return this.#pushText(L, this.#view.getUint32(p));
      case 0xca:
        this.#need(4);
        this.#pos += 4;
        return m._lua_pushnumber(L, readFloat32(buf, p));
      case 0xcb:
        this.#need(8);
        this.#pos += 8;
        return m._lua_pushnumber(L, readFloat64(buf, p));
      case 0xcc:
        this.#need(1);
        this.#pos += 1;
        return m._lua_pushinteger(L, SMALL_INTEGERS[buf[p] + 32]);
      case 0xcd:
        this.#need(2);
        this.#pos += 2;
        return m._lua_pushinteger(L, BigInt(this.#view.getUint16(p)));
      case 0xce:
        this.#need(4);
        this.#pos += 4;
        return m._lua_pushinteger(L, BigInt(this.#view.getUint32(p)));
      case 0xcf: {
        this.#need(8);
        this.#pos += 8;
        const v = this.#view.getBigUint64(p);
        if (v > INT64_MAX) {
          throw new CodecError(
            `integer ${v} is above the largest Lua integer (${INT64_MAX}); send it as a string or a float`,
          );
        }
        return m._lua_pushinteger(L, v);
      }
      case 0xd0:
        this.#need(1);
        this.#pos += 1;
        return m._lua_pushinteger(L, BigInt(this.#view.getInt8(p)));
      case 0xd1:
        this.#need(2);
        this.#pos += 2;
        return m._lua_pushinteger(L, BigInt(this.#view.getInt16(p)));
      case 0xd2:
        this.#need(4);
        this.#pos += 4;
        return m._lua_pushinteger(L, BigInt(this.#view.getInt32(p)));
      case 0xd3:
        this.#need(8);
        this.#pos += 8;
        return m._lua_pushinteger(L, this.#view.getBigInt64(p));
      case 0xdc:
        this.#need(2);
        this.#pos += 2;
        return this.#pushArray(L, this.#view.getUint16(p), depth);
      case 0xdd:
        this.#need(4);
        this.#pos += 4;
        return this.#pushArray(L, this.#view.getUint32(p), depth);
      case 0xde:
        this.#need(2);
        this.#pos += 2;
        return this.#pushMap(L, this.#view.getUint16(p), depth);
      case 0xdf:
        this.#need(4);
        this.#pos += 4;
        return this.#pushMap(L, this.#view.getUint32(p), depth);
      case 0xd4:
      case 0xd5:
      case 0xd6:
      case 0xd7:
      case 0xd8:
        this.#need(1);
        throw new CodecError(extMessage(this.#view.getInt8(p)));
      case 0xc7:
        this.#need(2);
        throw new CodecError(extMessage(this.#view.getInt8(p + 1)));
      case 0xc8:
        this.#need(3);
        throw new CodecError(extMessage(this.#view.getInt8(p + 2)));
      case 0xc9:
        this.#need(5);
        throw new CodecError(extMessage(this.#view.getInt8(p + 4)));
      default:
        throw new CodecError(`invalid msgpack: byte 0xc1 is never used`);
    }
  }

  #pushBytes(L: LuaState, len: number): void {
    this.#need(len);
    const start = this.#pos;
    this.#pos += len;
    this.#api.pushRange(L, this.#buf, start, len);
  }

  /** A msgpack str: UTF-8 on the wire, the script's code page in Lua (bin stays bytes). */
  #pushText(L: LuaState, len: number): void {
    this.#need(len);
    const start = this.#pos;
    this.#pos += len;
    const api = this.#api;
    if (api.codePage === undefined) return api.pushRange(L, this.#buf, start, len);
    api.pushBytes(L, api.toLocal(this.#buf.subarray(start, start + len)));
  }

  #enter(L: LuaState, depth: number, count: number): void {
    if (depth >= MAX_DEPTH) {
      throw new CodecError(`msgpack nesting deeper than ${MAX_DEPTH} levels`);
    }
    this.#checkCount(count);
    if (!this.#api.m._lua_checkstack(L, 4)) throw new CodecError("Lua stack overflow");
  }

  #pushArray(L: LuaState, count: number, depth: number): void {
    this.#enter(L, depth, count);
    const m = this.#api.m;
    m._lua_createtable(L, this.#slots(count), 0);
    // A table cannot tell [] from {} or [1, nil] from [1]: such arrays record their length.
    let shapeless = count === 0;
    const buf = this.#buf;
    for (let i = 1; i <= count; i++) {
      if (buf[this.#pos] === 0xc0) shapeless = true;
      this.#push(L, depth + 1);
      m._lua_rawseti(L, -2, BigInt(i));
    }
    if (shapeless && this.formsRef !== 0) {
      m._lua_rawgeti(L, REGISTRY_INDEX, BigInt(this.formsRef));
      m._lua_pushvalue(L, -2);
      m._lua_pushinteger(L, BigInt(DECODED_ARRAY - count));
      m._lua_rawset(L, -3);
      m._lua_settop(L, -2);
    }
  }

  #pushMap(L: LuaState, count: number, depth: number): void {
    this.#enter(L, depth, count * 2);
    const m = this.#api.m;
    m._lua_createtable(L, 0, this.#slots(count));
    for (let i = 0; i < count; i++) {
      this.#push(L, depth + 1);
      const keyType = m._lua_type(L, -1);
      if (keyType === LuaType.NIL) throw new CodecError("a msgpack map key is nil");
      if (keyType === LuaType.NUMBER && !m._lua_isinteger(L, -1)) {
        const key = m._lua_tonumberx(L, -1, 0);
        if (Number.isNaN(key)) throw new CodecError("a msgpack map key is NaN");
      }
      this.#push(L, depth + 1);
      m._lua_rawset(L, -3);
    }
  }
}

// Floats are read through one 8-byte scratch rather than a DataView of each message: the
// view would be made anew for every request that holds a float (prices, mostly). The
// engine runs only on little-endian hosts (emscripten checks), so the bytes go in reversed.
const floatScratch = new Float64Array(1);
const float32Scratch = new Float32Array(floatScratch.buffer, 0, 1);
const floatBytes = new Uint8Array(floatScratch.buffer);

/** The big-endian float64 at `buf[p]`. */
function readFloat64(buf: Uint8Array, p: number): number {
  for (let i = 0; i < 8; i++) floatBytes[i] = buf[p + 7 - i];
  return floatScratch[0];
}

/** The big-endian float32 at `buf[p]`. */
function readFloat32(buf: Uint8Array, p: number): number {
  for (let i = 0; i < 4; i++) floatBytes[i] = buf[p + 3 - i];
  return float32Scratch[0];
}

function extMessage(type: number): string {
  return `msgpack ext type ${type} is not supported (send it as bin or str instead)`;
}

function describeByte(b: number): string {
  if (b <= 0x7f || b >= 0xe0 || (b >= 0xcc && b <= 0xd3)) return "integer";
  if ((b & 0xe0) === 0xa0 || (b >= 0xd9 && b <= 0xdb)) return "string";
  if ((b & 0xf0) === 0x80 || b === 0xde || b === 0xdf) return "map";
  if ((b & 0xf0) === 0x90 || b === 0xdc || b === 0xdd) return "array";
  if (b === 0xc0) return "nil";
  if (b === 0xc2 || b === 0xc3) return "boolean";
  if (b === 0xca || b === 0xcb) return "float";
  if (b >= 0xc4 && b <= 0xc6) return "bin";
  if ((b >= 0xc7 && b <= 0xc9) || (b >= 0xd4 && b <= 0xd8)) return "ext";
  return "invalid byte 0xc1";
}

/** Nesting levels of tables encoded per lua_checkstack (see Encoder.#table). */
const STACK_LEVELS = 8;

/** Encodes Lua values from the stack as MessagePack. */
export class Encoder {
  #api: LuaApi;
  #out = new MsgpackWriter(4096);
  /** Addresses of the tables on the current path, to tell a cycle from a shared table. */
  #path: number[] = [];
  #formsRef = 0;
  /** {@link formsRef} as the BigInt lua_rawgeti takes, made once. */
  #formsKey = 0n;

  constructor(api: LuaApi) {
    this.#api = api;
  }

  /** Registry reference of the weak table holding forced forms, or 0. */
  get formsRef(): number {
    return this.#formsRef;
  }

  set formsRef(ref: number) {
    this.#formsRef = ref;
    this.#formsKey = BigInt(ref);
  }

  /** Starts a new document. */
  reset(): void {
    this.#out.reset();
    // Empty unless the last document failed: setting the length costs a tenth of a send.
    if (this.#path.length !== 0) this.#path.length = 0;
  }

  /** A copy of the bytes written since {@link reset}. */
  take(): Uint8Array {
    return this.#out.take();
  }

  /**
   * A view of the bytes written since {@link reset}, valid until the next write: for
   * handing straight to a socket's `trySend`, which copies before returning.
   */
  view(): Uint8Array {
    return this.#out.written();
  }

  /** Writes a msgpack nil. */
  nil(): void {
    this.#out.nil();
  }

  /** Writes an array header for `n` elements. */
  arrayHeader(n: number): void {
    this.#out.arrayHeader(n);
  }

  /** Writes a map header for `n` pairs. */
  mapHeader(n: number): void {
    this.#out.mapHeader(n);
  }

  /** Writes a msgpack boolean. */
  boolean(value: boolean): void {
    this.#out.boolean(value);
  }

  /** Writes a JS string as msgpack str. */
  text(s: string): void {
    this.#out.str(textEncoder.encode(s));
  }

  /** Writes the bytes of a Lua string as a Lua string value is written (see {@link value}). */
  string(bytes: Uint8Array): void {
    const api = this.#api;
    const out = this.#out;
    // With a code page every Lua string is text in it, and leaves as UTF-8 str.
    if (api.codePage !== undefined) return out.str(api.codePage.toUtf8(bytes));
    return isUtf8(bytes) ? out.str(bytes) : out.bin(bytes);
  }

  /** Writes the Lua value at `idx` of `L`. Throws CodecError on a cycle or deep nesting. */
  value(L: LuaState, idx: number): void {
    this.#typed(L, idx, this.#api.m._lua_type(L, idx));
  }

  /** {@link value} for a value whose type the caller has (lua_rawgeti returns it). */
  #typed(L: LuaState, idx: number, type: number): void {
    const api = this.#api;
    const m = api.m;
    const out = this.#out;
    switch (type) {
      case LuaType.BOOLEAN:
        return out.boolean(m._lua_toboolean(L, idx) !== 0);
      case LuaType.NUMBER:
        if (m._lua_isinteger(L, idx)) {
          // As a double first: exact below 2^53 and no BigInt allocated on the common path.
          const n = m._lua_tonumberx(L, idx, 0);
          if (n >= -2147483648 && n <= 4294967295) return out.int32(n);
          return out.int64(m._lua_tointegerx(L, idx, 0));
        }
        return out.float64(m._lua_tonumberx(L, idx, 0));
      case LuaType.STRING: {
        if (api.codePage !== undefined) return this.string(api.viewString(L, idx));
        // Read in place: most strings are keys and short values, for which a view would
        // cost more than the bytes (see bytes.ts).
        const at = api.stringAt(L, idx);
        const n = api.readLen();
        const heap = m.HEAPU8;
        return isUtf8(heap, at, at + n) ? out.strRange(heap, at, n) : out.binRange(heap, at, n);
      }
      case LuaType.TABLE:
        return this.#table(L, m._lua_absindex(L, idx));
      default:
        return out.nil();
    }
  }

  #table(L: LuaState, idx: number): void {
    const m = this.#api.m;
    const path = this.#path;
    const address = m._lua_topointer(L, idx);
    if (path.includes(address)) {
      throw new CodecError("cannot encode a table that contains itself (a cycle)");
    }
    if (path.length >= MAX_DEPTH) {
      throw new CodecError(`cannot encode tables nested deeper than ${MAX_DEPTH} levels`);
    }
    // Each level below holds at most 3 slots (an element, or a key and its value) and needs 3
    // more for a moment: asked for once every STACK_LEVELS levels rather than per table.
    if (path.length % STACK_LEVELS === 0 && !m._lua_checkstack(L, 3 * STACK_LEVELS + 3)) {
      throw new CodecError("Lua stack overflow while encoding");
    }
    path.push(address);
    const form = this.#forcedForm(L, idx);
    if (form === undefined) {
      const length = Number(m._lua_rawlen(L, idx));
      // n keys, t[1..n] all present (#array checks those): exactly the keys 1..n.
      if (length === 0 || !this.#hasKeys(L, idx, length) || !this.#array(L, idx, length, true)) {
        this.#map(L, idx);
      }
    } else if (form === FORM_ARRAY) this.#array(L, idx, Number(m._lua_rawlen(L, idx)), false);
    else if (form >= 0) this.#array(L, idx, form, false);
    else if (form === FORM_BIN) this.#bin(L, idx);
    else if (form <= DECODED_ARRAY) {
      const largest = this.#largestIndex(L, idx);
      if (largest >= 0) this.#array(L, idx, Math.max(DECODED_ARRAY - form, largest), false);
      else this.#map(L, idx);
    } else {
      this.#map(L, idx);
    }
    path.pop();
  }

  /**
   * Writes `t[1..length]` as an array. With `dense`, a missing element (a hole) takes back
   * what was written and returns false: the table is written as a map instead.
   */
  #array(L: LuaState, idx: number, length: number, dense: boolean): boolean {
    const m = this.#api.m;
    const out = this.#out;
    const start = out.length;
    out.arrayHeader(length);
    for (let i = 1; i <= length; i++) {
      const type = m._lua_rawgeti(L, idx, i < 256 ? SMALL_INTEGERS[i + 32] : BigInt(i));
      if (type === LuaType.NIL && dense) {
        m._lua_settop(L, -2);
        out.length = start;
        return false;
      }
      this.#typed(L, -1, type);
      m._lua_settop(L, -2);
    }
    return true;
  }

  /** `LuaOverMQ.bin(s)`: the string at [1] as msgpack bin, untouched by any code page. */
  #bin(L: LuaState, idx: number): void {
    const m = this.#api.m;
    if (m._lua_rawgeti(L, idx, 1n) !== LuaType.STRING) {
      m._lua_settop(L, -2);
      throw new CodecError("LuaOverMQ.bin(s) holds no string");
    }
    this.#out.bin(this.#api.viewString(L, -1));
    m._lua_settop(L, -2);
  }

  /** The largest key when every key is a positive integer (0 for none), else -1. */
  #largestIndex(L: LuaState, idx: number): number {
    const m = this.#api.m;
    let largest = 0;
    m._lua_pushnil(L);
    while (m._lua_next(L, idx)) {
      const key = m._lua_isinteger(L, -2) !== 0 ? m._lua_tointegerx(L, -2, 0) : 0n;
      if (key < 1n || key > 0xffff_ffffn) {
        m._lua_settop(L, -3);
        return -1;
      }
      if (Number(key) > largest) largest = Number(key);
      m._lua_settop(L, -2);
    }
    return largest;
  }

  #forcedForm(L: LuaState, idx: number): number | undefined {
    if (this.#formsRef === 0) return undefined;
    const m = this.#api.m;
    m._lua_rawgeti(L, REGISTRY_INDEX, this.#formsKey);
    m._lua_pushvalue(L, idx);
    const form = m._lua_rawget(L, -2) === LuaType.NUMBER
      ? Number(m._lua_tointegerx(L, -1, 0))
      : undefined;
    m._lua_settop(L, -3);
    return form;
  }

  /**
   * True when the table has exactly `length` keys. With t[1..length] all present (the
   * caller checks those while writing them), its keys are then exactly 1..length: counting
   * takes two calls into Lua per key, checking each key's type would take four.
   */
  #hasKeys(L: LuaState, idx: number, length: number): boolean {
    const m = this.#api.m;
    let count = 0;
    m._lua_pushnil(L);
    while (m._lua_next(L, idx)) {
      if (++count > length) {
        m._lua_settop(L, -3);
        return false;
      }
      m._lua_settop(L, -2);
    }
    return count === length;
  }

  #map(L: LuaState, idx: number): void {
    const m = this.#api.m;
    // The count is known only after the walk.
    const headerAt = this.#out.reserveMapHeader();
    let count = 0;
    m._lua_pushnil(L);
    while (m._lua_next(L, idx)) {
      this.value(L, -2);
      this.value(L, -1);
      m._lua_settop(L, -2);
      count++;
    }
    this.#out.finishMapHeader(headerAt, count);
  }
}

/**
 * Whether `bytes[start, end)` is well-formed UTF-8 (no overlongs, surrogates or values past
 * U+10FFFF).
 */
export function isUtf8(bytes: Uint8Array, start = 0, end = bytes.length): boolean {
  const n = end;
  let i = start;
  while (i < n) {
    const b = bytes[i];
    if (b < 0x80) {
      i++;
      continue;
    }
    if (b >= 0xc2 && b <= 0xdf) {
      if (i + 1 >= n || (bytes[i + 1] & 0xc0) !== 0x80) return false;
      i += 2;
    } else if (b >= 0xe0 && b <= 0xef) {
      if (i + 2 >= n) return false;
      const b1 = bytes[i + 1];
      if ((b1 & 0xc0) !== 0x80 || (bytes[i + 2] & 0xc0) !== 0x80) return false;
      if (b === 0xe0 && b1 < 0xa0) return false;
      if (b === 0xed && b1 > 0x9f) return false;
      i += 3;
    } else if (b >= 0xf0 && b <= 0xf4) {
      if (i + 3 >= n) return false;
      const b1 = bytes[i + 1];
      if (
        (b1 & 0xc0) !== 0x80 || (bytes[i + 2] & 0xc0) !== 0x80 || (bytes[i + 3] & 0xc0) !== 0x80
      ) return false;
      if (b === 0xf0 && b1 < 0x90) return false;
      if (b === 0xf4 && b1 > 0x8f) return false;
      i += 4;
    } else {
      return false;
    }
  }
  return true;
}
