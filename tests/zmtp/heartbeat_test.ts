import assert from "node:assert/strict";
import { skipInterop } from "../helpers/python.ts";
import { createSocket } from "../../src/zmtp/mod.ts";
import { bytes, PyAgent, texts } from "./pyzmq.ts";
import { delay, RawPeer, waitFor } from "./util.ts";

Deno.test({
  name: "heartbeat: libzmq answers our PINGs, so an idle connection survives",
  ignore: skipInterop,
  async fn() {
    const dealer = createSocket("DEALER", { heartbeatIvlMs: 50, heartbeatTimeoutMs: 200 });
    const agent = await PyAgent.start();
    try {
      const router = await agent.socket("ROUTER");
      dealer.connect(await agent.bind(router, "tcp://127.0.0.1:*"));
      await waitFor(() => dealer.peerCount === 1, "the connection");
      for (let i = 0; i < 10; i++) {
        await delay(100);
        assert.equal(dealer.peerCount, 1, `still connected after ${(i + 1) * 100} ms`);
      }
      assert.equal(await dealer.send([bytes("alive")], 1000), true);
      assert.deepEqual(texts((await agent.recv(router))?.slice(1)), ["alive"]);
    } finally {
      await agent.stop();
      await dealer.close();
    }
  },
});

Deno.test({
  name: "heartbeat: a libzmq peer that stops answering PINGs is dropped after the timeout",
  ignore: skipInterop,
  async fn() {
    const rep = createSocket("REP", { heartbeatIvlMs: 100, heartbeatTimeoutMs: 300 });
    const endpoint = await rep.bind("tcp://127.0.0.1:0");
    const agent = await PyAgent.start();
    try {
      const req = await agent.socket("REQ");
      await agent.connect(req, endpoint);
      await waitFor(() => rep.peerCount === 1, "the connection");
      await delay(500);
      assert.equal(rep.peerCount, 1, "a live peer answers PINGs");
      agent.signal("SIGSTOP");
      const frozenAt = Date.now();
      await waitFor(() => rep.peerCount === 0, "the frozen peer to be dropped", 3000);
      const elapsed = Date.now() - frozenAt;
      assert.ok(elapsed >= 200, `dropped after ${elapsed} ms, before the timeout`);
    } finally {
      agent.signal("SIGCONT");
      await agent.stop();
      await rep.close();
    }
  },
});

Deno.test({
  name: "heartbeat: a PING with a TTL from a peer that then goes silent drops it",
  async fn() {
    const pull = createSocket("PULL");
    const endpoint = await pull.bind("tcp://127.0.0.1:0");
    const peer = await RawPeer.connect(endpoint);
    try {
      await peer.handshake("PUSH");
      await waitFor(() => pull.peerCount === 1, "the handshake");
      // TTL 3 deciseconds, context "abc": we must answer PONG "abc" and expect traffic.
      await peer.command("PING", new Uint8Array([0, 3, 97, 98, 99]));
      const pong = await peer.readFrame(2000);
      assert.ok(pong !== undefined);
      assert.equal(new TextDecoder().decode(pong.body), "\x04PONGabc");
      const started = Date.now();
      assert.equal(await peer.closedByPeer(3000), true, "dropped after the TTL");
      assert.ok(Date.now() - started >= 200);
      assert.equal(pull.peerCount, 0);
    } finally {
      peer.close();
      await pull.close();
    }
  },
});
