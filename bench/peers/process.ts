/**
 * Process supervision for the peers harness: spawning children with the tails of their
 * output, stopping them (and whatever they started) for sure, and reading their CPU time
 * and peak memory from /proc.
 *
 * Every child is registered from spawn until it has been stopped, so that an error or
 * Ctrl+C anywhere can still clean up ({@linkcode stopAll}, {@linkcode onInterrupt}).
 *
 * @module
 */

import { BenchError } from "./errors.ts";

const STOP_GRACE_MS = 3000;
const TAIL_CHARS = 8192;

// been stopped, so that an error or Ctrl+C anywhere can still clean up.

/** Keeps the last characters of a stream, enough to explain a failure. */
export class Tail {
  #text = "";
  push(chunk: string): void {
    this.#text += chunk;
    // Trim lazily so a chatty child costs amortised O(1) per chunk.
    if (this.#text.length > 2 * TAIL_CHARS) this.#text = this.#text.slice(-TAIL_CHARS);
  }
  get text(): string {
    return this.#text.slice(-TAIL_CHARS);
  }
  lastLines(n: number): string {
    return this.text.trimEnd().split("\n").slice(-n).join("\n");
  }
}

async function drain(stream: ReadableStream<Uint8Array>, tail: Tail): Promise<void> {
  try {
    for await (const chunk of stream.pipeThrough(new TextDecoderStream())) tail.push(chunk);
  } catch {
    // The stream errors when the child is killed mid-write: the tail so far is what we have.
  }
}

/** What /proc/PID/stat says about a process. */
export interface ProcInfo {
  ppid: number;
  ticks: number;
  start: number;
}

/** Whether /proc is there to read CPU time and memory from (Linux). */
export const HAS_PROC = (() => {
  try {
    return Deno.statSync("/proc/self/stat").isFile;
  } catch {
    return false;
  }
})();

/** The parent, CPU ticks and start time of a live process; null when gone or a zombie. */
export function procInfo(pid: number): ProcInfo | null {
  try {
    const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
    // The command name (field 2) may hold spaces and parentheses: split after the last ')'.
    const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    if (f[0] === "Z") return null;
    // f[0] is field 3 (state): ppid is field 4, utime 14, stime 15, starttime 22.
    return { ppid: Number(f[1]), ticks: Number(f[11]) + Number(f[12]), start: Number(f[19]) };
  } catch {
    return null;
  }
}

/** The pid and its live descendants, each with its start time (guards against pid reuse). */
function processTree(pid: number): Map<number, number> {
  const tree = new Map<number, number>();
  const root = procInfo(pid);
  if (!root) return tree;
  tree.set(pid, root.start);
  const children = new Map<number, { pid: number; start: number }[]>();
  try {
    for (const entry of Deno.readDirSync("/proc")) {
      const p = Number(entry.name);
      if (!Number.isInteger(p)) continue;
      const info = procInfo(p);
      if (!info) continue;
      const list = children.get(info.ppid) ?? [];
      list.push({ pid: p, start: info.start });
      children.set(info.ppid, list);
    }
  } catch {
    return tree;
  }
  const queue = [pid];
  // Bounded by the number of processes listed: each is enqueued at most once.
  while (queue.length > 0) {
    for (const c of children.get(queue.shift() as number) ?? []) {
      if (!tree.has(c.pid)) {
        tree.set(c.pid, c.start);
        queue.push(c.pid);
      }
    }
  }
  return tree;
}

function aliveAs(pid: number, start: number): boolean {
  return procInfo(pid)?.start === start;
}

/** A spawned child with the tails of its output and the processes it started. */
export class Child {
  readonly pid: number;
  readonly stdout = new Tail();
  readonly stderr = new Tail();
  readonly status: Promise<Deno.CommandStatus>;
  readonly drained: Promise<void>;
  exit: Deno.CommandStatus | null = null;
  /** Descendants seen so far, so they can be stopped even after their parent died. */
  readonly known = new Map<number, number>();

  constructor(readonly label: string, readonly command: string[], proc: Deno.ChildProcess) {
    this.pid = proc.pid;
    this.drained = Promise.all([drain(proc.stdout, this.stdout), drain(proc.stderr, this.stderr)])
      .then(() => {});
    this.status = proc.status.then((s) => (this.exit = s));
  }

  /** Refreshes and returns the live process tree (just the pid without /proc). */
  tree(): Map<number, number> {
    if (!HAS_PROC) return new Map(this.exit ? [] : [[this.pid, 0]]);
    const tree = processTree(this.pid);
    for (const [p, s] of tree) this.known.set(p, s);
    return tree;
  }

  describeExit(): string {
    const s = this.exit;
    if (!s) return "still running";
    return s.signal ? `killed by ${s.signal}` : `exited with code ${s.code}`;
  }

  /** The last lines of stderr (and stdout when it has anything), for error messages. */
  outputTail(lines = 20): string {
    const parts: string[] = [];
    const err = this.stderr.lastLines(lines);
    const out = this.stdout.lastLines(lines);
    parts.push(`--- last lines of ${this.label}'s stderr ---\n${err || "(empty)"}`);
    if (out) parts.push(`--- last lines of ${this.label}'s stdout ---\n${out}`);
    return parts.join("\n");
  }
}

const live = new Set<Child>();
let interrupted = false;

/** What {@linkcode within} resolves with when the time ran out. */
export const TIMEOUT = Symbol("timeout");

/** Races `p` against a timer that is cleared either way (a pending timer would keep Deno alive). */
export async function within<T>(p: Promise<T>, ms: number): Promise<T | typeof TIMEOUT> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<typeof TIMEOUT>((r) => (timer = setTimeout(() => r(TIMEOUT), ms)));
  try {
    return await Promise.race([p, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** Starts a child with piped output, registered until {@linkcode stop}ped. */
export function spawn(
  label: string,
  cmd: string,
  args: string[],
  cwd: string,
  env: Record<string, string> = {},
): Child {
  if (interrupted) throw new BenchError("interrupted");
  let proc: Deno.ChildProcess;
  try {
    proc = new Deno.Command(cmd, {
      args,
      cwd,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
      // Plain error text in the tails; no update check phoning home from a deno child.
      env: { NO_COLOR: "1", DENO_NO_UPDATE_CHECK: "1", ...env },
    }).spawn();
  } catch (e) {
    const why = e instanceof Deno.errors.NotFound ? "command not found" : String(e);
    throw new BenchError(`${label}: cannot start ${cmd}: ${why}`);
  }
  const child = new Child(label, [cmd, ...args], proc);
  live.add(child);
  return child;
}

/** Sends a signal, ignoring a process that is already gone. */
export function signal(pid: number, sig: Deno.Signal): void {
  try {
    Deno.kill(pid, sig);
  } catch {
    // Already gone: nothing to stop.
  }
}

/** SIGTERM to the child and its descendants, SIGKILL to what is left after the grace period. */
export async function stop(child: Child, graceMs = STOP_GRACE_MS): Promise<void> {
  if (!live.has(child)) return;
  child.tree();
  const others = [...child.known].filter(([p]) => p !== child.pid);
  if (!child.exit) signal(child.pid, "SIGTERM");
  for (const [p, s] of others) if (aliveAs(p, s)) signal(p, "SIGTERM");
  const deadline = Date.now() + graceMs;
  const gone = () => !!child.exit && others.every(([p, s]) => !aliveAs(p, s));
  // Bounded by the grace period, polled every 25 ms.
  while (!gone() && Date.now() < deadline) await within(child.status, 25);
  if (!child.exit) signal(child.pid, "SIGKILL");
  for (const [p, s] of others) if (aliveAs(p, s)) signal(p, "SIGKILL");
  if ((await within(child.status, 2000)) === TIMEOUT) {
    console.error(`warning: ${child.label} (pid ${child.pid}) did not exit after SIGKILL`);
  }
  // A grandchild holding the pipes open must not hang us: the tails are best effort.
  await within(child.drained, 500);
  live.delete(child);
}

/** Stops every live child; repeated because a step may spawn while we stop (bounded). */
export async function stopAll(graceMs = STOP_GRACE_MS): Promise<void> {
  for (let pass = 0; pass < 3 && live.size > 0; pass++) {
    await Promise.all([...live].map((c) => stop(c, graceMs)));
  }
}

/** The output of a short command, trimmed; null when it fails or cannot start. */
export async function output(cmd: string, args: string[]): Promise<string | null> {
  try {
    const out = await new Deno.Command(cmd, { args, stdin: "null", stderr: "null" }).output();
    return out.success ? new TextDecoder().decode(out.stdout).trim() : null;
  } catch {
    return null;
  }
}

export async function succeeds(cmd: string, args: string[], stdin?: string): Promise<boolean> {
  try {
    const proc = new Deno.Command(cmd, {
      args,
      stdin: stdin === undefined ? "null" : "piped",
      stdout: "null",
      stderr: "null",
    }).spawn();
    if (stdin !== undefined) {
      const w = proc.stdin.getWriter();
      await w.write(new TextEncoder().encode(stdin));
      await w.close();
    }
    return (await within(proc.status, 30_000)) !== TIMEOUT && (await proc.status).success;
  } catch {
    return false;
  }
}

/** CPU ticks (user + system) of the child and its descendants; null without /proc. */
export function treeTicks(child: Child): number | null {
  if (!HAS_PROC) return null;
  let ticks = 0;
  for (const pid of child.tree().keys()) ticks += procInfo(pid)?.ticks ?? 0;
  return ticks;
}

/** Peak resident set (VmHWM) of the child and its descendants in MiB; null without /proc. */
export function treePeakRssMb(child: Child): number | null {
  if (!HAS_PROC) return null;
  let kb = 0;
  for (const pid of child.tree().keys()) {
    try {
      const m = Deno.readTextFileSync(`/proc/${pid}/status`).match(/^VmHWM:\s+(\d+)\s+kB/m);
      if (m) kb += Number(m[1]);
    } catch {
      // The process left between listing and reading: it no longer holds memory.
    }
  }
  return kb / 1024;
}

/** The kernel's clock ticks per second (what /proc's CPU times count in). */
export async function clockTicks(): Promise<number> {
  return Number(await output("getconf", ["CLK_TCK"])) || 100;
}

/** A free loopback port (another process could take it first: callers retry on "in use"). */
export function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = listener.addr.port;
  listener.close();
  return port;
}

/** Whether something accepts TCP on the loopback port, within a second. */
export async function tcpOpen(port: number): Promise<boolean> {
  const attempt = Deno.connect({ hostname: "127.0.0.1", port });
  const result = await within(attempt, 1000).catch(() => null);
  if (result === TIMEOUT) {
    attempt.then((c) => c.close(), () => {});
    return false;
  }
  if (result === null) return false;
  result.close();
  return true;
}

/** Whether Ctrl+C (or SIGTERM) was seen. */
export function isInterrupted(): boolean {
  return interrupted;
}

/**
 * Stops every child on SIGINT/SIGTERM and exits 130; a second signal kills them at once.
 * Returns the function that removes the listeners.
 */
export function onInterrupt(): () => void {
  const listener = () => {
    if (interrupted) {
      for (const c of live) for (const p of c.tree().keys()) signal(p, "SIGKILL");
      Deno.exit(130);
    }
    interrupted = true;
    console.error("\ninterrupted: stopping child processes");
    stopAll(1000).finally(() => Deno.exit(130));
  };
  // Windows accepts only SIGINT (and SIGBREAK) listeners.
  const signals: Deno.Signal[] = Deno.build.os === "windows" ? ["SIGINT"] : ["SIGINT", "SIGTERM"];
  for (const s of signals) Deno.addSignalListener(s, listener);
  return () => {
    for (const s of signals) Deno.removeSignalListener(s, listener);
  };
}
