import assert from "node:assert/strict";
import { skipInterop } from "../helpers/python.ts";
import { createSocket, EFSM } from "../../src/zmtp/mod.ts";
import { bytes, PyAgent, texts } from "./pyzmq.ts";
import { delay, serveEcho, waitFor } from "./util.ts";

Deno.test({
  name: "REP <- several concurrent pyzmq REQ clients, each gets its own answers",
  ignore: skipInterop,
  async fn() {
    const rep = createSocket("REP");
    const endpoint = await rep.bind("tcp://127.0.0.1:0");
    assert.match(endpoint, /^tcp:\/\/127\.0\.0\.1:\d+$/);
    assert.deepEqual(rep.endpoints, [endpoint]);
    const server = serveEcho(rep);
    const agents = await Promise.all([0, 1, 2, 3].map(() => PyAgent.start()));
    try {
      const results = await Promise.all(agents.map(async (agent, i) => {
        const req = await agent.socket("REQ");
        await agent.connect(req, endpoint);
        // The agent checks every reply is "re:" + its own request.
        return await agent.call({ op: "requests", id: req, count: 500, tag: `client${i}` });
      }));
      for (const result of results) assert.equal(result.ok, true, result.error);
      assert.equal(rep.peerCount, 4);
    } finally {
      await Promise.all(agents.map((a) => a.stop()));
      await rep.close();
    }
    assert.equal(await server, 2000);
  },
});

Deno.test({
  name: "REP behind a pyzmq DEALER: routing frames and delimiter are echoed back",
  ignore: skipInterop,
  async fn() {
    const rep = createSocket("REP");
    const endpoint = await rep.bind("tcp://127.0.0.1:0");
    const server = serveEcho(rep);
    const agent = await PyAgent.start();
    try {
      const dealer = await agent.socket("DEALER");
      await agent.connect(dealer, endpoint);
      // No delimiter: dropped, as libzmq's REP does.
      await agent.send(dealer, ["no-delimiter"]);
      // Only an envelope, no body: dropped too.
      await agent.send(dealer, ["hop", ""]);
      await agent.send(dealer, ["hop1", "hop2", "", "body", "part2"]);
      assert.deepEqual(texts(await agent.recv(dealer)), ["hop1", "hop2", "", "re:body", "part2"]);
      await agent.send(dealer, [new Uint8Array([0, 1, 2, 255]), "", "x"]);
      const reply = await agent.recv(dealer);
      assert.deepEqual(reply?.[0], new Uint8Array([0, 1, 2, 255]));
      assert.deepEqual(texts(reply?.slice(1)), ["", "re:x"]);
      assert.equal(await agent.recv(dealer, 200), undefined, "dropped messages got no reply");
    } finally {
      await agent.stop();
      await rep.close();
    }
    assert.equal(await server, 2);
  },
});

Deno.test({
  name: "REP: strict alternation; a reply to a vanished client is dropped but counts as sent",
  ignore: skipInterop,
  async fn() {
    const rep = createSocket("REP");
    const endpoint = await rep.bind("tcp://127.0.0.1:0");
    const agent = await PyAgent.start();
    try {
      assert.equal(rep.trySend([bytes("x")]), false);
      assert.equal(rep.lastErrno, EFSM);
      const req = await agent.socket("REQ");
      await agent.connect(req, endpoint);
      await agent.send(req, ["hello"]);
      assert.deepEqual(texts(await rep.recv(5000)), ["hello"]);
      assert.equal(rep.lastErrno, 0);
      await agent.closeSocket(req);
      await waitFor(() => rep.peerCount === 0, "the client's disconnect");
      assert.equal(rep.trySend([bytes("late")]), true);
      assert.equal(rep.lastErrno, 0);
      assert.equal(rep.trySend([bytes("again")]), false);
      assert.equal(rep.lastErrno, EFSM);
      // Receiving while a reply is pending abandons the pending request.
      const req2 = await agent.socket("REQ");
      await agent.connect(req2, endpoint);
      const req3 = await agent.socket("REQ");
      await agent.connect(req3, endpoint);
      await agent.send(req2, ["first"]);
      assert.deepEqual(texts(await rep.recv(5000)), ["first"]);
      await agent.send(req3, ["second"]);
      assert.deepEqual(texts(await rep.recv(5000)), ["second"]);
      assert.equal(rep.trySend([bytes("to-second")]), true);
      assert.deepEqual(texts(await agent.recv(req3)), ["to-second"]);
      assert.equal(await agent.recv(req2, 200), undefined);
    } finally {
      await agent.stop();
      await rep.close();
    }
  },
});

Deno.test({
  name: "REP: fair queueing: a flooding client does not starve a lockstep one",
  ignore: skipInterop,
  async fn() {
    const rep = createSocket("REP", { hwm: 10 });
    const endpoint = await rep.bind("tcp://127.0.0.1:0");
    const agent = await PyAgent.start();
    const log: string[] = [];
    let server: Promise<number> | undefined;
    try {
      const flood = await agent.socket("DEALER", { SNDHWM: 100000 });
      await agent.connect(flood, endpoint);
      await waitFor(() => rep.peerCount === 1, "the flooding client");
      for (let i = 0; i < 300; i++) await agent.send(flood, ["", `flood${i}`]);
      const req = await agent.socket("REQ");
      await agent.connect(req, endpoint);
      await waitFor(() => rep.peerCount === 2, "the lockstep client");
      await agent.send(req, ["polite"]);
      await delay(300);
      server = serveEcho(rep, log);
      assert.deepEqual(texts(await agent.recv(req)), ["re:polite"]);
      assert.ok(log.indexOf("polite") <= 1, `served at position ${log.indexOf("polite")}`);
      // The flooding client still gets every answer.
      const replies = await agent.drain(flood, 500);
      assert.equal(replies.length, 300);
      assert.deepEqual(texts(replies[299]), ["", "re:flood299"]);
    } finally {
      await agent.stop();
      await rep.close();
    }
    assert.equal(await server, 301);
  },
});

Deno.test({
  name: "REP <- pyzmq REQ with ZMQ_HEARTBEAT_IVL=100 idle for 1 s stays connected",
  ignore: skipInterop,
  async fn() {
    const rep = createSocket("REP");
    const endpoint = await rep.bind("tcp://127.0.0.1:0");
    const server = serveEcho(rep);
    const agent = await PyAgent.start();
    try {
      const req = await agent.socket("REQ", { HEARTBEAT_IVL: 100, HEARTBEAT_TIMEOUT: 300 });
      await agent.connect(req, endpoint);
      await agent.send(req, ["before"]);
      assert.deepEqual(texts(await agent.recv(req)), ["re:before"]);
      // Sample the connection while idle: a missed PONG would make libzmq drop it.
      for (let i = 0; i < 10; i++) {
        await delay(100);
        assert.equal(rep.peerCount, 1, `connected after ${(i + 1) * 100} ms`);
      }
      await agent.send(req, ["after"]);
      assert.deepEqual(texts(await agent.recv(req, 2000)), ["re:after"]);
    } finally {
      await agent.stop();
      await rep.close();
    }
    assert.equal(await server, 2);
  },
});

Deno.test({
  name: "REP over IPv6 loopback [::1]",
  ignore: skipInterop,
  async fn() {
    const rep = createSocket("REP");
    const endpoint = await rep.bind("tcp://[::1]:0");
    assert.match(endpoint, /^tcp:\/\/\[::1\]:\d+$/);
    const server = serveEcho(rep);
    const agent = await PyAgent.start();
    try {
      const req = await agent.socket("REQ", { IPV6: 1 });
      await agent.connect(req, endpoint);
      const result = await agent.call({ op: "requests", id: req, count: 50, tag: "v6" });
      assert.equal(result.ok, true, result.error);
    } finally {
      await agent.stop();
      await rep.close();
    }
    assert.equal(await server, 50);
  },
});
