/**
 * Every resource a peer can make the ZMTP layer hold has a bound: what each hostile peer
 * gets (dropped or throttled, and logged), and that good clients keep being served.
 *
 * @module
 */

import assert from "node:assert/strict";
import { findPython, skipInterop } from "../helpers/python.ts";
import {
  EMPTY,
  encodeMessage,
  encodePing,
  FLAG_LONG,
  FrameReader,
  READ_BUFFER_MAX,
  READ_BUFFER_MIN,
} from "../../src/zmtp/frame.ts";
import { buildGreeting } from "../../src/zmtp/greeting.ts";
import { createSocket, EAGAIN, EHOSTUNREACH, type Socket } from "../../src/zmtp/mod.ts";
import { captureLog, rssOf } from "./capture.ts";
import { bytes, PyAgent } from "./pyzmq.ts";
import { delay, hostPort, RawPeer, serveEcho, waitFor } from "./util.ts";

const MiB = 1024 * 1024;

function escape(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

/** The log line for dropping `peer` from a socket of `type` bound at `endpoint`. */
function dropLine(peer: RawPeer, type: string, endpoint: string, reason: string): RegExp {
  const port = (peer.conn.localAddr as Deno.NetAddr).port;
  return new RegExp(
    `^lomq: dropped tcp://127\\.0\\.0\\.1:${port} on ${type} ${escape(endpoint)}: ${reason}$`,
  );
}

/** The header of a frame declaring `size` bytes (8-byte size), body to follow. */
function longHeader(size: number): Uint8Array {
  const header = new Uint8Array(9);
  header[0] = FLAG_LONG;
  new DataView(header.buffer).setUint32(5, size);
  return header;
}

/**
 * Writes, ignoring the failure when the other side has dropped us meanwhile; false when the
 * write failed or did not finish within `timeoutMs` (the other side stopped reading).
 */
async function writeUntilDropped(
  peer: RawPeer,
  data: Uint8Array,
  timeoutMs = 5000,
): Promise<boolean> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<boolean>((resolve) => timer = setTimeout(resolve, timeoutMs, false));
  try {
    return await Promise.race([peer.write(data).then(() => true, () => false), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

Deno.test({
  name: "sndbufBytes: REP drops a client pipelining 1 MiB requests without reading them",
  ignore: skipInterop,
  async fn() {
    const capture = captureLog();
    const rep = createSocket("REP", { sndbufBytes: 4 * MiB });
    const endpoint = await rep.bind("tcp://127.0.0.1:0");
    const server = serveEcho(rep);
    const agent = await PyAgent.start();
    const hog = await RawPeer.connect(endpoint);
    try {
      const req = await agent.socket("REQ");
      await agent.connect(req, endpoint);
      await hog.handshake("REQ");
      const request = encodeMessage([EMPTY, new Uint8Array(MiB)]);
      const before = Deno.memoryUsage().rss;
      const during = agent.call({ op: "requests", id: req, count: 200, tag: "during" });
      let sent = 0;
      while (sent < 128 && await writeUntilDropped(hog, request)) sent++;
      await waitFor(() => capture.matching("does not read").length > 0, "the drop");
      const grown = Deno.memoryUsage().rss - before;
      // Without the bound every reply would be held: 128 MiB and more.
      assert.ok(sent < 64, `the server took ${sent} requests of 1 MiB before dropping`);
      assert.ok(grown < 96 * MiB, `RSS grew by ${(grown / MiB).toFixed(1)} MiB`);
      assert.match(
        capture.matching("does not read")[0],
        dropLine(
          hog,
          "REP",
          endpoint,
          "the peer does not read its replies: \\d+ bytes queued, sndbufBytes 4194304",
        ),
      );
      assert.equal(await hog.closedByPeer(3000), true);
      const result = await during;
      assert.equal(result.ok, true, result.error);
      const after = await agent.call({ op: "requests", id: req, count: 20, tag: "after" });
      assert.equal(after.ok, true, after.error);
      assert.equal(rep.peerCount, 1);
    } finally {
      hog.close();
      await agent.stop();
      await rep.close();
      capture.restore();
    }
    await server;
  },
});

Deno.test("sndbufBytes: PUSH blocks (EAGAIN, send() waits) and PUB skips a slow subscriber", async () => {
  const push = createSocket("PUSH", { sndbufBytes: MiB });
  const pub = createSocket("PUB", { sndbufBytes: MiB });
  const pull = await RawPeer.connect(await push.bind("tcp://127.0.0.1:0"));
  const sub = await RawPeer.connect(await pub.bind("tcp://127.0.0.1:0"));
  try {
    await pull.handshake("PULL");
    await waitFor(() => push.peerCount === 1, "the PULL peer");
    const quarter = new Uint8Array(MiB / 4);
    // The first message is being written; the queue is empty, so a message bigger than the
    // bound is still accepted, and then nothing more, well below the HWM.
    assert.equal(push.trySend([quarter]), true);
    assert.equal(push.trySend([new Uint8Array(3 * MiB)]), true);
    assert.equal(push.trySend([bytes("small")]), false);
    assert.equal(push.lastErrno, EAGAIN);
    const waiting = push.send([bytes("last")], 10_000);
    const lengths: number[] = [];
    for (;;) {
      const frame = await pull.readFrame(5000);
      assert.ok(frame !== undefined, "the PULL peer reads everything");
      lengths.push(frame.body.length);
      if (frame.body.length === 4) break;
    }
    assert.equal(await waiting, true, "send() waited for room");
    assert.deepEqual(lengths, [MiB / 4, 3 * MiB, 4]);

    await sub.handshake("SUB");
    await sub.command("SUBSCRIBE");
    // Publish until the subscription has arrived (the PUB may see the peer before it).
    for (let tries = 0;; tries++) {
      assert.ok(tries < 50, "the subscriber receives a sync message");
      pub.trySend([bytes("sync")]);
      if (await sub.readMessage(100, true) !== undefined) break;
    }
    // 100 publications of 256 KiB at once: one in flight, four queued, the rest skipped.
    for (let i = 0; i < 100; i++) assert.equal(pub.trySend([bytes("big"), quarter]), true);
    assert.equal(pub.trySend([bytes("end")]), true);
    let big = 0;
    for (;;) {
      const message = await sub.readMessage(5000);
      assert.ok(message !== undefined);
      if (message[0] === "big") big++;
      else if (message[0] === "end") break;
    }
    assert.ok(big >= 1 && big <= 5, `${big} of 100 publications reached the slow subscriber`);
  } finally {
    pull.close();
    sub.close();
    await push.close();
    await pub.close();
  }
});

Deno.test("sndbufBytes: ROUTER drops a peer that does not read (EHOSTUNREACH)", async () => {
  const capture = captureLog();
  const router = createSocket("ROUTER", { sndbufBytes: MiB });
  const endpoint = await router.bind("tcp://127.0.0.1:0");
  const dealer = await RawPeer.connect(endpoint);
  try {
    await dealer.handshake("DEALER");
    await dealer.send(["hello"]);
    const request = await router.recv(5000);
    assert.ok(request !== undefined);
    const id = request[0];
    // One in flight, one bigger than the bound into the empty queue, then over the bound.
    assert.equal(router.trySend([id, new Uint8Array(MiB / 4)]), true);
    assert.equal(router.trySend([id, new Uint8Array(3 * MiB)]), true);
    assert.equal(router.trySend([id, bytes("more")]), false);
    assert.equal(router.lastErrno, EHOSTUNREACH);
    assert.match(
      capture.lines.join("\n"),
      new RegExp(
        `dropped tcp://127\\.0\\.0\\.1:\\d+ on ROUTER ${escape(endpoint)}: the peer does not ` +
          "read its replies: 3145743 bytes queued, sndbufBytes 1048576",
      ),
    );
    assert.equal(router.peerCount, 0);
    assert.equal(router.trySend([id, bytes("gone")]), false);
    assert.equal(router.lastErrno, EHOSTUNREACH);
  } finally {
    dealer.close();
    await router.close();
    capture.restore();
  }
});

Deno.test("read buffer: starts small, grows while reads fill it, shrinks when quiet", () => {
  const reader = new FrameReader(1 << 20);
  assert.equal(reader.bufferSize, READ_BUFFER_MIN);
  const frame = encodeMessage([new Uint8Array(1000).fill(9)]);
  let offset = 0; // position in an endless stream of such frames
  let frames = 0;
  const read = (max: number) => {
    const target = reader.target();
    const n = Math.min(max, target.length);
    for (let i = 0; i < n; i++) target[i] = frame[(offset + i) % frame.length];
    offset += n;
    reader.commit(n);
    while (reader.next()) {
      assert.equal(reader.body.length, 1000);
      frames++;
    }
  };
  // A burst: every read gets all it is offered.
  const sizes: number[] = [];
  for (let i = 0; i < 12; i++) {
    read(Infinity);
    sizes.push(reader.bufferSize);
  }
  assert.equal(frames, Math.floor(offset / frame.length));
  assert.deepEqual(sizes.slice(0, 6), [2048, 4096, 8192, 16384, 32768, 65536].slice(0, 6));
  assert.equal(reader.bufferSize, READ_BUFFER_MAX);
  // The burst ends on a frame boundary, then a lone small message: the connection is quiet.
  read((frame.length - offset % frame.length) % frame.length);
  const hi = encodeMessage([bytes("hi")]);
  reader.target().set(hi);
  reader.commit(hi.length);
  assert.ok(reader.next());
  assert.equal(reader.target().length, READ_BUFFER_MIN);
  assert.equal(reader.bufferSize, READ_BUFFER_MIN);
});

Deno.test({
  name: "PONGs do not pile up: a PING flood from a peer that never reads keeps RSS flat",
  ignore: skipInterop,
  async fn() {
    const rep = createSocket("REP");
    const endpoint = await rep.bind("tcp://127.0.0.1:0");
    const served: string[] = [];
    const server = serveEcho(rep, served);
    const agent = await PyAgent.start();
    const flooder = await RawPeer.connect(endpoint);
    try {
      const req = await agent.socket("REQ");
      await agent.connect(req, endpoint);
      await flooder.handshake("REQ");
      // 500,000 PINGs with the largest context: 11 MB of PONGs, more than the kernel holds
      // for a peer that does not read; then a request, so we know when all were parsed.
      const ping = encodePing(0, new Uint8Array(16).fill(7));
      const done = encodeMessage([EMPTY, bytes("flood-done")]);
      const count = 500_000;
      const flood = new Uint8Array(ping.length * count + done.length);
      for (let i = 0; i < count; i++) flood.set(ping, i * ping.length);
      flood.set(done, ping.length * count);
      const before = Deno.memoryUsage().rss;
      const during = agent.call({ op: "requests", id: req, count: 200, tag: "during" });
      await flooder.write(flood);
      await waitFor(() => served.includes("flood-done"), "the flood to be parsed", 20_000);
      const grown = Deno.memoryUsage().rss - before;
      // One PONG object per PING would take well over 100 MiB.
      assert.ok(grown < 48 * MiB, `RSS grew by ${(grown / MiB).toFixed(1)} MiB`);
      const result = await during;
      assert.equal(result.ok, true, result.error);
      assert.equal(rep.peerCount, 2, "a PING flood is allowed; it just costs nothing");
      // The flooder still gets its reply after what the kernel held of the PONGs.
      assert.deepEqual(await flooder.readMessage(10_000), ["", "re:flood-done"]);
    } finally {
      flooder.close();
      await agent.stop();
      await rep.close();
    }
    await server;
  },
});

/** Python that handshakes as a DEALER and sends PINGs without pause, never reading. */
function pingFlooder(port: number, seconds: number): string {
  return `import socket, struct, time
s = socket.create_connection(("127.0.0.1", ${port}))
g = bytearray(64); g[0] = 0xff; g[9] = 0x7f; g[10] = 3; g[11] = 1; g[12:16] = b"NULL"
s.sendall(bytes(g))
body = bytes([5]) + b"READY" + bytes([11]) + b"Socket-Type" + struct.pack(">I", 6) + b"DEALER"
s.sendall(bytes([4, len(body)]) + body)
ping = bytes([4, 23, 4]) + b"PING" + bytes(2) + b"0123456789abcdef"
chunk = ping * (65536 // len(ping))
end = time.time() + ${seconds}
try:
    while time.time() < end:
        s.sendall(chunk)
except OSError:
    pass
s.close()
`;
}

Deno.test({
  name: "a peer that sends without pause (another process) does not stall other clients",
  ignore: skipInterop,
  async fn() {
    const rep = createSocket("REP");
    const endpoint = await rep.bind("tcp://127.0.0.1:0");
    const server = serveEcho(rep);
    const probe = await RawPeer.connect(endpoint);
    const python = await findPython();
    assert.ok(python !== null);
    // The flood lasts far longer than the probes may take (each waits at most 5 s): a server
    // that served the flooder until it stopped would answer no probe while it floods.
    const flooder = new Deno.Command(python, {
      args: ["-c", pingFlooder(hostPort(endpoint).port, 60)],
      stdout: "null",
      stderr: "inherit",
    }).spawn();
    let flooding = true;
    const ended = flooder.status.then(() => flooding = false);
    try {
      await probe.handshake("REQ");
      await waitFor(() => rep.peerCount === 2, "the flooder");
      await delay(200);
      // Reads from a peer whose data is always there complete without a turn of the event
      // loop: without yielding now and then, this client would wait for the flood to end.
      for (let i = 0; i < 10; i++) {
        await probe.send(["", `probe${i}`]);
        assert.deepEqual(await probe.readMessage(5000), ["", `re:probe${i}`]);
        await delay(50);
      }
      assert.ok(flooding, "the flooder stopped before the probes were answered");
      assert.equal(rep.peerCount, 2, "the flooder's connection was dropped");
    } finally {
      if (flooding) flooder.kill("SIGKILL");
      await ended;
      probe.close();
      await rep.close();
    }
    await server;
  },
});

/** Drains what `socket` has queued now, synchronously: reading resumes only afterwards. */
function takeQueued(socket: Socket): number[] {
  const lengths: number[] = [];
  for (let m = socket.tryRecv(); m !== undefined; m = socket.tryRecv()) lengths.push(m[0].length);
  return lengths;
}

Deno.test("rcvbufBytes: complete messages pause the delivering connection, never close it", async () => {
  const capture = captureLog();
  const pull = createSocket("PULL", { rcvbufBytes: MiB });
  const endpoint = await pull.bind("tcp://127.0.0.1:0");
  const flooder = await RawPeer.connect(endpoint);
  const polite = await RawPeer.connect(endpoint);
  try {
    await flooder.handshake("PUSH");
    await polite.handshake("PUSH");
    await waitFor(() => pull.peerCount === 2, "both pushers");
    // Messages that fit the read buffer (complete ones only), then messages of their own
    // array (a message still arriving waits while complete ones are queued).
    for (const [size, count, expected] of [[10 * 1024, 400, 103], [100 * 1024, 40, 10]]) {
      const message = encodeMessage([new Uint8Array(size)]);
      const flood = new Uint8Array(message.length * count);
      for (let i = 0; i < count; i++) flood.set(message, i * message.length);
      // Not awaited yet: what the server does not read yet waits in the kernel's buffers,
      // which need not hold it all, so the write may only end once the loop below drains.
      const writing = flooder.write(flood);
      await delay(300);
      // Over the bound, but a connection with nothing queued may always deliver one.
      await polite.send(["polite"]);
      await delay(200);
      const queued = takeQueued(pull);
      const letIn = queued.filter((n) => n === size).length;
      assert.ok(
        Math.abs(letIn - expected) <= 1,
        `${letIn} of ${count} messages of ${size} bytes were let in, not ${expected}`,
      );
      assert.ok(queued.includes(6), "the other connection delivered its message");
      let total = letIn;
      while (total < count) {
        const m = await pull.recv(5000);
        assert.ok(m !== undefined, `only ${total} of ${count} messages arrived`);
        if (m[0].length === size) total++;
      }
      await writing;
    }
    assert.equal(pull.peerCount, 2, "backpressure never closes a connection");
    assert.deepEqual(capture.matching("dropped"), []);
  } finally {
    flooder.close();
    polite.close();
    await pull.close();
    capture.restore();
  }
});

Deno.test({
  name: "rcvbufBytes and stallTimeoutMs: unfinished messages are bounded and then dropped",
  ignore: skipInterop,
  async fn() {
    const capture = captureLog();
    const rep = createSocket("REP", { rcvbufBytes: 8 * MiB, stallTimeoutMs: 600 });
    const endpoint = await rep.bind("tcp://127.0.0.1:0");
    const server = serveEcho(rep);
    const agent = await PyAgent.start();
    const slow = await RawPeer.connect(endpoint);
    const big = await RawPeer.connect(endpoint);
    const parts = await RawPeer.connect(endpoint);
    try {
      const req = await agent.socket("REQ");
      await agent.connect(req, endpoint);
      const during = agent.call({ op: "requests", id: req, count: 300, tag: "during" });
      for (const peer of [slow, big, parts]) await peer.handshake("REQ");
      const delimiter = encodeMessage([EMPTY, EMPTY]).subarray(0, 2);
      // 3 MiB of a declared 60 MiB frame, then silence: held (4 MiB as allocated) until the
      // stall timeout.
      await slow.write(delimiter);
      await slow.write(longHeader(60 * MiB));
      await slow.write(new Uint8Array(3 * MiB));
      const slowDone = Date.now();
      await delay(100);
      // Another 60 MiB frame: its growth past 8 MiB across the socket drops it.
      await big.write(delimiter);
      await big.write(longHeader(60 * MiB));
      await writeUntilDropped(big, new Uint8Array(16 * MiB));
      assert.equal(await big.closedByPeer(3000), true, "the big frame's connection is dropped");
      // Complete frames of an unfinished multipart message count too.
      await parts.write(delimiter);
      const frame = encodeMessage([new Uint8Array(MiB), EMPTY]).subarray(0, MiB + 9);
      for (let i = 0; i < 16 && await writeUntilDropped(parts, frame); i++) {
        // keep sending parts until dropped
      }
      assert.equal(await parts.closedByPeer(3000), true, "the multipart's connection is dropped");
      const over = "incomplete messages over rcvbufBytes 8388608 across the socket's connections";
      assert.equal(capture.matching(over).length, 2);
      assert.ok(capture.lines.some((line) => dropLine(big, "REP", endpoint, over).test(line)));
      assert.ok(capture.lines.some((line) => dropLine(parts, "REP", endpoint, over).test(line)));

      assert.equal(await slow.closedByPeer(5000), true, "the stalled connection is dropped");
      const stalledAfter = Date.now() - slowDone;
      assert.ok(stalledAfter >= 550, `dropped ${stalledAfter} ms after its last bytes`);
      assert.ok(
        capture.lines.some((line) =>
          dropLine(
            slow,
            "REP",
            endpoint,
            "stalled: nothing arrived for 600 ms in the middle of a message \\(stallTimeoutMs 600\\)",
          ).test(line)
        ),
        capture.lines.join("\n"),
      );
      const result = await during;
      assert.equal(result.ok, true, result.error);
      const after = await agent.call({ op: "requests", id: req, count: 20, tag: "after" });
      assert.equal(after.ok, true, after.error);
      assert.equal(rep.peerCount, 1);
    } finally {
      for (const peer of [slow, big, parts]) peer.close();
      await agent.stop();
      await rep.close();
      capture.restore();
    }
    await server;
  },
});

Deno.test({
  name: "maxConnections: extra connections are closed at once and the socket keeps serving",
  ignore: skipInterop,
  async fn() {
    const capture = captureLog();
    const rep = createSocket("REP", { maxConnections: 3 });
    const endpoint = await rep.bind("tcp://127.0.0.1:0");
    const server = serveEcho(rep);
    const agent = await PyAgent.start();
    const raws: RawPeer[] = [];
    try {
      const req = await agent.socket("REQ");
      await agent.connect(req, endpoint);
      assert.equal((await agent.call({ op: "requests", id: req, count: 5 })).ok, true);
      for (let i = 0; i < 2; i++) {
        const peer = await RawPeer.connect(endpoint);
        raws.push(peer);
        await peer.handshake("REQ");
      }
      await waitFor(() => rep.peerCount === 3, "three connections");
      const extra = await Promise.all([0, 1, 2].map(() => RawPeer.connect(endpoint)));
      raws.push(...extra);
      const closed = await Promise.all(extra.map((peer) => peer.closedByPeer(3000)));
      assert.deepEqual(closed, [true, true, true], "the extra connections are closed");
      assert.equal(capture.matching("too many connections: maxConnections 3").length, 3);
      const port = (extra[0].conn.localAddr as Deno.NetAddr).port;
      assert.ok(capture.lines.includes(
        `lomq: refused tcp://127.0.0.1:${port} on REP ${endpoint}: too many connections: ` +
          "maxConnections 3",
      ));
      assert.equal((await agent.call({ op: "requests", id: req, count: 20 })).ok, true);
      await raws[0].send(["", "still"]);
      assert.deepEqual(await raws[0].readMessage(3000), ["", "re:still"]);
      // A freed slot takes a new connection.
      raws[1].close();
      await waitFor(() => rep.peerCount === 2, "the slot to be freed");
      const late = await RawPeer.connect(endpoint);
      raws.push(late);
      await late.handshake("REQ");
      await late.send(["", "late"]);
      assert.deepEqual(await late.readMessage(3000), ["", "re:late"]);
    } finally {
      for (const peer of raws) peer.close();
      await agent.stop();
      await rep.close();
      capture.restore();
    }
    await server;
  },
});

Deno.test("log: one line per event naming the peer, the socket and the reason", async () => {
  const capture = captureLog();
  const rep = createSocket("REP", {
    handshakeTimeoutMs: 300,
    heartbeatIvlMs: 100,
    heartbeatTimeoutMs: 300,
  });
  const dealer = createSocket("DEALER");
  const raws: RawPeer[] = [];
  const raw = async () => {
    const peer = await RawPeer.connect(endpoint);
    raws.push(peer);
    return peer;
  };
  const endpoint = await rep.bind("tcp://127.0.0.1:0");
  try {
    const garbage = await raw();
    await garbage.write(bytes("GET / HTTP/1.1\r\n\r\n"));
    const curve = await raw();
    await curve.write(buildGreeting("CURVE"));
    const silent = await raw();
    const oversize = await raw();
    await oversize.handshake("REQ");
    await oversize.write(longHeader(70_000_000));
    const incompatible = await raw();
    await incompatible.hello("PUB");
    const quiet = await raw();
    await quiet.handshake("REQ");
    const leaving = await raw();
    await leaving.handshake("DEALER");
    leaving.close();
    for (const peer of [garbage, curve, silent, oversize, incompatible, quiet]) {
      assert.equal(await peer.closedByPeer(3000), true);
    }
    const expected: [RawPeer, string][] = [
      [garbage, "not a ZMTP greeting \\(bad signature\\)"],
      [
        curve,
        "peer uses security mechanism CURVE, this socket NULL \\(set curve_\\* or plain_\\* options to accept it\\)",
      ],
      [silent, "handshake timeout: the peer did not complete the ZMTP handshake in 300 ms"],
      [
        oversize,
        "frame of 70000000 bytes exceeds the maximum message size \\(maxMessageSize 67108864\\)",
      ],
      [incompatible, "incompatible socket types: REP cannot talk to PUB"],
      [quiet, "heartbeat timeout: the peer sent nothing for 300 ms"],
    ];
    for (const [peer, reason] of expected) {
      const line = dropLine(peer, "REP", endpoint, reason);
      assert.equal(
        capture.lines.filter((l) => line.test(l)).length,
        1,
        `${line}\n${capture.lines.join("\n")}`,
      );
    }
    const port = (leaving.conn.localAddr as Deno.NetAddr).port;
    const peerName = `tcp://127.0.0.1:${port} on REP ${endpoint}`;
    assert.ok(capture.lines.includes(`lomq: accepted ${peerName}`));
    await waitFor(
      () => capture.lines.includes(`lomq: disconnected ${peerName}: peer closed the connection`),
      "the disconnect line",
    );
    dealer.connect(endpoint);
    await waitFor(() => rep.peerCount === 1, "the DEALER");
    assert.equal(capture.matching(`lomq: connected ${endpoint} on DEALER ${endpoint}`).length, 1);
    // The application closing its socket is not news.
    const before = capture.lines.length;
    await rep.close();
    await dealer.close();
    const after = capture.lines.slice(before);
    assert.ok(
      after.every((line) => line.includes(" on DEALER ") && line.includes("disconnected")),
      after.join("\n"),
    );
  } finally {
    for (const peer of raws) peer.close();
    await rep.close();
    await dealer.close();
    capture.restore();
  }
});

Deno.test("idle connections cost the server at most 32 KB each (server in a subprocess)", async () => {
  const fixture = new URL("./fixtures/echo_server.ts", import.meta.url).pathname;
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "--no-check", "--allow-net", fixture],
    stdin: "piped",
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const lines = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  const peers: RawPeer[] = [];
  try {
    let first = "";
    while (!first.includes("\n")) {
      const { value, done } = await lines.read();
      assert.ok(!done, "the server printed its endpoint");
      first += value;
    }
    const endpoint = first.trim();
    const probe = await RawPeer.connect(endpoint);
    peers.push(probe);
    await probe.handshake("REQ");
    // Warm up: JIT, the first buffers, the runtime's own pools.
    for (let i = 0; i < 200; i++) {
      await probe.send(["", `warm${i}`]);
      assert.deepEqual(await probe.readMessage(3000), ["", `re:warm${i}`]);
    }
    await delay(300);
    const before = rssOf(child.pid);
    const count = 2000;
    while (peers.length <= count) {
      const batch = await Promise.all(
        Array.from({ length: 100 }, async () => {
          const peer = await RawPeer.connect(endpoint);
          await peer.handshake("REQ");
          return peer;
        }),
      );
      peers.push(...batch);
    }
    await delay(500);
    const perConnection = (rssOf(child.pid) - before) / (peers.length - 1);
    assert.ok(perConnection <= 32 * 1024, `${Math.round(perConnection)} bytes per connection`);
    await probe.send(["", "alive"]);
    assert.deepEqual(await probe.readMessage(3000), ["", "re:alive"]);
  } finally {
    for (const peer of peers) peer.close();
    await child.stdin.close();
    await lines.cancel();
    await child.status;
  }
});

Deno.test("options: the new bounds are validated and have libzmq-like defaults", async () => {
  const socket = createSocket("PUB");
  try {
    assert.equal(socket.getOption("sndbufBytes"), 64 * MiB);
    assert.equal(socket.getOption("rcvbufBytes"), 256 * MiB);
    assert.equal(socket.getOption("stallTimeoutMs"), 30_000);
    assert.equal(socket.getOption("maxConnections"), 10_000);
    assert.equal(socket.getOption("maxSubscriptions"), 10_000);
    for (const name of ["sndbufBytes", "rcvbufBytes", "maxConnections", "maxSubscriptions"]) {
      assert.throws(() => socket.setOption(name as "sndbufBytes", 0), /must be an integer/);
    }
    assert.throws(() => socket.setOption("stallTimeoutMs", -1), /must be an integer/);
    socket.setOption("stallTimeoutMs", 0);
    assert.throws(() => createSocket("REP", { rcvbufBytes: 1.5 }), /rcvbufBytes/);
  } finally {
    await socket.close();
  }
});
