/**
 * What the network `deno bench` files share: lomq and its C libzmq peer started as real
 * processes for one workload of the peers harness, with this project's TypeScript client
 * calling both, so that a group's ratio compares the servers under the same client.
 *
 * Without the yardstick (no `../shared/yardstick`, no gcc or libzmq headers) the groups run
 * lomq alone and say so once.
 *
 * @module
 */

import { parseOptions } from "./peers/options.ts";
import { type Child, spawn, stop, stopAll } from "./peers/process.ts";
import { prepare, roleName, type Setup } from "./peers/setup.ts";
import { type RunSettings, startServer } from "./peers/measure.ts";
import type { Role } from "./peers/stats.ts";
import { WORKLOADS } from "./peers/workloads.ts";

/** A server started for a bench group. */
export interface Started {
  /** The name the bench shows: `lomq`, `csrv`, `csrv --router`, `cpub`. */
  name: string;
  uri: string;
  /** True for the group's baseline (the C libzmq peer). */
  baseline: boolean;
  child: Child;
}

const SETTINGS: RunSettings = { seconds: 3600, warmup: 0, startTimeout: 30, clkTck: 100 };

let setup: Setup | null | undefined;

async function getSetup(): Promise<Setup | null> {
  if (setup !== undefined) return setup;
  try {
    // Only lomq and the C peers: the bench needs no Python.
    setup = await prepare(parseOptions(["--only", "lomq,libzmq"]), () => {});
  } catch (e) {
    console.error(`(no C libzmq baseline: ${(e as Error).message.split("\n")[0]})`);
    setup = null;
  }
  return setup;
}

// Stopped when the bench file's isolate unloads; the signal is sent synchronously.
const children: Child[] = [];
globalThis.addEventListener("unload", () => {
  for (const child of children) {
    for (const pid of child.tree().keys()) {
      try {
        Deno.kill(pid, "SIGKILL");
      } catch {
        // gone already
      }
    }
  }
});

/** Stops everything the file started (call at the end of its last bench, or let unload do it). */
export async function stopServers(): Promise<void> {
  children.length = 0;
  await stopAll(1000);
}

/** Starts one server of peers-harness workload `id`; null when `role` is unavailable. */
export async function startOne(id: string, role: Role): Promise<Started | null> {
  const workload = WORKLOADS.find((w) => w.id === id);
  if (workload === undefined) throw new Error(`no workload ${id}`);
  const s = await getSetup();
  if (s === null) {
    return role === "lomq"
      ? await startLomqAlone(workload.load.kind === "publish" ? "publish" : "add")
      : null;
  }
  const { server, uri } = await startServer(s, role, workload, SETTINGS);
  children.push(server);
  return { name: roleName(role, workload), uri, baseline: role === "libzmq", child: server };
}

/** The servers of workload `id`: lomq, then the C peer as the baseline when available. */
export async function startFor(id: string): Promise<Started[]> {
  const started: Started[] = [];
  for (const role of ["lomq", "libzmq"] as Role[]) {
    const one = await startOne(id, role);
    if (one !== null) started.push(one);
  }
  return started;
}

/** Stops one server started here. */
export async function stopOne(server: Started): Promise<void> {
  const i = children.indexOf(server.child);
  if (i >= 0) children.splice(i, 1);
  await stop(server.child, 1000);
}

/** Whether the C peers are available (otherwise the groups run lomq alone). */
export async function hasBaseline(): Promise<boolean> {
  return (await getSetup()) !== null;
}

/** lomq from this checkout without the yardstick's help (no C tools built). */
async function startLomqAlone(script: "add" | "publish"): Promise<Started> {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = listener.addr.port;
  listener.close();
  const uri = `tcp://127.0.0.1:${port}`;
  const root = new URL("..", import.meta.url).pathname;
  const args = script === "add" ? [uri, "REP"] : [uri, "3600", "0"];
  const child = spawn("lomq", Deno.execPath(), [
    "run",
    "--allow-net",
    "--allow-read",
    "--allow-env",
    "main.ts",
    `bench/${script}.lua`,
    ...args,
  ], root);
  children.push(child);
  const deadline = Date.now() + 30_000;
  // Bounded by the deadline: polled every 20 ms.
  for (;;) {
    try {
      (await Deno.connect({ hostname: "127.0.0.1", port })).close();
      return { name: "lomq", uri, baseline: false, child };
    } catch {
      if (Date.now() > deadline || child.exit) {
        await stop(child);
        throw new Error(`lomq did not listen on ${uri}:\n${child.outputTail()}`);
      }
      await new Promise((r) => setTimeout(r, 20));
    }
  }
}
