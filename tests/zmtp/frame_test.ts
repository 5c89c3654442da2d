import assert from "node:assert/strict";
import {
  decodeCommand,
  decodeProperties,
  encodeCommand,
  encodeMessage,
  encodePing,
  encodeReady,
  FLAG_COMMAND,
  FLAG_LONG,
  FLAG_MORE,
  FrameReader,
  ProtocolError,
} from "../../src/zmtp/frame.ts";
import { buildGreeting, parseGreeting } from "../../src/zmtp/greeting.ts";
import { feedFrames, readAllFrames } from "./util.ts";

const enc = (s: string) => new TextEncoder().encode(s);
const dec = (b: Uint8Array) => new TextDecoder().decode(b);

Deno.test("greeting: 64 bytes, signature, version 3.1, NULL, as-server 0", () => {
  const g = buildGreeting();
  assert.equal(g.length, 64);
  assert.equal(g[0], 0xff);
  assert.deepEqual([...g.subarray(1, 9)], [0, 0, 0, 0, 0, 0, 0, 0]);
  assert.equal(g[9], 0x7f);
  assert.equal(g[10], 3);
  assert.equal(g[11], 1);
  assert.equal(dec(g.subarray(12, 16)), "NULL");
  assert.equal(g[16], 0);
  assert.equal(g[32], 0);
});

Deno.test("greeting: parsed incrementally, padding ignored, 3.0 remembered", () => {
  const g = buildGreeting();
  g[11] = 0;
  g.fill(0xaa, 1, 9); // padding is never checked
  for (let n = 0; n < 64; n++) {
    assert.equal(parseGreeting(g.subarray(0, n)).status, "partial", `prefix ${n}`);
  }
  const done = parseGreeting(g);
  assert.equal(done.status, "done");
  if (done.status === "done") {
    assert.equal(done.greeting.minor, 0);
    assert.equal(done.greeting.mechanism, "NULL");
  }
  // Extra bytes (the first frames) after the greeting are fine.
  const withMore = new Uint8Array(80);
  withMore.set(buildGreeting());
  assert.equal(parseGreeting(withMore).status, "done");
});

Deno.test("greeting: garbage is rejected as early as possible (ZMTP 2.0/1.0: legacy_test)", () => {
  // "G" could be a ZMTP 1.0 frame length; "E" cannot be its flags.
  assert.equal(parseGreeting(enc("GE")).status, "error");
  assert.equal(parseGreeting(new Uint8Array([0x00])).status, "error");
  const notFlags = new Uint8Array(10);
  notFlags[0] = 0xff;
  notFlags[9] = 0x7e;
  assert.equal(parseGreeting(notFlags).status, "error");
  const zmtp2dot = buildGreeting().subarray(0, 11).slice();
  zmtp2dot[10] = 2;
  assert.equal(parseGreeting(zmtp2dot).status, "error");
});

Deno.test("frames: short and long sizes, flags, in any split", () => {
  const big = "x".repeat(300);
  const bytes = new Uint8Array([
    ...encodeMessage([enc("a"), new Uint8Array(0), enc(big)]),
    ...encodeCommand("PING", new Uint8Array([0, 0])),
  ]);
  // Long header: flags | LONG, 8-byte big-endian size.
  const longAt = 2 + 1 + 2;
  assert.equal(bytes[longAt], FLAG_LONG);
  assert.deepEqual([...bytes.subarray(longAt + 1, longAt + 9)], [0, 0, 0, 0, 0, 0, 1, 44]);
  for (const step of [1, 2, 3, 7, 64, bytes.length]) {
    const frames = readAllFrames(bytes, step);
    assert.deepEqual(frames.map((f) => f.body), ["a", "", big, "\x04PING\x00\x00"], `step ${step}`);
    assert.deepEqual(frames.map((f) => f.flags), [FLAG_MORE, FLAG_MORE, FLAG_LONG, FLAG_COMMAND]);
  }
});

Deno.test("frames: a frame bigger than the read buffer is read into its own array", () => {
  const payload = new Uint8Array(200_000);
  for (let i = 0; i < payload.length; i++) payload[i] = i % 251;
  const bytes = new Uint8Array([...encodeMessage([payload, enc("tail")])]);
  for (const step of [1000, 65536, bytes.length]) {
    const reader = new FrameReader(1 << 20, 4096);
    const bodies: Uint8Array[] = [];
    feedFrames(reader, bytes, step, () => bodies.push(reader.body));
    assert.equal(bodies.length, 2);
    assert.deepEqual(bodies[0], payload);
    assert.equal(dec(bodies[1]), "tail");
  }
});

Deno.test("frames: a declared size over the limit throws before allocating", () => {
  const reader = new FrameReader(1000);
  const header = new Uint8Array([FLAG_LONG, 0, 0, 0, 0, 0, 0, 0x10, 0]); // 4096 bytes
  reader.target().set(header);
  reader.commit(header.length);
  assert.throws(() => reader.next(), ProtocolError);
  const huge = new FrameReader(1 << 30);
  const header2 = new Uint8Array([FLAG_LONG, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0]);
  huge.target().set(header2);
  huge.commit(header2.length);
  assert.throws(() => huge.next(), /exceeds the maximum message size/);
  // Past 2^53 a number would round: the message states the declared size exactly.
  const top = new FrameReader(1 << 30);
  const header3 = new Uint8Array([FLAG_LONG, 0x80, 0, 0, 0, 0, 0, 0, 1]);
  top.target().set(header3);
  top.commit(header3.length);
  assert.throws(() => top.next(), /frame of 9223372036854775809 bytes exceeds/);
});

Deno.test("commands: READY properties are case-insensitive; PING layout", () => {
  const ready = encodeReady([["Socket-Type", enc("REQ")], ["IDENTITY", enc("me")]]);
  const frames = readAllFrames(ready, ready.length);
  assert.equal(frames.length, 1);
  const reader = new FrameReader(1 << 20);
  reader.target().set(ready);
  reader.commit(ready.length);
  assert.ok(reader.next());
  const { name, data } = decodeCommand(reader.body);
  assert.equal(name, "READY");
  const props = decodeProperties(data);
  assert.equal(dec(props.get("socket-type")!), "REQ");
  assert.equal(dec(props.get("identity")!), "me");
  assert.throws(() => decodeProperties(new Uint8Array([5, 65])), ProtocolError);
  assert.throws(() => decodeCommand(new Uint8Array([9, 65])), ProtocolError);
  const ping = encodePing(12, enc("ctx"));
  assert.deepEqual([...ping.subarray(0, 7)], [FLAG_COMMAND, 10, 4, 80, 73, 78, 71]);
  assert.deepEqual([...ping.subarray(7)], [0, 12, 99, 116, 120]);
});
