// clients/python as a package: pip installs it offline into a fresh virtual environment that
// sees the system's pyzmq, and then the asyncio client's concurrency, functions() and CURVE
// work with nothing else on the path. (The README's Python snippets run in readme_test.ts.)
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

Deno.test({
  name:
    "python package: pip installs clients/python offline into a venv; asyncio, functions(), CURVE",
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
        out["functions"] = await rpc.functions()
    try:
        await rpc.call("add", 1, 2)
    except RPCClosedError as e:
        out["closed"] = str(e)
    with RPCClient(${JSON.stringify(rpc)}, timeout=5000) as sync:
        out["sync_functions"] = sync.functions()
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
            // Every page of lomq.functions, as the server lists it: names, parameters, `...`.
            for (const answer of [out.functions, out.sync_functions]) {
              const byName = new Map(answer.map((f: { name: string }) => [f.name, f]));
              assert.deepEqual(byName.get("add"), {
                name: "add",
                params: ["a", "b"],
                vararg: false,
              });
              assert.deepEqual(byName.get("echo"), { name: "echo", params: [], vararg: true });
              assert.deepEqual(
                answer.map((f: { name: string }) => f.name),
                [...byName.keys()].sort(),
              );
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
