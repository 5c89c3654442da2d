/**
 * `deno bench`: echo of a binary payload (10 B, 1 KB, 100 KB, 1 MB) by lomq's Lua `echo`
 * (bench/add.lua, a real process) against the C libzmq server csrv as each group's
 * baseline, one lockstep call per iteration from this project's TypeScript client.
 *
 * @module
 */

import { Client } from "../src/client/client.ts";
import { startFor, stopServers } from "./network.ts";

const SIZES: [string, number][] = [["10 B", 10], ["1 KB", 1000], ["100 KB", 100_000], [
  "1 MB",
  1_000_000,
]];

const servers = await startFor("echo-1k-1");
const opened: Client[] = [];

for (const [label, size] of SIZES) {
  // Not valid UTF-8, so that lomq answers with msgpack bin as csrv does.
  const payload = Uint8Array.from({ length: size }, (_, i) => (i * 31 + 7) & 0xff);
  for (const server of servers) {
    const client = new Client(server.uri);
    opened.push(client);
    Deno.bench(`${server.name}: echo ${label}`, {
      group: `echo ${label}`,
      baseline: server.baseline,
    }, async () => {
      const back = await client.call("echo", payload) as Uint8Array;
      if (back.length !== size) throw new Error(`echo returned ${back.length} bytes`);
    });
  }
}

let stopped = false;
Deno.bench("(stop the servers)", { group: "zz-teardown", n: 1, warmup: 0 }, async () => {
  // Deno runs even an n: 1 bench more than once: only the first stops anything.
  if (stopped) return;
  stopped = true;
  await Promise.all(opened.map((c) => c.close()));
  await stopServers();
});
