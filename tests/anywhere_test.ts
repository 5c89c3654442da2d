// lomq used from outside its checkout: mod.ts (the client) and main.ts (the program) import by
// full specifiers, so a program in any folder, with no deno.json, imports them by path or URL.
import assert from "node:assert/strict";
import { pathToFileURL } from "node:url";
import config from "../deno.json" with { type: "json" };
import { ROOT, runChecked, startServe } from "./helpers/lomq.ts";

interface Resolution {
  specifier?: string;
  error?: string;
}

interface InfoModule {
  specifier: string;
  dependencies?: { specifier: string; code?: Resolution; type?: Resolution }[];
  error?: string;
}

/** What `deno info` finds from `root` when no deno.json applies (as from any other folder). */
async function graph(root: string): Promise<InfoModule[]> {
  // From a folder of its own: run in the checkout, deno would rearrange lomq's node_modules
  // for a configuration without it, and the next lomq started there would wait on its lock.
  const dir = await Deno.makeTempDir({ prefix: "lomq-info-" });
  try {
    const out = await runChecked(Deno.execPath(), ["info", "--json", "--no-config", root], {
      cwd: dir,
    });
    return JSON.parse(out).modules;
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

for (const root of ["mod.ts", "main.ts"]) {
  Deno.test(`every module ${root} imports uses a full specifier, at deno.json's versions`, async () => {
    const pinned = new Map(
      Object.entries(config.imports).map(([name, spec]) => [name, spec.replace(/^npm:/, "")]),
    );
    const problems: string[] = [];
    let checked = 0;
    for (const module of await graph(`${ROOT}${root}`)) {
      if (module.error) problems.push(`${module.specifier}: ${module.error}`);
      if (!module.specifier.startsWith("file:")) continue;
      const where = module.specifier.slice(pathToFileURL(ROOT).href.length);
      for (const dependency of module.dependencies ?? []) {
        checked++;
        const { specifier } = dependency;
        // `code` for a value import, `type` for an import of types only.
        const resolution = dependency.code ?? dependency.type ?? {};
        const resolved = resolution.specifier ?? "";
        if (resolution.error) problems.push(`${where}: ${resolution.error}`);
        else if (!/^(file|npm|node):/.test(resolved)) {
          problems.push(`${where}: '${specifier}' resolves to '${resolved}'`);
        }
        const npm = /^npm:((?:@[^/]+\/)?[^@/]+)@([^/]+)/.exec(specifier);
        if (specifier.startsWith("npm:") && !npm) {
          problems.push(`${where}: '${specifier}' has no version`);
        }
        if (npm && pinned.has(npm[1]) && pinned.get(npm[1]) !== `${npm[1]}@${npm[2]}`) {
          problems.push(`${where}: '${specifier}' but deno.json pins ${pinned.get(npm[1])}`);
        }
      }
    }
    assert.ok(checked > 20, `only ${checked} imports seen`);
    assert.deepEqual(problems, []);
  });
}

Deno.test("a program in a folder without deno.json imports the client by path and by file: URL, and calls lomq", async () => {
  const { server, rpc } = await startServe();
  const dir = await Deno.makeTempDir({ prefix: "lomq-anywhere-" });
  try {
    assert.ok(!dir.startsWith(ROOT), `${dir} is inside the checkout`);
    const modPath = `${ROOT}mod.ts`;
    await Deno.writeTextFile(
      `${dir}/by_path.ts`,
      `
import { Client, RpcError } from ${JSON.stringify(modPath)};
await using client = new Client(${JSON.stringify(rpc)}, { timeoutMs: 5000 });
const out: unknown[] = [await client.call("add", 1, 2), await client.call("echo", "a", 2.5)];
try {
  await client.call("fail", "no");
} catch (error) {
  out.push(error instanceof RpcError ? error.message : "not an RpcError");
}
console.log(JSON.stringify(out));
`,
    );
    await Deno.writeTextFile(
      `${dir}/by_url.ts`,
      `
import { Client } from ${JSON.stringify(pathToFileURL(modPath).href)};
await using client = new Client(${JSON.stringify(rpc)}, { timeoutMs: 5000 });
console.log(JSON.stringify(await client.call("add", 20, 22)));
`,
    );
    const run = (file: string) =>
      runChecked(Deno.execPath(), ["run", "--allow-net", file], { cwd: dir });
    assert.deepEqual(JSON.parse(await run("by_path.ts")), [3, ["a", 2.5], "no"]);
    assert.equal(JSON.parse(await run("by_url.ts")), 42);
    // The program itself, by file: URL with no configuration, as `deno run -A URL` would.
    const called = await runChecked(Deno.execPath(), [
      "run",
      "-A",
      "--no-config",
      pathToFileURL(`${ROOT}main.ts`).href,
      "call",
      "--uri",
      rpc,
      "add",
      "1",
      "2",
    ], { cwd: dir });
    assert.equal(called.trim(), "3");
  } finally {
    await server.stop();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("main.ts and mod.ts run from an http: URL, as from a repository's raw files", async () => {
  const { server, rpc } = await startServe();
  // Served as text/plain, as code hosts serve raw files: Deno goes by the extension.
  const files = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, async (request) => {
    const path = decodeURIComponent(new URL(request.url).pathname);
    try {
      if (path.includes("..")) throw new Error("outside");
      const body = await Deno.readFile(`${ROOT}${path.slice(1)}`);
      return new Response(body, { headers: { "content-type": "text/plain; charset=utf-8" } });
    } catch {
      return new Response("not found", { status: 404 });
    }
  });
  const host = `127.0.0.1:${files.addr.port}`;
  const dir = await Deno.makeTempDir({ prefix: "lomq-remote-" });
  try {
    const called = await runChecked(Deno.execPath(), [
      "run",
      "--no-config",
      `--allow-import=${host}`,
      "--allow-net",
      "--allow-env",
      "--allow-read",
      `http://${host}/main.ts`,
      "call",
      "--uri",
      rpc,
      "add",
      "2",
      "3",
    ], { cwd: dir });
    assert.equal(called.trim(), "5");
    await Deno.writeTextFile(
      `${dir}/remote.ts`,
      `
import { Client } from "http://${host}/mod.ts";
await using client = new Client(${JSON.stringify(rpc)}, { timeoutMs: 5000 });
console.log(JSON.stringify(await client.call("echo", "over http")));
`,
    );
    const out = await runChecked(Deno.execPath(), [
      "run",
      `--allow-import=${host}`,
      "--allow-net",
      "remote.ts",
    ], { cwd: dir });
    assert.equal(JSON.parse(out), "over http");
  } finally {
    await files.shutdown();
    await server.stop();
    await Deno.remove(dir, { recursive: true });
  }
});
