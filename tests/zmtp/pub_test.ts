import assert from "node:assert/strict";
import { skipInterop } from "../helpers/python.ts";
import { createSocket, ENOTSUP, type Socket } from "../../src/zmtp/mod.ts";
import { bytes, PyAgent, texts } from "./pyzmq.ts";
import { delay, RawPeer, waitFor } from "./util.ts";

/**
 * Publishes `topic` every 20 ms until `received` resolves: the way to know a subscription
 * has reached the publisher (ZeroMQ's "slow joiner").
 */
async function publishUntil<T>(pub: Socket, topic: string, received: Promise<T>): Promise<T> {
  let done = false;
  const ticker = (async () => {
    for (let i = 0; i < 250 && !done; i++) {
      assert.equal(pub.trySend([bytes(topic)]), true);
      await delay(20);
    }
  })();
  try {
    return await received;
  } finally {
    done = true;
    await ticker;
  }
}

Deno.test({
  name: "PUB -> pyzmq SUB: prefix filtering, unsubscribe, multipart",
  ignore: skipInterop,
  async fn() {
    const pub = createSocket("PUB");
    const endpoint = await pub.bind("tcp://127.0.0.1:0");
    const agent = await PyAgent.start();
    try {
      assert.equal(pub.tryRecv(), undefined);
      assert.equal(pub.lastErrno, ENOTSUP);
      const sub = await agent.socket("SUB");
      await agent.subscribe(sub, "a.");
      await agent.connect(sub, endpoint);
      assert.deepEqual(texts(await publishUntil(pub, "a.sync", agent.recv(sub, 5000))), ["a.sync"]);
      await agent.drain(sub, 100);
      for (const topic of ["b.1", "a.1", "ab", "a.2", "A.3"]) {
        assert.equal(pub.trySend([bytes(topic), bytes("payload")]), true);
      }
      const got = await agent.drain(sub, 300);
      assert.deepEqual(got.map(texts), [["a.1", "payload"], ["a.2", "payload"]]);

      await agent.unsubscribe(sub, "a.");
      await agent.subscribe(sub, "b.");
      await publishUntil(pub, "b.sync", agent.recv(sub, 5000));
      await agent.drain(sub, 100);
      pub.trySend([bytes("a.3")]);
      pub.trySend([bytes("b.3")]);
      assert.deepEqual((await agent.drain(sub, 300)).map(texts), [["b.3"]]);
    } finally {
      await agent.stop();
      await pub.close();
    }
  },
});

Deno.test({
  name: "PUB: ZMTP 3.0-style subscription messages and the subscription multiset",
  async fn() {
    const pub = createSocket("PUB");
    const endpoint = await pub.bind("tcp://127.0.0.1:0");
    const old = await RawPeer.connect(endpoint);
    const modern = await RawPeer.connect(endpoint);
    try {
      // A ZMTP 3.0 subscriber subscribes with a message whose first byte is 1.
      await old.handshake("SUB", 0);
      await old.send([new Uint8Array([1, ...bytes("t.")])]);
      assert.deepEqual(await publishUntil(pub, "t.sync", old.readMessage(5000)), ["t.sync"]);
      pub.trySend([bytes("u.1")]);
      pub.trySend([bytes("t.1")]);
      let message = await old.readMessage(3000);
      while (message?.[0] === "t.sync") message = await old.readMessage(3000);
      assert.deepEqual(message, ["t.1"]);
      // ...and cancels with a message whose first byte is 0.
      await old.send([new Uint8Array([0, ...bytes("t.")])]);
      await old.send([new Uint8Array([1, ...bytes("z")])]);
      assert.deepEqual(await publishUntil(pub, "z.sync", old.readMessage(5000)), ["z.sync"]);
      pub.trySend([bytes("t.2")]);
      pub.trySend([bytes("z.end")]);
      message = await old.readMessage(3000);
      while (message?.[0] === "z.sync") message = await old.readMessage(3000);
      assert.deepEqual(message, ["z.end"]);

      // ZMTP 3.1 commands; the same prefix twice needs two cancels.
      await modern.handshake("SUB", 1);
      await modern.command("SUBSCRIBE", "m");
      await modern.command("SUBSCRIBE", "m");
      await modern.command("SUBSCRIBE", "z");
      await modern.command("CANCEL", "m");
      assert.deepEqual(await publishUntil(pub, "z.sync", modern.readMessage(5000)), ["z.sync"]);
      pub.trySend([bytes("m.still")]);
      message = await modern.readMessage(3000);
      while (message?.[0] === "z.sync") message = await modern.readMessage(3000);
      assert.deepEqual(message, ["m.still"]);
      await modern.command("CANCEL", "m");
      await modern.command("SUBSCRIBE", "y");
      assert.deepEqual(await publishUntil(pub, "y.sync", modern.readMessage(5000)), ["y.sync"]);
      pub.trySend([bytes("m.gone")]);
      pub.trySend([bytes("z.end")]);
      message = await modern.readMessage(3000);
      while (message?.[0] === "y.sync") message = await modern.readMessage(3000);
      assert.deepEqual(message, ["z.end"]);
    } finally {
      old.close();
      modern.close();
      await pub.close();
    }
  },
});

Deno.test({
  name: "PUB: a stalled subscriber at its HWM loses messages; others get everything",
  ignore: skipInterop,
  async fn() {
    const pub = createSocket("PUB", { hwm: 20 });
    const endpoint = await pub.bind("tcp://127.0.0.1:0");
    const stalled = await RawPeer.connect(endpoint);
    const agent = await PyAgent.start();
    try {
      await stalled.handshake("SUB");
      await stalled.command("SUBSCRIBE", "");
      const sub = await agent.socket("SUB");
      await agent.subscribe(sub, "");
      await agent.connect(sub, endpoint);
      await waitFor(() => pub.peerCount === 2, "both subscribers");
      await publishUntil(pub, "sync", agent.recv(sub, 5000));
      await agent.drain(sub, 100);
      // 64 KiB messages: the stalled peer's socket buffers fill after a few dozen.
      const payload = new Uint8Array(64 * 1024);
      let sent = 0;
      for (let i = 0; i < 400; i++) {
        assert.equal(pub.trySend([bytes(`m${i}`), payload]), true, "PUB never blocks");
        sent++;
        // Let the writer run so the healthy subscriber keeps up.
        await delay(1);
      }
      const got = await agent.drainCount(sub, 500);
      assert.equal(got.count, sent, "the healthy subscriber got every message");
      assert.equal(texts(got.last)![0], "m399");
      // The stalled subscriber received at most what fits in the socket buffers plus the HWM.
      let stalledCount = 0;
      for (;;) {
        const m = await stalled.readMessage(500);
        if (m === undefined) break;
        if (m[0].startsWith("m")) stalledCount++;
      }
      assert.ok(stalledCount < sent, `stalled subscriber got ${stalledCount} of ${sent}`);
    } finally {
      stalled.close();
      await agent.stop();
      await pub.close();
    }
  },
});
