// A Lua publisher loop that never waits, against a pyzmq SUB: what a subscriber that keeps
// up receives, and what the high-water mark drops for one that does not, as pub:stats()
// counts it. Counts, not timings.
import assert from "node:assert/strict";
import { freePort, LomqProcess, ROOT, runPython, waitForPort } from "./helpers/lomq.ts";
import { pythonForInterop, skipInterop } from "./helpers/python.ts";

const SCRIPT = `${ROOT}tests/fixtures/publish_loop.lua`;
const python = (await pythonForInterop()) ?? "python3";

interface Outcome {
  /** What the script's pub:stats() counted over its loop. */
  sent: number;
  dropped: number;
  subscribers: number;
  /** Messages of the loop the subscriber received, and whether they came in order. */
  received: number;
  inOrder: boolean;
}

/**
 * Runs the loop of `count` sends against one pyzmq SUB with receive HWM `rcvhwm` (0: none)
 * that waits `pauseS` seconds before it reads anything.
 */
async function publishLoop(count: number, size: number, rcvhwm: number, pauseS: number) {
  const rpcPort = freePort();
  const rpc = `tcp://127.0.0.1:${rpcPort}`;
  const pub = `tcp://127.0.0.1:${freePort()}`;
  const lomq = new LomqProcess([SCRIPT, rpc, pub, String(count), String(size)]);
  try {
    await waitForPort(rpcPort);
    const stdout = await runPython(
      python,
      `
import zmq, msgpack, json, time
ctx = zmq.Context()
sub = ctx.socket(zmq.SUB)
sub.setsockopt(zmq.RCVHWM, ${rcvhwm})
sub.setsockopt(zmq.LINGER, 0)
sub.setsockopt(zmq.SUBSCRIBE, b"")
sub.connect(${JSON.stringify(pub)})
while True:
    if not sub.poll(10000):
        raise SystemExit("no ready marker in 10 s")
    if sub.recv_multipart()[0] == b"ready":
        break
req = ctx.socket(zmq.REQ)
req.setsockopt(zmq.LINGER, 0)
req.setsockopt(zmq.RCVTIMEO, 10000)
req.connect(${JSON.stringify(rpc)})
req.send(msgpack.packb(["start"]))
req.recv_multipart()
time.sleep(${pauseS})
received, last, in_order = 0, 0, True
while sub.poll(3000):
    topic, payload = sub.recv_multipart()
    if topic != b"t":
        continue
    value = msgpack.unpackb(payload)
    seq = value[0] if isinstance(value, list) else value
    in_order = in_order and seq > last
    last = seq
    received += 1
print(json.dumps({"received": received, "inOrder": in_order}))
`,
      60000,
    );
    const out = await lomq.finish(30000);
    assert.equal(out.code, 0, out.stderr);
    const m = out.stdout.match(/sent=(\d+) dropped=(\d+) subscribers=(\d+)/);
    assert.ok(m, `the script printed no stats: ${out.stdout}\n${out.stderr}`);
    const seen = JSON.parse(stdout) as { received: number; inOrder: boolean };
    return {
      sent: Number(m[1]),
      dropped: Number(m[2]),
      subscribers: Number(m[3]),
      ...seen,
    } satisfies Outcome;
  } finally {
    await lomq.stop();
  }
}

Deno.test({
  name: "a loop of 100000 pub:send with no wait reaches a pyzmq SUB that keeps up",
  ignore: skipInterop,
  async fn() {
    const o = await publishLoop(100_000, 0, 0, 0);
    assert.equal(o.sent, 100_000);
    assert.equal(o.subscribers, 1);
    // Every message is either received or counted as dropped, never lost silently.
    assert.equal(o.received + o.dropped, o.sent, JSON.stringify(o));
    assert.ok(o.inOrder);
    // Before sends flushed in batches, the queue filled to the HWM within every 5 ms slice
    // and about 80% were dropped; a subscriber that keeps up now loses (next to) none.
    assert.ok(o.dropped < o.sent / 100, `dropped ${o.dropped} of ${o.sent}`);
  },
});

Deno.test({
  name: "what the HWM drops for a subscriber that does not read is counted by pub:stats()",
  ignore: skipInterop,
  async fn() {
    // 20000 x 1 KB is far more than the kernel's buffers, libzmq's receive pipe (RCVHWM 1)
    // and lomq's queue (HWM 1000) hold while the subscriber sleeps.
    const o = await publishLoop(20_000, 1000, 1, 3);
    assert.equal(o.sent, 20_000);
    assert.ok(o.dropped > 0, JSON.stringify(o));
    assert.equal(o.received + o.dropped, o.sent, JSON.stringify(o));
    assert.ok(o.inOrder);
  },
});
