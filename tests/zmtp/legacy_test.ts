/**
 * ZMTP 2.0 (RFC 15) and ZMTP 1.0 (RFC 13) peers: greeting detection and framing, checked byte
 * for byte over real TCP on loopback, as the accepting and as the connecting side, and the
 * hostile cases. JeroMQ, a real ZMTP 2.0 stack, is in jeromq_test.ts.
 */

import assert from "node:assert/strict";
import { type CloseKind, Connection, type ConnectionHandler } from "../../src/zmtp/connection.ts";
import { encodeMessage, FLAG_MORE, ProtocolError } from "../../src/zmtp/frame.ts";
import { buildGreeting, buildSignature, parseGreeting } from "../../src/zmtp/greeting.ts";
import { curveKeyPair, loadCurve } from "../../src/zmtp/curve.ts";
import { socketTypeCode, socketTypeName, toZmtp1 } from "../../src/zmtp/legacy.ts";
import { createSocket, type Socket } from "../../src/zmtp/mod.ts";
import { resolveOptions } from "../../src/zmtp/options.ts";
import { captureLog } from "./capture.ts";
import { RawPeer, readAllFrames, serveEcho, waitFor } from "./util.ts";

const enc = (s: string) => new TextEncoder().encode(s);
const dec = (b: Uint8Array) => new TextDecoder().decode(b);
const cat = (...parts: (Uint8Array | number[])[]) => new Uint8Array(parts.flatMap((p) => [...p]));

/** Our signature as a peer without identity sends it: a ZMTP 1.0 frame of length 1. */
const SIGNATURE = [0xff, 0, 0, 0, 0, 0, 0, 0, 1, 0x7f];
const REQ = socketTypeCode("REQ");
const REP = socketTypeCode("REP");

/** A ZMTP 1.0 frame: length (counting the flags) in 1 or 9 bytes, flags, body. */
function v1Frame(flags: number, body: Uint8Array): Uint8Array {
  const length = body.length + 1;
  if (length < 255) return cat([length, flags], body);
  const header = new Uint8Array(10);
  header[0] = 0xff;
  new DataView(header.buffer).setUint32(5, length);
  header[9] = flags;
  return cat(header, body);
}

/** A ZMTP 2.0 frame (= a 3.x message frame). */
function v2Frame(flags: number, body: Uint8Array): Uint8Array {
  if (body.length <= 255) return cat([flags, body.length], body);
  const header = new Uint8Array(9);
  header[0] = flags | 2;
  new DataView(header.buffer).setUint32(5, body.length);
  return cat(header, body);
}

/** Reads `n` bytes from `peer`, failing the test when they do not come. */
async function expectBytes(peer: RawPeer, n: number, what: string): Promise<Uint8Array> {
  const bytes = await peer.readBytes(n, 5000);
  if (bytes === undefined) throw new Error(`no ${what} (${n} bytes) from lomq`);
  return bytes;
}

/** Asserts that nothing more arrives for a while: lomq waits for the peer's next bytes. */
async function expectSilence(peer: RawPeer, what: string): Promise<void> {
  assert.equal(await peer.readBytes(1, 200, true), undefined, what);
}

Deno.test("legacy greeting: detection of ZMTP 1.0 (short, long), versioned 1.0, 2.0 and 3.x", () => {
  assert.deepEqual([...buildSignature(0)], SIGNATURE);
  assert.deepEqual([...buildSignature(255)], [0xff, 0, 0, 0, 0, 0, 0, 1, 0, 0x7f]);
  // ZMTP 1.0, short identity frame: known after 2 bytes.
  assert.equal(parseGreeting(new Uint8Array([5])).status, "partial");
  assert.equal(parseGreeting(new Uint8Array([5, 0])).status, "zmtp1");
  assert.equal(parseGreeting(new Uint8Array([1, 1, 99])).status, "zmtp1");
  // ZMTP 1.0, long identity frame: 0xFF, length 256, flags 0 (bit 0 clear).
  const long = new Uint8Array([0xff, 0, 0, 0, 0, 0, 0, 1, 0, 0]);
  for (let n = 1; n < 10; n++) {
    const check = parseGreeting(long.subarray(0, n));
    assert.deepEqual(check, { status: "partial", signature: false, revision: undefined });
  }
  assert.equal(parseGreeting(long).status, "zmtp1");
  long[7] = 2; // an identity longer than 255 bytes is not one
  assert.equal(parseGreeting(long).status, "error");
  // Versioned: the signature, then the revision byte.
  const sig = new Uint8Array(SIGNATURE);
  assert.deepEqual(parseGreeting(sig), { status: "partial", signature: true, revision: undefined });
  for (const revision of [0, 1]) {
    const g = cat(sig, [revision, REQ]);
    assert.deepEqual(parseGreeting(g.subarray(0, 11)), {
      status: "partial",
      signature: true,
      revision,
    });
    assert.deepEqual(parseGreeting(g), { status: "legacy", revision, socketType: REQ });
  }
  const v3 = buildGreeting();
  assert.deepEqual(parseGreeting(v3.subarray(0, 40)), {
    status: "partial",
    signature: true,
    revision: 3,
  });
  assert.equal(parseGreeting(v3).status, "done");
  assert.equal(socketTypeName(REQ), "REQ");
  assert.equal(socketTypeName(9), "XPUB");
  assert.equal(socketTypeName(77), "unknown socket type 77");
});

Deno.test("legacy framing: ZMTP 1.0 and 2.0 frames read in any split, 1.0 written", () => {
  const big = "y".repeat(5000);
  const v1 = cat(v1Frame(1, enc("")), v1Frame(1, enc("ab")), v1Frame(0, enc(big)));
  // Short: length 3 = flags + "ab"; long: 0xFF, 8-byte length 5001, flags.
  assert.deepEqual([...v1.subarray(2, 6)], [3, 1, 97, 98]);
  assert.deepEqual([...v1.subarray(6, 16)], [0xff, 0, 0, 0, 0, 0, 0, 0x13, 0x89, 0]);
  // Commands do not exist in 2.0: a reserved bit (0x04) is no command flag.
  const v2 = cat(v2Frame(1, enc("")), v2Frame(5, enc("ab")), v2Frame(0, enc(big)));
  for (const step of [1, 2, 9, 10, 11, 4096, v1.length]) {
    for (const [framing, bytes] of [[1, v1], [2, v2]] as const) {
      const frames = readAllFrames(bytes, step, framing);
      assert.deepEqual(frames.map((f) => f.body), ["", "ab", big], `ZMTP ${framing}, ${step}`);
      assert.deepEqual(frames.map((f) => f.flags), [FLAG_MORE, FLAG_MORE, 0]);
    }
  }
  assert.deepEqual(toZmtp1(encodeMessage([enc(""), enc("ab"), enc(big)])), v1);
  assert.throws(() => readAllFrames(new Uint8Array([0, 0]), 2, 1), ProtocolError, "length 0");
  assert.throws(
    () => readAllFrames(new Uint8Array([0xff, 0, 0, 0, 1, 0, 0, 0, 0, 0]), 10, 1, 1000),
    /exceeds the maximum message size/,
  );
});

/** A REP socket served by serveEcho ("re:" + the request), and its endpoint. */
async function echoServer(
  options = {},
): Promise<{ rep: Socket; endpoint: string; done: Promise<number> }> {
  const rep = createSocket("REP", options);
  const endpoint = await rep.bind("tcp://127.0.0.1:0");
  return { rep, endpoint, done: serveEcho(rep) };
}

Deno.test("ZMTP 2.0 client: greeting and frames byte for byte, against a lomq REP", async () => {
  const { rep, endpoint, done } = await echoServer();
  const peer = await RawPeer.connect(endpoint);
  try {
    assert.deepEqual([...await expectBytes(peer, 10, "signature")], SIGNATURE);
    await expectSilence(peer, "nothing but the signature before ours");
    await peer.write(new Uint8Array(SIGNATURE));
    assert.deepEqual([...await expectBytes(peer, 1, "major version")], [3]);
    await expectSilence(peer, "nothing but the major version before our revision");
    // Revision 1 (ZMTP 2.0), REQ, an empty identity frame, then [delimiter, "hello"].
    await peer.write(
      cat([1, REQ], v2Frame(0, enc("")), v2Frame(1, enc("")), v2Frame(0, enc("hello"))),
    );
    // Socket type REP, an empty identity frame, then the reply with its envelope.
    const reply = cat([REP], v2Frame(0, enc("")), v2Frame(1, enc("")), v2Frame(0, enc("re:hello")));
    assert.deepEqual(await expectBytes(peer, reply.length, "reply"), reply);
    // A long frame each way.
    const big = "z".repeat(300);
    await peer.write(cat(v2Frame(1, enc("")), v2Frame(0, enc(big))));
    const longReply = cat(v2Frame(1, enc("")), v2Frame(0, enc("re:" + big)));
    assert.deepEqual(await expectBytes(peer, longReply.length, "long reply"), longReply);
    assert.equal(longReply[2], 2, "LONG flag");
  } finally {
    peer.close();
    rep.close();
    await done;
  }
});

for (const versioned of [false, true]) {
  Deno.test(`ZMTP 1.0 client ${versioned ? "(revision 0)" : "(no version)"}: byte for byte, against a lomq REP`, async () => {
    const { rep, endpoint, done } = await echoServer();
    const peer = await RawPeer.connect(endpoint);
    try {
      assert.deepEqual([...await expectBytes(peer, 10, "signature")], SIGNATURE);
      if (versioned) {
        await peer.write(cat(SIGNATURE, [0, REQ]));
        // Major version, socket type, and the identity frame in 1.0 framing: length 1, flags.
        assert.deepEqual([...await expectBytes(peer, 4, "greeting rest")], [3, REP, 1, 0]);
      }
      // The identity frame (a 1.0 peer without version speaks first with it), then a request
      // with a long body.
      const big = "w".repeat(400);
      await peer.write(cat(v1Frame(0, enc("id")), v1Frame(1, enc("")), v1Frame(0, enc("hello"))));
      await peer.write(cat(v1Frame(1, enc("")), v1Frame(0, enc(big))));
      // lomq's identity frame is its signature (REP has no identity: nothing follows it).
      const replies = cat(
        v1Frame(1, enc("")),
        v1Frame(0, enc("re:hello")),
        v1Frame(1, enc("")),
        v1Frame(0, enc("re:" + big)),
      );
      assert.deepEqual(await expectBytes(peer, replies.length, "replies"), replies);
    } finally {
      peer.close();
      rep.close();
      await done;
    }
  });
}

/** Accepts one connection on a listener of the test's own, as the peer a lomq socket calls. */
function rawServer(): { endpoint: string; accept: () => Promise<RawPeer>; close(): void } {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  return {
    endpoint: `tcp://127.0.0.1:${listener.addr.port}`,
    accept: async () => RawPeer.wrap(await listener.accept()),
    close: () => listener.close(),
  };
}

Deno.test("lomq REQ connecting to a ZMTP 2.0 REP and to a ZMTP 1.0 REP, byte for byte", async () => {
  for (const zmtp of [2, 1]) {
    const server = rawServer();
    const req = createSocket("REQ", { identity: enc("me") });
    try {
      req.connect(server.endpoint);
      const peer = await server.accept();
      // The signature's length is that of our identity frame in ZMTP 1.0: "me" + flags.
      assert.deepEqual([...await expectBytes(peer, 10, "signature")], [
        0xff,
        0,
        0,
        0,
        0,
        0,
        0,
        0,
        3,
        0x7f,
      ]);
      assert.equal(req.trySend([enc("ping")]), true);
      let request: Uint8Array;
      if (zmtp === 2) {
        await peer.write(cat(SIGNATURE, [1, REP], v2Frame(0, enc(""))));
        request = cat(
          [3, REQ],
          v2Frame(0, enc("me")),
          v2Frame(1, enc("")),
          v2Frame(0, enc("ping")),
        );
      } else {
        // A ZMTP 1.0 peer sends its identity frame at once; ours was the signature, its body
        // follows.
        await peer.write(v1Frame(0, enc("")));
        request = cat(enc("me"), v1Frame(1, enc("")), v1Frame(0, enc("ping")));
      }
      assert.deepEqual(await expectBytes(peer, request.length, "request"), request, `ZMTP ${zmtp}`);
      const frame = zmtp === 2 ? v2Frame : v1Frame;
      await peer.write(cat(frame(1, enc("")), frame(0, enc("pong"))));
      const reply = await req.recv(5000);
      assert.deepEqual(reply?.map(dec), ["pong"], `ZMTP ${zmtp}`);
      peer.close();
    } finally {
      req.close();
      server.close();
    }
  }
});

Deno.test("lomq PUB: a ZMTP 2.0 subscriber subscribes by message, a 1.0 one gets everything", async () => {
  const pub = createSocket("PUB");
  const endpoint = await pub.bind("tcp://127.0.0.1:0");
  const v2 = await RawPeer.connect(endpoint);
  const v1 = await RawPeer.connect(endpoint);
  try {
    await v2.write(
      cat(
        SIGNATURE,
        [1, socketTypeCode("SUB")],
        v2Frame(0, enc("")),
        v2Frame(0, cat([1], enc("a"))),
      ),
    );
    await v1.write(v1Frame(0, enc("")));
    await expectBytes(v2, 10 + 2 + 2, "greeting and identity");
    await expectBytes(v1, 10, "signature");
    // Retry until the subscription has arrived: the first "a" the 2.0 peer sees proves it.
    const expected2 = cat(v2Frame(1, enc("a")), v2Frame(0, enc("2")));
    const deadline = Date.now() + 5000;
    let got: Uint8Array | undefined;
    for (;;) {
      got = await v2.readBytes(expected2.length, 100, true);
      if (got !== undefined || Date.now() > deadline) break;
      pub.trySend([enc("b"), enc("1")]);
      pub.trySend([enc("a"), enc("2")]);
    }
    assert.deepEqual(got, expected2, "only the subscribed topic, in 2.0 framing");
    // The 1.0 subscriber filters for itself, so it gets "b" too, in 1.0 framing.
    assert.deepEqual(
      await expectBytes(v1, 6, "first message"),
      cat(v1Frame(1, enc("b")), v1Frame(0, enc("1"))),
    );
  } finally {
    v2.close();
    v1.close();
    pub.close();
  }
});

Deno.test("lomq SUB connecting to a ZMTP 2.0 and a 1.0 PUB: subscriptions as messages", async () => {
  for (const zmtp of [2, 1]) {
    const server = rawServer();
    const sub = createSocket("SUB");
    try {
      sub.subscribe("a");
      sub.connect(server.endpoint);
      const peer = await server.accept();
      assert.deepEqual([...await expectBytes(peer, 10, "signature")], SIGNATURE);
      const frame = zmtp === 2 ? v2Frame : v1Frame;
      let expected: Uint8Array;
      if (zmtp === 2) {
        await peer.write(cat(SIGNATURE, [1, socketTypeCode("PUB")], v2Frame(0, enc(""))));
        expected = cat([3, socketTypeCode("SUB")], v2Frame(0, enc("")), v2Frame(0, enc("\x01a")));
      } else {
        await peer.write(v1Frame(0, enc("")));
        expected = v1Frame(0, enc("\x01a"));
      }
      assert.deepEqual(await expectBytes(peer, expected.length, "subscription"), expected);
      // A publisher may send what is not subscribed (a 1.0 one does): the SUB filters.
      await peer.write(
        cat(frame(1, enc("b")), frame(0, enc("1")), frame(1, enc("a")), frame(0, enc("2"))),
      );
      assert.deepEqual((await sub.recv(5000))?.map(dec), ["a", "2"], `ZMTP ${zmtp}`);
      peer.close();
    } finally {
      sub.close();
      server.close();
    }
  }
});

Deno.test("hostile ZMTP 2.0 and 1.0 peers close only their own connection", async () => {
  const capture = captureLog();
  const { rep, endpoint, done } = await echoServer({
    maxMessageSize: 1000,
    handshakeTimeoutMs: 500,
  });
  const peers: RawPeer[] = [];
  const connect = async (bytes: Uint8Array) => {
    const peer = await RawPeer.connect(endpoint);
    peers.push(peer);
    await peer.write(bytes);
    return peer;
  };
  const v2 = (...frames: Uint8Array[]) => cat(SIGNATURE, [1, REQ], ...frames);
  const longV1 = (length: number) => {
    const h = new Uint8Array(10);
    h[0] = 0xff;
    new DataView(h.buffer).setBigUint64(1, BigInt(length));
    return h;
  };
  try {
    // What each does, and the reason its drop is logged with.
    const cases: [string, Uint8Array, string][] = [
      [
        "2.0 oversize frame",
        v2(v2Frame(0, enc("")), new Uint8Array([2, 0, 0, 0, 0, 0, 0, 0x13, 0x88])),
        "frame of 5000 bytes exceeds the maximum message size",
      ],
      [
        "2.0 frame length over 2^32",
        v2(v2Frame(0, enc("")), new Uint8Array([2, 0, 0, 0, 1, 0, 0, 0, 0])),
        "frame of 4294967296 bytes exceeds",
      ],
      [
        "2.0 identity longer than 255 bytes",
        v2(v2Frame(0, new Uint8Array(300))),
        "identity frame of 300 bytes",
      ],
      [
        "2.0 identity that lies about its length",
        v2(new Uint8Array([0, 200, 1, 2, 3])),
        "handshake timeout",
      ],
      [
        "2.0 socket type that REP cannot talk to",
        cat(SIGNATURE, [1, socketTypeCode("PUB")]),
        "REP cannot talk to PUB",
      ],
      [
        "2.0 unknown socket type",
        cat(SIGNATURE, [1, 200]),
        "REP cannot talk to unknown socket type 200",
      ],
      ["1.0 frame of length 0", cat(v1Frame(0, enc("")), [0, 0]), "ZMTP 1.0 frame of length 0"],
      [
        "1.0 long frame over maxMessageSize",
        cat(v1Frame(0, enc("")), longV1(1_000_000_000_000), [0]),
        "exceeds the maximum message size",
      ],
      [
        "1.0 long frame of length 0",
        cat(v1Frame(0, enc("")), longV1(0), [0]),
        "ZMTP 1.0 frame of length 0",
      ],
      [
        "1.0 identity longer than 255 bytes (seen in the greeting)",
        v1Frame(0, new Uint8Array(300)),
        "not a ZMTP greeting (bad signature)",
      ],
      ["1.0 identity frame that never ends", new Uint8Array([100, 0, 1, 2]), "handshake timeout"],
    ];
    const hostile = await Promise.all(cases.map(([, bytes]) => connect(bytes)));
    // A good ZMTP 2.0 client on the same socket, before and after.
    const good = await connect(
      v2(v2Frame(0, enc("")), v2Frame(1, enc("")), v2Frame(0, enc("one"))),
    );
    const one = cat([3, REP], v2Frame(0, enc("")), v2Frame(1, enc("")), v2Frame(0, enc("re:one")));
    assert.deepEqual(await expectBytes(good, 10 + one.length, "first reply"), cat(SIGNATURE, one));
    for (const [i, peer] of hostile.entries()) {
      const [what, , reason] = cases[i];
      assert.equal(await peer.closedByPeer(3000), true, what);
      const port = (peer.conn.localAddr as Deno.NetAddr).port;
      const logged = capture.matching(`:${port} on REP`);
      assert.ok(logged.some((line) => line.includes(reason)), `${what}: ${logged.join("; ")}`);
    }
    await good.write(cat(v2Frame(1, enc("")), v2Frame(0, enc("two"))));
    const two = cat(v2Frame(1, enc("")), v2Frame(0, enc("re:two")));
    assert.deepEqual(await expectBytes(good, two.length, "second reply"), two);
  } finally {
    for (const peer of peers) peer.close();
    rep.close();
    await done;
    capture.restore();
  }
});

/** Records what a Connection reports; accepts every peer. */
class Recorder implements ConnectionHandler<unknown> {
  closed: { reason: string; kind: CloseKind } | undefined;
  onReady(): boolean {
    return true;
  }
  onMessage(): void {}
  onSubscription(): void {}
  canReceive(): boolean {
    return true;
  }
  hold(): "held" {
    return "held";
  }
  onDrained(): void {}
  onIdle(): void {}
  onClose(_conn: Connection<unknown>, reason: string, kind: CloseKind): void {
    this.closed = { reason, kind };
  }
}

Deno.test("a socket with a security mechanism refuses ZMTP 2.0 and 1.0 peers, as libzmq does", async () => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const endpoint = `tcp://127.0.0.1:${listener.addr.port}`;
  await loadCurve();
  const options = resolveOptions({ curveServer: true, curveSecretKey: curveKeyPair().secretKey });
  try {
    for (const version of ["2.0", "1.0"]) {
      const client = await RawPeer.connect(endpoint);
      const recorder = new Recorder();
      const conn = new Connection(await listener.accept(), {
        socketType: "REP",
        options,
        remote: "test",
        endpoint,
      }, recorder);
      conn.start();
      assert.deepEqual([...await expectBytes(client, 10, "signature")], SIGNATURE);
      if (version === "2.0") {
        await client.write(new Uint8Array(SIGNATURE));
        assert.deepEqual([...await expectBytes(client, 1, "major version")], [3]);
        await client.write(new Uint8Array([1, REQ]));
      } else {
        await client.write(v1Frame(0, enc("")));
      }
      await waitFor(() => recorder.closed !== undefined, "the connection closing");
      assert.equal(recorder.closed?.kind, "dropped");
      assert.match(recorder.closed!.reason, new RegExp(`ZMTP ${version} peer refused: .*CURVE`));
      // Nothing more went out: no socket type, no identity.
      assert.equal(await client.readBytes(1, 2000), undefined, version);
      client.close();
      await conn.done;
    }
  } finally {
    listener.close();
  }
});
