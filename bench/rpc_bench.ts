/**
 * `deno bench`: RPC round trips against lomq serving bench/add.lua as a real process, each
 * group with the C libzmq server (the yardstick's csrv) as its baseline, both called by this
 * project's TypeScript client (src/client). The peers harness (`deno task bench:peers`)
 * measures the same pairs with the C load generator instead.
 *
 * - lockstep, 1 connection: one `add(1, 2)` per iteration;
 * - lockstep, 8 connections: 8 clients each make one call, together;
 * - pipelined: 64 calls in flight on one connection (lomq's ROUTER, `csrv --router`).
 *
 * @module
 */

import { Client } from "../src/client/client.ts";
import { DELIMITER } from "../src/rpc/wire.ts";
import { createSocket, type Socket } from "../src/zmtp/mod.ts";
import { startFor, stopServers } from "./network.ts";

const lockstep = await startFor("lockstep-1");
const pipelined = await startFor("pipelined-1");

function clients(uri: string, n: number): Client[] {
  return Array.from({ length: n }, () => new Client(uri));
}

const opened: Client[] = [];

for (const server of lockstep) {
  const [one] = clients(server.uri, 1);
  const eight = clients(server.uri, 8);
  opened.push(one, ...eight);
  Deno.bench(`${server.name}: add(1, 2), 1 connection`, {
    group: "lockstep, 1 connection",
    baseline: server.baseline,
  }, async () => {
    await one.call("add", 1, 2);
  });
  Deno.bench(`${server.name}: 8 x add(1, 2), 8 connections`, {
    group: "lockstep, 8 connections",
    baseline: server.baseline,
  }, async () => {
    await Promise.all(eight.map((c) => c.call("add", 1, 2)));
  });
}

// csrv --router takes only a bare `["", body]` envelope (the client's call ids would be
// dropped), so pipelining uses a plain DEALER: 64 requests out, 64 replies back in order.
const ADD_1_2 = new Uint8Array([0x93, 0xa3, 0x61, 0x64, 0x64, 0x01, 0x02]);
const dealers: Socket[] = [];
for (const server of pipelined) {
  const dealer = createSocket("DEALER");
  dealers.push(dealer);
  dealer.connect(server.uri);
  Deno.bench(`${server.name}: 64 x add(1, 2) in flight, 1 connection`, {
    group: "pipelined, 64 in flight",
    baseline: server.baseline,
  }, async () => {
    for (let i = 0; i < 64; i++) {
      if (!(await dealer.send([DELIMITER, ADD_1_2], 5000))) throw new Error("send failed");
    }
    for (let i = 0; i < 64; i++) {
      const reply = await dealer.recv(5000);
      if (reply === undefined || reply[2][0] !== 3) throw new Error("no reply, or not 3");
    }
  });
}

let stopped = false;
Deno.bench("(stop the servers)", { group: "zz-teardown", n: 1, warmup: 0 }, async () => {
  // Deno runs even an n: 1 bench more than once: only the first stops anything.
  if (stopped) return;
  stopped = true;
  await Promise.all([...opened.map((c) => c.close()), ...dealers.map((d) => d.close(0))]);
  await stopServers();
});
