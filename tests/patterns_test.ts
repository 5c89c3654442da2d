// The socket family as Lua scripts use it: ROUTER servers, Lua clients, subscribers,
// and workers scaling out behind a standard libzmq broker.
import assert from "node:assert/strict";
import {
  freePort,
  LomqProcess,
  ROOT,
  runPython,
  spawnPython,
  startServer,
  waitForPort,
} from "./helpers/lomq.ts";
import { pythonForInterop, skipInterop } from "./helpers/python.ts";

const FIXTURES = `${ROOT}tests/fixtures`;
const python = (await pythonForInterop()) ?? "python3";

function kill(child: Deno.ChildProcess): void {
  try {
    child.kill("SIGKILL");
  } catch {
    // already gone
  }
}

Deno.test({
  name: "ROUTER process() serves REQ clients and pipelining DEALER clients, replies matched",
  ignore: skipInterop,
  async fn() {
    const { lomq, uri } = await startServer(`${FIXTURES}/router_server.lua`);
    try {
      const stdout = await runPython(
        python,
        `
import zmq, msgpack, json
ctx = zmq.Context()
out = {}
req = ctx.socket(zmq.REQ); req.setsockopt(zmq.LINGER, 0); req.setsockopt(zmq.RCVTIMEO, 5000)
req.connect(${JSON.stringify(uri)})
req.send(msgpack.packb(["echo", "req", 1]))
status, payload = req.recv_multipart()
out["req"] = [status.decode(), msgpack.unpackb(payload)]
dealers = []
for d in range(3):
    s = ctx.socket(zmq.DEALER); s.setsockopt(zmq.LINGER, 0); s.setsockopt(zmq.RCVTIMEO, 5000)
    s.connect(${JSON.stringify(uri)})
    dealers.append(s)
for i in range(200):
    for d, s in enumerate(dealers):
        s.send_multipart([b"", msgpack.packb(["echo", d, i])])
ok = 0
for d, s in enumerate(dealers):
    for i in range(200):
        empty, status, payload = s.recv_multipart()
        if empty == b"" and status == b"OK" and msgpack.unpackb(payload) == [d, i]:
            ok += 1
out["dealer_ok"] = ok
print(json.dumps(out))
`,
      );
      assert.deepEqual(JSON.parse(stdout), { req: ["OK", ["req", 1]], dealer_ok: 600 });
    } finally {
      await lomq.stop();
    }
  },
});

Deno.test({
  name: "a Lua script calls another over REQ and DEALER: exact results, remote errors, timeouts",
  async fn() {
    const { lomq: server, uri } = await startServer(`${FIXTURES}/server.lua`);
    try {
      const client = new LomqProcess([
        `${FIXTURES}/lua_client.lua`,
        uri,
        `tcp://127.0.0.1:${freePort()}`,
      ]);
      const out = await client.finish(20000);
      assert.equal(out.code, 0, out.stderr);
      const lines = out.stdout.trim().split("\n");
      assert.equal(lines[0], "integer:3");
      assert.equal(lines[1], "float:3.0");
      assert.equal(lines[2], "integer:9223372036854775807");
      assert.equal(lines[3], "integer:3 float:2.5 boolean:true");
      assert.match(lines[4], /^boolean:false string:.*server\.lua:12: boom$/);
      assert.equal(lines[5], "boolean:false string:function 'nope' not found");
      assert.equal(lines[6], "integer:42");
      assert.match(
        lines[7],
        /^boolean:false string:call 'add' timed out after 200 ms boolean:true$/,
      );
    } finally {
      await server.stop();
    }
  },
});

Deno.test({
  name: "a Lua SUB gets only its prefix from a pyzmq PUB; a Lua PULL gets a pyzmq PUSH",
  ignore: skipInterop,
  async fn() {
    const pubPort = freePort();
    const pullPort = freePort();
    const publisher = spawnPython(
      python,
      `
import zmq, msgpack, time
ctx = zmq.Context()
pub = ctx.socket(zmq.PUB); pub.setsockopt(zmq.LINGER, 0)
pub.bind("tcp://127.0.0.1:${pubPort}")
push = ctx.socket(zmq.PUSH); push.setsockopt(zmq.LINGER, 0)
push.connect("tcp://127.0.0.1:${pullPort}")
push.send_multipart([b"job", msgpack.packb({"n": 7})])
deadline = time.time() + 15
i = 0
while time.time() < deadline:
    pub.send_multipart([b"b.other", msgpack.packb(i)])
    pub.send_multipart([b"a.price", msgpack.packb(100.0 + i)])
    i += 1
    time.sleep(0.02)
`,
    );
    const lomq = new LomqProcess([
      `${FIXTURES}/lua_sub.lua`,
      `tcp://127.0.0.1:${pubPort}`,
      "a.",
      `tcp://127.0.0.1:${pullPort}`,
    ]);
    try {
      const out = await lomq.finish(20000);
      assert.equal(out.code, 0, out.stderr);
      const lines = out.stdout.trim().split("\n");
      assert.equal(lines[0], "ready");
      for (const line of lines.slice(1, 4)) assert.match(line, /^a\.price\tfloat\t1\d\d\.0$/);
      assert.equal(lines[4], "pull\tjob\tinteger\t7");
    } finally {
      kill(publisher.child);
      await publisher.output;
      lomq.kill("SIGKILL");
    }
  },
});

Deno.test({
  name: "two lomq REP workers behind a pyzmq ROUTER/DEALER proxy share 1000 calls",
  ignore: skipInterop,
  async fn() {
    const front = freePort();
    const back = freePort();
    const broker = spawnPython(
      python,
      `
import zmq
ctx = zmq.Context()
f = ctx.socket(zmq.ROUTER); f.bind("tcp://127.0.0.1:${front}")
b = ctx.socket(zmq.DEALER); b.bind("tcp://127.0.0.1:${back}")
zmq.proxy(f, b)
`,
    );
    const workers = ["w1", "w2"].map((name) =>
      new LomqProcess([`${FIXTURES}/worker.lua`, `tcp://127.0.0.1:${back}`, name])
    );
    try {
      await waitForPort(front);
      const stdout = await runPython(
        python,
        `
import zmq, msgpack, json, threading, time
from rpc_client import RPCClient
counts = {}
lock = threading.Lock()
# Wait until both workers are connected: calls alternate once both are there.
probe = RPCClient("tcp://127.0.0.1:${front}", timeout=5000)
seen = set()
for _ in range(200):
    seen.add(probe.call("whoami"))
    if len(seen) == 2:
        break
    time.sleep(0.02)
probe.close()
def client(n):
    with RPCClient("tcp://127.0.0.1:${front}", timeout=5000) as rpc:
        for i in range(250):
            who = rpc.call("whoami")
            assert rpc.call("add", n, i) == n + i
            with lock:
                counts[who] = counts.get(who, 0) + 1
threads = [threading.Thread(target=client, args=(n,)) for n in range(4)]
[t.start() for t in threads]
[t.join(60) for t in threads]
print(json.dumps(counts))
`,
        90000,
      );
      const counts = JSON.parse(stdout) as Record<string, number>;
      assert.equal((counts.w1 ?? 0) + (counts.w2 ?? 0), 1000);
      assert.ok(counts.w1 > 100 && counts.w2 > 100, `load not shared: ${stdout}`);
    } finally {
      for (const worker of workers) await worker.stop();
      kill(broker.child);
      await broker.output;
    }
  },
});

Deno.test({
  name: "one socket binds tcp and ipc endpoints; options are checked by name",
  ignore: skipInterop || Deno.build.os === "windows",
  async fn() {
    const dir = await Deno.makeTempDir();
    const ipc = `ipc://${dir}/lomq.sock`;
    const { lomq, uri } = await startServer(`${FIXTURES}/multi.lua`, [ipc]);
    try {
      const stdout = await runPython(
        python,
        `
import json
from rpc_client import RPCClient
out = []
for uri in [${JSON.stringify(uri)}, ${JSON.stringify(ipc)}]:
    with RPCClient(uri, timeout=5000) as rpc:
        out.append(rpc.call("add", 20, 22))
print(json.dumps(out))
`,
      );
      assert.deepEqual(JSON.parse(stdout), [42, 42]);
    } finally {
      lomq.kill("SIGTERM");
      const out = await lomq.finish();
      await Deno.remove(dir, { recursive: true });
      assert.match(out.stderr, /bad option: unknown socket option 'bogus' \(known: hwm,/);
      assert.match(out.stderr, /also on ipc:\/\//);
    }
  },
});

Deno.test({
  name: "a Lua PUSH waits at its high-water mark instead of dropping: all 200 arrive in order",
  ignore: skipInterop,
  async fn() {
    const port = freePort();
    const lomq = new LomqProcess([`${FIXTURES}/pusher.lua`, `tcp://127.0.0.1:${port}`, "200"]);
    try {
      // The PULL binds only after a while: lomq's queue fills to its HWM of 5 and waits.
      const stdout = await runPython(
        python,
        `
import zmq, msgpack, json, time
time.sleep(0.5)
ctx = zmq.Context()
pull = ctx.socket(zmq.PULL); pull.setsockopt(zmq.LINGER, 0); pull.setsockopt(zmq.RCVHWM, 5)
pull.bind("tcp://127.0.0.1:${port}")
got = []
while len(got) < 200 and pull.poll(5000):
    topic, payload = pull.recv_multipart()
    got.append(msgpack.unpackb(payload))
    time.sleep(0.001)
print(json.dumps(got))
`,
      );
      assert.deepEqual(JSON.parse(stdout), [...Array(200).keys()].map((i) => i + 1));
      const out = await lomq.finish(10000);
      assert.equal(out.code, 0, out.stderr);
      assert.equal(out.stdout, "failed\t0\n");
    } finally {
      lomq.kill("SIGKILL");
    }
  },
});
