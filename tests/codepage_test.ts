// The code-page transcoder (src/lua/codepage.ts) against Python's `codecs`, the reference:
// every byte of every code page, the whole BMP, seeded random strings with characters outside
// the code page, emoji and invalid UTF-8, and random code-page bytes. Python runs once, fed
// every case as JSON; its answers are compared with ours case by case. Then the properties
// Python cannot see: the ASCII fast path returns the input array itself, `replaced` counts,
// the `…Into` variants stay inside their buffer, pooled results do not alias.
import assert from "node:assert/strict";
import { CODE_PAGES, CodePage, codePage, type CodePageName } from "../src/lua/codepage.ts";

const textEncoder = new TextEncoder();
const utf8 = (s: string): Uint8Array => textEncoder.encode(s);
const FFFD = [0xef, 0xbf, 0xbd];

/** Every code page that transcodes, with the name Python's codecs know it by. */
const PAGES: [CodePageName, string][] = [
  ["cp1250", "cp1250"],
  ["cp1251", "cp1251"],
  ["cp1252", "cp1252"],
  ["cp1253", "cp1253"],
  ["cp1254", "cp1254"],
  ["cp1255", "cp1255"],
  ["cp1256", "cp1256"],
  ["cp1257", "cp1257"],
  ["cp1258", "cp1258"],
  ["cp866", "cp866"],
  ["koi8-r", "koi8_r"],
];

/**
 * The bytes each code page leaves undefined (→ U+FFFD): the holes of the platform decoders in
 * 0xA0..0xFF plus the 0x80..0x9F bytes they pass through as C1 controls. This is exactly where
 * Python's codecs raise, but for the one byte below.
 */
const UNDEFINED: Record<string, number[]> = {
  cp1250: [0x81, 0x83, 0x88, 0x90, 0x98],
  cp1251: [0x98],
  cp1252: [0x81, 0x8d, 0x8f, 0x90, 0x9d],
  cp1253: [0x81, 0x88, 0x8a, 0x8c, 0x8d, 0x8e, 0x8f, 0x90, 0x98, 0x9a, 0x9c, 0x9d, 0x9e, 0x9f]
    .concat([0xaa, 0xd2, 0xff]),
  cp1254: [0x81, 0x8d, 0x8e, 0x8f, 0x90, 0x9d, 0x9e],
  cp1255: [0x81, 0x8a, 0x8c, 0x8d, 0x8e, 0x8f, 0x90, 0x9a, 0x9c, 0x9d, 0x9e, 0x9f]
    .concat([0xd9, 0xda, 0xdb, 0xdc, 0xdd, 0xde, 0xdf, 0xfb, 0xfc, 0xff]),
  cp1256: [],
  cp1257: [0x81, 0x83, 0x88, 0x8a, 0x8c, 0x90, 0x98, 0x9a, 0x9c, 0x9f, 0xa1, 0xa5],
  cp1258: [0x81, 0x8a, 0x8d, 0x8e, 0x8f, 0x90, 0x9a, 0x9d, 0x9e],
  cp866: [],
  "koi8-r": [],
};

/**
 * Bytes the platform (WHATWG) decoder defines and Python does not: cp1255 0xCA is U+05BA
 * HEBREW POINT HOLAM HASER FOR VAV, which Microsoft added to cp1255 after the unicode.org
 * mapping file Python's table comes from. We keep the platform's character; the Python side
 * is told about it so that everything else must agree exactly.
 */
const BEYOND_PYTHON: Record<string, Record<number, number>> = { cp1255: { 0xca: 0x05ba } };

// ---- seeded random inputs -------------------------------------------------------------------

/** mulberry32: small, fast, and the same sequence everywhere for a seed. */
function random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Invalid UTF-8, each fragment one or more maximal subparts. */
const INVALID: number[][] = [
  [0xd0], // truncated 2-byte
  [0xe2, 0x82], // truncated 3-byte
  [0xe2], // truncated 3-byte, lead only
  [0xf0, 0x9f, 0x98], // truncated 4-byte (an emoji cut short)
  [0xf0, 0x9f], // truncated 4-byte
  [0xf4], // truncated 4-byte, lead only
  [0xc0, 0x80], // overlong NUL
  [0xc1, 0xbf], // overlong 0x7F
  [0xe0, 0x80, 0x80], // overlong 3-byte
  [0xe0, 0x9f, 0xbf], // overlong 3-byte, the largest
  [0xf0, 0x80, 0x80, 0x80], // overlong 4-byte
  [0xf0, 0x8f, 0xbf, 0xbf], // overlong 4-byte, the largest
  [0x80], // lone continuation
  [0xbf], // lone continuation
  [0x80, 0x80, 0x80], // run of continuations
  [0xed, 0xa0, 0x80], // surrogate U+D800 as 3 bytes
  [0xed, 0xb0, 0x80], // surrogate U+DC00 as 3 bytes
  [0xed, 0xbf, 0xbf], // surrogate U+DFFF as 3 bytes
  [0xed, 0xa0, 0xbd, 0xed, 0xb8, 0x80], // a surrogate pair CESU-style
  [0xf4, 0x90, 0x80, 0x80], // U+110000, past the end of Unicode
  [0xf5, 0x80, 0x80, 0x80], // lead byte F5
  [0xf8, 0x88, 0x80, 0x80, 0x80], // 5-byte form
  [0xfe],
  [0xff],
];

/** Code-point ranges worth drawing from: every code page's repertoire lies in these. */
const RANGES: [number, number][] = [
  [0x80, 0xff], // C1 controls (never encodable, see UNDEFINED) and Latin-1
  [0x100, 0x24f], // Latin Extended-A/B (cp1250, cp1257)
  [0x2c0, 0x2df], // modifier letters (ˆ ˜ ˇ)
  [0x300, 0x36f], // combining marks (cp1258)
  [0x370, 0x3ff], // Greek
  [0x400, 0x4ff], // Cyrillic
  [0x590, 0x5ff], // Hebrew
  [0x600, 0x6ff], // Arabic
  [0x1e00, 0x1eff], // Latin Extended Additional (Vietnamese)
  [0x2000, 0x206f], // general punctuation
  [0x20a0, 0x20cf], // currency (€, ₪, ₫)
  [0x2100, 0x214f], // letterlike (№, ™)
  [0x2200, 0x22ff], // maths (cp866: √, ∙)
  [0x2500, 0x25ff], // box drawing (cp866, koi8-r)
  [0xfffd, 0xffff], // U+FFFD itself, U+FFFE, U+FFFF
];

function pick<T>(rnd: () => number, list: readonly T[]): T {
  return list[Math.floor(rnd() * list.length)];
}

function int(rnd: () => number, lo: number, hi: number): number {
  return lo + Math.floor(rnd() * (hi - lo + 1));
}

/** One fragment of a random UTF-8 string. */
function fragment(rnd: () => number): number[] {
  const r = rnd();
  if (r < 0.3) return [int(rnd, 0x20, 0x7e)];
  if (r < 0.33) return [int(rnd, 0x00, 0x1f)];
  if (r < 0.7) {
    const [lo, hi] = pick(rnd, RANGES);
    return [...utf8(String.fromCodePoint(int(rnd, lo, hi)))];
  }
  if (r < 0.8) {
    let cp = int(rnd, 0x80, 0xffff);
    if (cp >= 0xd800 && cp <= 0xdfff) cp += 0x800;
    return [...utf8(String.fromCodePoint(cp))];
  }
  if (r < 0.87) {
    // astral: emoji mostly, and the ends of the range
    const cp = rnd() < 0.7 ? int(rnd, 0x1f300, 0x1f6ff) : pick(rnd, [0x10000, 0x10ffff, 0x20000]);
    return [...utf8(String.fromCodePoint(cp))];
  }
  return pick(rnd, INVALID);
}

function utf8Case(rnd: () => number, fragments: number): Uint8Array {
  const bytes: number[] = [];
  for (let k = 0; k < fragments; k++) bytes.push(...fragment(rnd));
  return Uint8Array.from(bytes);
}

function localCase(rnd: () => number, length: number): Uint8Array {
  return Uint8Array.from({ length }, () => rnd() < 0.6 ? int(rnd, 0x80, 0xff) : int(rnd, 0, 0x7f));
}

const rnd = random(0x10c41251);
/** UTF-8 inputs: short mixed ones, then long ones for the paths past the 4 KiB pool limit. */
const UTF8_CASES: Uint8Array[] = [
  new Uint8Array(0),
  utf8("plain ascii"),
  ...INVALID.map((bytes) => Uint8Array.from(bytes)),
  ...Array.from({ length: 400 }, () => utf8Case(rnd, int(rnd, 1, 30))),
  utf8Case(rnd, 3000), // mixed, > 4 KiB
  utf8("Сбербанк ао; ".repeat(400)), // valid Cyrillic, > 4 KiB: the exactly sized path
  Uint8Array.from([...utf8("Ж".repeat(3000)), 0x80, 0x80, 0x80]), // > 4 KiB, lone continuations
  Uint8Array.from([...utf8("ж".repeat(2100)), 0xf0, 0x9f, 0x98, 0x80, 0x80]), // emoji + stray 80
  utf8("x".repeat(5000)),
];
/** Code-page inputs, short and long (3 × length past the pool limit). */
const LOCAL_CASES: Uint8Array[] = [
  new Uint8Array(0),
  ...Array.from({ length: 300 }, () => localCase(rnd, int(rnd, 1, 40))),
  localCase(rnd, 3000),
  Uint8Array.from({ length: 256 }, (_, i) => i),
];
/** The whole BMP but the surrogates, U+0000..U+FFFF. */
const BMP = utf8(
  Array.from({ length: 0x10000 }, (_, c) => c)
    .filter((c) => c < 0xd800 || c > 0xdfff)
    .map((c) => String.fromCharCode(c))
    .join(""),
);

// ---- Python, run once -----------------------------------------------------------------------

const PYTHON_SCRIPT = String.raw`
import sys, json, codecs, base64
req = json.load(sys.stdin)
bmp = "".join(chr(c) for c in range(0x10000) if not 0xd800 <= c <= 0xdfff)
out = {"decode": {}, "bmp": {}, "fromUtf8": {}, "toUtf8": {}}
for name, py in req["pages"]:
    beyond = {int(b): cp for b, cp in req["beyond"].get(name, {}).items()}
    back = {chr(cp): bytes([b]) for b, cp in beyond.items()}
    count = [0]
    # errors="replace", counting, plus the bytes the platform defines beyond Python's table
    def enc_err(e, back=back, count=count):
        r = b""
        for ch in e.object[e.start:e.end]:
            if ch in back:
                r += back[ch]
            else:
                r += b"?"
                count[0] += 1
        return (r, e.end)
    def dec_err(e, beyond=beyond, count=count):
        b = e.object[e.start]
        if b in beyond:
            return (chr(beyond[b]), e.start + 1)
        count[0] += 1
        return ("\ufffd", e.start + 1)
    codecs.register_error("lomq-enc-" + name, enc_err)
    codecs.register_error("lomq-dec-" + name, dec_err)
    row = []
    for b in range(256):
        try:
            row.append(ord(bytes([b]).decode(py)))
        except UnicodeDecodeError:
            row.append(None)
    out["decode"][name] = row
    count[0] = 0
    out["bmp"][name] = [base64.b64encode(bmp.encode(py, "lomq-enc-" + name)).decode(), count[0]]
    res = []
    for h in req["utf8"]:
        count[0] = 0
        # invalid UTF-8 becomes U+FFFD per maximal subpart, which no code page holds: "?"
        s = bytes.fromhex(h).decode("utf-8", "replace")
        res.append([s.encode(py, "lomq-enc-" + name).hex(), count[0]])
    out["fromUtf8"][name] = res
    res = []
    for h in req["local"]:
        count[0] = 0
        s = bytes.fromhex(h).decode(py, "lomq-dec-" + name)
        res.append([s.encode("utf-8").hex(), count[0]])
    out["toUtf8"][name] = res
json.dump(out, sys.stdout)
`;

interface PythonAnswers {
  /** Strict decode of bytes 0..255: the code point, or null where Python raises. */
  decode: Record<string, (number | null)[]>;
  /** The BMP encoded with errors="replace" (base64), and how many were replaced. */
  bmp: Record<string, [string, number]>;
  /** Per UTF8_CASES entry: the code-page bytes (hex) and the replacement count. */
  fromUtf8: Record<string, [string, number][]>;
  /** Per LOCAL_CASES entry: the UTF-8 bytes (hex) and the replacement count. */
  toUtf8: Record<string, [string, number][]>;
}

const hex = (bytes: Uint8Array): string =>
  Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");

async function findPython(): Promise<string | null> {
  const fromEnv = Deno.env.get("LOMQ_PYTHON");
  for (const python of [...(fromEnv ? [fromEnv] : []), "python3", "/usr/bin/python3"]) {
    try {
      const probe = await new Deno.Command(python, {
        args: ["-c", "import codecs, sys; assert sys.version_info >= (3, 6)"],
        stdout: "null",
        stderr: "null",
      }).output();
      if (probe.success) return python;
    } catch {
      // not installed under this name
    }
  }
  return null;
}

async function askPython(python: string): Promise<PythonAnswers> {
  const request = JSON.stringify({
    pages: PAGES,
    beyond: BEYOND_PYTHON,
    utf8: UTF8_CASES.map(hex),
    local: LOCAL_CASES.map(hex),
  });
  const child = new Deno.Command(python, {
    args: ["-c", PYTHON_SCRIPT],
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const writer = child.stdin.getWriter();
  await writer.write(utf8(request));
  await writer.close();
  const { success, stdout, stderr } = await child.output();
  if (!success) throw new Error(`python failed: ${new TextDecoder().decode(stderr)}`);
  return JSON.parse(new TextDecoder().decode(stdout));
}

const python = await findPython();
const required = !!Deno.env.get("LOMQ_REQUIRE_INTEROP") &&
  Deno.env.get("LOMQ_REQUIRE_INTEROP") !== "0";
if (!python && required) throw new Error("LOMQ_REQUIRE_INTEROP is set but no python3 was found");
const answers = python ? await askPython(python) : undefined;
const noPython = answers === undefined;

function page(name: CodePageName): CodePage {
  const cp = codePage(name);
  assert.ok(cp, name);
  return cp;
}

// ---- against Python -------------------------------------------------------------------------

Deno.test({
  name: "every byte of every code page decodes as Python's codecs do and round-trips",
  ignore: noPython,
  fn() {
    for (const [name] of PAGES) {
      const cp = page(name);
      const pythonRow = answers!.decode[name];
      const beyond = BEYOND_PYTHON[name] ?? {};
      const undefinedHere: number[] = [];
      for (let b = 0; b < 256; b++) {
        const py = pythonRow[b];
        const before = cp.replaced;
        const out = cp.toUtf8(Uint8Array.of(b));
        const expected = b in beyond
          ? String.fromCharCode(beyond[b])
          : py === null
          ? "\ufffd"
          : String.fromCharCode(py);
        if (b in beyond) assert.equal(py, null, `${name} ${b}: Python still lacks it`);
        assert.deepEqual([...out], [...utf8(expected)], `${name} byte 0x${b.toString(16)}`);
        const isUndefined = py === null && !(b in beyond);
        assert.equal(cp.replaced - before, isUndefined ? 1 : 0, `${name} 0x${b.toString(16)}`);
        if (isUndefined) undefinedHere.push(b);
        // back: a defined byte comes back itself; U+FFFD is in no code page and becomes "?"
        const back = cp.fromUtf8(out);
        assert.deepEqual([...back], [isUndefined ? 0x3f : b], `${name} 0x${b.toString(16)} back`);
        assert.equal(cp.replaced - before, isUndefined ? 2 : 0);
      }
      assert.deepEqual(undefinedHere, UNDEFINED[name], `${name}: where Python raises`);
    }
  },
});

Deno.test({
  name: "the whole BMP encodes as Python's s.encode(cp, 'replace')",
  ignore: noPython,
  fn() {
    for (const [name] of PAGES) {
      const cp = page(name);
      const [base64, count] = answers!.bmp[name];
      const expected = Uint8Array.from(atob(base64), (c) => c.charCodeAt(0));
      const out = cp.fromUtf8(BMP);
      assert.equal(out.length, expected.length, name);
      assert.ok(out.every((b, i) => b === expected[i]), `${name}: BMP differs from Python`);
      assert.equal(cp.replaced, count, `${name}: replaced`);
      // Everything but the 128 ASCII and the code page's own characters is replaced.
      assert.equal(count, 0xf800 - 128 - (128 - UNDEFINED[name].length), name);
    }
  },
});

Deno.test({
  name: "random UTF-8 with foreign characters, emoji and invalid sequences: as Python",
  ignore: noPython,
  fn() {
    for (const [name] of PAGES) {
      const cp = page(name);
      const expected = answers!.fromUtf8[name];
      UTF8_CASES.forEach((input, k) => {
        const before = cp.replaced;
        const out = cp.fromUtf8(input);
        const [wantHex, wantCount] = expected[k];
        const what = `${name} case ${k}: ${hex(input).slice(0, 120)}`;
        assert.equal(hex(out), wantHex, what);
        assert.equal(cp.replaced - before, wantCount, what);
        // the …Into variant writes the same bytes, in a buffer sized by the input
        const into = new Uint8Array(input.length + 3);
        const end = cp.fromUtf8Into(input, into, 3);
        assert.equal(hex(into.subarray(3, end)), wantHex, what);
        assert.equal(cp.replaced - before, 2 * wantCount, what);
      });
    }
  },
});

Deno.test({
  name: "random code-page bytes decode as Python's b.decode(cp, 'replace')",
  ignore: noPython,
  fn() {
    for (const [name] of PAGES) {
      const cp = page(name);
      const expected = answers!.toUtf8[name];
      LOCAL_CASES.forEach((input, k) => {
        const before = cp.replaced;
        const out = cp.toUtf8(input);
        const [wantHex, wantCount] = expected[k];
        const what = `${name} case ${k}: ${hex(input).slice(0, 120)}`;
        assert.equal(hex(out), wantHex, what);
        assert.equal(cp.replaced - before, wantCount, what);
        assert.equal(cp.utf8Length(input), out.length, what);
        const into = new Uint8Array(out.length + 5);
        assert.equal(cp.toUtf8Into(input, into, 5), into.length, what);
        assert.equal(hex(into.subarray(5)), wantHex, what);
        assert.equal(cp.replaced - before, 2 * wantCount, what);
        // and back: everything defined returns to its byte
        if (wantCount === 0) assert.equal(hex(cp.fromUtf8(out)), hex(input), what);
      });
    }
  },
});

// ---- properties of our own ------------------------------------------------------------------

Deno.test("ASCII-only input comes back as the same array, in both directions", () => {
  const inputs = [
    new Uint8Array(0),
    utf8("getParamEx2"),
    Uint8Array.from({ length: 128 }, (_, i) => i),
    utf8("__ab__cd__").subarray(2, 8), // a view with an offset, as the codec passes
    utf8("x".repeat(10_000)),
  ];
  for (const name of CODE_PAGES) {
    const cp = page(name);
    for (const input of inputs) {
      assert.equal(cp.fromUtf8(input), input, name);
      assert.equal(cp.toUtf8(input), input, name);
    }
    assert.equal(cp.replaced, 0);
  }
  // The utf-8 marker passes everything through untouched, even invalid UTF-8.
  const marker = page("utf-8");
  const binary = Uint8Array.of(0xff, 0xc0, 0x80, 0xd0, 0x96);
  assert.equal(marker.transcodes, false);
  assert.equal(marker.fromUtf8(binary), binary);
  assert.equal(marker.toUtf8(binary), binary);
  assert.equal(marker.utf8Length(binary), 5);
  const out = new Uint8Array(8);
  assert.equal(marker.fromUtf8Into(binary, out, 1), 6);
  assert.deepEqual([...out], [0, 0xff, 0xc0, 0x80, 0xd0, 0x96, 0, 0]);
  assert.equal(marker.replaced, 0);
});

Deno.test("replaced counts each replaced character once, per instance, both directions", () => {
  const cp = page("cp1251");
  assert.deepEqual([...cp.fromUtf8(utf8("Привет"))], [0xcf, 0xf0, 0xe8, 0xe2, 0xe5, 0xf2]);
  assert.equal(cp.replaced, 0);
  assert.deepEqual([...cp.fromUtf8(utf8("€ 😀 日本 é"))], [
    0x88,
    0x20,
    0x3f,
    0x20,
    0x3f,
    0x3f,
    0x20,
    0x3f,
  ]);
  assert.equal(cp.replaced, 4, "emoji, two CJK, é");
  assert.deepEqual([...cp.fromUtf8(Uint8Array.of(0xc0, 0x80, 0x41))], [0x3f, 0x3f, 0x41]);
  assert.equal(cp.replaced, 6, "an overlong NUL is two maximal subparts");
  assert.deepEqual([...cp.fromUtf8(Uint8Array.of(0xed, 0xa0, 0x80))], [0x3f, 0x3f, 0x3f]);
  assert.equal(cp.replaced, 9, "a surrogate as 3 bytes is three");
  assert.deepEqual([...cp.fromUtf8(Uint8Array.of(0xf0, 0x9f, 0x98, 0x41))], [0x3f, 0x41]);
  assert.equal(cp.replaced, 10, "a truncated emoji is one");
  assert.deepEqual([...cp.fromUtf8(utf8("?"))], [0x3f]);
  assert.equal(cp.replaced, 10, "a real question mark is no replacement");
  assert.deepEqual([...cp.toUtf8(Uint8Array.of(0x98, 0xc0, 0x98))], [...FFFD, 0xd0, 0x90, ...FFFD]);
  assert.equal(cp.replaced, 12, "0x98 is undefined in cp1251");
  assert.deepEqual([...cp.fromUtf8(utf8("\u0098"))], [0x3f], "nor is U+0098 in it");
  assert.equal(cp.replaced, 13);
  // another instance of the same code page counts on its own; the field may be reset
  assert.equal(page("cp1251").replaced, 0);
  cp.replaced = 0;
  cp.toUtf8(Uint8Array.of(0x98));
  assert.equal(cp.replaced, 1);
});

Deno.test("names: aliases, any case; unknown names are undefined; CODE_PAGES all resolve", () => {
  const spellings: [string, CodePageName][] = [
    ["cp1251", "cp1251"],
    ["CP1251", "cp1251"],
    ["windows-1251", "cp1251"],
    ["Windows-1251", "cp1251"],
    ["WINDOWS_1252", "cp1252"],
    ["win-1250", "cp1250"],
    ["win1258", "cp1258"],
    ["cp866", "cp866"],
    ["IBM866", "cp866"],
    ["koi8-r", "koi8-r"],
    ["KOI8_R", "koi8-r"],
    ["koi8r", "koi8-r"],
    ["utf-8", "utf-8"],
    ["UTF8", "utf-8"],
    [" utf_8 ", "utf-8"],
  ];
  for (const [spelling, canonical] of spellings) {
    assert.equal(codePage(spelling)?.name, canonical, spelling);
  }
  for (const unknown of ["", "cp1249", "cp1259", "windows-1251x", "latin1", "koi8-u", "cp65001"]) {
    assert.equal(codePage(unknown), undefined, unknown);
  }
  assert.deepEqual(
    [...CODE_PAGES],
    ["utf-8", ...PAGES.map(([name]) => name)],
  );
  for (const name of CODE_PAGES) {
    assert.equal(codePage(name)?.name, name);
    assert.equal(new CodePage(name).transcodes, name !== "utf-8");
  }
  assert.throws(() => new CodePage("windows-1251" as CodePageName), RangeError);
  assert.notEqual(codePage("cp1251"), codePage("cp1251"), "a fresh instance (own counter)");
});

Deno.test("…Into: the returned end, a too small buffer throws without writing outside it", () => {
  const cp = page("cp1251");
  const heap = new Uint8Array(32).fill(0xee);
  const out = heap.subarray(4, 12); // 8 bytes, guarded on both sides
  assert.equal(cp.fromUtf8Into(utf8("ёж"), out, 2), 4);
  assert.deepEqual([...out.subarray(2, 4)], [0xb8, 0xe6]);
  assert.throws(() => cp.fromUtf8Into(utf8("Газпром ао"), out, 0), RangeError); // 10 > 8
  assert.throws(
    () => cp.toUtf8Into(Uint8Array.of(0xc0, 0xc1, 0xc2, 0xc3, 0xc4), out, 0),
    RangeError,
  );
  assert.throws(() => cp.toUtf8Into(utf8("a"), out, 9), RangeError, "offset past the end");
  assert.throws(() => cp.toUtf8Into(utf8("a"), out, -1), RangeError);
  assert.throws(() => cp.toUtf8Into(utf8("a"), out, 1.5), RangeError);
  assert.throws(() => cp.fromUtf8Into(utf8("€😀"), out, 7), RangeError);
  assert.equal(cp.replaced, 0, "calls that throw count nothing");
  assert.ok(heap.subarray(0, 4).every((b) => b === 0xee), "nothing before the view");
  assert.ok(heap.subarray(12).every((b) => b === 0xee), "nothing after the view");
  // exactly enough room is enough, at the very end of the buffer
  const local = Uint8Array.of(0xc0, 0x88); // "А€", 2 + 3 bytes
  assert.equal(cp.utf8Length(local), 5);
  assert.equal(cp.toUtf8Into(local, out, 3), 8);
  assert.deepEqual([...out.subarray(3)], [0xd0, 0x90, 0xe2, 0x82, 0xac]);
  assert.equal(cp.fromUtf8Into(new Uint8Array(0), out, 8), 8);
});

Deno.test("results stay valid: later calls never overwrite earlier (pooled) results", () => {
  const cp = page("koi8-r");
  const words = ["Сбербанк", "Газпром", "Лукойл", "Норникель", "Яндекс"];
  const kept: Uint8Array[] = [];
  const keptUtf8: Uint8Array[] = [];
  // enough calls to go through several pool blocks
  for (let k = 0; k < 5000; k++) {
    const local = cp.fromUtf8(utf8(words[k % words.length] + k));
    kept.push(local);
    keptUtf8.push(cp.toUtf8(local));
  }
  const decoder = new TextDecoder("koi8-r");
  kept.forEach((local, k) => {
    assert.equal(decoder.decode(local), words[k % words.length] + k);
    assert.equal(new TextDecoder().decode(keptUtf8[k]), words[k % words.length] + k);
  });
  assert.equal(cp.replaced, 0);
});
