// The TypeScript client (mod.ts) against lomq running as a real process.
import assert from "node:assert/strict";
import {
  Client,
  ClientClosedError,
  createDecoder,
  encode,
  EncodeError,
  Float,
  RpcError,
  RpcTimeoutError,
  Subscriber,
} from "../mod.ts";
import { createSocket } from "../src/zmtp/mod.ts";
import { freePort, ROOT, runPython, startServe, startServer, waitForPort } from "./helpers/lomq.ts";
import { pythonForInterop, skipInterop } from "./helpers/python.ts";

const SERVER = `${ROOT}tests/fixtures/server.lua`;
const decode = createDecoder();
const python = (await pythonForInterop()) ?? "python3";

Deno.test("100 concurrent calls are pipelined over one connection and each gets its own reply", async () => {
  const { lomq, uri } = await startServer(SERVER);
  const client = new Client(uri, { timeoutMs: 10000 });
  try {
    const calls = Array.from({ length: 100 }, (_, i) => client.call("echo", i, `call ${i}`));
    // All 100 are in flight at once: nothing waits for an earlier reply before sending.
    assert.equal(client.pending, 100);
    const results = await Promise.all(calls);
    assert.deepEqual(results, Array.from({ length: 100 }, (_, i) => [i, `call ${i}`]));
    assert.equal(client.pending, 0);
    // Pipelining again on the same connection, with a mix of OK and ERROR replies.
    const mixed = await Promise.allSettled(
      Array.from(
        { length: 100 },
        (_, i) => i % 10 === 0 ? client.call("fail") : client.call("add", i, 1),
      ),
    );
    mixed.forEach((outcome, i) => {
      if (i % 10 === 0) {
        assert.equal(outcome.status, "rejected");
        assert.ok((outcome as PromiseRejectedResult).reason instanceof RpcError);
      } else {
        assert.deepEqual(outcome, { status: "fulfilled", value: i + 1 });
      }
    });
  } finally {
    await client.close();
    await lomq.stop();
  }
});

Deno.test("replies match their calls by id even when a peer answers all 100 at once, in reverse", async () => {
  // A ROUTER stands in for a server that collects every request before answering: a
  // client that waited for each reply before sending the next call would stall here, and
  // one that matched replies by arrival order would hand out the wrong results.
  const router = createSocket("ROUTER");
  const uri = await router.bind("tcp://127.0.0.1:0");
  const client = new Client(uri, { timeoutMs: 10000 });
  try {
    const calls = Array.from({ length: 100 }, (_, i) => client.call("echo", i));
    const requests: Uint8Array[][] = [];
    const deadline = Date.now() + 10000;
    while (requests.length < 100 && Date.now() < deadline) {
      const frames = await router.recv(deadline - Date.now());
      if (frames) requests.push(frames);
    }
    assert.equal(requests.length, 100, "every call was sent before any reply");
    for (const [identity, id, delimiter, body] of requests.reverse()) {
      const [method, n] = decode(body) as [string, number];
      assert.equal(method, "echo");
      const reply = [identity, id, delimiter, new TextEncoder().encode("OK"), encode(n * 10)];
      assert.ok(await router.send(reply, 5000));
    }
    assert.deepEqual(await Promise.all(calls), Array.from({ length: 100 }, (_, i) => i * 10));
  } finally {
    await client.close();
    await router.close(0);
  }
});

Deno.test("more calls in flight than the socket's high-water mark all complete", async () => {
  const { lomq, uri } = await startServer(SERVER);
  const client = new Client(uri, { timeoutMs: 30000 });
  try {
    const results = await Promise.all(
      Array.from({ length: 3000 }, (_, i) => client.call("add", i, 1)),
    );
    assert.deepEqual(results, Array.from({ length: 3000 }, (_, i) => i + 1));
  } finally {
    await client.close();
    await lomq.stop();
  }
});

Deno.test({
  name:
    "the call-id envelope works with a libzmq REP server (pyzmq), as with the original LuaOverMQ",
  ignore: skipInterop,
  async fn() {
    const port = freePort();
    const server = runPython(
      python,
      `
import zmq, msgpack
ctx = zmq.Context()
rep = ctx.socket(zmq.REP)
rep.setsockopt(zmq.LINGER, 1000)
rep.bind("tcp://127.0.0.1:${port}")
for _ in range(50):
    method, *args = msgpack.unpackb(rep.recv(), raw=False)
    rep.send_multipart([b"OK", msgpack.packb([method, *args])])
rep.close()
ctx.term()
print("served")
`,
    );
    await waitForPort(port);
    const client = new Client(`tcp://127.0.0.1:${port}`, { timeoutMs: 10000 });
    try {
      const results = await Promise.all(Array.from({ length: 50 }, (_, i) => client.call("m", i)));
      assert.deepEqual(results, Array.from({ length: 50 }, (_, i) => ["m", i]));
    } finally {
      await client.close();
    }
    assert.equal((await server).trim(), "served");
  },
});

Deno.test("values keep their types both ways: int64 as bigint, Float, binary, maps", async () => {
  const { lomq, uri } = await startServer(SERVER);
  const client = new Client(uri);
  const exactMaps = new Client(uri, { maps: "map" });
  try {
    assert.equal(await client.call("add", 1, 2), 3);
    assert.equal(await client.call("add", 1.5, 2), 3.5);
    assert.deepEqual(await client.call("maxint"), [9223372036854775807n, -9223372036854775808n]);
    assert.equal(await client.call("echo", 2n ** 53n + 1n), 2n ** 53n + 1n);
    assert.equal(await client.call("echo", 2 ** 53), 2 ** 53);
    assert.deepEqual(
      await client.call(
        "types",
        1,
        new Float(1),
        100.5,
        2n ** 62n,
        new Uint8Array([0, 255]),
        "s",
        null,
        true,
      ),
      ["integer", "float", "float", "integer", "string", "string", "nil", "boolean"],
    );
    assert.deepEqual(await client.call("binary"), new Uint8Array([0xff, 0x00, 0xfe]));
    // Bytes that are not UTF-8 come back as binary (valid UTF-8 would come back as a string).
    assert.deepEqual(
      await client.call("echo", new Uint8Array([0, 0xff])),
      new Uint8Array([0, 0xff]),
    );
    assert.equal(await client.call("none"), null);
    assert.deepEqual(await client.call("echo", { a: 1, b: [1, 2, { c: "d" }] }), {
      a: 1,
      b: [1, 2, { c: "d" }],
    });
    assert.deepEqual(await client.call("empty_array"), []);
    assert.deepEqual(await client.call("forced_map"), { 1: 10, 2: 20 });
    assert.deepEqual(
      await exactMaps.call("keys"),
      new Map<unknown, unknown>([[1, "int"], ["1", "str"]]),
    );
    assert.equal(await client.call("strlen", "a\0b"), 3);
  } finally {
    await client.close();
    await exactMaps.close();
    await lomq.stop();
  }
});

Deno.test("an ERROR reply rejects with RpcError carrying the server's message or value", async () => {
  const { lomq, uri } = await startServer(SERVER);
  const client = new Client(uri);
  try {
    await assert.rejects(client.call("fail"), (error: unknown) => {
      assert.ok(error instanceof RpcError);
      assert.equal(error.method, "fail");
      assert.match(error.message, /server\.lua:\d+: boom$/);
      return true;
    });
    await assert.rejects(client.call("fail_table"), (error: unknown) => {
      assert.ok(error instanceof RpcError);
      assert.deepEqual(error.payload, { code: 42 });
      assert.equal(error.message, '{"code":42}');
      return true;
    });
    await assert.rejects(client.call("nope"), {
      name: "RpcError",
      message: "function 'nope' not found",
    });
  } finally {
    await client.close();
    await lomq.stop();
  }
});

Deno.test("after a timeout the client keeps working and the late reply is not mistaken for another", async () => {
  const { server: lomq, rpc } = await startServe();
  const client = new Client(rpc, { timeoutMs: 5000 });
  try {
    const started = Date.now();
    await assert.rejects(
      client.callWith({ timeoutMs: 100 }, "slow", 1200, "late"),
      (error: unknown) => {
        assert.ok(error instanceof RpcTimeoutError);
        assert.equal(error.connected, true);
        assert.equal(error.timeoutMs, 100);
        assert.match(error.message, /no reply within 100 ms/);
        return true;
      },
    );
    const waited = Date.now() - started;
    assert.ok(waited >= 90 && waited < 1100, `the timeout fired after ${waited} ms`);
    // The server is still busy with slow(): its "late" reply arrives first, then this one.
    assert.deepEqual(await Promise.all([client.call("add", 1, 2), client.call("echo", "x")]), [
      3,
      "x",
    ]);
    assert.equal(client.pending, 0);
    // Several timeouts in a row, then normal service again.
    const timeouts = await Promise.allSettled(
      [1, 2, 3].map((i) => client.callWith({ timeoutMs: 50 }, "slow", 150, i)),
    );
    assert.deepEqual(timeouts.map((t) => t.status), ["rejected", "rejected", "rejected"]);
    assert.equal(await client.call("add", 20, 22), 42);
  } finally {
    await client.close();
    await lomq.stop();
  }
});

Deno.test("a call to an address where nothing listens times out saying it could not connect", async () => {
  const port = freePort();
  const client = new Client(`tcp://127.0.0.1:${port}`, { timeoutMs: 200 });
  try {
    await assert.rejects(client.call("add", 1, 2), (error: unknown) => {
      assert.ok(error instanceof RpcTimeoutError);
      assert.equal(error.connected, false);
      assert.match(error.message, new RegExp(`could not connect to tcp://127\\.0\\.0\\.1:${port}`));
      return true;
    });
  } finally {
    await client.close();
  }
});

Deno.test("abort signals and close() end pending calls; a closed client refuses calls", async () => {
  const { server: lomq, rpc } = await startServe();
  const client = new Client(rpc);
  try {
    const controller = new AbortController();
    const aborted = client.callWith({ signal: controller.signal }, "slow", 300, 1);
    controller.abort(new Error("changed my mind"));
    await assert.rejects(aborted, { message: "changed my mind" });
    const pending = assert.rejects(client.call("slow", 300, 2), ClientClosedError);
    await client.close();
    await pending;
    await assert.rejects(client.call("add", 1, 2), ClientClosedError);
  } finally {
    await client.close();
    await lomq.stop();
  }
});

Deno.test("Subscriber iterates what serve --pub publishes, filtered by topic prefix", async () => {
  const { server: lomq, rpc, pub } = await startServe();
  const client = new Client(rpc);
  const subscriber = new Subscriber(pub, ["q."]);
  try {
    // The subscription reaches the publisher asynchronously: publish until one arrives.
    let first;
    for (let attempt = 0; attempt < 100 && !first; attempt++) {
      await client.call("announce", "q.ready", attempt);
      first = await subscriber.next(50);
    }
    assert.ok(first, "no publication arrived");
    assert.equal(first.topic, "q.ready");
    while (await subscriber.next(100)); // drain the other readiness markers
    await client.call("announce", "other", 1);
    await client.call("announce", "q.price", { bid: 1.5, size: 2n ** 60n });
    await client.call("announce", "q.end", null);
    const seen = [];
    for await (const publication of subscriber) {
      seen.push([publication.topic, publication.value]);
      if (publication.topic === "q.end") break;
    }
    assert.deepEqual(seen, [["q.price", { bid: 1.5, size: 2n ** 60n }], ["q.end", null]]);
    assert.equal(await subscriber.next(10), undefined, "break closed the subscriber");
  } finally {
    await subscriber.close();
    await client.close();
    await lomq.stop();
  }
});

Deno.test("encode: integral numbers are integers, Float is float64, bigint is 64-bit, bad values throw", () => {
  const hex = (value: unknown) =>
    Array.from(encode(value), (b) => b.toString(16).padStart(2, "0")).join("");
  assert.equal(hex(1), "01");
  assert.equal(hex(-1), "ff");
  assert.equal(hex(-33), "d0df");
  assert.equal(hex(65536), "ce00010000");
  assert.equal(hex(2 ** 53), "cf0020000000000000");
  assert.equal(hex(1.5), "cb3ff8000000000000");
  assert.equal(hex(-0), "cb8000000000000000");
  assert.equal(hex(new Float(100)), "cb4059000000000000");
  assert.equal(hex(2n ** 63n), "cf8000000000000000");
  assert.equal(hex(-(2n ** 63n)), "d38000000000000000");
  assert.equal(hex(5n), "05");
  assert.equal(hex(new Uint8Array([7])), "c40107");
  assert.equal(hex({ a: 1, skipped: undefined }), "81a16101");
  assert.equal(hex(new Map([[1, "x"]])), "8101a178");
  assert.equal(hex(["é"]), "91a2c3a9");
  assert.throws(() => encode(2n ** 64n), EncodeError);
  assert.throws(() => encode(() => 1), EncodeError);
  assert.throws(() => encode(new Date()), EncodeError);
  const cyclic: Record<string, unknown> = {};
  cyclic.self = cyclic;
  assert.throws(() => encode(cyclic), /deeper than 100/);
});
