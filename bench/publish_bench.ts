/**
 * `deno bench`: publishing. lomq runs bench/publish.lua (a Lua loop of `pub:send("t", i)`,
 * a real process) and the baseline is the C libzmq publisher cpub; one iteration is 10,000
 * messages delivered to a SUB socket of this process. Only the publisher being measured
 * runs. Loss (sequence numbers never seen) is counted and printed after the runs: a
 * publisher that drops at the high-water mark looks fast only if the loss is ignored.
 *
 * The subscriber here is this project's TypeScript SUB, which may be the slower end; the
 * peers harness (`deno task bench:peers --workloads publish`) counts with the C csub.
 *
 * @module
 */

import { createSocket, type Socket } from "../src/zmtp/mod.ts";
import { hasBaseline, type Started, startOne, stopOne } from "./network.ts";
import type { Role } from "./peers/stats.ts";

const BATCH = 10_000;

/** The sequence number at the start of a msgpack value: an integer, or an array's first. */
function sequence(b: Uint8Array): number {
  let p = b[0] >= 0x91 && b[0] <= 0x9f ? 1 : 0;
  const t = b[p++];
  if (t < 0x80) return t;
  const width = t === 0xcc ? 1 : t === 0xcd ? 2 : t === 0xce ? 4 : t === 0xcf ? 8 : 0;
  let v = 0;
  for (let i = 0; i < width; i++) v = v * 256 + b[p + i];
  return width === 0 ? -1 : v;
}

interface Counter {
  name: string;
  received: number;
  lost: number;
  last: number;
}

interface Running {
  key: string;
  server: Started;
  sub: Socket;
}

const counters: Counter[] = [];
let running: Running | undefined;

async function stopRunning(): Promise<void> {
  if (running === undefined) return;
  await running.sub.close(0);
  await stopOne(running.server);
  running = undefined;
}

/** One publisher at a time, so that none competes with the one measured. */
async function publisher(id: string, role: Role): Promise<Running> {
  const key = `${id} ${role}`;
  if (running?.key === key) return running;
  await stopRunning();
  const server = await startOne(id, role);
  if (server === null) throw new Error(`no ${role} publisher`);
  const sub = createSocket("SUB", { hwm: 100_000 });
  sub.subscribe("t");
  sub.connect(server.uri);
  running = { key, server, sub };
  return running;
}

const roles: Role[] = (await hasBaseline()) ? ["lomq", "libzmq"] : ["lomq"];

for (
  const [id, label] of [["publish-small", 'pub:send("t", i)'], [
    "publish-1k",
    'pub:send("t", {i, bin(1000)})',
  ]]
) {
  for (const role of roles) {
    const name = role === "lomq" ? "lomq" : "cpub";
    const counter: Counter = { name: `${name} ${label}`, received: 0, lost: 0, last: -1 };
    counters.push(counter);
    Deno.bench(`${name}: ${BATCH} x ${label} delivered`, {
      group: `publishing, ${id === "publish-small" ? "small values" : "1 KB values"}`,
      baseline: role === "libzmq",
    }, async (b) => {
      const { sub } = await publisher(id, role);
      b.start();
      for (let i = 0; i < BATCH; i++) {
        const frames = await sub.recv(10_000);
        if (frames === undefined) throw new Error(`${name}: nothing published for 10 s`);
        const seq = sequence(frames[1]);
        if (counter.last >= 0 && seq > counter.last + 1) counter.lost += seq - counter.last - 1;
        if (seq > counter.last) counter.last = seq;
        counter.received++;
      }
      b.end();
    });
  }
}

let stopped = false;
Deno.bench("(stop the publishers)", { group: "zz-teardown", n: 1, warmup: 0 }, async () => {
  // Deno runs even an n: 1 bench more than once: only the first stops anything.
  if (stopped) return;
  stopped = true;
  await stopRunning();
  for (const c of counters) {
    const share = c.received + c.lost > 0 ? (100 * c.lost) / (c.received + c.lost) : 0;
    console.log(`${c.name}: ${c.received} delivered, ${c.lost} lost (${share.toFixed(1)}%)`);
  }
});
