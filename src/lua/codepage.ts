/**
 * Single-byte code pages for Lua strings: UTF-8 on the wire, code-page bytes inside Lua.
 *
 * QUIK scripts are usually saved in the Windows ANSI code page (cp1251 for Russian), so their
 * string literals and whatever they compare against are code-page bytes, while msgpack `str`
 * is UTF-8 by definition. {@link CodePage} converts between the two on every request, so it
 * is written for the hot path: ASCII-only strings (method names, most keys) come back as the
 * very array passed in, the other strings as an exactly sized view into a shared pool block
 * (a new ArrayBuffer costs more than the transcoding), and the `…Into` variants write into a
 * caller's buffer with no allocation at all.
 *
 * The tables are not typed in by hand: they come from the platform's own WHATWG decoders
 * (`new TextDecoder("windows-1251")` …) over the bytes 0x80..0xFF, with one correction. For
 * the bytes Windows leaves unassigned in 0x80..0x9F (0x98 in cp1251, 0x81 in cp1252, …) the
 * WHATWG decoders return the C1 control of the same number (U+0098) instead of U+FFFD; those
 * are placeholders, not characters, and Python's `codecs` rejects them, so here they are
 * undefined: such a byte becomes U+FFFD and U+0098 from the wire becomes `?`.
 *
 * @example
 * ```ts
 * import { codePage } from "./codepage.ts";
 * const cp = codePage("windows-1251")!;
 * const local = cp.fromUtf8(new TextEncoder().encode("Сбер")); // [0xd1, 0xe1, 0xe5, 0xf0]
 * new TextDecoder().decode(cp.toUtf8(local)); // "Сбер"
 * ```
 *
 * @module
 */

/**
 * The canonical names {@link codePage} accepts, for error messages ("expected one of …").
 * Spellings also accepted, case-insensitively and with `_` for `-`: `utf8`; `windows-125N`,
 * `win-125N`, `win125N` for `cp125N`; `ibm866` for `cp866`; `koi8r` for `koi8-r`.
 *
 * @example
 * ```ts
 * import { CODE_PAGES, codePage } from "./codepage.ts";
 * const name = "cp1259";
 * if (!codePage(name)) console.error(`unknown encoding ${name}: use ${CODE_PAGES.join(", ")}`);
 * ```
 */
export const CODE_PAGES = [
  "utf-8",
  "cp1250",
  "cp1251",
  "cp1252",
  "cp1253",
  "cp1254",
  "cp1255",
  "cp1256",
  "cp1257",
  "cp1258",
  "cp866",
  "koi8-r",
] as const;

/**
 * A canonical code-page name, one of {@link CODE_PAGES}.
 *
 * @example
 * ```ts
 * import type { CodePageName } from "./codepage.ts";
 * const name: CodePageName = "cp1251";
 * ```
 */
export type CodePageName = typeof CODE_PAGES[number];

/** What a code point the code page cannot hold becomes, as Python's `errors="replace"` does. */
const QUESTION = 0x3f;

/** Alias (lower case, `-` for `_`) → canonical name. */
const ALIASES: ReadonlyMap<string, CodePageName> = (() => {
  const map = new Map<string, CodePageName>([
    ["utf-8", "utf-8"],
    ["utf8", "utf-8"],
    ["cp866", "cp866"],
    ["ibm866", "cp866"],
    ["koi8-r", "koi8-r"],
    ["koi8r", "koi8-r"],
  ]);
  for (let n = 1250; n <= 1258; n++) {
    const name = `cp${n}` as CodePageName;
    for (const alias of [`cp${n}`, `windows-${n}`, `win-${n}`, `win${n}`]) map.set(alias, name);
  }
  return map;
})();

/** The WHATWG label of each code page's platform decoder. */
function platformLabel(name: CodePageName): string {
  if (name === "cp866") return "ibm866";
  if (name === "koi8-r") return "koi8-r";
  return `windows-${name.slice(2)}`;
}

// A byte's UTF-8 form packed into one small integer (always a V8 Smi, below 2^30):
// bits 0-7, 8-15, 16-23 the bytes, bits 24-25 the length, bit 26 "undefined byte, U+FFFD".
const LEN_SHIFT = 24;
const UNDEFINED_BIT = 1 << 26;
/** Packed values at or above this are three bytes long (U+FFFD included). */
const THREE_BYTES = 3 << LEN_SHIFT;

/** The translation tables of one code page, built once and shared by all its instances. */
interface Tables {
  /** Byte 0..255 → packed UTF-8 (see LEN_SHIFT); entries below 0x80 are unused. */
  readonly utf8: Uint32Array;
  /** Byte 0..255 → length of its UTF-8 form (1 for ASCII, 3 for U+FFFD). */
  readonly utf8Len: Uint8Array;
  /**
   * Code point below U+0800 (two UTF-8 bytes: Latin-1, Greek, Cyrillic, Hebrew, Arabic) →
   * byte, 0 meaning "not in the code page". A flat 2 KiB table: the commonest case is one
   * load (about 10% faster over Cyrillic text than the page table below, measured).
   */
  readonly low: Uint8Array;
  /**
   * Code point U+0800..U+FFFF → byte as a two-level table:
   * `pages[pageOf[cp >> 8] << 8 | cp & 0xff]`, 0 meaning "not in the code page". Page 0 is
   * all zeros, so the high bytes a code page never uses cost nothing (cp1251 has 2 pages in
   * use: U+20xx and U+21xx), and a lookup is two loads with no hashing: 0.7 ns against
   * 1.4 ns for a small open-addressing hash and 4 ns for a Map or a binary search (measured).
   */
  readonly pageOf: Uint8Array;
  readonly pages: Uint8Array;
}

const tableCache = new Map<CodePageName, Tables>();

/** Builds the tables of `name` from the platform decoder (once per code page per process). */
function tablesOf(name: CodePageName): Tables {
  const cached = tableCache.get(name);
  if (cached) return cached;
  const label = platformLabel(name);
  const text = new TextDecoder(label).decode(Uint8Array.from({ length: 128 }, (_, i) => 0x80 + i));
  // A single-byte decoder gives one UTF-16 unit per byte, never a surrogate pair.
  if (text.length !== 128) throw new Error(`decoder ${label} is not single-byte`);
  const utf8 = new Uint32Array(256);
  const utf8Len = new Uint8Array(256).fill(1);
  const codePoints: number[] = [];
  for (let i = 0; i < 128; i++) {
    const byte = 0x80 + i;
    const cp = text.charCodeAt(i);
    // WHATWG fills the holes of 0x80..0x9F with the C1 control of the same value: a
    // placeholder, not a character (Python and the unicode.org tables leave them undefined).
    const defined = cp !== 0xfffd && !(byte <= 0x9f && cp === byte) &&
      !(cp >= 0xd800 && cp <= 0xdfff);
    const c = defined ? cp : 0xfffd;
    let packed: number;
    if (c < 0x800) {
      packed = (0xc0 | (c >> 6)) | ((0x80 | (c & 0x3f)) << 8) | (2 << LEN_SHIFT);
    } else {
      packed = (0xe0 | (c >> 12)) | ((0x80 | ((c >> 6) & 0x3f)) << 8) |
        ((0x80 | (c & 0x3f)) << 16) | (3 << LEN_SHIFT);
    }
    utf8[byte] = defined ? packed : packed | UNDEFINED_BIT;
    utf8Len[byte] = c < 0x800 ? 2 : 3;
    if (defined) codePoints[byte] = cp;
  }
  const low = new Uint8Array(0x800);
  const pageOf = new Uint8Array(256);
  let pageCount = 1;
  for (const cp of codePoints) {
    if (cp >= 0x800 && pageOf[cp >> 8] === 0) pageOf[cp >> 8] = pageCount++;
  }
  const pages = new Uint8Array(pageCount << 8);
  codePoints.forEach((cp, byte) => {
    const table = cp < 0x800 ? low : pages;
    const slot = cp < 0x800 ? cp : (pageOf[cp >> 8] << 8) | (cp & 0xff);
    // Keep the first byte should two bytes decode to one character (none of these do).
    if (table[slot] === 0) table[slot] = byte;
  });
  const tables: Tables = { utf8, utf8Len, low, pageOf, pages };
  tableCache.set(name, tables);
  return tables;
}

/** Replacements made by the last {@link encodeInto}/{@link decodeInto}: a second result. */
let lastReplaced = 0;

/**
 * UTF-8 `src[i..]` → code-page bytes at `out[j..]`; returns the end in `out`. Invalid UTF-8
 * is replaced the way Python's and WHATWG's decoders do (one `?` per maximal subpart, Unicode
 * 3.9 §3.9 "U+FFFD substitution of maximal subparts"), then every character the code page
 * lacks becomes `?`. Writes past the end of `out` are dropped by the typed array; the caller
 * detects them from the returned end.
 */
function encodeInto(t: Tables, src: Uint8Array, i: number, out: Uint8Array, j: number): number {
  const low = t.low;
  const pageOf = t.pageOf;
  const pages = t.pages;
  const n = src.length;
  let replaced = 0;
  while (i < n) {
    const b0 = src[i];
    if (b0 < 0x80) {
      out[j++] = b0;
      i++;
      continue;
    }
    // The commonest case first and on its own: a valid two-byte sequence (U+0080..U+07FF).
    if (b0 >= 0xc2 && b0 <= 0xdf && i + 1 < n) {
      const b1 = src[i + 1];
      if ((b1 & 0xc0) === 0x80) {
        const c = low[((b0 & 0x1f) << 6) | (b1 & 0x3f)];
        if (c === 0) {
          out[j++] = QUESTION;
          replaced++;
        } else {
          out[j++] = c;
        }
        i += 2;
        continue;
      }
    }
    let c = 0; // stays 0 for an invalid sequence and for a code point above U+FFFF
    if (b0 >= 0xe0 && b0 <= 0xef) {
      // Three bytes, without overlongs (E0 80..9F) or surrogates (ED A0..BF).
      const b1 = i + 1 < n ? src[i + 1] : 0;
      if (b1 >= (b0 === 0xe0 ? 0xa0 : 0x80) && b1 <= (b0 === 0xed ? 0x9f : 0xbf)) {
        const b2 = i + 2 < n ? src[i + 2] : 0;
        if ((b2 & 0xc0) === 0x80) {
          const cp = ((b0 & 0x0f) << 12) | ((b1 & 0x3f) << 6) | (b2 & 0x3f);
          c = pages[(pageOf[cp >> 8] << 8) | (cp & 0xff)];
          i += 3;
        } else {
          i += 2;
        }
      } else {
        i += 1;
      }
    } else if (b0 >= 0xf0 && b0 <= 0xf4) {
      // Four bytes (U+10000..U+10FFFF): valid or not, never in a single-byte code page.
      const b1 = i + 1 < n ? src[i + 1] : 0;
      if (b1 >= (b0 === 0xf0 ? 0x90 : 0x80) && b1 <= (b0 === 0xf4 ? 0x8f : 0xbf)) {
        if (i + 2 < n && (src[i + 2] & 0xc0) === 0x80) {
          i += i + 3 < n && (src[i + 3] & 0xc0) === 0x80 ? 4 : 3;
        } else {
          i += 2;
        }
      } else {
        i += 1;
      }
    } else {
      // A lone continuation byte, C0/C1 (always overlong), F5..FF (past U+10FFFF), or a
      // two-byte lead without its continuation.
      i += 1;
    }
    if (c === 0) {
      out[j++] = QUESTION;
      replaced++;
    } else {
      out[j++] = c;
    }
  }
  lastReplaced = replaced;
  return j;
}

/** Code-page bytes `src[i..]` → UTF-8 at `out[j..]`; returns the end in `out`. */
function decodeInto(t: Tables, src: Uint8Array, i: number, out: Uint8Array, j: number): number {
  const utf8 = t.utf8;
  const n = src.length;
  let replaced = 0;
  for (; i < n; i++) {
    const b = src[i];
    if (b < 0x80) {
      out[j++] = b;
      continue;
    }
    const e = utf8[b];
    out[j++] = e & 0xff;
    out[j++] = (e >> 8) & 0xff;
    if (e >= THREE_BYTES) {
      out[j++] = (e >> 16) & 0xff;
      if (e & UNDEFINED_BIT) replaced++;
    }
  }
  lastReplaced = replaced;
  return j;
}

/** Index of the first byte >= 0x80 in `bytes`, or its length when it is all ASCII. */
function asciiPrefix(bytes: Uint8Array): number {
  const n = bytes.length;
  let i = 0;
  while (i < n && bytes[i] < 0x80) i++;
  return i;
}

/** Copies `src[0..n)` to `out[at..)`; for the short prefixes met here a loop beats `set`. */
function copyPrefix(src: Uint8Array, out: Uint8Array, at: number, n: number): void {
  for (let k = 0; k < n; k++) out[at + k] = src[k];
}

// Results up to POOL_MAX bytes are views into a shared block, as Node's Buffer pool does:
// in Deno 2.9 every new ArrayBuffer costs ~350 ns whatever its size (measured; a view of an
// existing buffer ~20 ns), more than transcoding a short string. A block is never written
// again once handed out (a full block is dropped, not recycled), so results stay valid; the
// price is that a live small result keeps its 16 KiB block alive.
const POOL_SIZE = 16 * 1024;
const POOL_MAX = 4 * 1024;
let pool = new Uint8Array(POOL_SIZE);
/** Bytes of `pool` already handed out. */
let poolUsed = 0;

/** The pool, with at least `room` free bytes from `poolUsed` on. */
function reserve(room: number): Uint8Array {
  if (POOL_SIZE - poolUsed < room) {
    pool = new Uint8Array(POOL_SIZE);
    poolUsed = 0;
  }
  return pool;
}

function checkOffset(out: Uint8Array, at: number): void {
  if (!(at >= 0 && at <= out.length && Number.isInteger(at))) {
    throw new RangeError(`offset ${at} is outside the output buffer (length ${out.length})`);
  }
}

function tooSmall(out: Uint8Array, at: number, end: number): RangeError {
  return new RangeError(
    `output buffer too small: ${end - at} bytes needed from offset ${at}, ${
      out.length - at
    } available`,
  );
}

/**
 * A transcoder between UTF-8 and one single-byte code page, counting the characters it had to
 * replace. Instances are cheap (the tables are built once per code page and shared), and each
 * has its own {@link replaced} counter, so make one per server or per test.
 *
 * The `utf-8` instance is the "no transcoding" marker: {@link transcodes} is false and every
 * method passes bytes through unchanged, unvalidated, the way lomq treats strings without
 * `--encoding`. Callers on a hot path may test `transcodes` once and skip the calls.
 *
 * @example
 * ```ts
 * import { CodePage } from "./codepage.ts";
 * const cp = new CodePage("cp1251");
 * cp.fromUtf8(new TextEncoder().encode("ok")); // the same array: ASCII needs no copy
 * cp.fromUtf8(new TextEncoder().encode("€ 😀")); // [0x88, 0x20, 0x3f]
 * cp.replaced; // 1: the emoji
 * ```
 */
export class CodePage {
  /**
   * The canonical name, one of {@link CODE_PAGES} ("cp1251", "koi8-r", "utf-8").
   *
   * @example
   * ```ts
   * import { codePage } from "./codepage.ts";
   * codePage("Windows-1251")!.name; // "cp1251"
   * ```
   */
  readonly name: CodePageName;

  /**
   * False only for the `utf-8` marker, whose methods return or copy their input unchanged.
   *
   * @example
   * ```ts
   * import { codePage } from "./codepage.ts";
   * codePage("utf8")!.transcodes; // false
   * codePage("cp1251")!.transcodes; // true
   * ```
   */
  readonly transcodes: boolean;

  /**
   * Characters replaced so far, both directions: `?` written by the `fromUtf8` methods (a
   * character the code page lacks, or an invalid UTF-8 sequence), U+FFFD written by the
   * `toUtf8` methods (a byte the code page leaves undefined). A plain field: the server may
   * read it for a warning and set it back to 0. Calls that throw do not count.
   *
   * @example
   * ```ts
   * import { codePage } from "./codepage.ts";
   * const cp = codePage("cp1251")!;
   * cp.toUtf8(new Uint8Array([0x98])); // EF BF BD: 0x98 is undefined in cp1251
   * cp.replaced; // 1
   * ```
   */
  replaced = 0;

  /** Undefined for the utf-8 marker. */
  readonly #t: Tables | undefined;

  /**
   * The code page named exactly `name`, a canonical name from {@link CODE_PAGES}; throws
   * RangeError for any other string ({@link codePage} also takes aliases and returns
   * undefined instead of throwing).
   *
   * @example
   * ```ts
   * import { CodePage } from "./codepage.ts";
   * const koi = new CodePage("koi8-r");
   * ```
   */
  constructor(name: CodePageName) {
    if (!(CODE_PAGES as readonly string[]).includes(name)) {
      throw new RangeError(`unknown code page ${JSON.stringify(name)}`);
    }
    this.name = name;
    this.transcodes = name !== "utf-8";
    this.#t = this.transcodes ? tablesOf(name) : undefined;
  }

  /**
   * UTF-8 bytes (a msgpack str as received) → code-page bytes. A character the code page
   * cannot hold becomes `?` (0x3F), and so does each invalid UTF-8 sequence (per maximal
   * subpart, as Python's `decode("utf-8", "replace")` then `encode(cp, "replace")`); both are
   * counted in {@link replaced}. All-ASCII input is returned as is, the same array object.
   * Anything else comes back in a fresh array of exactly the right length, which up to 4 KiB
   * is a view into a shared 16 KiB pool block (see the pool notes): mind `byteOffset` when
   * using its `.buffer`, and `slice()` it before keeping it for long.
   *
   * @example
   * ```ts
   * import { codePage } from "./codepage.ts";
   * const cp = codePage("cp1251")!;
   * cp.fromUtf8(new TextEncoder().encode("Газпром")); // 7 bytes, C3 E0 E7 EF F0 EE EC
   * cp.fromUtf8(new Uint8Array([0xc0, 0x80])); // [0x3f, 0x3f]: an overlong NUL, 2 counted
   * ```
   */
  fromUtf8(bytes: Uint8Array): Uint8Array {
    const t = this.#t;
    if (t === undefined) return bytes;
    const n = bytes.length;
    const start = asciiPrefix(bytes);
    if (start === n) return bytes;
    if (n <= POOL_MAX) {
      // The result is never longer than the input: encode straight into the pool.
      const block = reserve(n);
      const at = poolUsed;
      copyPrefix(bytes, block, at, start);
      const end = encodeInto(t, bytes, start, block, at + start);
      poolUsed = end;
      this.replaced += lastReplaced;
      return block.subarray(at, end);
    }
    // One output byte per character, and in valid UTF-8 each character has exactly one
    // non-continuation byte: counting them sizes a big result exactly in one cheap pass.
    let size = n;
    for (let k = start; k < n; k++) if ((bytes[k] & 0xc0) === 0x80) size--;
    let out = new Uint8Array(size);
    copyPrefix(bytes, out, 0, start);
    let end = encodeInto(t, bytes, start, out, start);
    if (end > size) {
      // Invalid UTF-8 (lone continuation bytes, a 4-byte sequence cut short) gives more
      // characters than lead bytes. Rare: redo with the bound, the input length.
      out = new Uint8Array(n);
      copyPrefix(bytes, out, 0, start);
      end = encodeInto(t, bytes, start, out, start);
      out = out.subarray(0, end);
    }
    this.replaced += lastReplaced;
    return out;
  }

  /**
   * Code-page bytes (a Lua string) → UTF-8. A byte the code page leaves undefined (0x98 in
   * cp1251; see the module notes) becomes U+FFFD and is counted in {@link replaced}. All-ASCII
   * input is returned as is, the same array object; anything else comes back in a fresh array
   * of exactly {@link utf8Length} bytes, a pool view when small, as for {@link fromUtf8}.
   *
   * @example
   * ```ts
   * import { codePage } from "./codepage.ts";
   * const cp = codePage("cp1251")!;
   * new TextDecoder().decode(cp.toUtf8(new Uint8Array([0xcf, 0xf0, 0xe8, 0xe2, 0xe5, 0xf2])));
   * // "Привет"
   * ```
   */
  toUtf8(bytes: Uint8Array): Uint8Array {
    const t = this.#t;
    if (t === undefined) return bytes;
    const n = bytes.length;
    const start = asciiPrefix(bytes);
    if (start === n) return bytes;
    if (3 * n <= POOL_MAX) {
      // At most 3 bytes per byte: decode straight into the pool, no sizing pass.
      const block = reserve(3 * n);
      const at = poolUsed;
      copyPrefix(bytes, block, at, start);
      const end = decodeInto(t, bytes, start, block, at + start);
      poolUsed = end;
      this.replaced += lastReplaced;
      return block.subarray(at, end);
    }
    const len = t.utf8Len;
    let size = start;
    for (let k = start; k < n; k++) size += len[bytes[k]];
    const out = new Uint8Array(size);
    copyPrefix(bytes, out, 0, start);
    decodeInto(t, bytes, start, out, start);
    this.replaced += lastReplaced;
    return out;
  }

  /**
   * {@link fromUtf8} into `out` from index `at`, allocating nothing; returns the index after
   * the last byte written. The result is never longer than the input, so `bytes.length`
   * bytes of room always suffice (e.g. a scratch area in the Lua heap, then
   * `lua_pushlstring(L, ptr, end - at)`). When `out` turns out too small it throws
   * RangeError; nothing outside `out` is touched, but `out[at..]` is then unspecified. So
   * pass a view bounded to the room you own (`HEAPU8.subarray(ptr, ptr + room)`, `at` 0),
   * not the whole heap; and `out` must not overlap `bytes`.
   *
   * @example
   * ```ts
   * import { codePage } from "./codepage.ts";
   * const cp = codePage("cp1251")!;
   * const input = new TextEncoder().encode("ёж");
   * const out = new Uint8Array(16);
   * const end = cp.fromUtf8Into(input, out, 4); // 6: out[4..6) = B8 E6
   * ```
   */
  fromUtf8Into(bytes: Uint8Array, out: Uint8Array, at: number): number {
    checkOffset(out, at);
    const t = this.#t;
    if (t === undefined) return copyInto(bytes, out, at);
    const end = encodeInto(t, bytes, 0, out, at);
    if (end > out.length) throw tooSmall(out, at, end);
    this.replaced += lastReplaced;
    return end;
  }

  /**
   * {@link toUtf8} into `out` from index `at`, allocating nothing; returns the index after
   * the last byte written, which is `at + utf8Length(bytes)`. Size `out` with
   * {@link utf8Length} (also what a msgpack str header needs first). When `out` is too small
   * it throws RangeError; nothing outside `out` is touched, but `out[at..]` is then
   * unspecified. As for {@link fromUtf8Into}, `out` must not overlap `bytes`.
   *
   * @example
   * ```ts
   * import { codePage } from "./codepage.ts";
   * const cp = codePage("cp1251")!;
   * const local = new Uint8Array([0xb8, 0xe6]); // "ёж"
   * const out = new Uint8Array(cp.utf8Length(local));
   * cp.toUtf8Into(local, out, 0); // 4: D1 91 D0 B6
   * ```
   */
  toUtf8Into(bytes: Uint8Array, out: Uint8Array, at: number): number {
    checkOffset(out, at);
    const t = this.#t;
    if (t === undefined) return copyInto(bytes, out, at);
    const end = decodeInto(t, bytes, 0, out, at);
    if (end > out.length) throw tooSmall(out, at, end);
    this.replaced += lastReplaced;
    return end;
  }

  /**
   * The length of {@link toUtf8}`(bytes)`, without converting: 1 per ASCII byte, 2 or 3 per
   * other byte (3 for U+FFFD). For the `utf-8` marker, `bytes.length`.
   *
   * @example
   * ```ts
   * import { codePage } from "./codepage.ts";
   * codePage("cp1251")!.utf8Length(new Uint8Array([0x41, 0xc0, 0x88])); // 6: "A" 1, "А" 2, "€" 3
   * ```
   */
  utf8Length(bytes: Uint8Array): number {
    const t = this.#t;
    if (t === undefined) return bytes.length;
    const len = t.utf8Len;
    const n = bytes.length;
    let size = 0;
    for (let k = 0; k < n; k++) size += len[bytes[k]];
    return size;
  }
}

/** The utf-8 marker's `…Into`: a plain copy, same error contract as the transcoding path. */
function copyInto(bytes: Uint8Array, out: Uint8Array, at: number): number {
  const end = at + bytes.length;
  if (end > out.length) throw tooSmall(out, at, end);
  out.set(bytes, at);
  return end;
}

/**
 * The code page called `name`, case-insensitively and by any of its aliases (see
 * {@link CODE_PAGES}), as a new {@link CodePage} with its own `replaced` counter; undefined
 * for a name it does not know. `utf-8`/`utf8` give the "no transcoding" marker, a CodePage
 * whose `transcodes` is false, so that undefined always means "unknown name".
 *
 * @example
 * ```ts
 * import { CODE_PAGES, codePage } from "./codepage.ts";
 * const page = codePage("WINDOWS-1251"); // CodePage { name: "cp1251" }
 * codePage("utf8")?.transcodes; // false
 * codePage("latin9"); // undefined: report CODE_PAGES
 * ```
 */
export function codePage(name: string): CodePage | undefined {
  const canonical = ALIASES.get(name.trim().toLowerCase().replaceAll("_", "-"));
  return canonical === undefined ? undefined : new CodePage(canonical);
}
