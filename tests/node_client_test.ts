// The client's Node.js build (clients/node): committed output matches the source, `npm install`
// works offline into a fresh folder, and Node.js calls a real lomq server through it.
import assert from "node:assert/strict";
import ts from "typescript";
import { buildNodePackage } from "../scripts/build_node.ts";
import {
  freePort,
  FUNCTIONS_SCRIPT,
  ROOT,
  runChecked,
  startLomq,
  startServe,
} from "./helpers/lomq.ts";
import { skipNode } from "./helpers/node.ts";
import { curveKeyPair, loadCurve } from "../src/zmtp/curve.ts";
import { z85Encode } from "../src/zmtp/z85.ts";
import { pythonForInterop, skipInterop } from "./helpers/python.ts";

const PACKAGE = `${ROOT}clients/node`;

Deno.test("clients/node is what `deno task build:node` makes of mod.ts (rebuild when this fails)", async () => {
  const files = await buildNodePackage();
  assert.ok(files.has("dist/index.js") && files.has("dist/types/mod.d.ts"));
  for (const [path, text] of files) {
    let committed: string | undefined;
    try {
      committed = (await Deno.readTextFile(`${PACKAGE}/${path}`)).replaceAll("\r\n", "\n");
    } catch {
      committed = undefined;
    }
    assert.ok(committed === text, `clients/node/${path} is stale: run 'deno task build:node'`);
  }
  const bundle = files.get("dist/index.js")!;
  // Nothing for npm to fetch: the only imports left are Node's own.
  const imports = [...bundle.matchAll(/\bimport\s*(?:\(|[^"'()]*from\s*)\s*["']([^"']+)["']/g)]
    .map((m) => m[1]);
  assert.deepEqual([...new Set(imports)], ["node:net"]);
  const pkg = JSON.parse(files.get("package.json")!);
  assert.equal(pkg.dependencies, undefined);
});

/** A fresh folder with clients/node installed by npm, offline. */
async function installed(): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "lomq-node-" });
  await Deno.writeTextFile(`${dir}/package.json`, '{ "private": true, "type": "module" }\n');
  // --install-links copies the package as a registry install would (a link would not show a
  // file missing from "files"); --offline proves nothing is fetched.
  await runChecked("npm", [
    "install",
    "--offline",
    "--install-links",
    "--no-audit",
    "--no-fund",
    "--loglevel=error",
    PACKAGE,
  ], { cwd: dir, env: { npm_config_cache: `${dir}/.npm-cache` } });
  return dir;
}

Deno.test({
  name: "node: npm install ./clients/node offline, then calls, errors, timeouts and a subscriber",
  ignore: skipNode,
  async fn() {
    const { server, rpc, pub } = await startServe();
    const dir = await installed();
    try {
      await Deno.writeTextFile(
        `${dir}/main.mjs`,
        `
import { Client, Float, RpcError, RpcTimeoutError, Subscriber } from "lomq-client";
const out = {};
const client = new Client(${JSON.stringify(rpc)}, { timeoutMs: 5000 });
out.add = await client.call("add", 1, 2);
out.multi = await client.call("echo", 1, "two", 3.5, null, [1, { a: 2 }]);
out.float = await client.call("float100");
out.exact = String(await client.call("maxint"));
out.binary = Array.from(await client.call("binary"));
out.concurrent = await Promise.all(Array.from({ length: 20 }, (_, i) => client.call("add", i, 100)));
try {
  await client.call("fail", "it broke");
} catch (error) {
  out.error = [error instanceof RpcError, error.message];
}
try {
  await client.call("nope");
} catch (error) {
  out.missing = error.message;
}
const sub = new Subscriber(${JSON.stringify(pub)}, ["node."]);
let message;
for (let i = 0; i < 50 && message === undefined; i++) {
  await client.call("announce", "node.tick", { i: new Float(1) });
  message = await sub.next(200);
}
out.sub = message && [message.topic, message.value];
await sub.close();
const gone = new Client("tcp://127.0.0.1:9", { timeoutMs: 200 });
try {
  await gone.call("add", 1, 2);
} catch (error) {
  out.timeout = [error instanceof RpcTimeoutError, error.connected];
}
await gone.close();
await client.close();
console.log(JSON.stringify(out));
`,
      );
      const stdout = await runChecked("node", ["main.mjs"], { cwd: dir });
      assert.deepEqual(JSON.parse(stdout), {
        add: 3,
        multi: [1, "two", 3.5, null, [1, { a: 2 }]],
        float: 100,
        exact: "9223372036854775807",
        binary: [0, 1, 255],
        concurrent: Array.from({ length: 20 }, (_, i) => i + 100),
        error: [true, "it broke"],
        missing: "function 'nope' not found",
        sub: ["node.tick", { i: 1 }],
        timeout: [true, false],
      });
    } finally {
      await server.stop();
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name:
    "node: the client outlives its server: a call while it is down times out, then it reconnects",
  ignore: skipNode,
  async fn() {
    const port = freePort();
    const rpc = `tcp://127.0.0.1:${port}`;
    const serve = () => startLomq(["serve", FUNCTIONS_SCRIPT, "--rpc", rpc], port);
    let server = await serve();
    const dir = await installed();
    try {
      // Each line on stdin, "TIMEOUT VALUE", asks for echo(VALUE); each answer is a line on stdout.
      await Deno.writeTextFile(
        `${dir}/main.mjs`,
        `
import { createInterface } from "node:readline";
import { Client } from "lomq-client";
const client = new Client(${
          JSON.stringify(rpc)
        }, { socket: { reconnectIvlMs: 50, reconnectIvlMaxMs: 200 } });
for await (const line of createInterface({ input: process.stdin })) {
  const [timeoutMs, value] = line.split(" ");
  try {
    console.log(JSON.stringify(await client.callWith({ timeoutMs: Number(timeoutMs) }, "echo", value)));
  } catch (error) {
    console.log(JSON.stringify(error.name));
  }
}
await client.close();
`,
      );
      const child = new Deno.Command("node", {
        args: ["main.mjs"],
        cwd: dir,
        stdin: "piped",
        stdout: "piped",
        stderr: "inherit",
      }).spawn();
      const writer = child.stdin.getWriter();
      const lines = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
      let buffered = "";
      const ask = async (timeoutMs: number, value: string): Promise<unknown> => {
        await writer.write(new TextEncoder().encode(`${timeoutMs} ${value}\n`));
        while (!buffered.includes("\n")) {
          const { value, done } = await lines.read();
          if (done) throw new Error("node exited");
          buffered += value;
        }
        const at = buffered.indexOf("\n");
        const line = buffered.slice(0, at);
        buffered = buffered.slice(at + 1);
        return JSON.parse(line);
      };
      try {
        assert.equal(await ask(10000, "first"), "first");
        await server.stop();
        assert.equal(await ask(300, "lost"), "RpcTimeoutError");
        server = await serve();
        // The timed-out request may reach the new server first: its reply is not taken for
        // the next call's.
        assert.equal(await ask(10000, "again"), "again");
        assert.equal(await ask(10000, "more"), "more");
      } finally {
        await writer.close();
        await lines.cancel();
        await child.status;
      }
    } finally {
      await server.stop();
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "node: a subscriber that does not read, under a pyzmq PUB flood, keeps its memory bounded",
  ignore: skipNode || skipInterop,
  async fn() {
    const python = (await pythonForInterop())!;
    const port = freePort();
    const uri = `tcp://127.0.0.1:${port}`;
    // 10 KB messages for 3 s, as fast as libzmq sends them (PUB drops what a slow peer
    // cannot take); bounded in count as well as time.
    const flood = new Deno.Command(python, {
      args: [
        "-c",
        `
import time, zmq
ctx = zmq.Context()
pub = ctx.socket(zmq.PUB)
pub.setsockopt(zmq.LINGER, 0)
pub.bind(${JSON.stringify(uri)})
body = b"x" * 10000
end = time.time() + 3
sent = 0
while time.time() < end and sent < 2000000:
    pub.send_multipart([b"flood", body])
    sent += 1
print(sent)
`,
      ],
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const dir = await installed();
    try {
      await Deno.writeTextFile(
        `${dir}/main.mjs`,
        `
import { Subscriber } from "lomq-client";
const sub = new Subscriber(${JSON.stringify(uri)}, [""]);
const first = await sub.next(5000);
const before = process.memoryUsage().rss;
await new Promise((resolve) => setTimeout(resolve, 2000)); // not reading
const grew = process.memoryUsage().rss - before;
const after = await sub.next(5000);
await sub.close();
console.log(JSON.stringify({ first: first?.topic, grew, after: after?.topic }));
`,
      );
      const out = JSON.parse(await runChecked("node", ["main.mjs"], { cwd: dir }));
      const sent = Number(new TextDecoder().decode((await flood.output()).stdout));
      assert.equal(out.first, "flood");
      assert.equal(out.after, "flood");
      // The socket queues at most its HWM (1000 messages, 10 MB); Node buffers one
      // high-water mark of bytes behind it, because the stream is read only on demand.
      assert.ok(out.grew < 64 * 1024 * 1024, `grew ${out.grew} bytes while ${sent} were sent`);
      assert.ok(sent > 10000, `only ${sent} messages sent`);
    } finally {
      try {
        flood.kill("SIGKILL");
      } catch {
        // finished
      }
      await flood.status;
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "node: the package's types check a strict TypeScript program, and catch a misuse",
  ignore: skipNode,
  async fn() {
    const dir = await installed();
    try {
      const good = `${dir}/good.ts`;
      await Deno.writeTextFile(
        good,
        `
import { Client, type ClientOptions, Float, RpcError, Subscriber } from "lomq-client";
const options: ClientOptions = { timeoutMs: 1000, maps: "map", socket: { hwm: 10 } };
const client = new Client("tcp://127.0.0.1:8004", options);
const result: unknown = await client.call("echo", new Float(1), 2n, new Uint8Array(1));
const sub = new Subscriber("tcp://127.0.0.1:8005", ["a"]);
const next = await sub.next(10);
const topic: string | undefined = next?.topic;
export { result, topic, RpcError };
`,
      );
      const bad = `${dir}/bad.ts`;
      await Deno.writeTextFile(
        bad,
        `
import { Client } from "lomq-client";
new Client("tcp://127.0.0.1:8004", { timeoutMs: "soon" });
`,
      );
      const check = (file: string) => {
        const program = ts.createProgram([file], {
          strict: true,
          noEmit: true,
          skipLibCheck: false,
          target: ts.ScriptTarget.ES2022,
          module: ts.ModuleKind.NodeNext,
          moduleResolution: ts.ModuleResolutionKind.NodeNext,
          lib: ["lib.es2022.d.ts", "lib.esnext.disposable.d.ts", "lib.dom.d.ts"],
          types: [],
        });
        return ts.getPreEmitDiagnostics(program).map((d) =>
          `${d.file?.fileName ?? ""}: ${ts.flattenDiagnosticMessageText(d.messageText, "\n")}`
        );
      };
      assert.deepEqual(check(good), []);
      const problems = check(bad);
      assert.equal(problems.length, 1, problems.join("\n"));
      assert.match(problems[0], /bad\.ts: Type 'string' is not assignable to type 'number'/);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name:
    "node: CURVE from Node.js (libsodium inside the bundle): served with the server key, not without",
  ignore: skipNode,
  async fn() {
    await loadCurve();
    const pair = curveKeyPair();
    const dir = await installed();
    const keyFile = `${dir}/server.key`;
    await Deno.writeTextFile(keyFile, `${z85Encode(pair.secretKey)}\n`, { mode: 0o600 });
    const port = freePort();
    const rpc = `tcp://127.0.0.1:${port}`;
    const server = await startLomq(
      ["serve", FUNCTIONS_SCRIPT, "--rpc", rpc, "--curve-secret-file", keyFile],
      port,
    );
    try {
      await Deno.writeTextFile(
        `${dir}/curve.mjs`,
        `
import { Client, RpcTimeoutError } from "lomq-client";
const out = {};
const client = new Client(${JSON.stringify(rpc)}, {
  timeoutMs: 5000,
  curve: { serverKey: ${JSON.stringify(z85Encode(pair.publicKey))} },
});
out.add = await client.call("add", 1, 2);
out.listed = (await client.functions()).some((f) => f.name === "add");
await client.close();
const plain = new Client(${JSON.stringify(rpc)}, { timeoutMs: 500 });
try {
  await plain.call("add", 1, 2);
} catch (error) {
  out.plain = error instanceof RpcTimeoutError;
}
await plain.close();
console.log(JSON.stringify(out));
`,
      );
      const stdout = await runChecked("node", ["curve.mjs"], { cwd: dir });
      assert.deepEqual(JSON.parse(stdout), { add: 3, listed: true, plain: true });
    } finally {
      await server.stop();
      await Deno.remove(dir, { recursive: true });
    }
  },
});
