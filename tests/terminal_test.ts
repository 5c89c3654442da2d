// Scripts from the trading terminal: the StockMQ names, Windows code pages (a script saved in
// cp1251, called by the original's Python client), arrays that keep their shape, and the
// terminal's helpers, against real lomq processes.
import assert from "node:assert/strict";
import { Client, RpcError } from "../mod.ts";
import { freePort, LomqProcess, ROOT, runPython, startLomq, waitForPort } from "./helpers/lomq.ts";
import { pythonForInterop, skipInterop } from "./helpers/python.ts";

const python = (await pythonForInterop()) ?? "python3";
const TERMINAL = `${ROOT}tests/fixtures/terminal_cp1251.lua`;

async function startTerminal(): Promise<{ lomq: LomqProcess; rpc: string; pub: string }> {
  const port = freePort();
  const rpc = `tcp://127.0.0.1:${port}`;
  const pub = `tcp://127.0.0.1:${freePort()}`;
  const lomq = new LomqProcess([TERMINAL, rpc, pub]);
  await waitForPort(port);
  return { lomq, rpc, pub };
}

/** The original client: repr() of each result, or "ERROR " + repr(message). */
async function originalClient(uri: string, calls: string): Promise<string[]> {
  const stdout = await runPython(
    python,
    `
import json
from rpc_client import RPCClient
from interop import described
rpc = RPCClient(${JSON.stringify(uri)}, timeout=5000)
def call(*a):
    return described(rpc, *a)
def items(*a):
    # A map's order is the server's hash order: compare its items sorted.
    return repr(sorted(rpc.call(*a).items(), key=repr))
out = [${calls}]
print(json.dumps(out))
rpc.close()
`,
  );
  return JSON.parse(stdout);
}

Deno.test({
  name: "a cp1251 script answers the original Python client in UTF-8, both ways",
  ignore: skipInterop,
  async fn() {
    const { lomq, rpc } = await startTerminal();
    try {
      const out = await originalClient(
        rpc,
        `call("hello"), call("is_greeting", "Привет"), call("length", "Привет"),
         call("echo", "Рё"), call("echo", "Рё") == repr("Рё"), items("keys"), call("fail"),
         call("Привет", "мир"), call("echo", "😀 ok"), call("nope_ё"), call("raw"),
         call("echo", b"\\xcf\\xf0")`,
      );
      assert.deepEqual(out, [
        "'Привет'",
        "True",
        "6", // six bytes in cp1251, twelve in UTF-8
        "'Рё'",
        true,
        "[('ключ', 'значение'), (1, 'один')]",
        "ERROR 'ошибка в обработчике'",
        "'Здравствуй, мир'", // a method name in Cyrillic finds the cp1251 global
        "'? ok'", // the emoji has no place in cp1251
        "ERROR \"function 'nope_ё' not found\"",
        "b'\\x00\\xff'", // LuaOverMQ.bin: bytes, never transcoded
        "'Пр'", // bin arrives as bytes; a Lua string leaves as text
      ]);
    } finally {
      lomq.kill("SIGINT");
      const result = await lomq.finish();
      assert.equal(result.code, 0, result.stderr);
      assert.match(result.stderr, /1 character had no place in cp1251/);
    }
  },
});

Deno.test({
  name: "arrays keep their shape: nils, empty arrays and LuaOverMQ.array(t, n)",
  ignore: skipInterop,
  async fn() {
    const { lomq, rpc } = await startTerminal();
    try {
      const out = await originalClient(
        rpc,
        `call("echo", [1, None, 3]), call("echo", [True, None]), call("echo", [None]),
         call("echo", []), call("echo", {}), call("echo", [[None], [], {"a": [None, 2]}]),
         call("shaped", 3), call("shaped", 0), call("echo", [1, 2, 3])`,
      );
      assert.deepEqual(out, [
        "[1, None, 3]",
        "[True, None]",
        "[None]",
        "[]",
        "{}",
        "[[None], [], {'a': [None, 2]}]",
        "['а', None, None]",
        "[]",
        "[1, 2, 3]",
      ]);
    } finally {
      await lomq.stop();
    }
  },
});

Deno.test({
  name: "StockMQ names, the terminal's helpers, and a clear error for its trading functions",
  ignore: skipInterop,
  async fn() {
    const { lomq, rpc } = await startTerminal();
    let result;
    try {
      const out = await originalClient(
        rpc,
        `call("names"), call("helpers"), call("terminal_call"), call("say", "внимание", 2),
         call("say", "сбой", 3), call("say", "просто")`,
      );
      assert.deepEqual(out.slice(0, 3), [
        "[True, 'float']",
        `['${ROOT}tests/fixtures', '${Deno.cwd()}', 1]`,
        "ERROR 'getParamEx() is a function of the QUIK terminal, which lomq does not provide: " +
        "this script runs outside the terminal'",
      ]);
    } finally {
      lomq.kill("SIGINT");
      result = await lomq.finish();
    }
    assert.equal(result.code, 0, result.stderr);
    // message() says the level it was given; everything reaches the terminal as UTF-8.
    assert.match(result.stderr, /^warning: внимание$/m);
    assert.match(result.stderr, /^error: сбой$/m);
    assert.match(result.stderr, /^просто$/m);
    assert.match(result.stderr, /^debug: отладка$/m);
    assert.match(result.stdout, /^печать внимание$/m);
  },
});

Deno.test({
  name: "topics and values a cp1251 script publishes reach a pyzmq SUB as UTF-8",
  ignore: skipInterop,
  async fn() {
    const { lomq, rpc, pub } = await startTerminal();
    try {
      const stdout = await runPython(
        python,
        `
import json, time, zmq, msgpack
ctx = zmq.Context()
sub = ctx.socket(zmq.SUB)
sub.setsockopt(zmq.LINGER, 0)
sub.setsockopt(zmq.RCVTIMEO, 5000)
sub.subscribe("цены.".encode())
sub.connect(${JSON.stringify(pub)})
req = ctx.socket(zmq.REQ)
req.setsockopt(zmq.LINGER, 0)
req.setsockopt(zmq.RCVTIMEO, 5000)
req.connect(${JSON.stringify(rpc)})
for attempt in range(50):
    req.send(msgpack.packb(["announce", "цены.SBER", {"цена": "рубль"}]))
    req.recv_multipart()
    try:
        topic, value = sub.recv_multipart(zmq.NOBLOCK)
        print(json.dumps([topic.decode(), msgpack.unpackb(value)]))
        break
    except zmq.Again:
        time.sleep(0.1)
`,
      );
      assert.deepEqual(JSON.parse(stdout), ["цены.SBER", { "цена": "рубль" }]);
    } finally {
      await lomq.stop();
    }
  },
});

Deno.test("lomq serve --encoding cp1251 transcodes; an unknown encoding is a usage error", async () => {
  const port = freePort();
  const uri = `tcp://127.0.0.1:${port}`;
  const server = await startLomq(
    ["serve", `${ROOT}tests/fixtures/serve_cp1251.lua`, "--rpc", uri, "--encoding", "cp1251"],
    port,
  );
  const client = new Client(uri, { timeoutMs: 5000 });
  try {
    assert.equal(await client.call("get_word"), "слово");
    assert.equal(await client.call("word_is", "слово"), true);
    await assert.rejects(client.call("word_is_not"), RpcError);
  } finally {
    await client.close();
    await server.stop();
  }
  const bad = await new LomqProcess([
    "serve",
    `${ROOT}tests/fixtures/serve_cp1251.lua`,
    "--encoding",
    "cp1252x",
  ]).finish();
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /unknown encoding 'cp1252x' \(known: utf-8, cp1250,.*koi8-r\)/);
});
