/**
 * `deno bench`: the in-process cost of one request, without the network: lomq's dispatcher
 * (msgpack decoded straight onto the Lua stack and encoded from it, through wasmoon's raw
 * C API) against the naive path as each group's baseline (msgpackr to JavaScript values,
 * then wasmoon's high-level API to call the Lua function and to convert its result back).
 *
 * Groups: `add(1, 2)`, a 10-field map in and out (`echo`), a 1 KB string in and out.
 *
 * @module
 */

import { pack, unpack } from "msgpackr";
import { LuaFactory } from "wasmoon";
import { InProcessServer } from "../tests/helpers/fuzz.ts";

const SCRIPT = new URL("./add.lua", import.meta.url).pathname;
const lomq = await InProcessServer.create(SCRIPT);

// The same functions as bench/add.lua, for an engine that has no LuaOverMQ module.
const naive = await new LuaFactory().createEngine();
await naive.doString(`
  function add(a, b) return a + b end
  function echo(x) return x end
`);
const OK = new TextEncoder().encode("OK");

/** msgpackr + wasmoon's high-level API: what one would write without lomq's codec. */
function naiveHandle(body: Uint8Array): Uint8Array[] {
  const [method, ...args] = unpack(body) as [string, ...unknown[]];
  const fn = naive.global.get(method) as (...a: unknown[]) => unknown;
  return [OK, pack(fn(...args))];
}

function lomqHandle(body: Uint8Array): Uint8Array[] {
  const reply = lomq.dispatcher.handle([body], 0);
  if (reply instanceof Promise) throw new Error("a bench call paused");
  return reply;
}

const map: Record<string, unknown> = {};
for (let i = 1; i <= 10; i++) map[`field${i}`] = i % 3 === 0 ? `value ${i}` : i * 1.5;

/** JSON with sorted keys: a Lua table's order is not the order its fields were sent in. */
function canonical(value: unknown): string {
  if (value === null || typeof value !== "object") return JSON.stringify(value);
  const entries = Object.entries(value as Record<string, unknown>).sort(([a], [b]) =>
    a < b ? -1 : 1
  );
  return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonical(v)}`).join(",")}}`;
}

/**
 * A request body as the server gets one: a plain Uint8Array (msgpackr's Buffer would send
 * every view the codec makes of it through Node's Buffer code).
 */
function request(value: unknown[]): Uint8Array {
  return new Uint8Array(pack(value));
}

const CASES: [string, Uint8Array][] = [
  ["add(1, 2)", request(["add", 1, 2])],
  ["a 10-field map in and out", request(["echo", map])],
  ["a 1 KB string in and out", request(["echo", "x".repeat(1000)])],
];

for (const [label, body] of CASES) {
  // Both paths must give the same answer, or the comparison means nothing.
  const want = canonical(unpack(naiveHandle(body)[1]));
  const got = canonical(unpack(lomqHandle(body)[1]));
  if (want !== got) throw new Error(`${label}: lomq answered ${got}, the naive path ${want}`);
  Deno.bench(`naive (msgpackr + wasmoon API): ${label}`, {
    group: label,
    baseline: true,
  }, () => {
    naiveHandle(body);
  });
  Deno.bench(`lomq dispatcher: ${label}`, { group: label }, () => {
    lomqHandle(body);
  });
}
