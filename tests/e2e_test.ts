// lomq as a real process, called by the original's Python client over real libzmq.
import assert from "node:assert/strict";
import {
  freePort,
  LomqProcess,
  ROOT,
  runPython,
  startServer,
  waitForPort,
} from "./helpers/lomq.ts";
import { pythonForInterop, skipInterop } from "./helpers/python.ts";

const SERVER = `${ROOT}tests/fixtures/server.lua`;
const python = (await pythonForInterop()) ?? "python3";

/** Python prelude: the seed client, a `call` that returns repr() of the result or error. */
function client(uri: string, body: string): string {
  return `
import sys, zmq, msgpack, json
from rpc_client import RPCClient
from interop import described
rpc = RPCClient(${JSON.stringify(uri)}, timeout=5000)
def call(*a):
    return described(rpc, *a)
out = []
${body}
print(json.dumps(out))
rpc.close()
`;
}

async function pyCalls(uri: string, body: string): Promise<string[]> {
  return JSON.parse(await runPython(python, client(uri, body)));
}

Deno.test({
  name: "the original's Python client calls a script: results keep their exact types",
  ignore: skipInterop,
  async fn() {
    const { lomq, uri } = await startServer(SERVER);
    try {
      const out = await pyCalls(
        uri,
        `
out.append(call("add", 1, 2))
out.append(call("add", 1.5, 2))
out.append(call("echo", 100.0))
out.append(call("float3"))
out.append(call("maxint"))
out.append(call("echo", 9223372036854775807, -9223372036854775808))
out.append(call("binary"))
out.append(call("echo", b"\\x00\\x01\\xff"))
out.append(call("keys"))
out.append(call("empty"))
out.append(call("empty_array"))
out.append(call("forced_map"))
out.append(call("multi"))
out.append(call("none"))
out.append(call("echo", "привет", None, True, [1, [2, {"a": 3}]]))
out.append(call("types", 1, 1.0, "s", b"b", True, None, [], {}))
out.append(call("strlen", "a\\x00b"))
out.append(call("give_function"))
out.append(call("helper_value"))
out.append(call("echo", {1: "int", "1": "str"}))
`,
      );
      assert.deepEqual(out, [
        "3",
        "3.5",
        "100.0",
        "3.0",
        "[9223372036854775807, -9223372036854775808]",
        "[9223372036854775807, -9223372036854775808]",
        "b'\\xff\\x00\\xfe'",
        "b'\\x00\\x01\\xff'",
        "{1: 'int', '1': 'str'}",
        "{}",
        "[]",
        "{1: 10, 2: 20}",
        "[1, 2, 3]",
        "None",
        "['привет', None, True, [1, [2, {'a': 3}]]]",
        "['integer', 'float', 'string', 'string', 'boolean', 'nil', 'table', 'table']",
        "3",
        "None",
        "'from the helper module'",
        "{1: 'int', '1': 'str'}",
      ]);
    } finally {
      await lomq.stop();
    }
  },
});

Deno.test({
  name: "errors are ERROR replies with reasons; standard library globals are not callable",
  ignore: skipInterop,
  async fn() {
    const { lomq, uri } = await startServer(SERVER);
    try {
      const out = await pyCalls(
        uri,
        `
for name in ["nope", "print", "dofile", "load", "loadfile", "require", "collectgarbage", "sleep", "message", "os"]:
    out.append(call(name))
out.append(call("fail"))
out.append(call("fail_table"))
out.append(call("cyclic"))
out.append(call("deep"))
out.append(call("echo", 18446744073709551615))
out.append(call("echo", msgpack.ExtType(5, b"x"), 1))
out.append(call("busy_wait"))
out.append(call("add", 1, 2))
`,
      );
      const [nope, print, dofile, load, loadfile, require, gc, sleep, message, os] = out;
      assert.equal(nope, "ERROR \"function 'nope' not found\"");
      for (
        const [name, line] of Object.entries({
          print,
          dofile,
          load,
          loadfile,
          require,
          gc,
          sleep,
          message,
          os,
        })
      ) {
        assert.match(line, /^ERROR "function '\w+' not found"$/, `${name}: ${line}`);
      }
      const rest = out.slice(10);
      assert.match(rest[0], /^ERROR '.*server\.lua:12: boom'$/);
      assert.equal(rest[1], "ERROR {'code': 42}");
      assert.match(rest[2], /^ERROR ['"].*cycle.*['"]$/);
      assert.match(rest[3], /^ERROR ['"].*deeper than 100.*['"]$/);
      assert.match(rest[4], /^ERROR ['"].*above the largest Lua integer.*['"]$/);
      assert.match(rest[5], /^ERROR ['"].*ext type 5.*['"]$/);
      assert.match(rest[6], /^ERROR ['"].*process\(\) cannot be called from an RPC handler.*['"]$/);
      assert.equal(rest[7], "3");
    } finally {
      await lomq.stop();
    }
  },
});

Deno.test({
  name: "malformed requests sent as raw bytes get ERROR and the server keeps serving",
  ignore: skipInterop,
  async fn() {
    const { lomq, uri } = await startServer(SERVER);
    try {
      const stdout = await runPython(
        python,
        `
import zmq, msgpack, json
from interop import req_socket
s = req_socket(zmq.Context(), ${JSON.stringify(uri)}, timeout_ms=5000)
out = []
for parts in [[b"\\xc1"], [b""], [msgpack.packb(5)], [msgpack.packb([])], [msgpack.packb([1, 2])],
              [b"\\x92\\xa3ad"], [msgpack.packb(["add", 1]) + b"junk"], [b"a", b"b"],
              [msgpack.packb(["add", 1, 2])]]:
    s.send_multipart(parts)
    status, payload = s.recv_multipart()
    out.append([status.decode(), msgpack.unpackb(payload, raw=False)])
print(json.dumps(out))
`,
      );
      const out = JSON.parse(stdout) as [string, unknown][];
      const errors = out.slice(0, 8);
      for (const [status] of errors) assert.equal(status, "ERROR");
      const messages = errors.map(([, message]) => String(message));
      assert.match(messages[0], /0xc1|expected an array/);
      assert.match(messages[1], /empty request/);
      assert.match(messages[2], /integer, expected an array/);
      assert.match(messages[3], /empty request/);
      assert.match(messages[4], /first element is a integer, expected the method name/);
      assert.match(messages[5], /truncated/);
      assert.match(messages[6], /unexpected bytes/);
      assert.match(messages[7], /one frame/);
      assert.deepEqual(out[8], ["OK", 3]);
    } finally {
      await lomq.stop();
    }
  },
});

// Twice: with the direct reads the pinned Deno allows, and with Deno.Conn.read (src/zmtp/io.ts).
for (const portable of [false, true]) {
  Deno.test({
    name: `8 concurrent REQ clients each get their own answers, nothing lost${
      portable ? " (LOMQ_PORTABLE_IO=1)" : ""
    }`,
    ignore: skipInterop,
    async fn() {
      const env = portable ? { LOMQ_PORTABLE_IO: "1" } : undefined;
      const { lomq, uri } = await startServer(SERVER, [], env);
      try {
        const stdout = await runPython(
          python,
          `
import threading, json
from rpc_client import RPCClient
results = {}
def worker(n):
    with RPCClient(${JSON.stringify(uri)}, timeout=10000) as rpc:
        ok = 0
        for i in range(300):
            if rpc.call("echo", n, i, "c%d" % n) == [n, i, "c%d" % n]:
                ok += 1
        results[n] = ok
threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
[t.start() for t in threads]
[t.join(60) for t in threads]
print(json.dumps(results))
`,
          90000,
        );
        const results = JSON.parse(stdout);
        assert.deepEqual(
          results,
          Object.fromEntries([...Array(8).keys()].map((n) => [String(n), 300])),
        );
      } finally {
        await lomq.stop();
      }
    },
  });
}

Deno.test({
  name: "PUB reaches a pyzmq SUB with prefix filtering, in order",
  ignore: skipInterop,
  async fn() {
    const pubPort = freePort();
    const pubUri = `tcp://127.0.0.1:${pubPort}`;
    const { lomq, uri } = await startServer(SERVER, [pubUri]);
    try {
      const stdout = await runPython(
        python,
        `
import zmq, msgpack, json, time
from rpc_client import RPCClient
ctx = zmq.Context()
sub = ctx.socket(zmq.SUB)
sub.setsockopt(zmq.LINGER, 0)
sub.setsockopt(zmq.SUBSCRIBE, b"a.")
sub.connect(${JSON.stringify(pubUri)})
rpc = RPCClient(${JSON.stringify(uri)}, timeout=5000)
# The subscription travels asynchronously: publish a marker until one arrives.
for attempt in range(100):
    rpc.call("publish", "a.ready", attempt)
    if sub.poll(50):
        sub.recv_multipart()
        break
while sub.poll(100):
    sub.recv_multipart()
for i in range(20):
    rpc.call("publish", "b.skip", i)
    rpc.call("publish", "a.keep", i)
rpc.call("publish", "a.float", 100.0)
got = []
while sub.poll(500):
    topic, payload = sub.recv_multipart()
    got.append([topic.decode(), repr(msgpack.unpackb(payload))])
print(json.dumps(got))
rpc.close()
`,
      );
      const got = JSON.parse(stdout) as [string, string][];
      assert.deepEqual(got, [
        ...[...Array(20).keys()].map((i) => ["a.keep", String(i)]),
        ["a.float", "100.0"],
      ]);
    } finally {
      await lomq.stop();
    }
  },
});

Deno.test({
  name: "a pyzmq REQ with heartbeats stays connected while idle",
  ignore: skipInterop,
  async fn() {
    const { lomq, uri } = await startServer(SERVER);
    try {
      const stdout = await runPython(
        python,
        `
import zmq, msgpack, json, time
from zmq.utils.monitor import recv_monitor_message
ctx = zmq.Context()
s = ctx.socket(zmq.REQ)
s.setsockopt(zmq.HEARTBEAT_IVL, 100)
s.setsockopt(zmq.HEARTBEAT_TIMEOUT, 300)
s.setsockopt(zmq.RCVTIMEO, 5000)
s.setsockopt(zmq.LINGER, 0)
mon = s.get_monitor_socket()
s.connect(${JSON.stringify(uri)})
s.send(msgpack.packb(["add", 1, 2]))
first = s.recv_multipart()
time.sleep(1.5)
s.send(msgpack.packb(["add", 2, 3]))
second = s.recv_multipart()
events = []
while mon.poll(100):
    events.append(recv_monitor_message(mon)["event"])
print(json.dumps({"first": msgpack.unpackb(first[1]), "second": msgpack.unpackb(second[1]),
                  "disconnects": sum(1 for e in events if e == zmq.EVENT_DISCONNECTED),
                  "connects": sum(1 for e in events if e == zmq.EVENT_CONNECTED)}))
`,
      );
      assert.deepEqual(JSON.parse(stdout), { first: 3, second: 5, disconnects: 0, connects: 1 });
    } finally {
      await lomq.stop();
    }
  },
});

Deno.test("LuaOverMQ.encode and decode: msgpack bytes out, the same values back", async () => {
  const lomq = new LomqProcess([`${ROOT}tests/fixtures/encode.lua`]);
  const out = await lomq.finish(20000);
  assert.equal(out.code, 0, out.stderr);
  // The hex is what Python's msgpack.packb([1, 2.5, "x", {"k": True}]) gives.
  assert.deepEqual(out.stdout.trim().split("\n"), [
    "9401cb4004000000000000a17881a16bc3",
    "1\t2.5\tx\ttrue\tinteger",
    "5003\ttrue",
  ]);
});

Deno.test("process(timeout) waits its timeout and returns 0 when nobody calls", async () => {
  const lomq = new LomqProcess([
    `${ROOT}tests/fixtures/timeouts.lua`,
    `tcp://127.0.0.1:${freePort()}`,
  ]);
  const out = await lomq.finish(20000);
  assert.equal(out.code, 0, out.stderr);
  const [rc1, waited1, rc0, waited0, rc2, waited2, rc3, waited3] = out.stdout.trim().split(" ")
    .map(Number);
  assert.deepEqual([rc1, rc0, rc2, rc3], [0, 0, 0, 0]);
  assert.ok(waited1 >= 0.195 && waited1 < 5, `process(200) took ${waited1} s`);
  assert.ok(waited0 < 0.1, `process(0) took ${waited0} s`);
  assert.ok(waited2 >= 0.095 && waited2 < 5, `process(100) took ${waited2} s`);
  assert.ok(waited3 >= 0.295 && waited3 < 5, `process(300) took ${waited3} s`);
});

Deno.test("Ctrl+C calls OnStop, wakes process() and exits 0 within 2 s", async () => {
  const port = freePort();
  const lomq = new LomqProcess([SERVER, `tcp://127.0.0.1:${port}`]);
  try {
    await waitForPort(port);
    const started = Date.now();
    lomq.kill("SIGINT");
    const out = await lomq.finish(10000);
    const elapsed = Date.now() - started;
    assert.equal(out.code, 0, out.stderr);
    assert.match(out.stderr, /OnStop called/);
    assert.match(out.stderr, /main returned/);
    assert.ok(elapsed < 2000, `took ${elapsed} ms`);
  } finally {
    lomq.kill("SIGKILL");
  }
});

Deno.test("script failures: missing file and syntax error exit 2, a runtime error exits 1 with a traceback", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const missing = await new LomqProcess([`${dir}/nope.lua`]).finish();
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /cannot read script .*nope\.lua.*no such file/);

    await Deno.writeTextFile(`${dir}/bad.lua`, "local x = 1\nfunction (\n");
    const syntax = await new LomqProcess([`${dir}/bad.lua`]).finish();
    assert.equal(syntax.code, 2);
    assert.match(syntax.stderr, /bad\.lua:2:/);

    await Deno.writeTextFile(
      `${dir}/fail.lua`,
      "local function inner() error('kaput') end\nfunction main() inner() end\n",
    );
    const failing = await new LomqProcess([`${dir}/fail.lua`]).finish();
    assert.equal(failing.code, 1);
    assert.match(failing.stderr, /fail\.lua:1: kaput/);
    assert.match(failing.stderr, /stack traceback:/);
    assert.match(failing.stderr, /in (local |upvalue )?'?inner'?/);

    await Deno.writeTextFile(
      `${dir}/print.lua`,
      "print('a\\0b', 1, 2.5, '\\xff')\nfunction OnInit(p) print(p:match('print%.lua$')) end\nfunction main() sleep(10) print('done') end\n",
    );
    const printed = await new LomqProcess([`${dir}/print.lua`]).finish();
    assert.equal(printed.code, 0, printed.stderr);
    assert.deepEqual(
      [...printed.bytes],
      [
        ...new TextEncoder().encode("a\0b\t1\t2.5\t"),
        0xff,
        10,
        ...new TextEncoder().encode("print.lua\ndone\n"),
      ],
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a bind that fails raises a Lua error naming the address and the reason", async () => {
  const holder = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (holder.addr as Deno.NetAddr).port;
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(
      `${dir}/busy.lua`,
      `local ok, err = pcall(LuaOverMQ.bind, "tcp://127.0.0.1:${port}", LuaOverMQ.REP)\n` +
        `print(ok, err)\n` +
        `local ok2, err2 = pcall(LuaOverMQ.bind, "tcp://127.0.0.1:${port}", 9)\nprint(ok2, err2)\n`,
    );
    const out = await new LomqProcess([`${dir}/busy.lua`]).finish();
    assert.equal(out.code, 0, out.stderr);
    const [first, second] = out.stdout.trim().split("\n");
    assert.match(
      first,
      new RegExp(`^false\\t.*tcp://127\\.0\\.0\\.1:${port}.*address already in use`),
    );
    assert.match(second, /^false\t.*unknown socket type 9/);
  } finally {
    holder.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("socket methods know their socket: another value, a closed socket, a socket made after a close", async () => {
  const dir = await Deno.makeTempDir();
  try {
    // Methods find their socket by the userdata's address: after sockets are closed and
    // collected, new userdata may take their addresses, and must be told apart from them.
    await Deno.writeTextFile(
      `${dir}/identity.lua`,
      `local function try(f, ...) local ok, err = pcall(f, ...) print(ok, err) end
local a = LuaOverMQ.bind("tcp://127.0.0.1:0", LuaOverMQ.REP)
try(a.errno, io.stdout)
try(a.errno, {})
a:close()
try(a.errno, a)
for round = 1, 20 do
  local s = LuaOverMQ.bind("tcp://127.0.0.1:0", LuaOverMQ.PUB)
  s:close()
  s = nil
  collectgarbage()
end
local last = LuaOverMQ.bind("tcp://127.0.0.1:0", LuaOverMQ.PUB)
print(tostring(last):match("PUB"), last:errno(), last:send("t", 1))
try(a.errno, a)
`,
    );
    const out = await new LomqProcess([`${dir}/identity.lua`]).finish();
    assert.equal(out.code, 0, out.stderr);
    const notSocket =
      "false\texpected a LuaOverMQ socket as the first argument (call methods as sock:method(...))";
    const closed = "false\tthis LuaOverMQ socket is closed";
    assert.deepEqual(out.stdout.trim().split("\n"), [
      notSocket,
      notSocket,
      closed,
      "PUB\t0\t0",
      closed,
    ]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a signal ends a script without OnStop with exit 0; OnStop's deadline forces the exit", async () => {
  const script = `${ROOT}tests/fixtures/stopper.lua`;
  const noStopPort = freePort();
  const slowPort = freePort();
  const noStop = new LomqProcess([script, "no-onstop", `tcp://127.0.0.1:${noStopPort}`]);
  const slow = new LomqProcess([script, "slow-stop", `tcp://127.0.0.1:${slowPort}`]);
  try {
    await Promise.all([waitForPort(noStopPort), waitForPort(slowPort)]);
    noStop.kill("SIGTERM");
    const started = Date.now();
    slow.kill("SIGTERM");
    const [a, b] = await Promise.all([noStop.finish(10000), slow.finish(10000)]);
    const elapsed = Date.now() - started;
    assert.equal(a.code, 0, a.stderr);
    assert.equal(b.code, 143, b.stderr);
    assert.match(b.stderr, /giving main 300 ms/);
    assert.match(b.stderr, /did not return within 300 ms of OnStop/);
    assert.ok(elapsed >= 250 && elapsed < 3000, `forced after ${elapsed} ms`);
  } finally {
    noStop.kill("SIGKILL");
    slow.kill("SIGKILL");
  }
});

Deno.test("a second Ctrl+C exits at once even while OnStop's deadline runs", async () => {
  const port = freePort();
  const lomq = new LomqProcess([
    `${ROOT}tests/fixtures/stopper.lua`,
    "long-stop",
    `tcp://127.0.0.1:${port}`,
  ]);
  try {
    await waitForPort(port);
    lomq.kill("SIGINT");
    // Later than the window in which a second signal counts as the first delivered twice.
    await new Promise((r) => setTimeout(r, 700));
    const sent = Date.now();
    lomq.kill("SIGINT");
    const out = await lomq.finish(10000);
    assert.equal(out.code, 130, out.stderr);
    assert.match(out.stderr, /second SIGINT: exiting now/);
    assert.doesNotMatch(out.stderr, /did not return within/);
    assert.ok(Date.now() - sent < 2000, "the second signal ends the process at once");
  } finally {
    lomq.kill("SIGKILL");
  }
});

Deno.test("a Ctrl+C delivered twice within 500 ms (terminal and task runner) is one signal", async () => {
  const port = freePort();
  const lomq = new LomqProcess([
    `${ROOT}tests/fixtures/stopper.lua`,
    "slow-stop",
    `tcp://127.0.0.1:${port}`,
  ]);
  try {
    await waitForPort(port);
    lomq.kill("SIGINT");
    await new Promise((r) => setTimeout(r, 100));
    lomq.kill("SIGINT");
    const out = await lomq.finish(10000);
    // OnStop's own deadline (300 ms) forces the exit, not a "second" signal.
    assert.equal(out.code, 130, out.stderr);
    assert.doesNotMatch(out.stderr, /second SIGINT/);
    assert.match(out.stderr, /did not return within 300 ms of OnStop/);
  } finally {
    lomq.kill("SIGKILL");
  }
});

Deno.test({
  name: "fuzz: 2000 random and mutated requests each get a reply, and the server keeps serving",
  ignore: skipInterop,
  async fn() {
    const { lomq, uri } = await startServer(SERVER);
    try {
      const stdout = await runPython(
        python,
        `
import zmq, msgpack, json, random
from interop import req_socket
random.seed(20261125)
s = req_socket(zmq.Context(), ${JSON.stringify(uri)}, timeout_ms=5000)
valid = [msgpack.packb(x) for x in [["add", 1, 2], ["echo", [1, {"a": b"x"}], 2.5], ["types", None, True], ["keys"]]]
statuses = {}
for i in range(2000):
    kind = i % 3
    if kind == 0:
        body = bytes(random.getrandbits(8) for _ in range(random.randint(0, 40)))
    else:
        body = bytearray(random.choice(valid))
        for _ in range(random.randint(1, 4)):
            body[random.randrange(len(body))] = random.getrandbits(8)
        body = bytes(body[:random.randint(1, len(body))]) if kind == 2 else bytes(body)
    s.send(body)
    status, payload = s.recv_multipart()
    msgpack.unpackb(payload, strict_map_key=False, raw=True)
    statuses[status.decode()] = statuses.get(status.decode(), 0) + 1
s.send(msgpack.packb(["add", 40, 2]))
status, payload = s.recv_multipart()
print(json.dumps({"statuses": statuses, "last": [status.decode(), msgpack.unpackb(payload)]}))
`,
        60000,
      );
      const result = JSON.parse(stdout) as { statuses: Record<string, number>; last: unknown };
      const total = Object.values(result.statuses).reduce((a, b) => a + b, 0);
      assert.equal(total, 2000, stdout);
      assert.deepEqual(Object.keys(result.statuses).sort().filter((k) => k !== "OK"), ["ERROR"]);
      assert.deepEqual(result.last, ["OK", 42]);
    } finally {
      await lomq.stop();
    }
  },
});
