// The msgpack <-> Lua codec, checked against msgpackr as an independent reference.
import assert from "node:assert/strict";
import { Packr, Unpackr } from "msgpackr";
import { LuaEngine } from "../src/lua/engine.ts";
import { CodecError, FORM_ARRAY, FORM_MAP } from "../src/lua/codec.ts";
import { REGISTRY_INDEX } from "../src/lua/api.ts";

const engine = await LuaEngine.create();
const { m, L } = engine;
// The encoder's forced-form table, as the bindings set it up.
m._lua_createtable(L, 0, 0);
engine.encoder.formsRef = m._luaL_ref(L, REGISTRY_INDEX);

const packr = new Packr({ useRecords: false, variableMapSize: true, int64AsType: "bigint" });
const unpackr = new Unpackr({ useRecords: false, mapsAsObjects: false, int64AsType: "bigint" });
const utf8 = new TextEncoder();

/** Runs Lua source returning one value and encodes it with lomq's encoder. */
function encodeLua(expression: string, setup = ""): Uint8Array {
  m._lua_settop(L, 0);
  const failure = engine.load(L, utf8.encode(`${setup}\nreturn ${expression}`), "=test");
  assert.equal(failure, undefined, failure);
  assert.equal(engine.pcall(L, 0, 1), 0, "Lua chunk failed");
  engine.encoder.reset();
  engine.encoder.value(L, -1);
  m._lua_settop(L, 0);
  return engine.encoder.take();
}

/** Decodes bytes onto the stack as global `v`, then runs a Lua check that must return true. */
function decodeAndCheck(bytes: Uint8Array, check: string): void {
  m._lua_settop(L, 0);
  engine.decoder.pushDocument(L, bytes);
  engine.setGlobal(L, "v");
  const failure = engine.load(L, utf8.encode(`return ${check}`), "=check");
  assert.equal(failure, undefined, failure);
  assert.equal(engine.pcall(L, 0, 1), 0, engine.api.describe(L, -1));
  assert.equal(m._lua_toboolean(L, -1), 1, `Lua check failed: ${check}`);
  m._lua_settop(L, 0);
}

/** Decodes onto the stack and encodes back. */
function roundTrip(bytes: Uint8Array): Uint8Array {
  m._lua_settop(L, 0);
  engine.decoder.pushDocument(L, bytes);
  engine.encoder.reset();
  engine.encoder.value(L, -1);
  m._lua_settop(L, 0);
  return engine.encoder.take();
}

function hex(bytes: Uint8Array): string {
  return [...bytes].map((b) => b.toString(16).padStart(2, "0")).join(" ");
}

Deno.test("integers encode exactly as msgpackr encodes them, to int64 limits", () => {
  const values = [0n, 1n, 127n, 128n, 255n, 256n, 65535n, 65536n, 4294967295n, 4294967296n];
  const negatives = [-1n, -32n, -33n, -128n, -129n, -32768n, -32769n, -2147483648n, -2147483649n];
  for (const v of [...values, ...negatives]) {
    const bytes = encodeLua(`${v}`);
    if (v > 4294967295n || v < -2147483648n) {
      // Past 32 bits msgpackr writes int64 for any bigint; like msgpack-c (the original's
      // codec) we write a non-negative value as uint64. Both decode to the same integer.
      assert.equal(bytes[0], v > 0n ? 0xcf : 0xd3);
      assert.equal(unpackr.unpack(bytes), v);
    } else {
      assert.equal(hex(bytes), hex(packr.pack(Number(v))), `integer ${v}`);
    }
  }
  assert.equal(hex(encodeLua("math.maxinteger")), "cf 7f ff ff ff ff ff ff ff");
  assert.equal(hex(encodeLua("math.mininteger")), hex(packr.pack(-9223372036854775808n)));
  assert.equal(unpackr.unpack(encodeLua("math.maxinteger")), 9223372036854775807n);
});

Deno.test("floats stay floats: 3.0 goes out as float64, float32 and float64 come in as floats", () => {
  const three = encodeLua("3.0");
  assert.equal(three[0], 0xcb);
  assert.equal(unpackr.unpack(three), 3);
  assert.equal(
    hex(encodeLua("0.1")),
    "cb " + hex(new Uint8Array(new Float64Array([0.1]).buffer).reverse()),
  );
  decodeAndCheck(
    new Uint8Array([0xcb, 0x40, 0x08, 0, 0, 0, 0, 0, 0]),
    "math.type(v) == 'float' and v == 3.0",
  );
  decodeAndCheck(new Uint8Array([0xca, 0x40, 0x40, 0, 0]), "math.type(v) == 'float' and v == 3.0");
  decodeAndCheck(packr.pack(3), "math.type(v) == 'integer' and v == 3");
  assert.equal(
    hex(roundTrip(new Uint8Array([0xcb, 0x40, 0x59, 0, 0, 0, 0, 0, 0]))),
    "cb 40 59 00 00 00 00 00 00",
  );
  // Every byte of a float64 and of a float32 matters, and the edges of the range decode.
  for (const x of [0.1, -0, 1e308, 5e-324, -2.5e-300, Infinity, -Infinity, 123456.789]) {
    const bytes = new Uint8Array([0xcb, ...new Uint8Array(new Float64Array([x]).buffer).reverse()]);
    assert.equal(hex(roundTrip(bytes)), hex(bytes), `float64 ${x}`);
  }
  for (const x of [1.5, -0.15625, 3.4028234663852886e38, -Infinity]) {
    const bytes = new Uint8Array([0xca, ...new Uint8Array(new Float32Array([x]).buffer).reverse()]);
    const back = unpackr.unpack(roundTrip(bytes));
    assert.ok(Object.is(back, x), `float32 ${x} came back as ${back}`);
  }
  decodeAndCheck(new Uint8Array([0xcb, 0x7f, 0xf8, 0, 0, 0, 0, 0, 0]), "v ~= v");
  decodeAndCheck(new Uint8Array([0xca, 0x7f, 0xc0, 0, 0]), "v ~= v");
});

Deno.test("int64 and uint64 decode exactly; uint64 above int64 max is refused", () => {
  decodeAndCheck(packr.pack(9223372036854775807n), "v == math.maxinteger");
  decodeAndCheck(packr.pack(-9223372036854775808n), "v == math.mininteger");
  decodeAndCheck(packr.pack(9007199254740993n), "v == 9007199254740993");
  const tooBig = new Uint8Array([0xcf, 0x80, 0, 0, 0, 0, 0, 0, 0]);
  assert.throws(
    () => roundTrip(tooBig),
    (e: unknown) => e instanceof CodecError && /above the largest Lua integer/.test(e.message),
  );
});

Deno.test("strings: str and bin become Lua strings byte for byte; valid UTF-8 goes out as str, else bin", () => {
  assert.equal(hex(encodeLua(`"hello"`)), hex(packr.pack("hello")));
  assert.equal(hex(encodeLua(`"привет"`)), hex(packr.pack("привет")));
  const long = "x".repeat(70000);
  assert.equal(hex(encodeLua(`string.rep("x", 70000)`)), hex(packr.pack(long)));
  const withNul = encodeLua(`"a\\0b"`);
  assert.equal(hex(withNul), hex(packr.pack("a\0b")));
  const binary = encodeLua(`"\\xff\\xfe\\0"`);
  assert.equal(hex(binary), "c4 03 ff fe 00");
  assert.deepEqual(unpackr.unpack(binary), new Uint8Array([0xff, 0xfe, 0]));
  decodeAndCheck(packr.pack(new Uint8Array([0, 1, 255])), `v == "\\0\\1\\255"`);
  decodeAndCheck(packr.pack("a\0b"), `v == "a\\0b" and #v == 3`);
  // Overlong encodings and lone surrogates are not UTF-8.
  assert.equal(encodeLua(`"\\xc0\\x80"`)[0], 0xc4);
  assert.equal(encodeLua(`"\\xed\\xa0\\x80"`)[0], 0xc4);
});

// Short runs are copied by a loop and long ones by set() (src/bytes.ts), on both sides:
// every length around the switch, and around the str/bin header sizes, comes back intact.
Deno.test("strings of every length around the copy and header limits keep every byte", () => {
  for (const n of [0, 1, 2, 31, 32, 33, 34, 63, 64, 65, 255, 256, 257, 65535, 65536]) {
    const text = Array.from({ length: n }, (_, i) => String.fromCharCode(0x61 + (i * 7) % 26))
      .join("");
    assert.equal(hex(roundTrip(packr.pack(text))), hex(packr.pack(text)), `str of ${n}`);
    const bytes = new Uint8Array(n).map((_, i) => (i * 37 + 0x80) & 0xff);
    const expected = isValidUtf8(bytes)
      ? packr.pack(new TextDecoder().decode(bytes))
      : packr.pack(bytes);
    assert.equal(hex(roundTrip(packr.pack(bytes))), hex(expected), `bin of ${n}`);
    decodeAndCheck(packr.pack(text), `#v == ${n}`);
  }
  // An invalid byte at the very end of a short and of a long string is seen.
  for (const n of [5, 40]) {
    const bytes = new TextEncoder().encode("y".repeat(n - 1) + " ");
    bytes[n - 1] = 0xff;
    assert.equal(roundTrip(packr.pack(bytes))[0], 0xc4, `invalid last byte of ${n}`);
  }
});

function isValidUtf8(bytes: Uint8Array): boolean {
  try {
    new TextDecoder("utf-8", { fatal: true }).decode(bytes);
    return true;
  } catch {
    return false;
  }
}

Deno.test("tables: arrays exactly for keys 1..n, maps otherwise, keys keep their types", () => {
  assert.equal(hex(encodeLua("{1, 2, 3}")), hex(packr.pack([1, 2, 3])));
  assert.equal(hex(encodeLua("{}")), "80");
  const map = unpackr.unpack(encodeLua(`{[1] = "a", ["1"] = "b"}`)) as Map<unknown, unknown>;
  assert.equal(map.get(1), "a");
  assert.equal(map.get("1"), "b");
  const holes = unpackr.unpack(encodeLua("{[1] = 1, [3] = 3}")) as Map<unknown, unknown>;
  assert.ok(holes instanceof Map, "a table with a hole is a map");
  const extra = unpackr.unpack(encodeLua(`{1, 2, x = 1}`)) as Map<unknown, unknown>;
  assert.ok(extra instanceof Map, "an array part plus a string key is a map");
  // As many keys as the length, but one of them is not 1..n: the array written up to the
  // hole is taken back, nested tables and all.
  const counted = unpackr.unpack(encodeLua(`{{1, {2}}, nil, 3, x = "y"}`)) as Map<unknown, unknown>;
  assert.ok(counted instanceof Map, "a hole with a string key instead is a map");
  assert.deepEqual([...counted.entries()].sort(), [[1, [1, [2]]], [3, 3], ["x", "y"]]);
  const long = encodeLua("t", "t = {}; for i = 1, 300 do t[i] = i end");
  assert.deepEqual(unpackr.unpack(long), Array.from({ length: 300 }, (_, i) => i + 1));
  assert.equal(hex(encodeLua("{{1}, {a = true}}")), hex(packr.pack([[1], new Map([["a", true]])])));
  decodeAndCheck(
    packr.pack(new Map<unknown, unknown>([[1, "a"], ["1", "b"]])),
    `v[1] == "a" and v["1"] == "b"`,
  );
  decodeAndCheck(packr.pack([1, [2, [3]]]), "v[2][2][1] == 3 and #v == 2");
  decodeAndCheck(packr.pack([]), "type(v) == 'table' and next(v) == nil");
});

Deno.test("LuaOverMQ.array/map force the form; functions and userdata go out as nil", () => {
  const setup = `local forms = debug.getregistry()[${engine.encoder.formsRef}]
    local function array(t) forms[t] = ${FORM_ARRAY}; return t end
    local function map(t) forms[t] = ${FORM_MAP}; return t end`;
  assert.equal(hex(encodeLua("array({})", setup)), "90");
  assert.equal(hex(encodeLua("map({1, 2})", setup)), hex(packr.pack(new Map([[1, 1], [2, 2]]))));
  assert.equal(hex(encodeLua("print")), "c0");
  assert.equal(hex(encodeLua("{print}")), "91 c0");
  assert.equal(hex(encodeLua("coroutine.create(print)")), "c0");
});

Deno.test("cycles and deep nesting are errors, not crashes; shared tables are fine", () => {
  assert.throws(() => encodeLua("t", "t = {}; t.self = t"), /cycle/);
  assert.throws(
    () => encodeLua("t", "t = {}; local c = t; for i = 1, 150 do c[1] = {}; c = c[1] end"),
    /deeper than 100/,
  );
  assert.equal(hex(encodeLua("{s, s}", "s = {1}")), hex(packr.pack([[1], [1]])));
  let deep = new Uint8Array(0);
  deep = new Uint8Array([...new Array(150).fill(0x91), 0x01]);
  assert.throws(() => roundTrip(deep), /deeper than 100/);
});

Deno.test("bad msgpack is a CodecError: ext types, truncation, 0xc1, nil keys, trailing bytes", () => {
  assert.throws(() => roundTrip(new Uint8Array([0xd4, 0x05, 0x00])), /ext type 5/);
  assert.throws(() => roundTrip(new Uint8Array([0xc7, 0x01, 0x07, 0x00])), /ext type 7/);
  assert.throws(() => roundTrip(new Uint8Array([0xdc, 0xff])), /truncated/);
  assert.throws(() => roundTrip(new Uint8Array([0xdd, 0x7f, 0xff, 0xff, 0xff])), /truncated/);
  assert.throws(() => roundTrip(new Uint8Array([0xc1])), /0xc1/);
  assert.throws(() => roundTrip(new Uint8Array([0x81, 0xc0, 0x01])), /nil/);
  assert.throws(() => roundTrip(new Uint8Array([0x01, 0x02])), /unexpected bytes/);
  assert.throws(() => roundTrip(new Uint8Array([0xa5, 0x61])), /truncated/);
});

Deno.test("every scalar round-trips through Lua to the same bytes msgpackr produces", () => {
  const samples: unknown[] = [
    null,
    true,
    false,
    0,
    -1,
    1000,
    -100000,
    "",
    "ok",
    [1, "a", null],
    new Map([["k", [true]]]),
  ];
  for (const sample of samples) {
    const bytes = packr.pack(sample);
    if (sample === null) {
      assert.equal(hex(roundTrip(bytes)), "c0");
      continue;
    }
    if (Array.isArray(sample) && sample.includes(null)) continue; // nil in an array makes a hole
    assert.equal(hex(roundTrip(bytes)), hex(bytes), `round trip of ${JSON.stringify(sample)}`);
  }
});

Deno.test("takeKnownString finds a request's method among known names in place, or moves nowhere", () => {
  const names = ["add", "ad", "addd", "x".repeat(40), "é"].map((n) => ({ name: utf8.encode(n) }));
  const fixint = describeFixint();
  const decoder = engine.decoder;
  // Each header form (fixstr, str8, str16, str32) of each name, then the next element.
  for (let i = 0; i < names.length; i++) {
    const name = names[i].name;
    const len = name.length;
    const headers = [
      ...(len < 32 ? [[0xa0 | len]] : []),
      [0xd9, len],
      [0xda, 0, len],
      [0xdb, 0, 0, 0, len],
    ];
    for (const header of headers) {
      const request = new Uint8Array([0x92, ...header, ...name, 0x07]);
      assert.equal(decoder.beginArray(request), 2);
      assert.equal(decoder.takeKnownString(names), i, hex(request));
      assert.equal(decoder.describeNext(), fixint);
    }
  }
  // Unknown names, prefixes and other types leave the position where it was.
  for (
    const first of [[0xa2, 0x61, 0x64, 0x07], [0xa3, 0x61, 0x64, 0x63], [0x07], [
      0xc4,
      3,
      0x61,
      0x64,
      0x64,
    ]]
  ) {
    const request = new Uint8Array([0x92, ...first, 0x07]);
    decoder.beginArray(request);
    const before = decoder.describeNext();
    assert.equal(decoder.takeKnownString(names.slice(0, 1)), -1, hex(request));
    assert.equal(decoder.describeNext(), before);
  }
  // A string header longer than the message is a truncation, as for takeString.
  decoder.beginArray(new Uint8Array([0x91, 0xdb, 0, 0, 1, 0, 0x61]));
  assert.throws(() => decoder.takeKnownString(names), CodecError);
});

/** How describeNext names a positive fixint (the element after the method above). */
function describeFixint(): string {
  engine.decoder.beginArray(new Uint8Array([0x91, 0x07]));
  return engine.decoder.describeNext();
}
