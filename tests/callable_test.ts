// What clients may call, and the memory cap: LuaOverMQ.expose, lomq serve --expose and
// --max-memory, through the TypeScript client against real lomq processes.
import assert from "node:assert/strict";
import { Client, RpcError } from "../mod.ts";
import { freePort, ROOT, startLomq, startServer } from "./helpers/lomq.ts";

const EXPOSED = `${ROOT}tests/fixtures/exposed.lua`;

/** The ERROR message of a call, or "OK" when it succeeded. */
async function outcome(client: Client, method: string, ...args: unknown[]): Promise<string> {
  try {
    await client.call(method, ...args);
    return "OK";
  } catch (error) {
    if (error instanceof RpcError) return error.message;
    throw error;
  }
}

Deno.test("LuaOverMQ.expose: only the listed names are callable; main stays out even if listed", async () => {
  const { lomq, uri } = await startServer(EXPOSED);
  const client = new Client(uri, { timeoutMs: 5000 });
  try {
    assert.equal(await client.call("add", 1, 2), 3);
    assert.deepEqual(await client.call("echo", "x", 2), ["x", 2]);
    assert.equal(await outcome(client, "secret"), "function 'secret' not found");
    assert.equal(await outcome(client, "main"), "function 'main' not found");
    assert.equal(await outcome(client, "OnStop"), "function 'OnStop' not found");
    assert.equal(await client.call("add", 2, 3), 5, "still serving");
  } finally {
    await client.close();
    await lomq.stop();
  }
});

Deno.test("lomq serve --expose narrows what the script exposes; --call-timeout stops a call", async () => {
  const port = freePort();
  const uri = `tcp://127.0.0.1:${port}`;
  const server = await startLomq(
    [
      "serve",
      `${ROOT}tests/fixtures/functions.lua`,
      "--rpc",
      uri,
      "--expose",
      "add,slow",
      "-t",
      "300",
    ],
    port,
  );
  const client = new Client(uri, { timeoutMs: 5000 });
  try {
    assert.equal(await client.call("add", 1, 2), 3);
    assert.equal(await outcome(client, "echo", 1), "function 'echo' not found");
    const started = Date.now();
    assert.equal(await outcome(client, "slow", 2000, "late"), "call 'slow' exceeded 300 ms");
    assert.ok(Date.now() - started < 1500, "the budget ended the call");
    assert.equal(await client.call("slow", 10, "in time"), "in time");
  } finally {
    await client.close();
    server.kill("SIGINT");
    const out = await server.finish();
    assert.equal(out.code, 0, out.stderr);
    assert.match(out.stderr, /call 'slow' exceeded 300 ms: stopped, and answered with ERROR/);
  }
});

Deno.test("--max-memory: a call past the cap gets 'not enough memory' and the next is served", async () => {
  const port = freePort();
  const uri = `tcp://127.0.0.1:${port}`;
  const server = await startLomq(["run", "--max-memory", "32", EXPOSED, uri], port);
  const client = new Client(uri, { timeoutMs: 20000 });
  try {
    assert.equal(await client.call("hog", 1000), 1000);
    assert.equal(await outcome(client, "hog", 1_000_000), "not enough memory");
    assert.equal(await client.call("add", 1, 2), 3);
    assert.equal(await client.call("hog", 1000), 1000, "the memory of the failed call came back");
  } finally {
    await client.close();
    await server.stop();
  }
});

Deno.test("a global reassigned between calls: each call gets what the global holds now", async () => {
  const { lomq, uri } = await startServer(`${ROOT}tests/fixtures/reassign.lua`);
  const client = new Client(uri, { timeoutMs: 5000 });
  const notFound = "function 'value' not found";
  try {
    assert.equal(await client.call("value"), 1);
    assert.equal(await client.call("value"), 1, "the same function twice");
    await client.call("replace", "lua");
    assert.equal(await client.call("value"), 2, "another Lua function under the name");
    await client.call("replace", "c");
    assert.equal(await outcome(client, "value"), notFound, "a C function is never callable");
    await client.call("replace", "other");
    assert.equal(await client.call("value"), 3);
    await client.call("replace", "stop");
    assert.equal(await outcome(client, "value"), notFound, "OnStop under another name");
    await client.call("replace", "table");
    assert.equal(await outcome(client, "value"), notFound, "not a function");
    await client.call("replace", "nil");
    assert.equal(await outcome(client, "value"), notFound, "gone");
    await client.call("replace", "lua");
    assert.equal(await client.call("value"), 2, "back again");
    // The name is looked up in the script's code page, which the script may switch.
    assert.equal(await outcome(client, "café"), "function 'café' not found");
    assert.equal(await client.call("encoding", "cp1252"), "cp1252");
    assert.equal(await client.call("café"), "cp1252 name");
    assert.equal(await client.call("encoding", "utf-8"), "utf-8");
    assert.equal(await outcome(client, "café"), "function 'café' not found");
  } finally {
    await client.close();
    await lomq.stop();
  }
});
