// clients/python/lomq_client.py (pyzmq + msgpack) against lomq as a real process.
import assert from "node:assert/strict";
import { ROOT, runPython, startServe } from "./helpers/lomq.ts";
import { pythonForInterop, skipInterop } from "./helpers/python.ts";

const python = (await pythonForInterop()) ?? "python3";

/** Runs Python with lomq_client importable; `print(json.dumps(out))` ends the script. */
async function runClient(body: string): Promise<unknown> {
  const stdout = await runPython(
    python,
    `
import sys, json, time
sys.path.insert(0, ${JSON.stringify(`${ROOT}clients/python`)})
from lomq_client import RPCClient, RPCRuntimeError, RPCTimeoutError, Subscriber
out = []
${body}
print(json.dumps(out))
`,
  );
  return JSON.parse(stdout);
}

Deno.test({
  name:
    "python RPCClient: the original's API, results, and RPCRuntimeError with the server's message",
  ignore: skipInterop,
  async fn() {
    const { server, rpc } = await startServe();
    try {
      const out = await runClient(`
with RPCClient(${JSON.stringify(rpc)}, timeout=5000) as rpc:
    out.append(rpc.call("add", 1, 2))
    out.append(repr(rpc.call("echo", 100.0, b"\\xff\\x00", None, [1, {"a": 2}])))
    out.append(rpc.call("maxint"))
    try:
        rpc.call("fail", "it broke")
    except RPCRuntimeError as e:
        out.append("ERROR " + e.args[0])
    try:
        rpc.call("nope")
    except RPCRuntimeError as e:
        out.append("ERROR " + e.args[0])
    out.append(rpc.call("add", 2, 2, timeout=1000))
`);
      assert.deepEqual(out, [
        3,
        "[100.0, b'\\xff\\x00', None, [1, {'a': 2}]]",
        9223372036854775807,
        "ERROR it broke",
        "ERROR function 'nope' not found",
        4,
      ]);
    } finally {
      await server.stop();
    }
  },
});

Deno.test({
  name:
    "python RPCClient recovers after a timeout (the original's client is stuck) and drops the late reply",
  ignore: skipInterop,
  async fn() {
    const { server, rpc } = await startServe();
    try {
      const out = await runClient(`
sys.path.insert(0, ${JSON.stringify(`${ROOT}tests/helpers`)})
import rpc_client as seed
uri = ${JSON.stringify(rpc)}

# The original client: after one timeout its REQ socket refuses to send.
original = seed.RPCClient(uri, timeout=100)
try:
    original.call("slow", 400, "late")
except seed.RPCTimeoutError:
    out.append("original timed out")
try:
    original.call("add", 1, 2)
    out.append("original recovered")
except Exception as e:
    out.append("original stuck: " + type(e).__name__)
original.close()

# lomq_client: the same sequence works, and the reply to slow() is not taken for add()'s.
with RPCClient(uri, timeout=100) as client:
    started = time.monotonic()
    try:
        client.call("slow", 400, "late")
    except RPCTimeoutError as e:
        out.append("timed out: " + str(e))
    out.append(client.call("add", 1, 2, timeout=5000))
    out.append(client.call("echo", "next", timeout=5000))
    for i in range(3):
        try:
            client.call("slow", 150, i, timeout=20)
        except RPCTimeoutError:
            out.append("timeout %d" % i)
    out.append(client.call("add", 20, 22, timeout=5000))
`);
      assert.deepEqual(out, [
        "original timed out",
        "original stuck: ZMQError",
        `timed out: no reply to 'slow' from ${rpc} within 100 ms`,
        3,
        "next",
        "timeout 0",
        "timeout 1",
        "timeout 2",
        42,
      ]);
    } finally {
      await server.stop();
    }
  },
});

Deno.test({
  name: "python Subscriber receives (topic, value) with prefix filtering; recv(timeout) gives None",
  ignore: skipInterop,
  async fn() {
    const { server, rpc, pub } = await startServe();
    try {
      const out = await runClient(`
with RPCClient(${JSON.stringify(rpc)}, timeout=5000) as client, \\
        Subscriber(${JSON.stringify(pub)}, ["q."]) as sub:
    # The subscription travels asynchronously: publish markers until one arrives.
    for attempt in range(200):
        client.call("announce", "q.ready", attempt)
        if sub.recv(50) is not None:
            break
    else:
        raise SystemExit("no publication arrived")
    while sub.recv(100) is not None:
        pass
    client.call("announce", "other", 1)
    client.call("announce", "q.price", {"bid": 1.5, "size": 2**62})
    client.call("announce", "q.end", None)
    messages = iter(sub)
    out.append(list(next(messages)))
    out.append(list(next(messages)))
    out.append(sub.recv(100))
`);
      assert.deepEqual(out, [["q.price", { bid: 1.5, size: 2 ** 62 }], ["q.end", null], null]);
    } finally {
      await server.stop();
    }
  },
});
