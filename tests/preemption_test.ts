// "A handler never freezes the server": real lomq processes computing in Lua while real
// libzmq peers (pyzmq) heartbeat, connect, publish and subscribe; call budgets; stopping a
// computing script; coroutines that are paused and resumed. Everything is on loopback and
// every wait is bounded.
import assert from "node:assert/strict";
import { join } from "node:path";
import { createDecoder, encode } from "../src/client/msgpack.ts";
import { LuaEngine } from "../src/lua/engine.ts";
import {
  freePort,
  LomqProcess,
  ROOT,
  runPython,
  spawnPython,
  startLomq,
  startServer,
} from "./helpers/lomq.ts";
import { pythonForInterop, skipInterop } from "./helpers/python.ts";
import { RawPeer } from "./zmtp/util.ts";
import { PyAgent } from "./zmtp/pyzmq.ts";

const SERVER = `${ROOT}tests/fixtures/preempt_server.lua`;
const STOPPER = `${ROOT}tests/fixtures/preempt_stop.lua`;
const CASES = join(ROOT, "tests/fixtures/preempt_coroutines.lua");
const python = (await pythonForInterop()) ?? "python3";
const decode = createDecoder();

/** What a Python client got for one call: status null when no reply came in time. */
interface CallResult {
  status: string | null;
  value?: unknown;
  seconds: number;
}

/** A Python client's calls, and what its socket monitor saw of the connection. */
interface ClientRun {
  results: CallResult[];
  connects: number;
  disconnects: number;
}

/**
 * Makes `calls` in order over one pyzmq socket (REQ, or DEALER with an empty delimiter)
 * with libzmq heartbeats every 100 ms and a 300 ms heartbeat timeout: a server that does
 * not answer a PING within 300 ms is dropped. Stops at the first call without a reply
 * within `timeoutMs`.
 */
async function pyCalls(
  uri: string,
  calls: unknown[][],
  { dealer = false, timeoutMs = 5000 }: { dealer?: boolean; timeoutMs?: number } = {},
): Promise<ClientRun> {
  const stdout = await runPython(
    python,
    `
import json, os, sys, time
import zmq, msgpack
from zmq.utils.monitor import recv_monitor_message
DEALER = ${dealer ? "True" : "False"}
ctx = zmq.Context()
s = ctx.socket(zmq.DEALER if DEALER else zmq.REQ)
s.setsockopt(zmq.HEARTBEAT_IVL, 100)
s.setsockopt(zmq.HEARTBEAT_TIMEOUT, 300)
s.setsockopt(zmq.LINGER, 0)
mon = s.get_monitor_socket()
s.connect(${JSON.stringify(uri)})
results = []
for call in json.loads(${JSON.stringify(JSON.stringify(calls))}):
    t0 = time.time()
    body = msgpack.packb(call)
    s.send_multipart([b"", body] if DEALER else [body])
    if s.poll(${timeoutMs}) == 0:
        results.append({"status": None, "seconds": time.time() - t0})
        break
    frames = s.recv_multipart()
    if DEALER:
        assert frames[0] == b"", frames
        frames = frames[1:]
    assert len(frames) == 2, frames
    results.append({"status": frames[0].decode(), "value": msgpack.unpackb(frames[1], raw=False),
                    "seconds": time.time() - t0})
events = []
until = time.time() + 0.5
while time.time() < until and mon.poll(100):
    events.append(recv_monitor_message(mon)["event"])
print(json.dumps({"results": results,
                  "connects": sum(1 for e in events if e == zmq.EVENT_CONNECTED),
                  "disconnects": sum(1 for e in events if e == zmq.EVENT_DISCONNECTED)}))
sys.stdout.flush()
os._exit(0)
`,
    60000,
  );
  return JSON.parse(stdout) as ClientRun;
}

/** Asserts a call was answered OK with `value`. */
function assertOk(result: CallResult | undefined, value: unknown, what: string): void {
  assert.ok(result !== undefined, `${what}: no result`);
  assert.equal(result.status, "OK", `${what}: ${JSON.stringify(result)}`);
  assert.deepEqual(result.value, value, what);
}

/** Asserts a call was stopped at a budget of `ms`: the ERROR text, and about that long. */
function assertBudget(result: CallResult | undefined, name: string, ms: number): void {
  assert.ok(result !== undefined, `${name}: no result`);
  assert.deepEqual(
    [result.status, result.value],
    ["ERROR", `call '${name}' exceeded ${ms} ms`],
    `${name}: ${JSON.stringify(result)}`,
  );
  assert.ok(
    result.seconds >= (ms - 20) / 1000 && result.seconds < (ms + 1500) / 1000,
    `${name} was stopped after ${result.seconds} s`,
  );
}

/** Asserts a reply `[status, msgpack]` as pyzmq received it. */
function assertFrames(frames: Uint8Array[] | undefined, status: string, value: unknown): void {
  assert.ok(frames !== undefined, "no reply");
  assert.equal(frames.length, 2, `${frames.length} frames`);
  assert.equal(new TextDecoder().decode(frames[0]), status);
  assert.deepEqual(decode(frames[1]), value);
}

/** The msgpack body of a request `[method, ...args]`. */
function request(method: string, ...args: unknown[]): Uint8Array {
  return encode([method, ...args]);
}

// ---- heartbeats and connections while a handler computes ---------------------------------

Deno.test({
  name: "a heartbeating pyzmq REQ gets the reply of a 1.5 s computing handler and stays connected",
  ignore: skipInterop,
  async fn() {
    const { lomq, uri } = await startServer(SERVER);
    try {
      const run = await pyCalls(uri, [["add", 1, 2], ["compute", 1500, "done"], ["add", 2, 3]]);
      assertOk(run.results[0], 3, "first add");
      assertOk(run.results[1], "done", "compute");
      assert.ok(run.results[1].seconds >= 1.45, `compute took ${run.results[1].seconds} s`);
      assertOk(run.results[2], 5, "the call after it, on the same socket");
      assert.ok(run.results[2].seconds < 0.5, `answered after ${run.results[2].seconds} s`);
      assert.deepEqual([run.connects, run.disconnects], [1, 0], "one connection, never dropped");
    } finally {
      await lomq.stop();
    }
  },
});

Deno.test({
  name: "control: with --slice-ms 0 the same heartbeating client is dropped (the check can fail)",
  ignore: skipInterop,
  async fn() {
    const port = freePort();
    const uri = `tcp://127.0.0.1:${port}`;
    const lomq = await startLomq(["--slice-ms", "0", SERVER, uri], port);
    try {
      const run = await pyCalls(uri, [["add", 1, 2], ["compute", 1500, "done"]], {
        timeoutMs: 3000,
      });
      assertOk(run.results[0], 3, "first add");
      assert.ok(run.disconnects >= 1, `a frozen server is dropped: ${JSON.stringify(run)}`);
      assert.equal(run.results[1].status, null, "the reply went to the dropped connection");
    } finally {
      await lomq.stop();
    }
  },
});

Deno.test({
  name:
    "a new connection completes its handshake while a handler computes; its request is served next",
  ignore: skipInterop,
  async fn() {
    const { lomq, uri } = await startServer(SERVER);
    const agent = await PyAgent.start();
    let peer: RawPeer | undefined;
    try {
      const req = await agent.socket("REQ");
      await agent.connect(req, uri);
      assert.ok(await agent.send(req, [request("add", 1, 1)]));
      assertFrames(await agent.recv(req), "OK", 2);
      const started = Date.now();
      assert.ok(await agent.send(req, [request("compute", 1500, "long")]));
      await new Promise((r) => setTimeout(r, 300)); // the handler is computing now
      peer = await RawPeer.connect(uri);
      const ready = await peer.handshake("REQ");
      const handshakeAt = Date.now() - started;
      assert.match(ready.get("raw") ?? "", /Socket-Type.*REP/s);
      assert.ok(handshakeAt < 1100, `handshake done ${handshakeAt} ms into a 1500 ms handler`);
      await peer.send(["", request("add", 20, 22)]);
      const rawReply = peer.readMessage(6000).then((m) => ({ m, at: Date.now() - started }));
      const long = await agent.recv(req, 6000);
      const longAt = Date.now() - started;
      assertFrames(long, "OK", "long");
      const raw = await rawReply;
      assert.deepEqual(raw.m, ["", "OK", "*"], "add(20, 22) = 42, msgpack 0x2a");
      assert.ok(longAt >= 1400, `the long call answered after ${longAt} ms`);
      assert.ok(raw.at >= 1400, `the queued call waited for the long one (${raw.at} ms)`);
    } finally {
      peer?.close();
      await agent.stop();
      await lomq.stop();
    }
  },
});

// ---- other sockets keep their I/O going during a long handler ----------------------------

Deno.test({
  name: "a Lua SUB keeps receiving from a pyzmq PUB while a handler computes",
  ignore: skipInterop,
  async fn() {
    const pubUri = `tcp://127.0.0.1:${freePort()}`;
    const { lomq, uri } = await startServer(SERVER, [`sub=${pubUri}`]);
    try {
      // The PUB sends its send time every 10 ms. watch_sub computes for 1.5 s and then,
      // without waiting in between, takes what its SUB socket queued: a message sent during
      // the computation is there only if the server read its connections meanwhile.
      const stdout = await runPython(
        python,
        `
import json, os, sys, threading, time
import zmq, msgpack
ctx = zmq.Context()
pub = ctx.socket(zmq.PUB)
pub.setsockopt(zmq.LINGER, 0)
pub.bind(${JSON.stringify(pubUri)})
stop = threading.Event()
def publish():
    while not stop.is_set():
        pub.send_multipart([b"tick", msgpack.packb(time.time())])
        time.sleep(0.01)
threading.Thread(target=publish, daemon=True).start()
from interop import decoded, req_socket, request
req = req_socket(ctx, ${JSON.stringify(uri)})
def call(*a):
    return decoded(request(req, *a))
joined = False
for attempt in range(100):
    if call("sub_drain")[1] > 0:
        joined = True
        break
    time.sleep(0.05)
watched = call("watch_sub", 1500)
stop.set()
print(json.dumps({"joined": joined, "watched": watched}))
sys.stdout.flush()
os._exit(0)
`,
      );
      const { joined, watched } = JSON.parse(stdout) as {
        joined: boolean;
        watched: [string, { start: number; finish: number; stamps: number[] | object }];
      };
      assert.ok(joined, "the SUB socket got messages before the test");
      assert.equal(watched[0], "OK", JSON.stringify(watched));
      const { start, finish } = watched[1];
      const stamps = Array.isArray(watched[1].stamps) ? watched[1].stamps : [];
      assert.ok(finish - start >= 1.45, `watch_sub computed for ${finish - start} s`);
      const during = stamps.filter((t) => t > start + 0.1 && t < finish - 0.1);
      // About 130 were sent in that window; a server that did not read would have none.
      assert.ok(during.length >= 30, `${during.length} messages sent during the handler arrived`);
      const late = stamps.filter((t) => t > start + 1.2);
      assert.ok(late.length > 0, "messages sent near the end of the computation arrived");
      for (let i = 1; i < stamps.length; i++) assert.ok(stamps[i] > stamps[i - 1], "in order");
    } finally {
      await lomq.stop();
    }
  },
});

Deno.test({
  name: "messages a handler queued on a PUB leave while it still computes",
  ignore: skipInterop,
  async fn() {
    const pubUri = `tcp://127.0.0.1:${freePort()}`;
    const { lomq, uri } = await startServer(SERVER, [`pub=${pubUri}`]);
    try {
      const stdout = await runPython(
        python,
        `
import json, os, sys, time
import zmq, msgpack
ctx = zmq.Context()
sub = ctx.socket(zmq.SUB)
sub.setsockopt(zmq.LINGER, 0)
sub.setsockopt(zmq.SUBSCRIBE, b"")
sub.connect(${JSON.stringify(pubUri)})
from interop import req_socket, request
req = req_socket(ctx, ${JSON.stringify(uri)})
def call(*a):
    return request(req, *a)
# The subscription travels asynchronously: publish a marker until one arrives.
for attempt in range(100):
    call("publish", "ready", attempt)
    if sub.poll(50):
        break
while sub.poll(100):
    sub.recv_multipart()
t0 = time.time()
req.send(msgpack.packb(["publish_then_compute", 20, 1200]))
poller = zmq.Poller()
poller.register(sub, zmq.POLLIN)
poller.register(req, zmq.POLLIN)
burst = []
reply = None
deadline = t0 + 10
while reply is None and time.time() < deadline:
    for sock, _ in poller.poll(100):
        if sock is sub:
            topic, payload = sub.recv_multipart()
            burst.append([topic.decode(), msgpack.unpackb(payload), time.time() - t0])
        else:
            status, payload = req.recv_multipart()
            reply = [status.decode(), msgpack.unpackb(payload), time.time() - t0]
print(json.dumps({"burst": burst, "reply": reply}))
sys.stdout.flush()
os._exit(0)
`,
      );
      const { burst, reply } = JSON.parse(stdout) as {
        burst: [string, number, number][];
        reply: [string, number, number] | null;
      };
      assert.ok(reply !== null, "the call was answered");
      assert.deepEqual(reply.slice(0, 2), ["OK", 20]);
      assert.ok(reply[2] >= 1.15, `answered after ${reply[2]} s`);
      assert.deepEqual(
        burst.map(([topic, value]) => [topic, value]),
        [...Array(20).keys()].map((i) => ["burst", i + 1]),
        "every message arrived before the reply, in order",
      );
      const last = burst[burst.length - 1][2];
      assert.ok(
        last < reply[2] - 0.8,
        `the last one came at ${last} s, the reply at ${reply[2]} s`,
      );
    } finally {
      await lomq.stop();
    }
  },
});

// ---- call budgets ------------------------------------------------------------------------

/** Calls that each overrun a 300 ms budget in another way, each followed by one in time. */
const OVERRUNS: unknown[][] = [
  ["spin"],
  ["add", 1, 2],
  ["nap", 10000],
  ["add", 3, 4],
  ["sort_stuck"],
  ["add", 5, 6],
  ["compute", 50, "in time"],
];

function assertOverruns(run: ClientRun): void {
  assert.equal(run.results.length, OVERRUNS.length, JSON.stringify(run.results));
  assertBudget(run.results[0], "spin", 300);
  assertOk(run.results[1], 3, "the call after spin()");
  assertBudget(run.results[2], "nap", 300);
  assertOk(run.results[3], 7, "the call after a sleep(10000)");
  assertBudget(run.results[4], "sort_stuck", 300);
  assertOk(run.results[5], 11, "the call after a stuck table.sort comparator");
  assertOk(run.results[6], "in time", "a call within its budget");
  for (const i of [1, 3, 5]) {
    assert.ok(run.results[i].seconds < 0.5, `call ${i} answered after ${run.results[i].seconds}`);
  }
  assert.equal(run.disconnects, 0, "the client was never dropped");
}

Deno.test({
  name:
    "call_timeout_ms as a REP bind option: spin(), sleep(10000) and a stuck comparator are stopped",
  ignore: skipInterop,
  async fn() {
    const { lomq, uri } = await startServer(SERVER, ["budget=300"]);
    try {
      assertOverruns(await pyCalls(uri, OVERRUNS));
    } finally {
      lomq.kill("SIGINT");
      const out = await lomq.finish(10000);
      assert.equal(out.code, 0, out.stderr);
      assert.match(out.stderr, /call 'spin' exceeded 300 ms: stopped, and answered with ERROR/);
    }
  },
});

Deno.test({
  name: "call_timeout_ms set with setsockopt on a ROUTER, called by a pyzmq DEALER",
  ignore: skipInterop,
  async fn() {
    const { lomq, uri } = await startServer(SERVER, ["type=ROUTER", "setsockopt=300"]);
    try {
      assertOverruns(await pyCalls(uri, OVERRUNS, { dealer: true }));
    } finally {
      await lomq.stop();
    }
  },
});

Deno.test({
  name: "lomq serve --call-timeout: the same overruns are stopped and the next calls served",
  ignore: skipInterop,
  async fn() {
    const port = freePort();
    const uri = `tcp://127.0.0.1:${port}`;
    const lomq = await startLomq(["serve", SERVER, "--rpc", uri, "--call-timeout", "300"], port);
    try {
      assertOverruns(await pyCalls(uri, OVERRUNS));
    } finally {
      await lomq.stop();
    }
  },
});

// ---- stopping a script that computes -----------------------------------------------------

/** Starts preempt_stop.lua; `mode` says what computes. */
async function startStopper(
  mode: "handler" | "main" | "cooperative",
  onStop: boolean,
): Promise<{ lomq: LomqProcess; uri: string }> {
  const port = freePort();
  const uri = `tcp://127.0.0.1:${port}`;
  const args = [STOPPER, uri, mode, ...(onStop ? ["onstop"] : [])];
  return { lomq: await startLomq(args, port), uri };
}

/** The process's exit status, or undefined when it still runs after `ms`. */
async function exitWithin(lomq: LomqProcess, ms: number): Promise<Deno.CommandStatus | undefined> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<undefined>((r) => timer = setTimeout(() => r(undefined), ms));
  try {
    return await Promise.race([lomq.child.status, late]);
  } finally {
    clearTimeout(timer);
  }
}

/** Sends SIGINT; resolves with the exit and how long after the signal it came. */
async function interrupt(
  lomq: LomqProcess,
  withinMs = 7000,
): Promise<{ code: number; stderr: string; ms: number }> {
  const sent = Date.now();
  lomq.kill("SIGINT");
  const status = await exitWithin(lomq, withinMs);
  const ms = Date.now() - sent;
  if (status === undefined) lomq.kill("SIGKILL");
  const out = await lomq.finish(5000);
  assert.ok(status !== undefined, `still running ${withinMs} ms after SIGINT:\n${out.stderr}`);
  return { code: out.code, stderr: out.stderr, ms };
}

/**
 * A pyzmq REQ calling spin() in the background; resolves with the reply it got, or
 * "disconnected" when the server went away first ("none": neither within 8 s).
 */
function callSpin(uri: string): Promise<string> {
  const { output } = spawnPython(
    python,
    `
import os, sys, zmq, msgpack
ctx = zmq.Context()
s = ctx.socket(zmq.REQ)
s.setsockopt(zmq.LINGER, 0)
mon = s.get_monitor_socket(zmq.EVENT_DISCONNECTED)
s.connect(${JSON.stringify(uri)})
s.send(msgpack.packb(["spin"]))
poller = zmq.Poller()
poller.register(s, zmq.POLLIN)
poller.register(mon, zmq.POLLIN)
ready = dict(poller.poll(8000))
if s in ready:
    status, payload = s.recv_multipart()
    print(status.decode(), msgpack.unpackb(payload, raw=False))
else:
    print("disconnected" if mon in ready else "none")
sys.stdout.flush()
os._exit(0)
`,
  );
  return output.then((out) => new TextDecoder().decode(out.stdout).trim());
}

/** Proves the server's I/O is live right now: a ZMTP handshake completes within 1 s. */
async function assertHandshake(uri: string): Promise<void> {
  const peer = await RawPeer.connect(uri);
  try {
    const started = Date.now();
    await peer.handshake("REQ");
    assert.ok(Date.now() - started < 1000, `handshake took ${Date.now() - started} ms`);
  } finally {
    peer.close();
  }
}

Deno.test({
  name: "SIGINT during spin() without a budget: OnStop runs and the exit comes at its 500 ms",
  ignore: skipInterop,
  async fn() {
    const { lomq, uri } = await startStopper("handler", true);
    try {
      const reply = callSpin(uri);
      await new Promise((r) => setTimeout(r, 400));
      await assertHandshake(uri); // the handler computes, the server is live
      const out = await interrupt(lomq);
      assert.equal(out.code, 130, out.stderr);
      assert.match(out.stderr, /OnStop called/);
      assert.match(out.stderr, /did not return within 500 ms of OnStop/);
      assert.doesNotMatch(out.stderr, /main returned/);
      assert.ok(out.ms >= 450 && out.ms < 2500, `exited ${out.ms} ms after SIGINT`);
      assert.equal(await reply, "disconnected", "spin() never replied");
    } finally {
      await lomq.stop();
    }
  },
});

Deno.test("SIGINT during a computing main(): OnStop runs and the exit comes at its 500 ms", async () => {
  const { lomq, uri } = await startStopper("main", true);
  try {
    await new Promise((r) => setTimeout(r, 300));
    await assertHandshake(uri); // main computes, the server is live
    const out = await interrupt(lomq);
    assert.equal(out.code, 130, out.stderr);
    assert.match(out.stderr, /OnStop called/);
    assert.match(out.stderr, /did not return within 500 ms of OnStop/);
    assert.ok(out.ms >= 450 && out.ms < 2500, `exited ${out.ms} ms after SIGINT`);
  } finally {
    await lomq.stop();
  }
});

Deno.test("SIGINT during a computing main() that watches its flag: OnStop runs beside it, main returns", async () => {
  const { lomq } = await startStopper("cooperative", true);
  try {
    await new Promise((r) => setTimeout(r, 300));
    const out = await interrupt(lomq);
    assert.equal(out.code, 0, out.stderr);
    assert.match(out.stderr, /OnStop called\n(.*\n)*main returned/);
    assert.ok(out.ms < 1500, `exited ${out.ms} ms after SIGINT`);
  } finally {
    await lomq.stop();
  }
});

Deno.test({
  name: "SIGINT without OnStop: a spinning handler or a computing main() ends with exit 0 at once",
  ignore: skipInterop,
  async fn() {
    for (const mode of ["handler", "main"] as const) {
      const { lomq, uri } = await startStopper(mode, false);
      try {
        const reply = mode === "handler" ? callSpin(uri) : Promise.resolve("");
        await new Promise((r) => setTimeout(r, 400));
        const out = await interrupt(lomq);
        assert.equal(out.code, 0, `${mode}: ${out.stderr}`);
        assert.ok(out.ms < 1500, `${mode}: exited ${out.ms} ms after SIGINT`);
        assert.doesNotMatch(out.stderr, /main returned/);
        if (mode === "handler") {
          assert.match(await reply, /^ERROR .*stopping/, "the caller got an ERROR reply");
        }
      } finally {
        await lomq.stop();
      }
    }
  },
});

Deno.test({
  name: "os.exit(3) from a handler: the caller gets an ERROR reply and the process exits 3",
  ignore: skipInterop,
  async fn() {
    const { lomq, uri } = await startServer(SERVER);
    try {
      const run = await pyCalls(uri, [["add", 1, 2], ["exit3"]]);
      assertOk(run.results[0], 3, "add");
      assert.equal(run.results[1]?.status, "ERROR", JSON.stringify(run.results));
      assert.match(String(run.results[1].value), /os\.exit\(3\)/);
      const status = await exitWithin(lomq, 5000);
      const out = await lomq.finish(status === undefined ? 0 : 5000);
      assert.ok(status !== undefined, `still running after os.exit(3):\n${out.stderr}`);
      assert.equal(out.code, 3, out.stderr);
    } finally {
      await lomq.stop();
    }
  },
});

// ---- script coroutines -------------------------------------------------------------------

Deno.test({
  name: "a long computation inside coroutine.wrap and nested coroutine.resume is preempted too",
  ignore: skipInterop,
  async fn() {
    const { lomq, uri } = await startServer(SERVER);
    try {
      const run = await pyCalls(uri, [["co_wrap", 1500], ["co_resume", 1500], ["add", 1, 2]]);
      assertOk(run.results[0], [2, 40], "co_wrap: values went both ways through the yield");
      assertOk(run.results[1], [42, "fed42!", "dead"], "co_resume: nested coroutines");
      for (const i of [0, 1]) {
        assert.ok(run.results[i].seconds >= 1.45, `call ${i} took ${run.results[i].seconds} s`);
      }
      assertOk(run.results[2], 3, "the next call");
      assert.ok(run.results[2].seconds < 0.5, `answered after ${run.results[2].seconds} s`);
      assert.deepEqual([run.connects, run.disconnects], [1, 0], "one connection, never dropped");
    } finally {
      await lomq.stop();
    }
  },
});

/** Runs the coroutine cases in a bare engine: Lua's own coroutine functions, no hook. */
async function casesInBareEngine(): Promise<string[]> {
  const engine = await LuaEngine.create({ sliceMs: 0 });
  const L = engine.L;
  const failure = engine.load(L, await Deno.readFile(CASES), `@${CASES}`);
  assert.equal(failure, undefined);
  assert.equal(engine.pcall(L, 0, 1), 0, engine.api.describe(L, -1));
  assert.equal(engine.pcall(L, 0, 1), 0, engine.api.describe(L, -1));
  return engine.api.toText(L, -1).split("\n");
}

Deno.test({
  name:
    "coroutines keep Lua's semantics when paused: values, errors and positions as the originals",
  ignore: skipInterop,
  async fn(t) {
    const expected = await casesInBareEngine();
    assert.ok(expected.length >= 20, `${expected.length} cases`);
    const { lomq, uri } = await startServer(SERVER);
    let got: string[];
    try {
      const run = await pyCalls(uri, [["coroutine_cases"]]);
      assert.equal(run.results[0]?.status, "OK", JSON.stringify(run.results));
      got = String(run.results[0].value).split("\n");
      assert.equal(run.disconnects, 0);
    } finally {
      await lomq.stop();
    }
    assert.equal(got.length, expected.length);
    // One step per case, so that each difference names its case.
    for (const [i, line] of expected.entries()) {
      const [name, original] = line.split(" => ");
      await t.step(name, () => {
        const [gotName, result] = got[i].split(" => ");
        assert.equal(gotName, name);
        assert.equal(result, original);
      });
    }
  },
});

// ---- lomq serve: stopping with a call queued behind a computing one ----------------------

/**
 * Two pyzmq REQ clients in the background: the first makes `first`, the second, 300 ms
 * later, add(1, 2), which is queued behind it. Resolves with what each got ("none" when
 * nothing came within 8 s, or within 1 s of the first reply).
 */
function queuedClients(uri: string, first: unknown[]): Promise<{ first: string; second: string }> {
  const { output } = spawnPython(
    python,
    `
import json, os, sys, time
import zmq, msgpack
ctx = zmq.Context()
def client():
    s = ctx.socket(zmq.REQ)
    s.setsockopt(zmq.LINGER, 0)
    s.connect(${JSON.stringify(uri)})
    return s
a, b = client(), client()
a.send(msgpack.packb(json.loads(${JSON.stringify(JSON.stringify(first))})))
time.sleep(0.3)
b.send(msgpack.packb(["add", 1, 2]))
got = {}
deadline = time.time() + 8
poller = zmq.Poller()
poller.register(a, zmq.POLLIN)
poller.register(b, zmq.POLLIN)
while len(got) < 2 and time.time() < deadline:
    for sock, _ in poller.poll(100):
        status, payload = sock.recv_multipart()
        got["first" if sock is a else "second"] = status.decode() + " " + str(msgpack.unpackb(payload, raw=False))
        poller.unregister(sock)
        if sock is a:
            deadline = min(deadline, time.time() + 1)
print(json.dumps({"first": got.get("first", "none"), "second": got.get("second", "none")}))
sys.stdout.flush()
os._exit(0)
`,
  );
  return output.then((out) => JSON.parse(new TextDecoder().decode(out.stdout)));
}

/** Starts `lomq serve SCRIPT --rpc URI`. */
async function startServeOn(script: string): Promise<{ lomq: LomqProcess; uri: string }> {
  const port = freePort();
  const uri = `tcp://127.0.0.1:${port}`;
  return { lomq: await startLomq(["serve", script, "--rpc", uri], port), uri };
}

Deno.test({
  name:
    "lomq serve without OnStop: SIGINT while a call computes and another is queued exits 0 at once",
  ignore: skipInterop,
  async fn() {
    const { lomq, uri } = await startServeOn(`${ROOT}tests/fixtures/functions.lua`);
    try {
      const clients = queuedClients(uri, ["slow", 3000, "late"]);
      await new Promise((r) => setTimeout(r, 1000));
      const out = await interrupt(lomq);
      assert.equal(out.code, 0, out.stderr);
      assert.ok(out.ms < 2000, `exited ${out.ms} ms after SIGINT`);
      assert.match((await clients).first, /^ERROR .*stopping/);
    } finally {
      await lomq.stop();
    }
  },
});

Deno.test({
  name:
    "lomq serve with OnStop: SIGINT while a call computes and another is queued exits within OnStop's wait",
  ignore: skipInterop,
  async fn() {
    const { lomq, uri } = await startServeOn(SERVER);
    try {
      const clients = queuedClients(uri, ["compute", 2500, "done"]);
      await new Promise((r) => setTimeout(r, 1000));
      const out = await interrupt(lomq);
      // The call in progress is finished and answered, then serve returns: well before
      // the 5 s that an OnStop returning nothing gives.
      assert.equal(out.code, 0, out.stderr);
      assert.ok(out.ms < 4000, `exited ${out.ms} ms after SIGINT`);
      assert.equal((await clients).first, "OK done");
    } finally {
      await lomq.stop();
    }
  },
});

Deno.test({
  name: "lomq serve: os.exit(3) from a handler while another call is queued exits 3",
  ignore: skipInterop,
  async fn() {
    const { lomq, uri } = await startServeOn(SERVER);
    try {
      const clients = await queuedClients(uri, ["exit_after", 800]);
      assert.match(clients.first, /^ERROR .*os\.exit\(3\)/);
      const status = await exitWithin(lomq, 3000);
      const out = await lomq.finish(status === undefined ? 0 : 5000);
      assert.ok(status !== undefined, `still running after os.exit(3):\n${out.stderr}`);
      assert.equal(out.code, 3, out.stderr);
    } finally {
      await lomq.stop();
    }
  },
});
