/**
 * `lomq serve --watch`: a saved script, or a module it required, is served on the same
 * connections; a version that does not load is reported and the running one keeps serving.
 *
 * The peer is libzmq (pyzmq): a REQ socket that is never allowed to reconnect, with a socket
 * monitor counting its connects and disconnects, so a dropped connection cannot hide behind
 * a quick reconnect. The server logs connects and disconnects too (LOMQ_LOG=debug).
 */

import assert from "node:assert/strict";
import { Client } from "../mod.ts";
import { createSocket } from "../src/zmtp/mod.ts";
import { freePort, lomqCommand, spawnPiped, waitForPort } from "./helpers/lomq.ts";
import { Lines } from "./helpers/lines.ts";
import { pythonForInterop, skipInterop } from "./helpers/python.ts";

/** A REQ client driven line by line over stdin: `["call", method, ...args]`, `["events"]`. */
const PY_CLIENT = `
import json, sys, zmq, msgpack
from zmq.utils.monitor import recv_monitor_message
ctx = zmq.Context()
req = ctx.socket(zmq.REQ)
req.setsockopt(zmq.RECONNECT_IVL, -1)   # a dropped connection stays dropped
req.setsockopt(zmq.LINGER, 0)
monitor = req.get_monitor_socket(zmq.EVENT_CONNECTED | zmq.EVENT_DISCONNECTED)
req.connect(sys.argv[1])
events = {"connected": 0, "disconnected": 0}
def drain():
    while monitor.poll(0):
        event = recv_monitor_message(monitor)["event"]
        if event == zmq.EVENT_CONNECTED: events["connected"] += 1
        if event == zmq.EVENT_DISCONNECTED: events["disconnected"] += 1
for line in sys.stdin:
    command = json.loads(line)
    if command[0] == "events":
        monitor.poll(200)
        drain()
        print(json.dumps(events), flush=True)
        continue
    req.send(msgpack.packb(command[1:]))
    if not req.poll(5000):
        print(json.dumps({"timeout": True}), flush=True)
        break                              # a REQ socket cannot send again after this
    status, payload = req.recv_multipart()
    value = msgpack.unpackb(payload)
    print(json.dumps({status.decode(): value}), flush=True)
`;

/** The Python peer: one REQ connection for the whole test. */
class PyPeer {
  readonly #child: Deno.ChildProcess;
  readonly #writer: WritableStreamDefaultWriter<Uint8Array>;
  readonly #out: Lines;
  readonly #err: Lines;
  #read = 0;

  constructor(python: string, uri: string) {
    this.#child = new Deno.Command(python, {
      args: ["-c", PY_CLIENT, uri],
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    this.#writer = this.#child.stdin.getWriter();
    this.#out = new Lines(this.#child.stdout);
    this.#err = new Lines(this.#child.stderr);
  }

  async #ask(command: unknown[]): Promise<Record<string, unknown>> {
    await this.#writer.write(new TextEncoder().encode(JSON.stringify(command) + "\n"));
    const index = await this.#out.find(/./, this.#read, 10000).catch((error) => {
      throw new Error(`${error.message}\npython stderr:\n${this.#err.lines.join("\n")}`);
    });
    this.#read = index + 1;
    return JSON.parse(this.#out.lines[index]);
  }

  /** Calls `method`; `{OK: value}` or `{ERROR: message}` (a timeout fails the test). */
  async call(method: string, ...args: unknown[]): Promise<Record<string, unknown>> {
    const reply = await this.#ask(["call", method, ...args]);
    assert.ok(!("timeout" in reply), `no reply to ${method}: the connection is gone`);
    return reply;
  }

  /** Calls `method` until it returns `expected` (bounded); fails with the last answer. */
  async callUntil(expected: unknown, method: string): Promise<void> {
    let last: unknown;
    for (let attempt = 0; attempt < 200; attempt++) {
      last = (await this.call(method)).OK;
      if (last === expected) return;
      await new Promise((r) => setTimeout(r, 50));
    }
    assert.fail(`${method}() still answers ${JSON.stringify(last)}, expected ${expected}`);
  }

  /** Connects and disconnects the REQ socket saw. */
  events(): Promise<Record<string, unknown>> {
    return this.#ask(["events"]);
  }

  async close(): Promise<void> {
    await this.#writer.close().catch(() => {});
    try {
      this.#child.kill("SIGKILL");
    } catch {
      // gone
    }
    await this.#child.status;
    await Promise.all([this.#out.done, this.#err.done]);
  }
}

/** `lomq serve --watch` with stdout and stderr read as they come. */
class Watching {
  readonly child: Deno.ChildProcess;
  readonly stdout: Lines;
  readonly stderr: Lines;

  constructor(args: string[]) {
    const [program, lead] = lomqCommand();
    this.child = spawnPiped(program, [...lead, "serve", "--watch", ...args], {
      env: { LOMQ_LOG: "debug" },
    });
    this.stdout = new Lines(this.child.stdout);
    this.stderr = new Lines(this.child.stderr);
  }

  /** Waits for the exit and the last output; `signal` first, when given. */
  async end(signal?: Deno.Signal): Promise<Deno.CommandStatus> {
    if (signal !== undefined) {
      try {
        this.child.kill(signal);
      } catch {
        // exited
      }
    }
    const status = await this.child.status;
    await Promise.all([this.stdout.done, this.stderr.done]);
    return status;
  }
}

/** Writes a file the way vim does: a new file beside it, renamed over it. */
async function saveByRename(path: string, text: string): Promise<void> {
  await Deno.writeTextFile(`${path}.swp`, text);
  await Deno.rename(`${path}.swp`, path);
}

const APP = (version: string, extra = "") => `
local helper = require("helper")
function version() return "${version}/" .. helper.tag end
-- Waits for the test's go-ahead on the PUB socket at arg[1].
function held()
  local gate = LuaOverMQ.connect(arg[1], LuaOverMQ.SUB)
  gate:subscribe("")
  gate:recv(30000)
  gate:close()
  return "${version}"
end
function OnStop() print("OnStop of ${version}") end
${extra}
`;

Deno.test({
  name:
    "serve --watch: script and module changes are served on the same connection; a broken version keeps the old one",
  ignore: skipInterop,
  async fn() {
    const python = (await pythonForInterop())!;
    const dir = await Deno.makeTempDir({ prefix: "lomq-watch-" });
    const app = `${dir}/app.lua`;
    await Deno.writeTextFile(app, APP("v1"));
    await Deno.writeTextFile(`${dir}/helper.lua`, `return { tag = "a" }\n`);
    const port = freePort();
    const uri = `tcp://127.0.0.1:${port}`;
    const gate = createSocket("PUB");
    await gate.bind("tcp://127.0.0.1:0");
    const server = new Watching([
      app,
      "--rpc",
      uri,
      "--expose",
      "version,held,secret_v2",
      "--",
      gate.endpoints[0],
    ]);
    let peer: PyPeer | undefined;
    let client: Client | undefined;
    try {
      // waitForPort's probe is the first connection the server accepts (see the end).
      await waitForPort(port);
      client = new Client(uri, { timeoutMs: 10000 });
      peer = new PyPeer(python, uri);
      assert.deepEqual(await peer.call("version"), { OK: "v1/a" });
      let seen = await server.stderr.find(/accepted tcp:\/\/127\.0\.0\.1:\d+ on REP/);

      // The script changes: the next calls on the same connection get the new version.
      await Deno.writeTextFile(app, APP("v2", "function secret_v2() return 1 end"));
      await peer.callUntil("v2/a", "version");
      seen = await server.stderr.find(/^lomq serve: reloaded .*app\.lua \(3 functions\)$/, seen);
      // --expose holds for the new version too.
      assert.deepEqual(await peer.call("secret_v2"), { OK: 1 });

      // A module the script required changes.
      await Deno.writeTextFile(`${dir}/helper.lua`, `return { tag = "b" }\n`);
      await peer.callUntil("v2/b", "version");

      // A syntax error: reported with file and line, the running version keeps serving.
      await Deno.writeTextFile(app, "function version(\n  return 1\nend\n");
      seen = await server.stderr.find(/did not load, so the previous version keeps serving/, seen);
      assert.match(server.stderr.lines[seen + 1], /app\.lua:2: .*expected near 'return'/);
      assert.deepEqual(await peer.call("version"), { OK: "v2/b" });

      // An error at the top level, and one in the module: the same.
      await Deno.writeTextFile(app, APP("v3", 'error("top level failed on purpose")'));
      seen = await server.stderr.find(/app\.lua:\d+: top level failed on purpose/, seen);
      assert.deepEqual(await peer.call("version"), { OK: "v2/b" });
      // (the module first: either save alone leaves a version that does not load)
      await Deno.writeTextFile(`${dir}/helper.lua`, `return { tag = = "c" }\n`);
      await Deno.writeTextFile(app, APP("v3"));
      seen = await server.stderr.find(/helper\.lua:1: unexpected symbol near '='/, seen);
      assert.deepEqual(await peer.call("version"), { OK: "v2/b" });

      // A top level that never ends does not hold the server up, and the fix replaces it.
      await Deno.writeTextFile(app, APP("v4", "while true do end"));
      await new Promise((r) => setTimeout(r, 500));
      assert.deepEqual(await peer.call("version"), { OK: "v2/b" });
      await Deno.writeTextFile(`${dir}/helper.lua`, `return { tag = "c" }\n`);
      await saveByRename(app, APP("v5"));
      await peer.callUntil("v5/c", "version");
      assert.deepEqual(await peer.call("secret_v2"), { ERROR: "function 'secret_v2' not found" });

      // A call in flight finishes on the version it started on; the next gets the new one.
      let answered: unknown;
      const inFlight = client.call("held").then((value) => answered = value);
      // held() is running once its SUB socket is connected to the gate.
      for (let attempt = 0; attempt < 400 && gate.peerCount === 0; attempt++) {
        await new Promise((r) => setTimeout(r, 25));
      }
      assert.equal(gate.peerCount, 1, "held() never connected to the gate");
      seen = server.stderr.lines.length;
      await Deno.writeTextFile(app, APP("v6"));
      await server.stderr.find(/reloaded .*app\.lua/, seen);
      assert.equal(answered, undefined, "held() returned before it was let go");
      for (let attempt = 0; attempt < 400 && answered === undefined; attempt++) {
        gate.trySend([new TextEncoder().encode("go"), new Uint8Array([0xc0])]);
        await new Promise((r) => setTimeout(r, 25));
      }
      await inFlight;
      assert.equal(answered, "v5");
      assert.equal(await client.call("version"), "v6/c");
      await peer.callUntil("v6/c", "version");

      assert.deepEqual(await peer.events(), { connected: 1, disconnected: 0 });
      // The first connection the server accepted was waitForPort's probe; none of the
      // others (the peer's, the client's) ended.
      const peers = server.stderr.lines.map((line) => /accepted (tcp:\S+)/.exec(line)?.[1])
        .filter((address) => address !== undefined).slice(1);
      assert.ok(peers.length >= 2, server.stderr.lines.join("\n"));
      const ended = server.stderr.lines.filter((line) =>
        peers.some((address) => line.includes(`disconnected ${address} `))
      );
      assert.deepEqual(ended, [], "the server saw the peers' connections end");
      // Each replaced version got its OnStop; the last one gets it at Ctrl+C.
      const status = await server.end("SIGINT");
      assert.equal(status.code, 0, server.stderr.lines.join("\n"));
      assert.deepEqual(server.stdout.lines, [
        "OnStop of v1",
        "OnStop of v2", // with helper a
        "OnStop of v2", // with helper b
        "OnStop of v5",
        "OnStop of v6",
      ]);
    } finally {
      await client?.close();
      await gate.close(0);
      await peer?.close();
      await server.end("SIGKILL");
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test("serve --watch: --pub is bound once and every version publishes on it; --call-timeout holds", async () => {
  const dir = await Deno.makeTempDir({ prefix: "lomq-watch-" });
  const app = `${dir}/app.lua`;
  const publishing = (version: string) => `function tell() return publish("v", "${version}") end\n`;
  await Deno.writeTextFile(app, publishing("one"));
  const port = freePort();
  const uri = `tcp://127.0.0.1:${port}`;
  const pub = `tcp://127.0.0.1:${freePort()}`;
  const server = new Watching([app, "--rpc", uri, "--pub", pub, "--call-timeout", "300"]);
  const client = new Client(uri, { timeoutMs: 10000 });
  const { Subscriber } = await import("../mod.ts");
  const sub = new Subscriber(pub, ["v"]);
  try {
    await waitForPort(port);
    const heard = async (expected: string) => {
      for (let attempt = 0; attempt < 200; attempt++) {
        assert.equal(await client.call("tell"), 0);
        // Earlier rounds' messages may still be queued: read them all.
        for (let message = await sub.next(50); message; message = await sub.next(0)) {
          if (message.value === expected) return;
        }
        await new Promise((r) => setTimeout(r, 50));
      }
      assert.fail(`never heard ${expected}:\n${server.stderr.lines.join("\n")}`);
    };
    await heard("one");
    await Deno.writeTextFile(app, publishing("two"));
    await server.stderr.find(/reloaded .*app\.lua \(1 function\)/);
    await heard("two");
    await Deno.writeTextFile(app, publishing("three") + "function spin() while true do end end\n");
    await heard("three");
    await assert.rejects(client.call("spin"), /call 'spin' exceeded 300 ms/);
    // A version that defines its own publish does not load; the previous one goes on.
    await Deno.writeTextFile(app, "function publish() end\n");
    await server.stderr.find(/defines its own 'publish'/);
    await heard("three");
    // A burst of saves: the server keeps answering, and ends up serving the last one.
    for (let i = 0; i < 30; i++) {
      await Deno.writeTextFile(app, publishing(`burst ${i}`));
      assert.equal(await client.call("tell"), 0);
      await new Promise((r) => setTimeout(r, 10));
    }
    await heard("burst 29");
  } finally {
    await sub.close();
    await client.close();
    await server.end("SIGKILL");
    await Deno.remove(dir, { recursive: true });
  }
});
