import assert from "node:assert/strict";
import { skipInterop } from "../helpers/python.ts";
import {
  createSocket,
  EAGAIN,
  EFSM,
  EINVAL,
  ENOTSUP,
  ETERM,
  ZmqError,
} from "../../src/zmtp/mod.ts";
import { bytes, PyAgent, texts } from "./pyzmq.ts";
import { delay, RawPeer, waitFor } from "./util.ts";

Deno.test({
  name: "DEALER: round robin across connected peers, fair-queued replies",
  ignore: skipInterop,
  async fn() {
    const dealer = createSocket("DEALER");
    const agent = await PyAgent.start();
    try {
      const routers = [await agent.socket("ROUTER"), await agent.socket("ROUTER")];
      for (const router of routers) dealer.connect(await agent.bind(router, "tcp://127.0.0.1:*"));
      await waitFor(() => dealer.peerCount === 2, "both peers");
      for (let i = 0; i < 10; i++) assert.equal(dealer.trySend([bytes(`m${i}`)]), true);
      const counts = [];
      for (const router of routers) {
        const got = await agent.drain(router, 200);
        counts.push(got.length);
        for (const m of got) await agent.send(router, [m[0], "reply"]);
      }
      assert.deepEqual(counts, [5, 5]);
      for (let i = 0; i < 10; i++) assert.deepEqual(texts(await dealer.recv(5000)), ["reply"]);
    } finally {
      await agent.stop();
      await dealer.close();
    }
  },
});

Deno.test("PUSH: trySend fails with EAGAIN at HWM and send() waits for room", async () => {
  const push = createSocket("PUSH", { hwm: 2 });
  const endpoint = await push.bind("tcp://127.0.0.1:0");
  // A PULL peer that stops reading: once the socket buffers are full, the HWM is reached.
  const pull = await RawPeer.connect(endpoint);
  try {
    await pull.handshake("PULL");
    await waitFor(() => push.peerCount === 1, "the PULL peer");
    const big = new Uint8Array(1 << 20);
    let accepted = 0;
    let failingSince = 0;
    for (let i = 0; i < 2000 && (failingSince === 0 || Date.now() - failingSince < 300); i++) {
      if (push.trySend([big])) {
        accepted++;
        failingSince = 0;
      } else {
        assert.equal(push.lastErrno, EAGAIN);
        failingSince ||= Date.now();
      }
      await delay(2);
    }
    assert.ok(failingSince > 0, `still accepting after ${accepted} messages`);
    assert.equal(await push.send([big], 100), false);
    assert.equal(push.lastErrno, EAGAIN);
    const waiting = push.send([bytes("last")], 10000);
    let received = 0;
    let last: string[] | undefined;
    for (let i = 0; i <= accepted; i++) {
      last = await pull.readMessage(5000);
      if (last === undefined) break;
      received++;
    }
    assert.equal(await waiting, true);
    assert.equal(received, accepted + 1);
    assert.deepEqual(last, ["last"]);
  } finally {
    pull.close();
    await push.close();
  }
});

Deno.test({
  name: "ROUTER: a second peer with an identity in use is refused; identities route",
  ignore: skipInterop,
  async fn() {
    const router = createSocket("ROUTER");
    const endpoint = await router.bind("tcp://127.0.0.1:0");
    const agent = await PyAgent.start();
    try {
      const a = await agent.socket("DEALER", {}, "same");
      await agent.connect(a, endpoint);
      await waitFor(() => router.peerCount === 1, "the first peer");
      const b = await agent.socket("DEALER", {}, "same");
      await agent.connect(b, endpoint);
      const c = await agent.socket("DEALER", {}, "other");
      await agent.connect(c, endpoint);
      await waitFor(() => router.peerCount === 2, "the third peer");
      await delay(200);
      assert.equal(router.peerCount, 2, "the duplicate stays refused");
      await agent.send(a, ["from a"]);
      await agent.send(c, ["from c"]);
      const got = [texts(await router.recv(5000)), texts(await router.recv(5000))];
      assert.deepEqual(got.sort(), [["other", "from c"], ["same", "from a"]]);
      assert.equal(router.trySend([bytes("other"), bytes("to c")]), true);
      assert.deepEqual(texts(await agent.recv(c)), ["to c"]);
      assert.equal(router.trySend([bytes("other")]), false);
      assert.equal(router.lastErrno, EINVAL);
    } finally {
      await agent.stop();
      await router.close();
    }
  },
});

Deno.test("SUB: 3.0 publishers get subscriptions as messages; filtering is local too", async () => {
  const sub = createSocket("SUB");
  const endpoint = await sub.bind("tcp://127.0.0.1:0");
  sub.subscribe("t.");
  sub.subscribe("t.");
  const old = await RawPeer.connect(endpoint);
  const modern = await RawPeer.connect(endpoint);
  try {
    await old.handshake("PUB", 0);
    await modern.handshake("PUB", 1);
    // Only the first subscription of a prefix goes on the wire.
    const oldFirst = await old.readFrame(2000);
    assert.deepEqual([...oldFirst!.body], [1, ...bytes("t.")]);
    assert.equal(oldFirst!.flags & 4, 0, "a message, not a command, for ZMTP 3.0");
    const modernFirst = await modern.readFrame(2000);
    assert.equal(new TextDecoder().decode(modernFirst!.body), "\x09SUBSCRIBEt.");
    assert.equal(modernFirst!.flags & 4, 4, "a command for ZMTP 3.1");
    sub.unsubscribe("t."); // still subscribed once: nothing on the wire
    sub.subscribe(new Uint8Array([0xff]));
    assert.deepEqual([...(await old.readFrame(2000))!.body], [1, 0xff]);
    sub.unsubscribe("t.");
    assert.deepEqual([...(await old.readFrame(2000))!.body], [0, ...bytes("t.")]);
    assert.equal(
      new TextDecoder().decode((await modern.readFrame(2000))!.body.subarray(0, 10)),
      "\x09SUBSCRIBE",
    );
    assert.equal(new TextDecoder().decode((await modern.readFrame(2000))!.body), "\x06CANCELt.");
    // A publisher that ignores subscriptions still cannot leak other topics.
    await old.send(["t.1"]);
    await old.send([new Uint8Array([0xff, 1])]);
    await modern.send(["x"]);
    assert.deepEqual([...(await sub.recv(2000))![0]], [0xff, 1]);
    assert.equal(await sub.recv(200), undefined);
    assert.equal(sub.trySend([bytes("x")]), false);
    assert.equal(sub.lastErrno, ENOTSUP);
  } finally {
    old.close();
    modern.close();
    await sub.close();
  }
});

Deno.test("REQ: strict alternation; replies only from the peer asked", async () => {
  const req = createSocket("REQ");
  const endpoint = await req.bind("tcp://127.0.0.1:0");
  const first = await RawPeer.connect(endpoint);
  const second = await RawPeer.connect(endpoint);
  try {
    assert.equal(req.tryRecv(), undefined);
    assert.equal(req.lastErrno, EFSM);
    await first.handshake("REP");
    await second.handshake("REP");
    await waitFor(() => req.peerCount === 2, "both peers");
    assert.equal(req.trySend([bytes("q1")]), true);
    assert.equal(req.trySend([bytes("q2")]), false);
    assert.equal(req.lastErrno, EFSM);
    // Whichever peer got it, the other one's "reply" is not accepted.
    const [a, b] = await Promise.race([
      first.readMessage(2000).then((m) => [first, second, m] as const),
      second.readMessage(2000).then((m) => [second, first, m] as const),
    ]);
    await b.send(["", "impostor"]);
    await delay(100);
    assert.equal(req.tryRecv(), undefined);
    assert.equal(req.lastErrno, EAGAIN);
    await a.send(["", "genuine"]);
    assert.deepEqual(texts(await req.recv(2000)), ["genuine"]);
    assert.equal(req.tryRecv(), undefined);
    assert.equal(req.lastErrno, EFSM);
  } finally {
    first.close();
    second.close();
    await req.close();
  }
});

Deno.test("sockets: close wakes waiters, is idempotent, and fails later calls with ETERM", async () => {
  const pull = createSocket("PULL");
  const push = createSocket("PUSH");
  await pull.bind("tcp://127.0.0.1:0");
  const controller = new AbortController();
  const aborted = pull.readable(undefined, controller.signal);
  controller.abort();
  assert.equal(await aborted, false);
  assert.equal(await pull.readable(50), false);
  const waiting = pull.readable();
  const receiving = pull.recv();
  const sending = push.send([bytes("x")]);
  const closing = pull.close();
  assert.equal(pull.close(), closing);
  const pushClosing = push.close();
  assert.equal(await waiting, false);
  assert.equal(await receiving, undefined);
  assert.equal(pull.lastErrno, ETERM);
  assert.equal(await sending, false);
  assert.equal(push.lastErrno, ETERM);
  await closing;
  await pushClosing;
  assert.equal(pull.tryRecv(), undefined);
  assert.equal(pull.lastErrno, ETERM);
  assert.equal(push.trySend([bytes("x")]), false);
  assert.equal(push.lastErrno, ETERM);
  assert.throws(() => push.connect("tcp://127.0.0.1:1"), ZmqError);
});

Deno.test("sockets: options are validated; unsupported operations say so", () => {
  assert.throws(
    () => createSocket("REP", { hwm: 0 }),
    (e: unknown) => e instanceof ZmqError && e.errno === EINVAL && /hwm/.test(e.message),
  );
  assert.throws(
    () => createSocket("REP", { identity: new Uint8Array(256) }),
    (e: unknown) => e instanceof ZmqError && e.errno === EINVAL,
  );
  assert.throws(() => createSocket("XREP" as "REP"), /unknown or unsupported socket type 'XREP'/);
  const rep = createSocket("REP");
  assert.throws(() => rep.setOption("heartbeatIvlMs", -1), ZmqError);
  assert.throws(() => rep.setOption("hwm", 1.5), ZmqError);
  rep.setOption("hwm", 5);
  assert.equal(rep.getOption("hwm"), 5);
  assert.throws(
    () => rep.subscribe("x"),
    (e: unknown) => e instanceof ZmqError && e.errno === ENOTSUP,
  );
  assert.throws(
    () => rep.connect("tcp://*:5"),
    (e: unknown) => e instanceof ZmqError && e.errno === EINVAL,
  );
  assert.throws(() => rep.trySend(["x" as unknown as Uint8Array]), TypeError);
  assert.equal(rep.trySend([]), false);
  assert.equal(rep.lastErrno, EINVAL);
  const push = createSocket("PUSH");
  assert.equal(push.tryRecv(), undefined);
  assert.equal(push.lastErrno, ENOTSUP);
  const pull = createSocket("PULL");
  assert.equal(pull.trySend([bytes("x")]), false);
  assert.equal(pull.lastErrno, ENOTSUP);
  return Promise.all([rep.close(), push.close(), pull.close()]).then(() => {});
});

Deno.test("sockets: whenReadable calls back once: on a message, on cancel, on close, or at once", async () => {
  const rep = createSocket("REP");
  const dealer = createSocket("DEALER");
  try {
    const endpoint = await rep.bind("tcp://127.0.0.1:0");
    dealer.connect(endpoint);
    const calls: boolean[] = [];
    const cancelUnused = rep.whenReadable((ready) => calls.push(ready));
    assert.deepEqual(calls, [], "nothing is waiting yet");
    assert.ok(await dealer.send([new Uint8Array(0), new TextEncoder().encode("hi")], 2000));
    await waitFor(() => calls.length > 0, "the readable callback");
    assert.deepEqual(calls, [true]);
    cancelUnused(); // after the wake: does nothing
    assert.deepEqual(calls, [true]);

    // Already readable (the message is still queued): called back before returning.
    const early: boolean[] = [];
    rep.whenReadable((ready) => early.push(ready));
    assert.deepEqual(early, [true]);
    assert.equal(new TextDecoder().decode(rep.tryRecv()![0]), "hi");
    assert.ok(rep.trySend([new Uint8Array([1])]));

    // Cancelled while waiting: false, once.
    const cancelled: boolean[] = [];
    const cancel = rep.whenReadable((ready) => cancelled.push(ready));
    cancel();
    cancel();
    assert.deepEqual(cancelled, [false]);

    // Closed while waiting: false; and on a closed socket at once.
    const closed: boolean[] = [];
    rep.whenReadable((ready) => closed.push(ready));
    await rep.close();
    assert.deepEqual(closed, [false]);
    rep.whenReadable((ready) => closed.push(ready));
    assert.deepEqual(closed, [false, false]);
  } finally {
    await rep.close();
    await dealer.close();
  }
});
