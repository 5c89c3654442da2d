// The RPC layer (src/rpc) on its own, without Lua: the wire format as raw frames, and the
// serve loop of REP and ROUTER sockets (lomq's ZMTP sockets) with plain JavaScript handlers,
// called by real libzmq REQ and DEALER clients (pyzmq).
import assert from "node:assert/strict";
import { createDecoder } from "../src/client/msgpack.ts";
import {
  bodyStart,
  DELIMITER,
  errorReply,
  IDLE,
  MAX_ECHOED_BYTES,
  parseCallReply,
  parseReply,
  quoteInput,
  replyId,
  requestFrames,
  type RequestHandler,
  RpcServer,
  SERVED,
  STATUS_ERROR,
  STATUS_OK,
} from "../src/rpc/mod.ts";
import { createSocket, EHOSTUNREACH, type Frames, type Socket } from "../src/zmtp/mod.ts";
import { skipInterop } from "./helpers/python.ts";
import { PyAgent } from "./zmtp/pyzmq.ts";
import { delay, waitFor } from "./zmtp/util.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();
const decode = createDecoder();

function b(text: string): Uint8Array {
  return encoder.encode(text);
}

function bytes(...values: number[]): Uint8Array {
  return new Uint8Array(values);
}

/** A frame that is a view into the middle of a larger buffer (byteOffset != 0). */
function view(content: Uint8Array): Uint8Array {
  const buffer = new Uint8Array(content.length + 7);
  buffer.fill(0xee);
  buffer.set(content, 3);
  return buffer.subarray(3, 3 + content.length);
}

// ---- envelopes ---------------------------------------------------------------------------

// What a ROUTER server gets from its socket: the frames behind the identity.
Deno.test("bodyStart: a REQ's body follows its delimiter", () => {
  assert.equal(bodyStart([DELIMITER, b("body")]), 1);
  assert.equal(bodyStart([DELIMITER]), 1, "no body at all: it starts past the end");
});

Deno.test("bodyStart: multi-hop envelopes end at the first empty frame", () => {
  const frames = [b("hop1"), bytes(0, 0xff), DELIMITER, b("body"), DELIMITER, b("tail")];
  assert.equal(bodyStart(frames), 3);
  assert.equal(frames.length, 6, "the input is not changed");
});

Deno.test("bodyStart: a DEALER that sends no delimiter has no envelope", () => {
  assert.equal(bodyStart([b("body")]), 0);
  assert.equal(bodyStart([b("a"), b("b")]), 0);
  assert.equal(bodyStart([]), 0);
});

// ---- status frames, replies, call ids ----------------------------------------------------

Deno.test("status frames and the delimiter", () => {
  assert.deepEqual(STATUS_OK, b("OK"));
  assert.deepEqual(STATUS_ERROR, b("ERROR"));
  assert.equal(DELIMITER.length, 0);
});

Deno.test("errorReply: ERROR and a msgpack string, whatever its length and characters", () => {
  for (
    const message of [
      "",
      "function 'x' not found",
      "привет, мир",
      "€".repeat(100),
      "🙂".repeat(40),
      "x".repeat(31),
      "x".repeat(32),
      "x".repeat(255),
      "x".repeat(256),
      "y".repeat(70000),
    ]
  ) {
    const reply = errorReply(message);
    assert.equal(reply.length, 2);
    assert.deepEqual(reply[0], STATUS_ERROR);
    assert.equal(decode(reply[1]), message, `${message.length} characters`);
  }
  assert.deepEqual(errorReply("ab")[1], bytes(0xa2, 0x61, 0x62), "a fixstr");
});

Deno.test("quoteInput: short input whole; long input cut at 256 bytes on a character boundary", () => {
  assert.equal(MAX_ECHOED_BYTES, 256);
  assert.equal(quoteInput(b("add")), "add");
  assert.equal(quoteInput(new Uint8Array(0)), "");
  assert.equal(quoteInput(b("a".repeat(256))), "a".repeat(256), "256 bytes are whole");
  assert.equal(quoteInput(b("a".repeat(257))), `${"a".repeat(256)}... (257 bytes)`);
  assert.equal(quoteInput(b("a".repeat(100000))), `${"a".repeat(256)}... (100000 bytes)`);
  // A 2-byte character at bytes 255-256 does not fit: cut before it.
  assert.equal(quoteInput(b("a".repeat(255) + "é")), `${"a".repeat(255)}... (257 bytes)`);
  // A character that ends exactly at byte 256 fits; the next one starts the cut.
  assert.equal(quoteInput(b("a".repeat(254) + "éé")), `${"a".repeat(254)}é... (258 bytes)`);
  // 3- and 4-byte characters across the boundary, at every offset.
  for (const char of ["€", "🙂"]) {
    for (let lead = 250; lead <= 256; lead++) {
      const input = b("a".repeat(lead) + char.repeat(3));
      const quoted = quoteInput(input);
      const prefix = quoted.slice(0, quoted.lastIndexOf("... ("));
      const prefixBytes = b(prefix).length;
      assert.ok(prefixBytes <= 256, `${lead} + ${char}: ${prefixBytes} bytes echoed`);
      assert.ok(prefixBytes > 256 - b(char).length, `${lead} + ${char}: cut too early`);
      assert.ok(!prefix.includes("\ufffd"), `${lead} + ${char}: a character was split`);
      assert.ok(input.subarray(0, prefixBytes).every((v, i) => v === b(prefix)[i]));
      assert.ok(quoted.endsWith(`... (${input.length} bytes)`));
    }
  }
  // Nothing but continuation bytes: nothing is echoed, and nothing breaks.
  assert.equal(quoteInput(new Uint8Array(300).fill(0x80)), "... (300 bytes)");
  // Invalid UTF-8 in short input is shown with replacement characters, not an exception.
  assert.equal(quoteInput(bytes(0x61, 0xff, 0x62)), "a\ufffdb");
});

Deno.test("requestFrames: a 4-byte big-endian id, the delimiter, the body", () => {
  const body = b("body");
  const frames = requestFrames(0x01020304, body);
  assert.deepEqual(frames, [bytes(1, 2, 3, 4), DELIMITER, body]);
  assert.equal(frames[2], body, "the body frame itself");
  assert.deepEqual(requestFrames(0, body)[0], bytes(0, 0, 0, 0));
  assert.deepEqual(requestFrames(0xffffffff, body)[0], bytes(0xff, 0xff, 0xff, 0xff));
});

Deno.test("replyId and parseCallReply: the call id of a well-formed reply, else undefined", () => {
  const payload = bytes(0x2a);
  const reply = [bytes(0, 0, 1, 0), DELIMITER, STATUS_OK, payload];
  assert.equal(replyId(reply), 256);
  assert.deepEqual(parseCallReply(reply), { id: 256, ok: true, status: "OK", payload });
  assert.equal(parseCallReply(reply)?.payload, payload, "the payload frame itself");
  assert.deepEqual(parseCallReply([bytes(0, 0, 0, 9), DELIMITER, STATUS_ERROR, payload]), {
    id: 9,
    ok: false,
    status: "ERROR",
    payload,
  });
  // An id frame that is a view into a larger buffer.
  const viewed = [view(bytes(0xde, 0xad, 0xbe, 0xef)), DELIMITER, STATUS_OK, payload];
  assert.equal(replyId(viewed), 0xdeadbeef);
  const roundTrip = requestFrames(77, b("x"));
  assert.equal(replyId([roundTrip[0], roundTrip[1], STATUS_OK, payload]), 77);

  const wrong: Frames[] = [
    [],
    [bytes(0, 0, 0, 1), DELIMITER, STATUS_OK],
    [bytes(0, 0, 0, 1), DELIMITER, STATUS_OK, payload, payload],
    [bytes(0, 0, 1), DELIMITER, STATUS_OK, payload],
    [bytes(0, 0, 0, 0, 1), DELIMITER, STATUS_OK, payload],
    [bytes(0, 0, 0, 1), b("x"), STATUS_OK, payload],
    [DELIMITER, STATUS_OK, payload, payload],
  ];
  for (const frames of wrong) {
    assert.equal(replyId(frames), undefined, `${frames.length} frames`);
    assert.equal(parseCallReply(frames), undefined, `${frames.length} frames`);
  }
});

Deno.test("parseReply: two frames, OK is the only success", () => {
  const payload = bytes(0xc0);
  assert.deepEqual(parseReply([STATUS_OK, payload]), { ok: true, status: "OK", payload });
  assert.deepEqual(parseReply([view(b("OK")), payload]), { ok: true, status: "OK", payload });
  assert.deepEqual(parseReply([view(b("ERROR")), payload]), {
    ok: false,
    status: "ERROR",
    payload,
  });
  for (const status of ["ok", "OKAY", "O", "ERRORS", "", "MAYBE", "ERR\u00d6R"]) {
    assert.deepEqual(parseReply([b(status), payload]), { ok: false, status, payload }, status);
  }
  assert.equal(parseReply([]), undefined);
  assert.equal(parseReply([STATUS_OK]), undefined);
  assert.equal(parseReply([STATUS_OK, payload, payload]), undefined);
  assert.equal(parseReply([DELIMITER, STATUS_OK, payload]), undefined, "an envelope is not a body");
});

// ---- the serve loop ----------------------------------------------------------------------

/** A promise with its resolver, for handlers the test releases by hand. */
interface Deferred<T> {
  promise: Promise<T>;
  resolve: (value: T) => void;
}

function deferred<T>(): Deferred<T> {
  let resolve!: (value: T) => void;
  const promise = new Promise<T>((r) => resolve = r);
  return { promise, resolve };
}

/**
 * A handler that answers "quick" at once and holds every other request until the test
 * resolves its entry in `holds`.
 */
function holdingHandler(): { handler: RequestHandler; holds: Deferred<Frames>[] } {
  const holds: Deferred<Frames>[] = [];
  const handler: RequestHandler = {
    handle(body) {
      if (decoder.decode(body[0]) === "quick") return okText("quick");
      const hold = deferred<Frames>();
      holds.push(hold);
      return hold.promise;
    },
  };
  return { handler, holds };
}

/** A reply body saying `text`, as msgpack. */
function okText(text: string): Frames {
  const reply = errorReply(text);
  return [STATUS_OK, reply[1]];
}

/** Binds `type` on loopback, serves it with `handler` until `fn` is done, then cleans up. */
async function withServer(
  type: "REP" | "ROUTER",
  handler: RequestHandler,
  fn: (ctx: { endpoint: string; server: RpcServer; socket: Socket; agent: PyAgent }) => Promise<
    void
  >,
  { serve = true, callTimeoutMs = 0 }: { serve?: boolean; callTimeoutMs?: number } = {},
): Promise<void> {
  const socket = createSocket(type);
  const endpoint = await socket.bind("tcp://127.0.0.1:0");
  const server = new RpcServer(socket, handler, callTimeoutMs);
  const stop = new AbortController();
  const serving = serve ? server.serveUntil(stop.signal) : Promise.resolve();
  const agent = await PyAgent.start();
  try {
    await fn({ endpoint, server, socket, agent });
  } finally {
    stop.abort();
    await settled(serving, "serveUntil after the abort");
    await agent.stop();
    await socket.close(0);
  }
}

/**
 * Awaits `promise` for at most 3 s: a test that failed while a handler's promise was
 * pending must still end (serveUntil waits for that handler).
 */
async function settled(promise: Promise<unknown>, what: string): Promise<void> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<void>((resolve) =>
    timer = setTimeout(() => {
      console.error(`${what} did not settle within 3 s`);
      resolve();
    }, 3000)
  );
  try {
    await Promise.race([promise, late]);
  } finally {
    clearTimeout(timer);
  }
}

/** Frames as text, for assertions. */
function texts(frames: Frames | undefined): string[] | undefined {
  return frames?.map((f) => decoder.decode(f));
}

Deno.test("RpcServer takes REP and ROUTER sockets only", async () => {
  for (const type of ["DEALER", "REQ", "PUB", "PULL"] as const) {
    const socket = createSocket(type);
    try {
      assert.throws(
        () => new RpcServer(socket, { handle: () => okText("") }),
        (e: unknown) => e instanceof TypeError && /REP or ROUTER socket, not/.test(e.message),
      );
    } finally {
      await socket.close(0);
    }
  }
});

Deno.test({
  name: "REP: a pyzmq REQ's body reaches the handler and the reply comes back as returned",
  ignore: skipInterop,
  async fn() {
    const seen: { body: string[]; budget: number }[] = [];
    const handler: RequestHandler = {
      handle(body, budgetMs) {
        seen.push({ body: texts(body)!, budget: budgetMs });
        if (body.length !== 1) return errorReply(`${body.length} frames`);
        return [STATUS_OK, body[0].slice().reverse()];
      },
    };
    await withServer("REP", handler, async ({ endpoint, server, agent }) => {
      const req = await agent.socket("REQ");
      await agent.connect(req, endpoint);
      assert.ok(await agent.send(req, ["abc"]));
      assert.deepEqual(texts(await agent.recv(req)), ["OK", "cba"]);
      assert.ok(await agent.send(req, ["a", "b"]));
      const two = await agent.recv(req);
      assert.deepEqual(texts(two?.slice(0, 1)), ["ERROR"]);
      assert.equal(decode(two![1]), "2 frames");
      server.callTimeoutMs = 250;
      assert.ok(await agent.send(req, [bytes(0, 0xff)]));
      assert.deepEqual(await agent.recv(req), [STATUS_OK, bytes(0xff, 0)]);
      assert.deepEqual(seen, [
        { body: ["abc"], budget: 0 },
        { body: ["a", "b"], budget: 0 },
        { body: [decoder.decode(bytes(0, 0xff))], budget: 250 },
      ]);
      assert.equal(server.lastErrno, 0);
    }, { callTimeoutMs: 0 });
  },
});

Deno.test({
  name:
    "ROUTER: DEALER envelopes come back byte for byte (delimiter, none, several hops) and a REQ's too",
  ignore: skipInterop,
  async fn() {
    const bodies: string[][] = [];
    const handler: RequestHandler = {
      handle(body, budgetMs) {
        bodies.push(texts(body)!);
        return [STATUS_OK, b(`${budgetMs}:${body.map((f) => decoder.decode(f)).join("+")}`)];
      },
    };
    await withServer("ROUTER", handler, async ({ endpoint, agent }) => {
      const dealer = await agent.socket("DEALER", {}, bytes(0xff, 0x70, 0x00, 0x01));
      await agent.connect(dealer, endpoint);
      const id = bytes(0, 0, 0, 7);
      assert.ok(await agent.send(dealer, [id, DELIMITER, b("call")]));
      assert.deepEqual(await agent.recv(dealer), [id, DELIMITER, STATUS_OK, b("40:call")]);

      // No delimiter: the reply follows the identity directly.
      assert.ok(await agent.send(dealer, [b("bare")]));
      assert.deepEqual(await agent.recv(dealer), [STATUS_OK, b("40:bare")]);

      // Several hops, binary ones included, and a body of two frames.
      const hops = [bytes(0, 1, 2), bytes(0xff, 0xfe), b("hop")];
      assert.ok(await agent.send(dealer, [...hops, DELIMITER, b("x"), b("y")]));
      assert.deepEqual(await agent.recv(dealer), [
        ...hops,
        DELIMITER,
        STATUS_OK,
        b("40:x+y"),
      ]);

      // A REQ adds its own delimiter and sees the body only.
      const req = await agent.socket("REQ");
      await agent.connect(req, endpoint);
      assert.ok(await agent.send(req, ["from req"]));
      assert.deepEqual(await agent.recv(req), [STATUS_OK, b("40:from req")]);
      assert.deepEqual(bodies, [["call"], ["bare"], ["x", "y"], ["from req"]]);
    }, { callTimeoutMs: 40 });
  },
});

Deno.test({
  name: "large requests queued together each get their own reply back (pooled buffers reused)",
  ignore: skipInterop,
  async fn() {
    // Bodies from 64 KB up come from a pool and are reused once answered: requests waiting
    // in the queue, and replies that are views of the request, must stay intact.
    const handler: RequestHandler = { handle: (body) => [STATUS_OK, body[0]] };
    await withServer("ROUTER", handler, async ({ endpoint, agent }) => {
      const dealer = await agent.socket("DEALER");
      await agent.connect(dealer, endpoint);
      const sizes = [100_000, 70_000, 300_000, 100_000, 131_072, 100_000];
      const bodies = sizes.map((size, n) =>
        Uint8Array.from({ length: size }, (_, i) => (i * (n + 3) + n) & 0xff)
      );
      for (const body of bodies) assert.ok(await agent.send(dealer, [DELIMITER, body]));
      for (const body of bodies) {
        const reply = await agent.recv(dealer);
        assert.equal(reply?.length, 3);
        assert.deepEqual(reply![1], STATUS_OK);
        const echoed = reply![2];
        assert.equal(echoed.length, body.length);
        assert.ok(
          echoed.every((byte, i) => byte === body[i]),
          `${body.length} bytes came back changed`,
        );
      }
    });
  },
});

Deno.test({
  name: "requests are served one at a time: a handler's promise holds the next request back",
  ignore: skipInterop,
  async fn() {
    const calls: { body: string; release: (frames: Frames) => void }[] = [];
    const handler: RequestHandler = {
      handle(body) {
        const { promise, resolve } = deferred<Frames>();
        calls.push({ body: decoder.decode(body[0]), release: resolve });
        return promise;
      },
    };
    await withServer("ROUTER", handler, async ({ endpoint, server, agent }) => {
      const a = await agent.socket("DEALER");
      const c = await agent.socket("DEALER");
      await agent.connect(a, endpoint);
      await agent.connect(c, endpoint);
      assert.ok(await agent.send(a, [DELIMITER, b("a1")]));
      await waitFor(() => calls.length === 1, "the first request");
      assert.ok(await agent.send(a, [DELIMITER, b("a2")]));
      assert.ok(await agent.send(c, [DELIMITER, b("c1")]));
      await delay(300);
      assert.equal(calls.length, 1, "nothing else is served while the first is pending");
      assert.ok(server.busy);
      assert.throws(() => server.serveNext(), /already serving a request/);
      assert.equal(calls.length, 1, "the refused serveNext took nothing");

      calls[0].release(okText("r-a1"));
      const first = await agent.recv(a);
      assert.deepEqual(texts(first?.slice(0, 2)), ["", "OK"]);
      assert.equal(decode(first![2]), "r-a1");
      await waitFor(() => calls.length === 2, "the second request");
      await delay(100);
      assert.equal(calls.length, 2);
      calls[1].release(okText(`r-${calls[1].body}`));
      await waitFor(() => calls.length === 3, "the third request");
      calls[2].release(okText(`r-${calls[2].body}`));
      assert.deepEqual(calls.map((call) => call.body).sort(), ["a1", "a2", "c1"]);
      const order = calls.map((call) => call.body);
      assert.ok(order.indexOf("a1") < order.indexOf("a2"), "one client's requests in order");
      assert.equal(decode((await agent.recv(a))![2]), "r-a2");
      assert.equal(decode((await agent.recv(c))![2]), "r-c1");
      await waitFor(() => !server.busy, "the server to be idle");
    });
  },
});

Deno.test({
  name: "serveNext throws when called from inside a handler (process() cannot nest)",
  ignore: skipInterop,
  async fn() {
    const events: string[] = [];
    let server: RpcServer | undefined;
    const handler: RequestHandler = {
      handle(body) {
        const name = decoder.decode(body[0]);
        events.push(`start ${name}`);
        if (name === "outer") {
          try {
            const nested = server!.serveNext();
            events.push(`nested returned ${typeof nested === "number" ? nested : "a promise"}`);
          } catch (error) {
            events.push(`nested threw: ${(error as Error).message}`);
          }
        }
        events.push(`end ${name}`);
        return okText(name);
      },
    };
    await withServer("ROUTER", handler, async (ctx) => {
      server = ctx.server;
      const { agent, endpoint, socket } = ctx;
      const dealer = await agent.socket("DEALER");
      await agent.connect(dealer, endpoint);
      // Both requests are queued before anything is served: a nested call would find the
      // second one and serve it inside the first.
      assert.ok(await agent.send(dealer, [DELIMITER, b("outer")]));
      assert.ok(await agent.send(dealer, [DELIMITER, b("inner")]));
      assert.ok(await socket.readable(5000));
      await delay(200);
      assert.equal(server.serveNext(), SERVED);
      // The inner request, unless the nested call served it already.
      for (let i = 0; i < 3 && server.serveNext() !== IDLE; i++) assert.ok(i < 1);
      assert.deepEqual(events, [
        "start outer",
        "nested threw: this socket is already serving a request (process() cannot nest)",
        "end outer",
        "start inner",
        "end inner",
      ]);
      assert.equal(decode((await agent.recv(dealer))![2]), "outer", "replies in order");
      assert.equal(decode((await agent.recv(dealer))![2]), "inner");
    }, { serve: false });
  },
});

Deno.test({
  name: "serveNext by hand: IDLE, SERVED, or a promise that resolves once the reply is sent",
  ignore: skipInterop,
  async fn() {
    let hold: Deferred<Frames> | undefined;
    const handler: RequestHandler = {
      handle(body) {
        if (decoder.decode(body[0]) !== "wait") return okText("now");
        hold = deferred<Frames>();
        return hold.promise;
      },
    };
    await withServer("REP", handler, async ({ endpoint, server, socket, agent }) => {
      assert.equal(server.serveNext(), IDLE);
      const req = await agent.socket("REQ");
      await agent.connect(req, endpoint);
      assert.ok(await agent.send(req, ["sync"]));
      assert.ok(await socket.readable(5000));
      assert.equal(server.serveNext(), SERVED);
      assert.equal(decode((await agent.recv(req))![1]), "now");
      assert.equal(server.serveNext(), IDLE);

      assert.ok(await agent.send(req, ["wait"]));
      assert.ok(await socket.readable(5000));
      const pending = server.serveNext();
      assert.ok(pending instanceof Promise);
      assert.ok(server.busy);
      let settled = false;
      void pending.then(() => settled = true);
      await delay(100);
      assert.equal(settled, false);
      hold!.resolve(okText("later"));
      await pending;
      assert.equal(server.busy, false);
      assert.equal(decode((await agent.recv(req))![1]), "later");
    }, { serve: false });
  },
});

Deno.test({
  name: "a handler may reuse its reply buffer: each reply is sent before the next call",
  ignore: skipInterop,
  async fn() {
    const shared = new Uint8Array(1);
    let count = 0;
    const handler: RequestHandler = {
      handle() {
        shared[0] = ++count;
        return [STATUS_OK, shared];
      },
    };
    await withServer("ROUTER", handler, async ({ endpoint, agent, socket }) => {
      const dealer = await agent.socket("DEALER");
      await agent.connect(dealer, endpoint);
      await waitFor(() => socket.peerCount === 1, "the DEALER to connect");
      for (let i = 0; i < 5; i++) assert.ok(await agent.send(dealer, [DELIMITER, b(`${i}`)]));
      const got: number[] = [];
      for (let i = 0; i < 5; i++) got.push((await agent.recv(dealer))![2][0]);
      assert.deepEqual(got, [1, 2, 3, 4, 5]);
    });
  },
});

Deno.test({
  name: "a handler's rejected promise is answered with ERROR 'internal error: ...'",
  ignore: skipInterop,
  async fn() {
    const handler: RequestHandler = {
      handle: () => Promise.reject(new Error("the handler broke")),
    };
    await withServer("REP", handler, async ({ endpoint, agent }) => {
      const req = await agent.socket("REQ");
      await agent.connect(req, endpoint);
      assert.ok(await agent.send(req, ["x"]));
      const reply = await agent.recv(req);
      assert.deepEqual(texts(reply?.slice(0, 1)), ["ERROR"]);
      assert.equal(decode(reply![1]), "internal error: the handler broke");
      assert.ok(await agent.send(req, ["y"]), "and the next request is served");
      assert.deepEqual(texts((await agent.recv(req))?.slice(0, 1)), ["ERROR"]);
    });
  },
});

Deno.test({
  name: "ROUTER: lastErrno is EHOSTUNREACH when the client left before its reply, 0 again after",
  ignore: skipInterop,
  async fn() {
    const { handler, holds } = holdingHandler();
    await withServer("ROUTER", handler, async ({ endpoint, server, socket, agent }) => {
      const leaving = await agent.socket("DEALER");
      await agent.connect(leaving, endpoint);
      assert.ok(await agent.send(leaving, [DELIMITER, b("slow")]));
      await waitFor(() => holds.length === 1, "the request");
      await agent.closeSocket(leaving);
      await waitFor(() => socket.peerCount === 0, "the ROUTER to see the client go");
      holds[0].resolve(okText("too late"));
      await waitFor(() => !server.busy, "the reply to be attempted");
      assert.equal(server.lastErrno, EHOSTUNREACH);

      const staying = await agent.socket("DEALER");
      await agent.connect(staying, endpoint);
      assert.ok(await agent.send(staying, [DELIMITER, b("quick")]));
      assert.equal(decode((await agent.recv(staying))![2]), "quick");
      assert.equal(server.lastErrno, 0);
    });
  },
});

Deno.test({
  name: "ROUTER: a reply goes to the identity that asked, even on the client's next connection",
  ignore: skipInterop,
  async fn() {
    const { handler, holds } = holdingHandler();
    await withServer("ROUTER", handler, async ({ endpoint, server, socket, agent }) => {
      const identity = b("same-client");
      const first = await agent.socket("DEALER", {}, identity);
      await agent.connect(first, endpoint);
      assert.ok(await agent.send(first, [DELIMITER, b("slow")]));
      await waitFor(() => holds.length === 1, "the request");
      await agent.closeSocket(first);
      await waitFor(() => socket.peerCount === 0, "the ROUTER to see the client go");
      // Back under the same identity before the answer: routing is by identity.
      const again = await agent.socket("DEALER", {}, identity);
      await agent.connect(again, endpoint);
      await waitFor(() => socket.peerCount === 1, "the client's new connection");
      holds[0].resolve(okText("late but routed"));
      assert.equal(decode((await agent.recv(again))![2]), "late but routed");
      assert.equal(server.lastErrno, 0);
    });
  },
});

Deno.test({
  name: "serveUntil: an abort lets the request in progress finish and be answered",
  ignore: skipInterop,
  async fn() {
    const holds: Deferred<Frames>[] = [];
    const handler: RequestHandler = {
      handle() {
        const hold = deferred<Frames>();
        holds.push(hold);
        return hold.promise;
      },
    };
    const socket = createSocket("REP");
    const endpoint = await socket.bind("tcp://127.0.0.1:0");
    const server = new RpcServer(socket, handler);
    const stop = new AbortController();
    let done = false;
    const serving = server.serveUntil(stop.signal).then(() => done = true);
    const agent = await PyAgent.start();
    try {
      const req = await agent.socket("REQ");
      await agent.connect(req, endpoint);
      assert.ok(await agent.send(req, ["x"]));
      await waitFor(() => holds.length === 1, "the request");
      stop.abort();
      await delay(100);
      assert.equal(done, false, "serveUntil waits for the request in progress");
      holds[0].resolve(okText("finished"));
      await settled(serving, "serveUntil");
      assert.ok(done, "serveUntil returned once the request in progress was answered");
      assert.equal(decode((await agent.recv(req))![1]), "finished");
    } finally {
      stop.abort();
      await settled(serving, "serveUntil after the abort");
      await agent.stop();
      await socket.close(0);
    }
  },
});

Deno.test("serveUntil: an abort while another request is queued returns, serving nothing more", async () => {
  // In a child process: if serveUntil kept looping after the abort, nothing else would run
  // in that process (not even a timer), so only a deadline from outside can tell.
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--allow-net",
      "--allow-env",
      new URL("./fixtures/rpc_abort_queued.ts", import.meta.url).pathname,
    ],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const timer = setTimeout(() => child.kill("SIGKILL"), 10000);
  const out = await child.output();
  clearTimeout(timer);
  const stderr = decoder.decode(out.stderr);
  assert.equal(out.signal, null, `killed after 10 s: serveUntil never returned\n${stderr}`);
  assert.equal(out.code, 0, stderr);
  assert.deepEqual(JSON.parse(decoder.decode(out.stdout)), {
    returned: true,
    handled: ["first"],
    reply: ["OK", "finished"],
  });
});
