// LOMQ_BIN=/path/to/lomq makes the end-to-end helpers start that program instead of
// `deno run main.ts`, which is how CI runs the suite against the compiled binary. Here the
// launcher is a wrapper script around `deno run` (tests/fixtures/wrapper.sh, or
// wrapper.cmd on Windows) that appends a line to $LOMQ_WRAPPER_LOG each time it starts, so
// the tests can tell that it, and not the default command, ran; its output stays lomq's.
import assert from "node:assert/strict";
import { lomqCommand, LomqProcess, ROOT, runPython, startServer } from "./helpers/lomq.ts";
import { pythonForInterop, skipInterop } from "./helpers/python.ts";

const python = (await pythonForInterop()) ?? "python3";
const VERSION: string = JSON.parse(await Deno.readTextFile(`${ROOT}deno.json`)).version;
const WRAPPER = `${ROOT}tests/fixtures/${
  Deno.build.os === "windows" ? "wrapper.cmd" : "wrapper.sh"
}`;
const MARKER = "lomq-wrapper:";

/** Runs `fn` with environment variables set (undefined unsets), then restores them. */
async function withEnv<T>(
  vars: Record<string, string | undefined>,
  fn: () => T | Promise<T>,
): Promise<T> {
  const saved = Object.fromEntries(Object.keys(vars).map((k) => [k, Deno.env.get(k)]));
  const apply = (values: Record<string, string | undefined>) => {
    for (const [key, value] of Object.entries(values)) {
      if (value === undefined) Deno.env.delete(key);
      else Deno.env.set(key, value);
    }
  };
  apply(vars);
  try {
    return await fn();
  } finally {
    apply(saved);
  }
}

/**
 * Runs `fn` with LOMQ_BIN pointing at the wrapper (run with this test's deno, whatever is
 * on PATH) and checks that the wrapper started exactly `starts` times meanwhile.
 */
async function viaWrapper<T>(starts: number, fn: () => T | Promise<T>): Promise<T> {
  if (Deno.build.os !== "windows") {
    assert.ok(
      ((await Deno.stat(WRAPPER)).mode ?? 0o755) & 0o111,
      `${WRAPPER} lost its executable bit; git update-index --chmod=+x tests/fixtures/wrapper.sh`,
    );
  }
  const dir = await Deno.makeTempDir({ prefix: "lomq-launcher-" });
  const log = `${dir}/wrapper.log`;
  await Deno.writeTextFile(log, "");
  try {
    const result = await withEnv(
      { LOMQ_BIN: WRAPPER, LOMQ_DENO: Deno.execPath(), LOMQ_WRAPPER_LOG: log },
      fn,
    );
    const lines = (await Deno.readTextFile(log)).split("\n");
    assert.equal(lines.filter((l) => l.startsWith(MARKER)).length, starts, "wrapper starts");
    return result;
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("lomqCommand runs LOMQ_BIN when it is set, else deno run main.ts", async () => {
  await withEnv({ LOMQ_BIN: "/opt/lomq/bin/lomq" }, () => {
    assert.deepEqual(lomqCommand(), ["/opt/lomq/bin/lomq", []]);
  });
  await withEnv({ LOMQ_BIN: undefined }, () => {
    const [program, args] = lomqCommand();
    assert.equal(program, Deno.execPath());
    assert.equal(args[0], "run");
    assert.equal(args.at(-1), `${ROOT}main.ts`);
  });
});

Deno.test("the end-to-end helpers start lomq through the LOMQ_BIN launcher", async () => {
  const out = await viaWrapper(1, () => new LomqProcess(["--version"]).finish(60000));
  assert.equal(out.code, 0, out.stderr);
  assert.equal(out.stdout.replaceAll("\r\n", "\n"), `lomq ${VERSION}\n`);
  assert.ok(!out.stderr.includes(MARKER), "the launcher adds nothing to lomq's output");

  const dir = await Deno.makeTempDir({ prefix: "lomq-launcher-" });
  try {
    const script = `${dir}/print.lua`;
    await Deno.writeTextFile(script, 'require("LuaOverMQ")\nprint("ran", LuaOverMQ.version)\n');
    const run = await viaWrapper(1, () => new LomqProcess([script]).finish(60000));
    assert.equal(run.code, 0, run.stderr);
    assert.equal(run.stdout.replaceAll("\r\n", "\n"), `ran\t${VERSION}\n`);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test({
  name: "a server started through the LOMQ_BIN launcher serves the original client",
  ignore: skipInterop,
  async fn() {
    await viaWrapper(1, async () => {
      const { lomq, uri } = await startServer(`${ROOT}tests/fixtures/wrapper_server.lua`);
      try {
        const out = await runPython(
          python,
          `
import json
from rpc_client import RPCClient
rpc = RPCClient(${JSON.stringify(uri)}, timeout=10000)
print(json.dumps([rpc.call("add", 1, 2), rpc.call("where"), rpc.call("stop")]))
rpc.close()
`,
        );
        assert.deepEqual(JSON.parse(out), [3, VERSION, "stopping"]);
        // stop() ends main(), so lomq exits by itself: no kill, which a .cmd would not
        // pass on to the deno it started.
        const result = await lomq.finish(30000);
        assert.equal(result.code, 0, result.stderr);
      } finally {
        lomq.kill("SIGKILL");
      }
    });
  },
});
