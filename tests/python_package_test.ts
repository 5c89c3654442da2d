// clients/python as a package: pip installs it offline into a fresh virtual environment that
// sees the system's pyzmq, and then the README's Python snippets, the asyncio client's
// concurrency and CURVE work with nothing else on the path.
import assert from "node:assert/strict";
import config from "../deno.json" with { type: "json" };
import { freePort, ROOT, runChecked, startLomq } from "./helpers/lomq.ts";
import { interopRequired, pythonForInterop, skipInterop } from "./helpers/python.ts";

const python = (await pythonForInterop()) ?? "python3";

/** Whether this Python can make a virtual environment with pip (Debian: python3-venv). */
async function canMakeVenv(): Promise<boolean> {
  if (skipInterop) return false;
  try {
    await runChecked(python, ["-c", "import ensurepip, venv"]);
    return true;
  } catch {
    if (interopRequired()) {
      throw new Error(
        `LOMQ_REQUIRE_INTEROP is set but ${python} cannot make a virtual environment ` +
          "(no ensurepip); install Debian's python3-venv",
      );
    }
    return false;
  }
}

const ignore = !(await canMakeVenv());

/** The fenced blocks of the README, each with its language and the text after it. */
function readmeBlocks(text: string): { lang: string; code: string; start: number }[] {
  const blocks: { lang: string; code: string; start: number }[] = [];
  const fence = /^```(\w*)\n([\s\S]*?)^```$/gm;
  for (const m of text.matchAll(fence)) blocks.push({ lang: m[1], code: m[2], start: m.index! });
  return blocks;
}

/** The README's snippets for Python, each with what it prints (from the block after it). */
function pythonSnippets(readme: string): { code: string; prints: string }[] {
  const blocks = readmeBlocks(readme);
  const snippets: { code: string; prints: string }[] = [];
  blocks.forEach((block, i) => {
    if (block.lang !== "python") return;
    const next = blocks[i + 1];
    const between = next ? readme.slice(block.start, next.start) : "";
    if (next && next.lang === "" && /```\n\nprints\n\n$/.test(between)) {
      snippets.push({ code: block.code, prints: next.code });
    } else {
      // A one-liner whose comment says what it prints: `print(...)  # 3`.
      const said = [...block.code.matchAll(/print\(.*\)\s+#\s*(.+)$/gm)].map((m) => m[1]);
      snippets.push({ code: block.code, prints: said.map((line) => `${line}\n`).join("") });
    }
  });
  return snippets;
}

Deno.test({
  name:
    "python package: pip installs clients/python offline into a venv; README snippets, asyncio, CURVE",
  ignore,
  async fn(t) {
    const dir = await Deno.makeTempDir({ prefix: "lomq-python-" });
    try {
      // A copy, so the build (setuptools builds in the source folder) leaves the checkout clean.
      const source = `${dir}/lomq-python-src`;
      await runChecked("cp", ["-r", `${ROOT}clients/python`, source]);
      const venv = `${dir}/venv`;
      const venvPython = `${venv}/bin/python`;
      const work = `${dir}/work`;
      await Deno.mkdir(work);

      await t.step("python3 -m venv --system-site-packages, pip install offline", async () => {
        await runChecked(python, ["-m", "venv", "--system-site-packages", venv], { ms: 120000 });
        await runChecked(venvPython, [
          "-m",
          "pip",
          "install",
          "--no-index",
          "--no-build-isolation",
          "--disable-pip-version-check",
          "--no-cache-dir",
          "--quiet",
          source,
        ], { ms: 120000 });
        // From a folder that is not the checkout: lomq_client from the venv, pyzmq the system's.
        const where = JSON.parse(
          await runChecked(venvPython, [
            "-c",
            "import json, sys, zmq, lomq_client, importlib.metadata as m; " +
            "print(json.dumps([lomq_client.__file__, zmq.__file__, m.version('lomq-client'), sys.prefix]))",
          ], { cwd: work }),
        );
        assert.ok(where[0].startsWith(`${venv}/lib/`), `lomq_client from ${where[0]}`);
        assert.ok(!where[1].startsWith(venv), `pyzmq from ${where[1]}, not the system's`);
        assert.equal(where[2], config.version);
        assert.equal(where[3], venv);
      });

      await t.step("the README's Python snippets print what the README says", async () => {
        const readme = await Deno.readTextFile(`${ROOT}README.md`);
        const script = readmeBlocks(readme).find((b) => b.code.startsWith("-- prices.lua"));
        assert.ok(script, "the README's prices.lua");
        await Deno.writeTextFile(`${dir}/prices.lua`, script.code);
        const rpcPort = freePort();
        const rpc = `tcp://127.0.0.1:${rpcPort}`;
        const pub = `tcp://127.0.0.1:${freePort()}`;
        const server = await startLomq(
          ["serve", `${dir}/prices.lua`, "--rpc", rpc, "--pub", pub],
          rpcPort,
        );
        try {
          const snippets = pythonSnippets(readme);
          assert.ok(snippets.length >= 3, `${snippets.length} Python snippets`);
          for (const { code, prints } of snippets) {
            const local = code.replaceAll("tcp://127.0.0.1:8004", rpc)
              .replaceAll("tcp://127.0.0.1:8005", pub);
            const expected = prints.replaceAll("tcp://127.0.0.1:8004", rpc);
            await Deno.writeTextFile(`${work}/snippet.py`, local);
            // A subscription reaches the publisher in the snippets' 0.2 s unless the machine
            // is overloaded: try again before calling the snippet wrong.
            let output = "";
            for (let attempt = 0; attempt < 3 && output !== expected; attempt++) {
              try {
                output = await runChecked(venvPython, ["snippet.py"], { cwd: work });
              } catch (error) {
                output = String(error);
              }
            }
            assert.equal(output, expected, `the snippet\n${code}`);
          }
        } finally {
          await server.stop();
        }
      });

      await t.step(
        "AsyncRPCClient against lomq: 50 calls in flight, late replies dropped, functions()",
        async () => {
          const rpcPort = freePort();
          const rpc = `tcp://127.0.0.1:${rpcPort}`;
          const server = await startLomq(
            ["serve", `${ROOT}tests/fixtures/functions.lua`, "--rpc", rpc],
            rpcPort,
          );
          try {
            const out = JSON.parse(
              await runChecked(venvPython, [
                "-c",
                `
import asyncio, json
from lomq_client import AsyncRPCClient, RPCClient, RPCRuntimeError, RPCTimeoutError, RPCClosedError

async def main():
    out = {}
    async with AsyncRPCClient(${JSON.stringify(rpc)}, timeout=10000) as rpc:
        out["gather"] = await asyncio.gather(*(rpc.call("echo", n, str(n)) for n in range(50)))
        out["pending"] = rpc.pending
        try:
            await rpc.call("slow", 300, "late", timeout=50)
        except RPCTimeoutError as e:
            out["timeout"] = str(e)
        out["after"] = await rpc.call("echo", "next")
        try:
            await rpc.call("fail", "it broke")
        except RPCRuntimeError as e:
            out["error"] = e.args[0]
        try:
            out["functions"] = await rpc.functions()
        except RPCRuntimeError as e:
            out["functions"] = e.args[0]
    try:
        await rpc.call("add", 1, 2)
    except RPCClosedError as e:
        out["closed"] = str(e)
    with RPCClient(${JSON.stringify(rpc)}, timeout=5000) as sync:
        try:
            out["sync_functions"] = sync.functions()
        except RPCRuntimeError as e:
            out["sync_functions"] = e.args[0]
    print(json.dumps(out))

asyncio.run(main())
`,
              ], { cwd: work }),
            );
            assert.deepEqual(out.gather, Array.from({ length: 50 }, (_, n) => [n, String(n)]));
            assert.equal(out.pending, 0);
            assert.match(out.timeout, /no reply to 'slow' .* within 50 ms/);
            assert.equal(out.after, "next");
            assert.equal(out.error, "it broke");
            assert.equal(out.closed, "the client is closed");
            // lomq.functions comes with another change: until then the server says it has none.
            for (const answer of [out.functions, out.sync_functions]) {
              if (Array.isArray(answer)) assert.ok(answer.includes("add"), JSON.stringify(answer));
              else assert.equal(answer, "function 'lomq.functions' not found");
            }
          } finally {
            await server.stop();
          }
        },
      );

      await t.step(
        "pyzmq servers: replies out of order matched by call id; CURVE with ZAP",
        async () => {
          const out = JSON.parse(
            await runChecked(venvPython, [`${ROOT}tests/fixtures/python_client_checks.py`], {
              cwd: work,
            }),
          );
          const calls = Array.from({ length: 50 }, (_, n) => n);
          assert.deepEqual(out.out_of_order.results, calls.map((n) => ["echo", n]));
          // The server answered the last request first: each call finished with its own reply.
          assert.deepEqual(out.out_of_order.finished, calls.toReversed());
          assert.equal(out.out_of_order.pending, 0);
          assert.deepEqual(out.curve.sync, ["echo", "secret"]);
          assert.deepEqual(out.curve.async, [["echo", 1], ["echo", 2]]);
          assert.equal(out.curve.ephemeral, "timeout");
          assert.equal(out.curve.wrong_server_key, "timeout");
          assert.match(out.curve.key_without_server_key, /need server_key/);
          // ZAP saw CURVE each time: the admitted key twice, then the ephemeral one refused (as
          // often as it tried); the wrong server key never got as far as ZAP.
          const [first, second, ...refused] = out.curve.zap;
          assert.deepEqual([first, second], [["CURVE", true], ["CURVE", true]]);
          assert.ok(refused.length >= 1, JSON.stringify(out.curve.zap));
          for (const entry of refused) assert.deepEqual(entry, ["CURVE", false]);
        },
      );
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
