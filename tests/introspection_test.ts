// Introspection: the reserved method lomq.functions on REP and ROUTER servers (lomq serve
// and scripts' rpc:process()), read by pyzmq, the TypeScript client and `lomq ls`; hostile
// scripts (a shadowing `lomq`, a replaced debug library, odd names, many globals) and
// servers without introspection.
import assert from "node:assert/strict";
import { Client, type FunctionInfo, RpcError } from "../mod.ts";
import { FUNCTIONS_PAGE_SIZE, type FunctionsPage } from "../src/rpc/introspection.ts";
import {
  freePort,
  LomqProcess,
  ROOT,
  runPython,
  spawnPython,
  startLomq,
  startServer,
  waitForPort,
} from "./helpers/lomq.ts";
import { pythonForInterop, skipInterop } from "./helpers/python.ts";

const python = (await pythonForInterop()) ?? "python3";
const INTROSPECTION = `${ROOT}tests/fixtures/introspection.lua`;
const encoder = new TextEncoder();

/** `lomq serve SCRIPT` on a free port, with `extra` arguments (options, `-- args`). */
async function serve(script: string, extra: string[] = []): Promise<[LomqProcess, string]> {
  const port = freePort();
  const uri = `tcp://127.0.0.1:${port}`;
  return [await startLomq(["serve", script, "--rpc", uri, ...extra], port), uri];
}

/** What introspection.lua offers, as a client sees it, sorted by the names' bytes. */
const EXPECTED: FunctionInfo[] = [
  { name: "add", params: ["a", "b"], vararg: false },
  {
    name: new Uint8Array([...encoder.encode("bad"), 0xff, ...encoder.encode("name")]),
    params: ["y"],
    vararg: false,
  },
  { name: "evil\x1b[31mred\n", params: ["x"], vararg: false },
  { name: "log", params: ["fmt"], vararg: true },
  { name: "none", params: [], vararg: false },
  { name: "y".repeat(256), params: [], vararg: false },
  { name: "\u202ertl", params: [], vararg: false },
];

/** Names that introspection.lua holds but clients cannot call. */
const NOT_CALLABLE = [
  "hidden",
  "helpers",
  "getenv",
  "lomq",
  "stop",
  "OnInit",
  "OnStop",
  "main",
  "x".repeat(257),
];

function normalized(list: FunctionInfo[]): FunctionInfo[] {
  // msgpackr gives bin as a Buffer in Deno: compare plain bytes.
  return list.map((f) => ({
    ...f,
    name: typeof f.name === "string" ? f.name : new Uint8Array(f.name),
  }));
}

Deno.test({
  name:
    "pyzmq: the original's Python client (REQ, msgpack) calling lomq.functions gets the sorted list of what is callable, shadowing and hijacking ignored",
  ignore: skipInterop,
  async fn() {
    const [server, uri] = await serve(INTROSPECTION);
    try {
      const out = await runPython(
        python,
        `
import json
from rpc_client import RPCClient, RPCRuntimeError
rpc = RPCClient(${JSON.stringify(uri)}, timeout=10000)
def call(*request):
    try:
        return "OK", rpc.call(*request)
    except RPCRuntimeError as error:
        return "ERROR", error.args[0]
def plain(value):
    if isinstance(value, bytes): return {"bin": value.hex()}
    if isinstance(value, (list, tuple)): return [plain(v) for v in value]
    if isinstance(value, dict): return {k: plain(v) for k, v in value.items()}
    return value
print(json.dumps([plain(call("lomq.functions")), plain(call("lomq.functions", "log")),
                  plain(call("lomq.functions", 1)), call("add", 1, 2)]))
`,
      );
      const [all, afterLog, bad, sum] = JSON.parse(out);
      assert.equal(all[0], "OK");
      assert.deepEqual(all[1], {
        functions: EXPECTED.map((f) => ({
          ...f,
          name: typeof f.name === "string" ? f.name : { bin: "626164ff6e616d65" },
        })),
        more: false,
      });
      assert.deepEqual(afterLog[1].functions.map((f: FunctionInfo) => f.name), [
        "none",
        "y".repeat(256),
        "\u202ertl",
      ]);
      assert.equal(bad[0], "ERROR");
      assert.match(bad[1], /the last name of the previous page, a string/);
      assert.deepEqual(sum, ["OK", 3], "the server keeps serving");
    } finally {
      await server.stop();
    }
  },
});

Deno.test("the TypeScript client's functions() lists exactly what can be called", async () => {
  const [server, uri] = await serve(INTROSPECTION);
  await using client = new Client(uri, { timeoutMs: 10000 });
  try {
    const listed = await client.functions();
    assert.deepEqual(normalized(listed), EXPECTED);
    for (const { name } of listed) {
      if (typeof name !== "string") continue; // a bin method name cannot be called by name here
      await client.call(name, 1, 2); // no "not found"
    }
    for (const name of NOT_CALLABLE) {
      await assert.rejects(client.call(name), RpcError, name);
    }
    // A long argument orders the names as a short one would, and costs no more.
    const longAfter = await client.call("lomq.functions", "y".repeat(300)) as FunctionsPage;
    assert.deepEqual(longAfter.functions.map((f) => f.name), ["\u202ertl"]);
    const hugeAfter = await client.call("lomq.functions", "a".repeat(10_000_000)) as FunctionsPage;
    assert.equal(hugeAfter.functions[0].name, "add");
    // The reserved name stays the host's whatever the script defines.
    assert.deepEqual(await client.call("lomq.functions", "none"), {
      functions: normalized(EXPECTED.slice(5)),
      more: false,
    });
  } finally {
    await client.close();
    await server.stop();
  }
});

Deno.test("REP and ROUTER scripts answer lomq.functions from rpc:process(); LuaOverMQ.expose and serve --expose narrow it", async () => {
  const router = await startServer(`${ROOT}tests/fixtures/router_server.lua`);
  const rep = await startServer(`${ROOT}tests/fixtures/exposed.lua`);
  const [narrowed, narrowedUri] = await serve(`${ROOT}tests/fixtures/functions.lua`, [
    "--expose",
    "add,slow,nonexistent",
  ]);
  try {
    const list = async (uri: string) => {
      await using client = new Client(uri, { timeoutMs: 10000 });
      return (await client.functions()).map((f) => [f.name, f.params, f.vararg]);
    };
    assert.deepEqual(await list(router.uri), [["echo", [], true]]);
    // exposed.lua exposes add, echo, hog and main: main stays out, secret was not exposed.
    assert.deepEqual(await list(rep.uri), [
      ["add", ["a", "b"], false],
      ["echo", [], true],
      ["hog", ["n"], false],
    ]);
    assert.deepEqual(await list(narrowedUri), [
      ["add", ["a", "b"], false],
      ["slow", ["ms", "value"], false],
    ]);
  } finally {
    await Promise.all([router.lomq.stop(), rep.lomq.stop(), narrowed.stop()]);
  }
});

Deno.test("with --encoding cp1251 names are listed as UTF-8 and can be called so; a name with no UTF-8 form is left out", async () => {
  const dir = await Deno.makeTempDir({ prefix: "lomq-introspection-" });
  try {
    const script = `${dir}/cp1251.lua`;
    // "При" in cp1251 (0xCF 0xF0 0xE8), and 0x98, a byte cp1251 leaves undefined.
    const bytes = new Uint8Array([
      ...encoder.encode('_G["'),
      0xcf,
      0xf0,
      0xe8,
      ...encoder.encode('"] = function(a) return a end\n_G["odd'),
      0x98,
      ...encoder.encode('"] = function() end\n'),
    ]);
    await Deno.writeFile(script, bytes);
    const [server, uri] = await serve(script, ["--encoding", "cp1251"]);
    await using client = new Client(uri, { timeoutMs: 10000 });
    try {
      assert.deepEqual(await client.functions(), [{ name: "При", params: ["a"], vararg: false }]);
      assert.equal(await client.call("При", 7), 7);
    } finally {
      await client.close();
      await server.stop();
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("100,000 functions: lomq.functions answers in pages, functions() reads them all, others keep being served", async () => {
  const count = 100_000;
  const [server, uri] = await serve(INTROSPECTION, ["--", String(count)]);
  await using client = new Client(uri, { timeoutMs: 60000 });
  await using other = new Client(uri, { timeoutMs: 60000 });
  try {
    let started = performance.now();
    const first = await client.call("lomq.functions") as {
      functions: FunctionInfo[];
      more: boolean;
    };
    const pageMs = performance.now() - started;
    assert.equal(first.functions.length, FUNCTIONS_PAGE_SIZE);
    assert.equal(first.more, true);
    assert.equal(first.functions[0].name, "add");

    started = performance.now();
    const [all, sum] = await Promise.all([client.functions(), other.call("add", 1, 2)]);
    const allMs = performance.now() - started;
    assert.equal(sum, 3);
    assert.equal(all.length, count + EXPECTED.length);
    assert.deepEqual(all.at(-2), { name: "y".repeat(256), params: [], vararg: false });
    const numbered = all.filter((f) => typeof f.name === "string" && /^f\d{6}$/.test(f.name));
    assert.equal(numbered.length, count);
    assert.deepEqual(numbered[count - 1], { name: `f${count}`, params: ["n"], vararg: false });
    assert.equal(await other.call(`f${count}`, 1), 1 + count, "still serving");
    console.log(
      `lomq.functions over ${count} functions: one page ${pageMs.toFixed(0)} ms, ` +
        `all ${Math.ceil(all.length / FUNCTIONS_PAGE_SIZE)} pages ${allMs.toFixed(0)} ms`,
    );
  } finally {
    await client.close();
    await other.close();
    await server.stop();
  }
});

// ---- lomq ls --------------------------------------------------------------------------

function lomq(args: string[], ms = 30000): ReturnType<LomqProcess["finish"]> {
  return new LomqProcess(args).finish(ms);
}

Deno.test("lomq ls prints signatures with unsafe names quoted and escaped; --json is the machine form", async () => {
  const [server, uri] = await serve(INTROSPECTION);
  try {
    const [human, json] = await Promise.all([
      lomq(["ls", "--uri", uri]),
      lomq(["ls", "--uri", uri, "--json"]),
    ]);
    assert.equal(human.code, 0, human.stderr);
    assert.equal(
      human.stdout,
      [
        "add(a, b)",
        '{"$bin":"YmFk/25hbWU="}(y)',
        '"evil\\u001b[31mred\\n"(x)',
        "log(fmt, ...)",
        "none()",
        `${"y".repeat(256)}()`,
        '"\\u202ertl"()',
        "",
      ].join("\n"),
    );
    // deno-lint-ignore no-control-regex
    assert.doesNotMatch(human.stdout + json.stdout, /[\x00-\x09\x0b-\x1f\x7f-\x9f\u202e]/);
    assert.equal(json.code, 0, json.stderr);
    assert.deepEqual(JSON.parse(json.stdout), [
      { name: "add", params: ["a", "b"], vararg: false },
      { name: { $bin: "YmFk/25hbWU=" }, params: ["y"], vararg: false },
      { name: "evil\x1b[31mred\n", params: ["x"], vararg: false },
      { name: "log", params: ["fmt"], vararg: true },
      { name: "none", params: [], vararg: false },
      { name: "y".repeat(256), params: [], vararg: false },
      { name: "\u202ertl", params: [], vararg: false },
    ]);
  } finally {
    await server.stop();
  }
});

/**
 * Runs `fn` with the URI of a pyzmq REP server that runs `loop`, Python in which `rep` is
 * the bound socket: a stand-in for servers other than lomq.
 */
async function withPyzmqServer(loop: string, fn: (uri: string) => Promise<void>): Promise<void> {
  const port = freePort();
  const uri = `tcp://127.0.0.1:${port}`;
  const { child, output } = spawnPython(
    python,
    `import zmq, msgpack\nrep = zmq.Context().socket(zmq.REP)\nrep.bind(${
      JSON.stringify(uri)
    })\n${loop}`,
  );
  try {
    await waitForPort(port);
    await fn(uri);
  } finally {
    child.kill("SIGKILL");
    await output;
  }
}

Deno.test({
  name:
    "lomq ls against a server without introspection (an ERROR for unknown methods, as the original's) says so, exit 1; no server, exit 3",
  ignore: skipInterop,
  fn: () =>
    withPyzmqServer(
      `
while True:
    method = msgpack.unpackb(rep.recv(), raw=False)[0]
    rep.send_multipart([b"ERROR", msgpack.packb("attempt to call a nil value (global '" + method + "')")])
`,
      async (uri) => {
        const [old, none] = await Promise.all([
          lomq(["ls", "--uri", uri]),
          lomq(["ls", "--uri", "tcp://127.0.0.1:9", "--timeout", "300"]),
        ]);
        assert.equal(old.code, 1, old.stderr);
        assert.equal(old.stdout, "");
        assert.match(
          old.stderr,
          /^lomq ls: the server at tcp:\/\/127\.0\.0\.1:\d+ does not support introspection: it answered lomq\.functions with ERROR "attempt to call a nil value \(global 'lomq\.functions'\)"/,
        );
        assert.equal(none.code, 3, none.stderr);
        assert.match(none.stderr, /could not connect to tcp:\/\/127\.0\.0\.1:9 within 300 ms/);
      },
    ),
});

Deno.test({
  name:
    "lomq ls (through client.functions()) against a lying server: a reply that is no list, or pages that never end, exit 1 instead of looping",
  ignore: skipInterop,
  // First reply: 42. Every later one: the same page, with "more" always true.
  fn: () =>
    withPyzmqServer(
      `
page = {"functions": [{"name": "b", "params": [], "vararg": False}], "more": True}
answers = 0
while True:
    rep.recv()
    rep.send_multipart([b"OK", msgpack.packb(42 if answers == 0 else page)])
    answers += 1
`,
      async (uri) => {
        const notList = await lomq(["ls", "--uri", uri]);
        assert.equal(notList.code, 1, notList.stderr);
        assert.match(notList.stderr, /the reply to lomq\.functions is not a list: not a map/);
        const endless = await lomq(["ls", "--uri", uri]);
        assert.equal(endless.code, 1, endless.stderr);
        assert.match(
          endless.stderr,
          /the reply to lomq\.functions is not a list: names out of order/,
        );
        assert.equal(notList.stdout + endless.stdout, "");
      },
    ),
});
