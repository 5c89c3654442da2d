/**
 * Measuring one run: start a server for a workload, load it with the yardstick's cload or
 * count what reaches csub, sample the server's CPU time from /proc, stop everything. Also
 * the two sections beside the table: start-up time and idle CPU.
 *
 * @module
 */

import { BenchError } from "./errors.ts";
import {
  type Child,
  freePort,
  spawn,
  stop,
  tcpOpen,
  TIMEOUT,
  treePeakRssMb,
  treeTicks,
  within,
} from "./process.ts";
import { type Command, roleName, serverCommand, type Setup } from "./setup.ts";
import type { Role, Sample } from "./stats.ts";
import { type CloadLoad, type Workload, WORKLOADS } from "./workloads.ts";

/** What one cload run printed. */
export interface CloadResult {
  calls: number;
  seconds: number;
  rps: number;
  p50Us: number;
  p99Us: number;
  clients: number;
}

/** What one csub run printed. */
export interface CsubResult {
  received: number;
  seconds: number;
  mps: number;
  gaps: number;
  lost: number;
  reordered: number;
}

function fields(text: string, keys: string[]): Map<string, number> | null {
  const found = new Map<string, number>();
  for (const m of text.matchAll(/(\w+)=([0-9.]+)/g)) found.set(m[1], Number(m[2]));
  return keys.every((k) => Number.isFinite(found.get(k))) ? found : null;
}

/** Parses cload's `calls= seconds= rps= p50_us= p99_us= clients=` line; null if absent. */
export function parseCloadLine(text: string): CloadResult | null {
  const f = fields(text, ["calls", "seconds", "rps", "p50_us", "p99_us", "clients"]);
  if (f === null) return null;
  const get = (k: string) => f.get(k) as number;
  return {
    calls: get("calls"),
    seconds: get("seconds"),
    rps: get("rps"),
    p50Us: get("p50_us"),
    p99Us: get("p99_us"),
    clients: get("clients"),
  };
}

/** Parses csub's `received= seconds= mps= mbps= gaps= lost= reordered=` line; null if absent. */
export function parseCsubLine(text: string): CsubResult | null {
  const f = fields(text, ["received", "seconds", "mps", "gaps", "lost", "reordered"]);
  if (f === null) return null;
  const get = (k: string) => f.get(k) as number;
  return {
    received: get("received"),
    seconds: get("seconds"),
    mps: get("mps"),
    gaps: get("gaps"),
    lost: get("lost"),
    reordered: get("reordered"),
  };
}

/** The run's timing settings. */
export interface RunSettings {
  seconds: number;
  warmup: number;
  startTimeout: number;
  clkTck: number;
}

/** A workload the server cannot serve (lomq without CURVE yet): the row is skipped, not failed. */
export class Unsupported extends Error {
  /** @param message why the row is skipped */
  constructor(message: string) {
    super(message);
    this.name = "Unsupported";
  }
}

/** Runs a yardstick tool to completion, bounded in time; its stdout, or a BenchError. */
async function runTool(label: string, cmd: string, args: string[], boundS: number) {
  const child = spawn(label, cmd, args, "/");
  try {
    const status = await within(child.status, boundS * 1000);
    if (status === TIMEOUT) throw new BenchError(`${label} did not finish within ${boundS} s`);
    await within(child.drained, 1000);
    if (!status.success) {
      throw new BenchError(
        `${label} ${child.describeExit()}: ${
          child.stderr.lastLines(5) || child.stdout.lastLines(5)
        }`,
      );
    }
    return child.stdout.text;
  } finally {
    await stop(child);
  }
}

function cloadArgs(setup: Setup, load: CloadLoad, uri: string, clients: number, s: number) {
  const args = [uri, String(clients), String(s), ...load.args];
  if (load.curve && setup.curve) args.push("--curve", setup.curve.public);
  return args;
}

/** Runs cload; throws with its stderr when it fails. */
async function runCload(
  setup: Setup,
  load: CloadLoad,
  uri: string,
  clients: number,
  seconds: number,
): Promise<CloadResult> {
  // cload waits at most 5 s per reply, then fails: its own run plus that is the bound.
  const text = await runTool(
    "cload",
    setup.tools.cload,
    cloadArgs(setup, load, uri, clients, seconds),
    seconds + 15,
  );
  const result = parseCloadLine(text);
  if (!result) throw new BenchError(`cload printed no result: ${text.slice(-300)}`);
  return result;
}

function startFailure(name: string, command: Command, server: Child, uri: string, why: string) {
  return new BenchError(
    `${name} failed to start on ${uri}: ${why}\n` +
      `command: ${server.command.join(" ")} (in ${command.cwd})\n${server.outputTail()}`,
  );
}

/** Polls until the port accepts TCP, the server exits or the deadline passes. */
async function waitListening(server: Child, port: number, deadline: number): Promise<boolean> {
  // Bounded by the deadline; each pass costs at most 1 s (connect) + 2 ms.
  while (!server.exit && performance.now() < deadline) {
    if (await tcpOpen(port)) return true;
    await within(server.status, 2);
  }
  return false;
}

/**
 * Starts `role`'s server for `workload` on a free port and waits until it listens; for an
 * RPC workload also until a 0.2 s cload run gets correct answers.
 */
export async function startServer(
  setup: Setup,
  role: Role,
  workload: Workload,
  settings: RunSettings,
): Promise<{ server: Child; uri: string }> {
  const name = roleName(role, workload);
  for (let attempt = 1; attempt <= 3; attempt++) {
    const port = freePort();
    const uri = `tcp://127.0.0.1:${port}`;
    // A publisher runs a little longer than csub counts, so csub never waits past the end.
    const command = serverCommand(setup, role, workload, uri, settings.seconds + 1);
    const server = spawn(name, command.cmd, command.args, command.cwd);
    try {
      const deadline = performance.now() + settings.startTimeout * 1000;
      const listening = await waitListening(server, port, deadline);
      if (server.exit) {
        await within(server.drained, 500);
        if (attempt < 3 && /in use/i.test(server.stderr.text)) {
          await stop(server);
          continue;
        }
        if (/unknown socket option 'curve/.test(server.stderr.text)) {
          throw new Unsupported(`${name} does not support CURVE yet (no curve_server option)`);
        }
        throw startFailure(name, command, server, uri, `${server.describeExit()} before listening`);
      }
      if (!listening) {
        throw startFailure(name, command, server, uri, `nothing listened in time`);
      }
      if (workload.load.kind === "cload") {
        try {
          // A TCP accept is not an answer: one short cload run proves the protocol works.
          await runCload(setup, workload.load, uri, 1, 0.2);
        } catch (e) {
          const why = e instanceof Error ? e.message : String(e);
          throw startFailure(name, command, server, uri, `it listens but does not answer: ${why}`);
        }
      }
      return { server, uri };
    } catch (e) {
      await stop(server);
      throw e;
    }
  }
  throw new BenchError(`${name}: no free port after 3 attempts`);
}

function cpuSeconds(t0: number | null, t1: number | null, clkTck: number): number | null {
  return t0 !== null && t1 !== null ? (t1 - t0) / clkTck : null;
}

type Measured = Omit<Sample, "workload" | "role" | "round" | "cpuUsPerOp" | "rssMb"> & {
  cpuS: number | null;
};

/** Warm-up, then a measured cload run with the server's CPU time sampled around it. */
async function loadRpc(
  setup: Setup,
  load: CloadLoad,
  server: Child,
  uri: string,
  settings: RunSettings,
): Promise<Measured> {
  if (settings.warmup > 0) await runCload(setup, load, uri, load.clients, settings.warmup);
  const ticks0 = treeTicks(server);
  const r = await runCload(setup, load, uri, load.clients, settings.seconds);
  return {
    count: r.calls,
    rate: r.rps,
    p50Us: r.p50Us,
    p99Us: r.p99Us,
    lost: null,
    gaps: null,
    cpuS: cpuSeconds(ticks0, treeTicks(server), settings.clkTck),
  };
}

/** csub counts `seconds` from its first message; the publisher waits a second for it. */
async function loadPublish(
  setup: Setup,
  server: Child,
  uri: string,
  settings: RunSettings,
): Promise<Measured> {
  const ticks0 = treeTicks(server);
  const args = [uri, String(settings.seconds), "t"];
  const text = await runTool("csub", setup.tools.csub, args, settings.seconds + 25);
  const r = parseCsubLine(text);
  if (r === null) throw new BenchError(`csub printed no result: ${text.slice(-300)}`);
  return {
    count: r.received,
    rate: r.mps,
    p50Us: null,
    p99Us: null,
    lost: r.lost,
    gaps: r.gaps,
    cpuS: cpuSeconds(ticks0, treeTicks(server), settings.clkTck),
  };
}

/** One measured run of `role` on `workload`. */
export async function measure(
  setup: Setup,
  role: Role,
  workload: Workload,
  round: number,
  settings: RunSettings,
): Promise<Sample> {
  const load = workload.load;
  const { server, uri } = await startServer(setup, role, workload, settings);
  try {
    let m: Measured;
    try {
      m = load.kind === "cload"
        ? await loadRpc(setup, load, server, uri, settings)
        : await loadPublish(setup, server, uri, settings);
    } catch (e) {
      const why = e instanceof Error ? e.message : String(e);
      throw new BenchError(
        `${roleName(role, workload)} failed under ${workload.title} ` +
          `(server ${server.describeExit()}): ${why}\n${server.outputTail()}`,
      );
    }
    const { cpuS, ...rest } = m;
    return {
      workload: workload.id,
      role,
      round,
      ...rest,
      cpuUsPerOp: cpuS !== null && m.count > 0 ? (cpuS * 1e6) / m.count : null,
      rssMb: treePeakRssMb(server),
    };
  } finally {
    await stop(server);
  }
}

/**
 * The lockstep workload the start-up and idle sections start their servers with, also when
 * the rows chosen with --workloads leave it out.
 */
function lockstep(): Workload {
  const w = WORKLOADS.find((w) => w.id === "lockstep-1");
  if (w === undefined) throw new Error("internal: no lockstep-1 workload");
  return w;
}

/** Milliseconds from spawning `role`'s server to its port accepting TCP (no call made). */
export async function measureStartup(
  setup: Setup,
  role: Role,
  settings: RunSettings,
): Promise<number> {
  const workload = lockstep();
  const port = freePort();
  const uri = `tcp://127.0.0.1:${port}`;
  const command = serverCommand(setup, role, workload, uri, settings.seconds);
  const t0 = performance.now();
  const server = spawn(roleName(role, workload), command.cmd, command.args, command.cwd);
  try {
    const listening = await waitListening(server, port, t0 + settings.startTimeout * 1000);
    const ms = performance.now() - t0;
    if (!listening) {
      throw startFailure(roleName(role, workload), command, server, uri, "it never listened");
    }
    return ms;
  } finally {
    await stop(server);
  }
}

/** What the idle section found for one server. */
export interface IdleResult {
  role: Role;
  clients: number;
  seconds: number;
  /** CPU time over wall time, in percent of one core; null without /proc. */
  cpuPercent: number | null;
}

/** How many clients the idle section connects, and their heartbeat interval. */
export const IDLE_CLIENTS = 100;
const IDLE_HEARTBEAT_MS = 1000;
/**
 * /proc counts CPU time in 10 ms ticks: over 20 s one tick is 0.05% of a core, a tenth of the
 * target (0.5%); over 5 s it was 0.2%, and the readings jumped by that much.
 */
const IDLE_MIN_SECONDS = 20;

/**
 * CPU of a server holding {@linkcode IDLE_CLIENTS} connected clients that send a heartbeat
 * every second, and nothing else, over `seconds` (at least {@linkcode IDLE_MIN_SECONDS}).
 */
export async function measureIdle(
  setup: Setup,
  role: Role,
  settings: RunSettings,
): Promise<IdleResult> {
  // The clients are this project's own DEALERs, in this process: heartbeats are ZMTP PINGs.
  const { createSocket } = await import("../../src/zmtp/mod.ts");
  const { server, uri } = await startServer(setup, role, lockstep(), settings);
  const sockets = [];
  try {
    for (let i = 0; i < IDLE_CLIENTS; i++) {
      const socket = createSocket("DEALER", { heartbeatIvlMs: IDLE_HEARTBEAT_MS });
      sockets.push(socket);
      socket.connect(uri);
    }
    const deadline = performance.now() + 10_000;
    // Bounded by the deadline, polled every 50 ms.
    while (sockets.some((s) => s.peerCount === 0) && performance.now() < deadline) {
      await new Promise((r) => setTimeout(r, 50));
    }
    if (sockets.some((s) => s.peerCount === 0)) {
      throw new BenchError(`idle: not all ${IDLE_CLIENTS} clients connected to ${uri} in 10 s`);
    }
    await new Promise((r) => setTimeout(r, 1000));
    const seconds = Math.max(IDLE_MIN_SECONDS, settings.seconds);
    const t0 = performance.now();
    const ticks0 = treeTicks(server);
    await new Promise((r) => setTimeout(r, seconds * 1000));
    const cpu = cpuSeconds(ticks0, treeTicks(server), settings.clkTck);
    const wall = (performance.now() - t0) / 1000;
    return {
      role,
      clients: IDLE_CLIENTS,
      seconds: wall,
      cpuPercent: cpu === null ? null : (cpu / wall) * 100,
    };
  } finally {
    await Promise.all(sockets.map((s) => s.close(0)));
    await stop(server);
  }
}
