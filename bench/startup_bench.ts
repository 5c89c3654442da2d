/**
 * `deno bench`: start-up, from launching `deno run main.ts bench/add.lua URI` (warm module
 * cache) to its port accepting TCP. The baseline is the floor under it: `deno eval` of a
 * script that only listens. lomq's target is under 150 ms.
 *
 * @module
 */

import { freePort, spawn, stop, tcpOpen } from "./peers/process.ts";

const ROOT = new URL("..", import.meta.url).pathname;
const PERMISSIONS = ["--allow-net", "--allow-read", "--allow-env"];

/** Spawns the command (with URI and PORT filled in) and resolves once the port accepts TCP. */
async function launchToListening(args: (uri: string, port: number) => string[]): Promise<void> {
  const port = freePort();
  const child = spawn("server", Deno.execPath(), args(`tcp://127.0.0.1:${port}`, port), ROOT);
  try {
    const deadline = performance.now() + 30_000;
    // Bounded by the deadline: polled every millisecond or so.
    while (!(await tcpOpen(port))) {
      if (child.exit || performance.now() > deadline) {
        throw new Error(`nothing listened on ${port}:\n${child.outputTail()}`);
      }
      await new Promise((r) => setTimeout(r, 1));
    }
  } finally {
    await stop(child, 1000);
  }
}

const options = { group: "start-up, launch to listening", n: 10, warmup: 1 };

Deno.bench("deno eval: a script that only listens", { ...options, baseline: true }, async () => {
  await launchToListening((_, port) => [
    "eval",
    `for await (const c of Deno.listen({ hostname: "127.0.0.1", port: ${port} })) c.close();`,
  ]);
});

Deno.bench("lomq: deno run main.ts bench/add.lua", options, async () => {
  await launchToListening((uri) => ["run", ...PERMISSIONS, "main.ts", "bench/add.lua", uri]);
});
