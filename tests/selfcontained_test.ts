// lomq reads nothing from its source tree at run time: the Lua engine and the prelude
// travel in the module graph, which is what `deno compile` puts in the binary.
//
// Proof: lomq runs from an empty temporary directory with HOME and DENO_DIR pointed at
// fresh directories, and (under `deno run`) may read only that directory: any read of the
// checkout, relative or absolute, fails with NotCapable. Loading modules needs no read
// permission, reading files does. With LOMQ_BIN set the same runs use that binary.
import assert from "node:assert/strict";
import { join } from "node:path";
import { GLUE_WASM_BASE64, GLUE_WASM_VERSION } from "../src/lua/embedded/glue_wasm.ts";
import { preludeSource } from "../src/lua/prelude.ts";
import { installedGlue } from "../scripts/embed.ts";
import { denortFailure, denortMessage, outputFor, TARGETS } from "../scripts/compile.ts";
import { freePort, lomqCommand, ROOT, runPython, spawnPiped, waitForPort } from "./helpers/lomq.ts";
import { pythonForInterop, skipInterop } from "./helpers/python.ts";

const python = (await pythonForInterop()) ?? "python3";
const VERSION: string = JSON.parse(await Deno.readTextFile(`${ROOT}deno.json`)).version;

/** An empty working directory plus fresh HOME and DENO_DIR, removed by `cleanup`. */
interface Sandbox {
  work: string;
  env: Record<string, string>;
  cleanup(): Promise<void>;
}

async function sandbox(): Promise<Sandbox> {
  // realPath: macOS hands out /var/... which is a symlink, and permissions match real paths.
  const base = await Deno.realPath(await Deno.makeTempDir({ prefix: "lomq-selfcontained-" }));
  const work = join(base, "work");
  const home = join(base, "home");
  const denoDir = join(base, "deno-dir");
  for (const dir of [work, home, denoDir]) await Deno.mkdir(dir);
  return {
    work,
    env: {
      HOME: home,
      USERPROFILE: home,
      XDG_CACHE_HOME: join(home, ".cache"),
      DENO_DIR: denoDir,
    },
    cleanup: () => Deno.remove(base, { recursive: true }),
  };
}

/**
 * How to start lomq confined to `work`: the LOMQ_BIN launcher when set, else `deno run`
 * with read access to `work` only.
 */
function confinedCommand(work: string): [string, string[]] {
  if (Deno.env.get("LOMQ_BIN")) return lomqCommand();
  return [Deno.execPath(), [
    "run",
    "--allow-net",
    "--allow-env",
    `--allow-read=${work}`,
    "--config",
    `${ROOT}deno.json`,
    `${ROOT}main.ts`,
  ]];
}

function spawn(box: Sandbox, args: string[]): Deno.ChildProcess {
  const [program, lead] = confinedCommand(box.work);
  return spawnPiped(program, [...lead, ...args], { cwd: box.work, env: box.env });
}

async function runToEnd(box: Sandbox, args: string[]): Promise<Deno.CommandOutput> {
  const child = spawn(box, args);
  const timer = setTimeout(() => child.kill("SIGKILL"), 60000);
  try {
    return await child.output();
  } finally {
    clearTimeout(timer);
  }
}

const text = (bytes: Uint8Array) => new TextDecoder().decode(bytes).replaceAll("\r\n", "\n");

Deno.test("the embedded glue.wasm is byte for byte the installed wasmoon's", async () => {
  const glue = await installedGlue();
  assert.equal(GLUE_WASM_VERSION, glue.version, "run 'deno task embed'");
  const embedded = Uint8Array.fromBase64(GLUE_WASM_BASE64);
  assert.ok(
    embedded.length === glue.bytes.length && embedded.every((b, i) => b === glue.bytes[i]),
    `src/lua/embedded/glue_wasm.ts differs from ${glue.url.href}; run 'deno task embed'`,
  );
});

Deno.test("the embedded prelude is lua/prelude.lua", async () => {
  assert.equal(preludeSource, await Deno.readTextFile(`${ROOT}lua/prelude.lua`));
});

Deno.test("lomq runs a script from an empty directory without reading its checkout", async () => {
  const box = await sandbox();
  try {
    await Deno.copyFile(
      `${ROOT}tests/fixtures/fixture_helper.lua`,
      join(box.work, "fixture_helper.lua"),
    );
    await Deno.writeTextFile(
      join(box.work, "hello.lua"),
      'require("LuaOverMQ")\nprint(LuaOverMQ.version, require("fixture_helper").value)\n',
    );
    const run = await runToEnd(box, ["hello.lua"]);
    assert.equal(run.code, 0, text(run.stderr));
    assert.equal(text(run.stdout), `${VERSION}\tfrom the helper module\n`);

    const version = await runToEnd(box, ["--version"]);
    assert.equal(version.code, 0, text(version.stderr));
    assert.equal(text(version.stdout), `lomq ${VERSION}\n`);
  } finally {
    await box.cleanup();
  }
});

Deno.test({
  name: "a lomq confined to an empty directory serves the original client's calls",
  ignore: skipInterop,
  async fn() {
    const box = await sandbox();
    let child: Deno.ChildProcess | undefined;
    let output: Promise<Deno.CommandOutput> | undefined;
    try {
      for (const name of ["server.lua", "fixture_helper.lua"]) {
        await Deno.copyFile(`${ROOT}tests/fixtures/${name}`, join(box.work, name));
      }
      const port = freePort();
      child = spawn(box, ["server.lua", `tcp://127.0.0.1:${port}`]);
      output = child.output();
      try {
        await waitForPort(port, 60000);
      } catch (error) {
        child.kill("SIGKILL");
        throw new Error(`${(error as Error).message}\n${text((await output).stderr)}`);
      }
      const out = await runPython(
        python,
        `
import json
from rpc_client import RPCClient
rpc = RPCClient("tcp://127.0.0.1:${port}", timeout=10000)
print(json.dumps([rpc.call("add", 1, 2), rpc.call("helper_value")]))
rpc.close()
`,
      );
      assert.deepEqual(JSON.parse(out), [3, "from the helper module"]);
    } finally {
      try {
        child?.kill("SIGKILL");
      } catch {
        // already gone
      }
      await output?.catch(() => {});
      await box.cleanup();
    }
  },
});

// `deno compile` cannot download its runtime here; these pin how that failure is told.
Deno.test("the compile task recognises a failed denort download and says so in one line", () => {
  const stderr = "\x1b[0m\x1b[32mCompile\x1b[0m main.ts to dist/lomq\n" +
    "\x1b[0m\x1b[32mDownload\x1b[0m https://dl.deno.land/release/v2.9.6/denort-x86_64-unknown-linux-gnu.zip\n" +
    "\x1b[0m\x1b[1m\x1b[31merror\x1b[0m: Writing deno compile executable to temporary file 'dist/lomq.tmp-1'\n\n" +
    "Caused by:\n    0: Setting up base binary.\n" +
    "    1: error sending request for url (https://dl.deno.land/release/v2.9.6/denort-x86_64-unknown-linux-gnu.zip): client error (Connect): dns error: failed to lookup address information: Name or service not known\n" +
    "    2: client error (Connect)\n    3: dns error\n" +
    "    4: failed to lookup address information: Name or service not known\n\n" +
    "Stack backtrace:\n   0: <unknown>\n";
  const cause = denortFailure(stderr);
  assert.equal(cause, "failed to lookup address information: Name or service not known");
  const line = denortMessage("x86_64-unknown-linux-gnu", cause);
  assert.ok(!line.includes("\n"));
  assert.match(line, /^lomq compile: .*denort.*DENORT_BIN/);

  const typeError = "TS2322 [ERROR]: Type 'Timeout' is not assignable to type 'number'.\n" +
    "error: Type checking failed.\n";
  assert.equal(denortFailure(typeError), undefined);
  const afterDownload =
    "Download https://dl.deno.land/release/v2.9.6/denort-x86_64-unknown-linux-gnu.zip\n" +
    "error: Permission denied (os error 13): dist/lomq\n";
  assert.equal(denortFailure(afterDownload), undefined);
});

Deno.test("compile:all names one binary per release target", () => {
  assert.deepEqual(TARGETS.map(outputFor), [
    "dist/lomq-x86_64-unknown-linux-gnu",
    "dist/lomq-aarch64-unknown-linux-gnu",
    "dist/lomq-x86_64-apple-darwin",
    "dist/lomq-aarch64-apple-darwin",
    "dist/lomq-x86_64-pc-windows-msvc.exe",
  ]);
});

Deno.test("the workflows run only deno tasks that deno.json defines", async () => {
  const tasks = Object.keys(JSON.parse(await Deno.readTextFile(`${ROOT}deno.json`)).tasks);
  const used = new Set<string>();
  for (const workflow of ["ci.yml", "release.yml"]) {
    const text = await Deno.readTextFile(`${ROOT}.github/workflows/${workflow}`);
    for (const match of text.matchAll(/deno task ([\w:-]+)/g)) used.add(match[1]);
  }
  assert.ok(used.has("compile") && used.has("compile:all") && used.has("test"));
  for (const task of used) assert.ok(tasks.includes(task), `deno.json has no task '${task}'`);
});
