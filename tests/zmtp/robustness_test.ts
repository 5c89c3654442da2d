import assert from "node:assert/strict";
import { skipInterop } from "../helpers/python.ts";
import { encodeMessage, FLAG_LONG } from "../../src/zmtp/frame.ts";
import { buildGreeting } from "../../src/zmtp/greeting.ts";
import {
  createSocket,
  EADDRINUSE,
  EADDRNOTAVAIL,
  EINVAL,
  ETERM,
  MAX_FRAMES_PER_MESSAGE,
  ZmqError,
} from "../../src/zmtp/mod.ts";
import { PyAgent } from "./pyzmq.ts";
import { RawPeer, serveEcho, waitFor } from "./util.ts";

const enc = (s: string) => new TextEncoder().encode(s);

Deno.test({
  name: "bad peers are dropped one connection at a time while a good client is served",
  ignore: skipInterop,
  async fn() {
    const rep = createSocket("REP", { maxMessageSize: 1000 });
    const endpoint = await rep.bind("tcp://127.0.0.1:0");
    const server = serveEcho(rep);
    const agent = await PyAgent.start();
    const raws: RawPeer[] = [];
    const raw = async () => {
      const peer = await RawPeer.connect(endpoint);
      raws.push(peer);
      return peer;
    };
    try {
      const req = await agent.socket("REQ");
      await agent.connect(req, endpoint);
      assert.equal((await agent.call({ op: "requests", id: req, count: 5, tag: "a" })).ok, true);

      const garbage = await raw();
      await garbage.write(enc("GET / HTTP/1.1\r\nHost: x\r\n\r\n"));
      assert.equal(await garbage.closedByPeer(3000), true, "garbage closes the connection");

      const oldVersion = await raw();
      const greeting = buildGreeting();
      greeting[10] = 2;
      await oldVersion.write(greeting);
      assert.equal(await oldVersion.closedByPeer(3000), true, "ZMTP 2 greeting closes it");

      const curve = await raw();
      const curveGreeting = buildGreeting("CURVE");
      await curve.write(curveGreeting);
      assert.equal(await curve.closedByPeer(3000), true, "unsupported mechanism closes it");

      const oversize = await raw();
      await oversize.handshake("REQ");
      await oversize.write(new Uint8Array([FLAG_LONG, 0, 0, 0, 0, 0, 0, 0x13, 0x88])); // 5000
      assert.equal(await oversize.closedByPeer(3000), true, "oversize frame closes it");

      const tooMany = await raw();
      await tooMany.handshake("REQ");
      const frames = Array.from({ length: MAX_FRAMES_PER_MESSAGE + 1 }, () => new Uint8Array(0));
      await tooMany.write(encodeMessage(frames));
      assert.equal(await tooMany.closedByPeer(3000), true, "too many frames closes it");

      const incompatible = await raw();
      await incompatible.hello("SUB");
      assert.equal(await incompatible.closedByPeer(3000), true, "SUB cannot talk to REP");

      const midFrame = await raw();
      await midFrame.handshake("REQ");
      await midFrame.write(new Uint8Array([0, 100, 1, 2, 3]));
      midFrame.close();

      const zmtp30 = await raw();
      await zmtp30.handshake("REQ", 0);
      await zmtp30.command("NO-SUCH-COMMAND", "ignored");
      await zmtp30.send(["", "from-3.0"]);
      assert.deepEqual(await zmtp30.readMessage(3000), ["", "re:from-3.0"]);

      assert.equal((await agent.call({ op: "requests", id: req, count: 50, tag: "b" })).ok, true);
      await waitFor(() => rep.peerCount === 2, "only the good peers to remain");
    } finally {
      for (const peer of raws) peer.close();
      await agent.stop();
      await rep.close();
    }
    assert.equal(await server, 56);
  },
});

Deno.test({
  name: "handshake timeout drops a silent peer and one that never sends READY",
  ignore: skipInterop,
  async fn() {
    const rep = createSocket("REP", { handshakeTimeoutMs: 300 });
    const endpoint = await rep.bind("tcp://127.0.0.1:0");
    const server = serveEcho(rep);
    const agent = await PyAgent.start();
    const silent = await RawPeer.connect(endpoint);
    const greetingOnly = await RawPeer.connect(endpoint);
    try {
      await greetingOnly.write(buildGreeting());
      const started = Date.now();
      const [a, b] = await Promise.all([
        silent.closedByPeer(3000),
        greetingOnly.closedByPeer(3000),
      ]);
      const elapsed = Date.now() - started;
      assert.equal(a, true, "silent peer dropped");
      assert.equal(b, true, "peer without READY dropped");
      assert.ok(elapsed >= 250 && elapsed < 2500, `dropped after ${elapsed} ms`);
      const req = await agent.socket("REQ");
      await agent.connect(req, endpoint);
      assert.equal((await agent.call({ op: "requests", id: req, count: 3 })).ok, true);
      assert.equal(rep.peerCount, 1);
    } finally {
      silent.close();
      greetingOnly.close();
      await agent.stop();
      await rep.close();
    }
    assert.equal(await server, 3);
  },
});

Deno.test("bind errors: address in use names the address; bad endpoints; closed socket", async () => {
  const first = createSocket("REP");
  const second = createSocket("PUB");
  try {
    const endpoint = await first.bind("tcp://127.0.0.1:0");
    await assert.rejects(
      () => second.bind(endpoint),
      (err: unknown) => {
        assert.ok(err instanceof ZmqError);
        assert.equal(err.errno, EADDRINUSE);
        assert.equal(err.code, "EADDRINUSE");
        assert.equal(
          err.message,
          `cannot bind ${endpoint}: address already in use ` +
            "(another process is listening there; pick another port or stop it)",
        );
        return true;
      },
    );
    await assert.rejects(
      () => second.bind("tcp://192.0.2.1:0"),
      (err: unknown) =>
        err instanceof ZmqError && err.errno === EADDRNOTAVAIL &&
        err.message.startsWith("cannot bind tcp://192.0.2.1:0: address not available"),
    );
    await assert.rejects(
      () => second.bind("tcp//127.0.0.1:1"),
      (err: unknown) =>
        err instanceof ZmqError && err.errno === EINVAL &&
        err.message ===
          "invalid endpoint 'tcp//127.0.0.1:1': expected tcp://host:port or ipc://path",
    );
    assert.deepEqual(second.endpoints, []);
  } finally {
    await first.close();
    await second.close();
  }
  await assert.rejects(
    () => first.bind("tcp://127.0.0.1:0"),
    (err: unknown) => err instanceof ZmqError && err.errno === ETERM,
  );
});
