import assert from "node:assert/strict";
import { skipInterop } from "../helpers/python.ts";
import { createSocket, EAGAIN } from "../../src/zmtp/mod.ts";
import { bytes, PyAgent, texts } from "./pyzmq.ts";
import { waitFor } from "./util.ts";

const FAST_RECONNECT = { reconnectIvlMs: 50, reconnectIvlMaxMs: 200 };

Deno.test({
  name: "reconnect: PUSH queues up to HWM while the libzmq peer is down, then delivers",
  ignore: skipInterop,
  async fn() {
    const push = createSocket("PUSH", { hwm: 50, ...FAST_RECONNECT });
    let agent = await PyAgent.start();
    try {
      let pull = await agent.socket("PULL");
      const endpoint = await agent.bind(pull, "tcp://127.0.0.1:*");
      push.connect(endpoint);
      assert.equal(await push.send([bytes("before")], 5000), true);
      assert.deepEqual(texts(await agent.recv(pull)), ["before"]);
      assert.equal(push.peerCount, 1);

      await agent.kill();
      await waitFor(() => push.peerCount === 0, "the disconnect to be noticed");
      let queued = 0;
      for (let i = 0; i < 60; i++) {
        if (push.trySend([bytes(`q${i}`)])) queued++;
        else assert.equal(push.lastErrno, EAGAIN);
      }
      assert.equal(queued, 50, "exactly HWM messages queue while disconnected");
      assert.equal(await push.send([bytes("late")], 100), false, "send times out at HWM");
      assert.equal(push.lastErrno, EAGAIN);

      agent = await PyAgent.start();
      pull = await agent.socket("PULL");
      await agent.bind(pull, endpoint);
      const got = await agent.drain(pull, 500);
      assert.deepEqual(got.map((m) => texts(m)![0]), Array.from({ length: 50 }, (_, i) => `q${i}`));
      assert.equal(await push.send([bytes("after")], 5000), true);
      assert.deepEqual(texts(await agent.recv(pull)), ["after"]);
    } finally {
      await agent.stop();
      await push.close();
    }
  },
});

Deno.test({
  name: "reconnect: SUB resubscribes and DEALER talks again after the libzmq peer restarts",
  ignore: skipInterop,
  async fn() {
    const sub = createSocket("SUB", FAST_RECONNECT);
    const dealer = createSocket("DEALER", FAST_RECONNECT);
    let agent = await PyAgent.start();
    try {
      let pub = await agent.socket("PUB");
      let router = await agent.socket("ROUTER");
      const pubEndpoint = await agent.bind(pub, "tcp://127.0.0.1:*");
      const routerEndpoint = await agent.bind(router, "tcp://127.0.0.1:*");
      sub.subscribe("news");
      sub.connect(pubEndpoint);
      dealer.connect(routerEndpoint);
      await waitFor(() => sub.peerCount === 1 && dealer.peerCount === 1, "both connections");

      for (let round = 0; round < 2; round++) {
        // The subscription reaches the (new) publisher without the application's help.
        let received: string[] | undefined;
        for (let i = 0; i < 200 && received === undefined; i++) {
          await agent.send(pub, [`news ${round}`]);
          received = texts(await sub.recv(25));
        }
        assert.deepEqual(received, [`news ${round}`]);
        assert.equal(await dealer.send([bytes(`hello ${round}`)], 5000), true);
        const request = await agent.recv(router);
        assert.deepEqual(texts(request?.slice(1)), [`hello ${round}`]);
        if (round === 0) {
          await agent.kill();
          await waitFor(() => sub.peerCount === 0 && dealer.peerCount === 0, "disconnects");
          agent = await PyAgent.start();
          pub = await agent.socket("PUB");
          router = await agent.socket("ROUTER");
          await agent.bind(pub, pubEndpoint);
          await agent.bind(router, routerEndpoint);
          await waitFor(() => sub.peerCount === 1 && dealer.peerCount === 1, "reconnects");
        }
      }
    } finally {
      await agent.stop();
      await sub.close();
      await dealer.close();
    }
  },
});

Deno.test({
  name: "linger: close() keeps trying to deliver queued messages for lingerMs",
  ignore: skipInterop,
  async fn() {
    // A port that is free now; the peer binds it only after close() started.
    const probe = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const port = probe.addr.port;
    probe.close();
    const endpoint = `tcp://127.0.0.1:${port}`;
    const push = createSocket("PUSH", FAST_RECONNECT);
    const dropping = createSocket("PUSH", FAST_RECONNECT);
    const agent = await PyAgent.start();
    try {
      push.connect(endpoint);
      dropping.connect(endpoint);
      for (let i = 0; i < 3; i++) assert.equal(push.trySend([bytes(`m${i}`)]), true);
      assert.equal(dropping.trySend([bytes("dropped")]), true);
      const started = Date.now();
      await dropping.close();
      assert.ok(Date.now() - started < 1000, "linger 0 does not wait");
      const closing = push.close(5000);
      const pull = await agent.socket("PULL");
      await agent.bind(pull, endpoint);
      await closing;
      const got = await agent.drain(pull, 300);
      assert.deepEqual(got.map((m) => texts(m)![0]), ["m0", "m1", "m2"]);
    } finally {
      await agent.stop();
      await push.close();
      await dropping.close();
    }
  },
});
