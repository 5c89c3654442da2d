/**
 * The lomq benchmark harness (`deno task bench`).
 *
 * Measures lomq running `bench/add.lua` side by side with the yardstick peers
 * (`csrv`, the C libzmq floor, and `pysrv.py`, what a Python user would write),
 * all driven by the same C load generator (`cload`). Absolute numbers depend on
 * the machine and its neighbours, so the runs are interleaved and the ratios
 * lomq/peer are what the report leads with.
 *
 * Usage:
 *   deno run --allow-all bench/run.ts [--seconds S] [--clients 1,8] [--rounds N]
 *     [--warmup S] [--start-timeout S] [--only lomq,csrv,pysrv] [--json]
 *
 * Environment: LOMQ_YARDSTICK (yardstick folder, default ../shared/yardstick
 * from the project root), LOMQ_BIN (lomq command, default `deno run ... main.ts`),
 * LOMQ_PYTHON (a Python with pyzmq and msgpack).
 *
 * @module
 */

import { parseArgs } from "node:util";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

/** The servers the harness knows, in the order they run within one step. */
export const SERVERS = ["csrv", "lomq", "base", "pysrv"] as const;

/** One of {@linkcode SERVERS}. */
export type ServerName = (typeof SERVERS)[number];

/** The command-line options, validated. */
export interface Options {
  /** Seconds of measured load per run. */
  seconds: number;
  /** Concurrent cload clients, one measured run per count. */
  clients: number[];
  /** How many times every (server, clients) run is repeated; the median is reported. */
  rounds: number;
  /** Seconds of unmeasured load before each measured run (JIT and caches warm up). */
  warmup: number;
  /** Seconds a server gets to start answering before it counts as failed. */
  startTimeout: number;
  /** Servers to run, in {@linkcode SERVERS} order. */
  only: ServerName[];
  /** Print one JSON object instead of tables. */
  json: boolean;
  /** Print usage and exit. */
  help: boolean;
}

/** What one cload run printed. */
export interface CloadResult {
  calls: number;
  seconds: number;
  rps: number;
  p50Us: number;
  p99Us: number;
  clients: number;
}

/** One measured run of one server. */
export interface Sample extends CloadResult {
  server: ServerName;
  round: number;
  /** Server CPU time (user + system, process tree) per request; null without /proc. */
  cpuUsPerReq: number | null;
  /** Server CPU time over wall time: 1.0 is one core busy; null without /proc. */
  cpuCores: number | null;
  /** Peak resident set (VmHWM summed over the process tree) in MiB; null without /proc. */
  rssMb: number | null;
}

/** The median over rounds of the samples of one (server, clients) pair. */
export interface Summary {
  server: ServerName;
  clients: number;
  rounds: number;
  /** Calls over all rounds. */
  calls: number;
  rps: number;
  p50Us: number;
  p99Us: number;
  cpuUsPerReq: number | null;
  cpuCores: number | null;
  rssMb: number | null;
}

/** lomq measured against one peer at one client count (lomq value / peer value). */
export interface Ratio {
  clients: number;
  peer: ServerName;
  rps: number;
  p50: number;
  p99: number;
  cpuPerReq: number | null;
}

/** A failure the user can act on: printed without a stack trace. */
export class BenchError extends Error {
  /** @param message what went wrong and what to do about it */
  constructor(message: string) {
    super(message);
    this.name = "BenchError";
  }
}

/** Bad command-line usage: printed with the usage text, exit code 2. */
export class UsageError extends BenchError {
  /** @param message which option was wrong */
  constructor(message: string) {
    super(message);
    this.name = "UsageError";
  }
}

/** The usage text printed by `--help` and after a usage error. */
export const USAGE = `usage: deno run --allow-all bench/run.ts [options]

  --seconds S        measured load per run, seconds (default 5)
  --clients 1,8      cload client counts, each 1..64 (default 1,8)
  --rounds N         repeat every run N times and report medians (default 1)
  --warmup S         unmeasured load before each run, seconds (default 1)
  --start-timeout S  how long a server may take to answer (default 30)
  --only LIST        servers among lomq,csrv,pysrv,base (default all; base only
                     with LOMQ_BASELINE)
  --json             print one JSON object instead of tables
  -h, --help         this text

environment: LOMQ_YARDSTICK (yardstick folder), LOMQ_BIN (lomq command,
word-split, run as "$LOMQ_BIN bench/add.lua URI"), LOMQ_PYTHON (a Python
with pyzmq and msgpack), LOMQ_BASELINE (another lomq checkout, measured in the
same rounds as "base": how a change compares with the code before it)`;

// cload keeps one latency slot array per client and refuses more than 64.
const MAX_CLIENTS = 64;
const STOP_GRACE_MS = 3000;
const TAIL_CHARS = 8192;

function parseNumber(name: string, raw: string, min: number, max: number, int: boolean): number {
  const value = Number(raw);
  if (raw.trim() === "" || !Number.isFinite(value) || (int && !Number.isInteger(value))) {
    throw new UsageError(`--${name}: "${raw}" is not ${int ? "an integer" : "a number"}`);
  }
  if (value < min || value > max) {
    throw new UsageError(`--${name}: ${raw} is outside ${min}..${max}`);
  }
  return value;
}

/** Parses and validates the command line; throws {@linkcode UsageError}. */
export function parseOptions(argv: string[]): Options {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      strict: true,
      allowPositionals: false,
      options: {
        seconds: { type: "string" },
        clients: { type: "string" },
        rounds: { type: "string" },
        warmup: { type: "string" },
        "start-timeout": { type: "string" },
        only: { type: "string" },
        json: { type: "boolean" },
        help: { type: "boolean", short: "h" },
      },
    });
  } catch (e) {
    throw new UsageError(e instanceof Error ? e.message : String(e));
  }
  const v = parsed.values;
  const clients = [
    ...new Set(
      (v.clients ?? "1,8").split(",").map((c) => parseNumber("clients", c, 1, MAX_CLIENTS, true)),
    ),
  ];
  const everything = SERVERS.filter((s) => s !== "base" || Deno.env.get("LOMQ_BASELINE"));
  const wanted = (v.only ?? everything.join(",")).split(",").map((s) => s.trim());
  for (const name of wanted) {
    if (!(SERVERS as readonly string[]).includes(name)) {
      throw new UsageError(`--only: unknown server "${name}" (known: ${SERVERS.join(", ")})`);
    }
  }
  return {
    seconds: parseNumber("seconds", v.seconds ?? "5", 0.1, 3600, false),
    clients,
    rounds: parseNumber("rounds", v.rounds ?? "1", 1, 100, true),
    warmup: parseNumber("warmup", v.warmup ?? "1", 0, 600, false),
    startTimeout: parseNumber("start-timeout", v["start-timeout"] ?? "30", 1, 600, false),
    only: SERVERS.filter((s) => wanted.includes(s)),
    json: v.json ?? false,
    help: v.help ?? false,
  };
}

/** Parses cload's `calls= seconds= rps= p50_us= p99_us= clients=` line; null if absent. */
export function parseCloadLine(text: string): CloadResult | null {
  const fields = new Map<string, number>();
  for (const m of text.matchAll(/(\w+)=([0-9.]+)/g)) fields.set(m[1], Number(m[2]));
  const keys = ["calls", "seconds", "rps", "p50_us", "p99_us", "clients"];
  if (!keys.every((k) => Number.isFinite(fields.get(k)))) return null;
  const get = (k: string) => fields.get(k) as number;
  return {
    calls: get("calls"),
    seconds: get("seconds"),
    rps: get("rps"),
    p50Us: get("p50_us"),
    p99Us: get("p99_us"),
    clients: get("clients"),
  };
}

/** The median of a non-empty list (mean of the middle two for an even count). */
export function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
}

function medianOrNull(values: (number | null)[]): number | null {
  return values.some((v) => v === null) ? null : median(values as number[]);
}

/** Groups samples by (server, clients) and takes the median of every metric. */
export function summarize(samples: Sample[], opts: Pick<Options, "clients" | "only">): Summary[] {
  const out: Summary[] = [];
  for (const clients of opts.clients) {
    for (const server of opts.only) {
      const group = samples.filter((s) => s.server === server && s.clients === clients);
      if (group.length === 0) continue;
      out.push({
        server,
        clients,
        rounds: group.length,
        calls: group.reduce((sum, s) => sum + s.calls, 0),
        rps: median(group.map((s) => s.rps)),
        p50Us: median(group.map((s) => s.p50Us)),
        p99Us: median(group.map((s) => s.p99Us)),
        cpuUsPerReq: medianOrNull(group.map((s) => s.cpuUsPerReq)),
        cpuCores: medianOrNull(group.map((s) => s.cpuCores)),
        rssMb: medianOrNull(group.map((s) => s.rssMb)),
      });
    }
  }
  return out;
}

/** lomq's medians divided by each peer's, per client count (empty when lomq did not run). */
export function ratios(summaries: Summary[]): Ratio[] {
  const out: Ratio[] = [];
  for (const lomq of summaries.filter((s) => s.server === "lomq")) {
    for (const peer of summaries) {
      if (peer.server === "lomq" || peer.clients !== lomq.clients) continue;
      out.push({
        clients: lomq.clients,
        peer: peer.server,
        rps: lomq.rps / peer.rps,
        p50: lomq.p50Us / peer.p50Us,
        p99: lomq.p99Us / peer.p99Us,
        cpuPerReq: lomq.cpuUsPerReq !== null && peer.cpuUsPerReq
          ? lomq.cpuUsPerReq / peer.cpuUsPerReq
          : null,
      });
    }
  }
  return out;
}

function fmt(value: number | null, digits: number): string {
  return value === null || !Number.isFinite(value) ? "-" : value.toFixed(digits);
}

function markdownTable(header: string[], rows: string[][], numericFrom: number): string {
  const align = header.map((_, i) => (i >= numericFrom ? "---:" : "---"));
  return [header, align, ...rows].map((r) => `| ${r.join(" | ")} |`).join("\n");
}

/** The human-readable report: results table, then lomq/peer ratios when lomq ran. */
export function formatReport(summaries: Summary[], heading: string): string {
  const rows = summaries.map((s) => [
    s.server,
    String(s.clients),
    fmt(s.rps, 0),
    fmt(s.p50Us, 0),
    fmt(s.p99Us, 0),
    fmt(s.cpuUsPerReq, 1),
    fmt(s.rssMb, 1),
  ]);
  const parts = [
    heading,
    "",
    markdownTable(
      ["server", "clients", "rps", "p50 µs", "p99 µs", "cpu µs/req", "RSS MB"],
      rows,
      1,
    ),
  ];
  const rs = ratios(summaries);
  if (rs.length > 0) {
    const ratioRows = rs.map((r) => [
      `lomq/${r.peer}`,
      String(r.clients),
      `${r.rps.toFixed(2)}x`,
      `${r.p50.toFixed(2)}x`,
      `${r.p99.toFixed(2)}x`,
      r.cpuPerReq === null ? "-" : `${r.cpuPerReq.toFixed(2)}x`,
    ]);
    parts.push(
      "",
      "Ratios (rps above 1x: lomq is faster; latency and cpu above 1x: lomq costs more):",
      "",
      markdownTable(["ratio", "clients", "rps", "p50", "p99", "cpu/req"], ratioRows, 1),
    );
  } else {
    parts.push("", "(lomq did not run: no ratios)");
  }
  return parts.join("\n");
}

// ---------------------------------------------------------------------------
// Child processes. Every child is registered in `live` from spawn until it has
// been stopped, so that an error or Ctrl+C anywhere can still clean up.

/** Keeps the last characters of a stream, enough to explain a failure. */
class Tail {
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

interface ProcInfo {
  ppid: number;
  ticks: number;
  start: number;
}

const HAS_PROC = (() => {
  try {
    return Deno.statSync("/proc/self/stat").isFile;
  } catch {
    return false;
  }
})();

function procInfo(pid: number): ProcInfo | null {
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
class Child {
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

const TIMEOUT = Symbol("timeout");

/** Races `p` against a timer that is cleared either way (a pending timer would keep Deno alive). */
async function within<T>(p: Promise<T>, ms: number): Promise<T | typeof TIMEOUT> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<typeof TIMEOUT>((r) => (timer = setTimeout(() => r(TIMEOUT), ms)));
  try {
    return await Promise.race([p, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

function spawn(label: string, cmd: string, args: string[], cwd: string): Child {
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
      env: { NO_COLOR: "1", DENO_NO_UPDATE_CHECK: "1" },
    }).spawn();
  } catch (e) {
    const why = e instanceof Deno.errors.NotFound ? "command not found" : String(e);
    throw new BenchError(`${label}: cannot start ${cmd}: ${why}`);
  }
  const child = new Child(label, [cmd, ...args], proc);
  live.add(child);
  return child;
}

function signal(pid: number, sig: Deno.Signal): void {
  try {
    Deno.kill(pid, sig);
  } catch {
    // Already gone: nothing to stop.
  }
}

/** SIGTERM to the child and its descendants, SIGKILL to what is left after the grace period. */
async function stop(child: Child, graceMs = STOP_GRACE_MS): Promise<void> {
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
async function stopAll(graceMs = STOP_GRACE_MS): Promise<void> {
  for (let pass = 0; pass < 3 && live.size > 0; pass++) {
    await Promise.all([...live].map((c) => stop(c, graceMs)));
  }
}

// ---------------------------------------------------------------------------
// Environment: project root, yardstick, toolchain, Python.

/** The project root: the folder above the one holding this script. */
export function projectRoot(): string {
  return resolve(dirname(fileURLToPath(import.meta.url)), "..");
}

async function succeeds(cmd: string, args: string[], stdin?: string): Promise<boolean> {
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

async function output(cmd: string, args: string[]): Promise<string | null> {
  try {
    const out = await new Deno.Command(cmd, { args, stdin: "null", stderr: "null" }).output();
    return out.success ? new TextDecoder().decode(out.stdout).trim() : null;
  } catch {
    return null;
  }
}

/** Debian packages missing for the C yardstick (gcc, libzmq headers). */
async function missingToolchain(): Promise<string[]> {
  if (!(await succeeds("gcc", ["--version"]))) {
    // Without gcc we cannot probe for zmq.h; name both so one install fixes it.
    return ["gcc", "libzmq3-dev"];
  }
  const hasZmq = await succeeds(
    "gcc",
    ["-E", "-x", "c", "-o", "/dev/null", "-"],
    "#include <zmq.h>\n",
  );
  return hasZmq ? [] : ["libzmq3-dev"];
}

const PY_PROBE =
  "import importlib.util as u; print(' '.join(m for m in ('zmq', 'msgpack') if u.find_spec(m) is None))";

/** A Python with pyzmq and msgpack, or the Debian packages that would provide one. */
async function findPython(): Promise<{ python: string } | { missing: string[] }> {
  const fromEnv = Deno.env.get("LOMQ_PYTHON");
  // Debian's python3-zmq lands in /usr/bin/python3, which pyenv and friends may shadow.
  const candidates = [...(fromEnv ? [fromEnv] : []), "python3", "/usr/bin/python3"];
  for (const python of candidates) {
    if ((await output(python, ["-c", PY_PROBE])) === "") return { python };
  }
  const debian = await output("/usr/bin/python3", ["-c", PY_PROBE]);
  if (debian === null) return { missing: ["python3", "python3-zmq", "python3-msgpack"] };
  return {
    missing: debian.split(" ").map((m) => (m === "zmq" ? "python3-zmq" : "python3-msgpack")),
  };
}

/** How to start one server on a URI. */
interface ServerSpec {
  name: ServerName;
  cmd: string;
  args: (uri: string) => string[];
  cwd: string;
}

interface Setup {
  cload: string;
  specs: ServerSpec[];
  python: string | null;
}

/** Checks everything before any measuring, so a missing piece costs seconds, not a whole run. */
async function prepare(opts: Options, root: string, progress: (m: string) => void): Promise<Setup> {
  const yardstick = resolve(
    Deno.env.get("LOMQ_YARDSTICK") ?? join(root, "..", "shared", "yardstick"),
  );
  try {
    Deno.statSync(join(yardstick, "build.sh"));
  } catch {
    throw new BenchError(
      `yardstick not found: ${yardstick}/build.sh is missing (set LOMQ_YARDSTICK to its folder)`,
    );
  }
  const missing = await missingToolchain();
  let python: string | null = null;
  if (opts.only.includes("pysrv")) {
    const found = await findPython();
    if ("python" in found) python = found.python;
    else missing.push(...found.missing);
  }
  if (missing.length > 0) {
    const extra = opts.only.includes("pysrv")
      ? "\n(pyzmq is looked for in $LOMQ_PYTHON, python3 and /usr/bin/python3; " +
        "or skip the Python peer with --only lomq,csrv)"
      : "";
    throw new BenchError(
      `missing Debian packages: ${missing.join(" ")}\ninstall them with:\n` +
        `  apt-get update && apt-get install -y ${missing.join(" ")}${extra}`,
    );
  }

  let lomq: ServerSpec | null = null;
  if (opts.only.includes("lomq")) {
    const bin = Deno.env.get("LOMQ_BIN")?.trim();
    const script = "bench/add.lua";
    if (bin) {
      const [cmd, ...pre] = bin.split(/\s+/);
      lomq = { name: "lomq", cmd, args: (uri) => [...pre, script, uri], cwd: root };
    } else {
      try {
        Deno.statSync(join(root, "main.ts"));
      } catch {
        throw new BenchError(
          `lomq: ${join(root, "main.ts")} does not exist (the server is not there yet?); ` +
            "run the peers alone with --only csrv,pysrv, or point LOMQ_BIN at a lomq command",
        );
      }
      lomq = {
        name: "lomq",
        cmd: Deno.execPath(),
        args: (
          uri,
        ) => ["run", "--allow-net", "--allow-read", "--allow-env", "main.ts", script, uri],
        cwd: root,
      };
    }
  }

  const out = join(root, ".bench", "yardstick");
  progress(`building the yardstick into ${out}`);
  const build = await new Deno.Command("sh", {
    args: [join(yardstick, "build.sh"), out],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (!build.success) {
    throw new BenchError(
      `building the yardstick failed (${yardstick}/build.sh ${out}):\n` +
        new TextDecoder().decode(build.stderr).trimEnd(),
    );
  }

  const specs: ServerSpec[] = [];
  for (const name of opts.only) {
    if (name === "csrv") {
      specs.push({ name, cmd: join(out, "csrv"), args: (uri) => [uri], cwd: root });
    } else if (name === "pysrv") {
      const py = join(yardstick, "pysrv.py");
      specs.push({ name, cmd: python as string, args: (uri) => [py, uri], cwd: root });
    } else if (name === "base") {
      const base = resolve(Deno.env.get("LOMQ_BASELINE") ?? "");
      try {
        Deno.statSync(join(base, "main.ts"));
      } catch {
        throw new BenchError(`base: set LOMQ_BASELINE to a lomq checkout (${base}/main.ts)`);
      }
      specs.push({
        name,
        cmd: Deno.execPath(),
        args: (
          uri,
        ) => ["run", "--allow-net", "--allow-read", "--allow-env", "main.ts", "bench/add.lua", uri],
        cwd: base,
      });
    } else if (lomq) {
      specs.push(lomq);
    }
  }
  return { cload: join(out, "cload"), specs, python };
}

// ---------------------------------------------------------------------------
// Running servers and load.

function freePort(): number {
  // The kernel picks a free port; another process could grab it before the server
  // binds, which startServer handles by retrying on "address in use".
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = listener.addr.port;
  listener.close();
  return port;
}

async function tcpOpen(port: number): Promise<boolean> {
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

/** Runs cload, bounded in time; throws with its stderr when it fails. */
async function runCload(
  cload: string,
  uri: string,
  clients: number,
  seconds: number,
): Promise<CloadResult> {
  const child = spawn("cload", cload, [uri, String(clients), String(seconds)], "/");
  try {
    // cload waits at most 5 s per reply, then fails: its own run plus that is the bound.
    const status = await within(child.status, (seconds + 15) * 1000);
    if (status === TIMEOUT) throw new BenchError(`cload did not finish within ${seconds + 15} s`);
    await within(child.drained, 1000);
    const result = parseCloadLine(child.stdout.text);
    if (!status.success || !result) {
      throw new BenchError(
        `cload ${child.describeExit()}: ${child.stderr.lastLines(5) || child.stdout.lastLines(5)}`,
      );
    }
    return result;
  } finally {
    await stop(child);
  }
}

function startFailure(spec: ServerSpec, server: Child, uri: string, why: string): BenchError {
  return new BenchError(
    `${spec.name} failed to start on ${uri}: ${why}\n` +
      `command: ${server.command.join(" ")} (in ${spec.cwd})\n${server.outputTail()}`,
  );
}

/** Starts a server on a free port and waits until it answers add(1, 2) correctly. */
async function startServer(
  spec: ServerSpec,
  setup: Setup,
  timeoutS: number,
): Promise<{ server: Child; uri: string }> {
  for (let attempt = 1; attempt <= 3; attempt++) {
    const port = freePort();
    const uri = `tcp://127.0.0.1:${port}`;
    const server = spawn(spec.name, spec.cmd, spec.args(uri), spec.cwd);
    try {
      const deadline = Date.now() + timeoutS * 1000;
      let listening = false;
      // Bounded by the start timeout; each pass costs at most 1 s (connect) + 50 ms.
      while (!listening && !server.exit && Date.now() < deadline) {
        listening = await tcpOpen(port);
        if (!listening) await within(server.status, 50);
      }
      if (server.exit) {
        await within(server.drained, 500);
        if (attempt < 3 && /in use/i.test(server.stderr.text)) {
          await stop(server);
          continue;
        }
        throw startFailure(spec, server, uri, `${server.describeExit()} before listening`);
      }
      if (!listening) {
        throw startFailure(spec, server, uri, `nothing listened within ${timeoutS} s`);
      }
      try {
        // A TCP accept is not an answer: one short cload run proves the protocol works.
        await runCload(setup.cload, uri, 1, 0.2);
      } catch (e) {
        const why = e instanceof Error ? e.message : String(e);
        throw startFailure(spec, server, uri, `it listens but add(1, 2) failed: ${why}`);
      }
      return { server, uri };
    } catch (e) {
      await stop(server);
      throw e;
    }
  }
  throw new BenchError(`${spec.name}: no free port after 3 attempts`);
}

function treeTicks(child: Child): number | null {
  if (!HAS_PROC) return null;
  let ticks = 0;
  for (const pid of child.tree().keys()) ticks += procInfo(pid)?.ticks ?? 0;
  return ticks;
}

function treePeakRssMb(child: Child): number | null {
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

/** One measured run: start, warm up, measure with CPU sampling, stop. */
async function measure(
  spec: ServerSpec,
  clients: number,
  round: number,
  opts: Options,
  setup: Setup,
  clkTck: number,
): Promise<Sample> {
  const { server, uri } = await startServer(spec, setup, opts.startTimeout);
  try {
    if (opts.warmup > 0) await runCload(setup.cload, uri, clients, opts.warmup);
    const t0 = performance.now();
    const ticks0 = treeTicks(server);
    let load: CloadResult;
    try {
      load = await runCload(setup.cload, uri, clients, opts.seconds);
    } catch (e) {
      const why = e instanceof Error ? e.message : String(e);
      throw new BenchError(
        `${spec.name} failed under load (${clients} clients; server ${server.describeExit()}): ` +
          `${why}\n${server.outputTail()}`,
      );
    }
    const ticks1 = treeTicks(server);
    const wallS = (performance.now() - t0) / 1000;
    const cpuS = ticks0 !== null && ticks1 !== null ? (ticks1 - ticks0) / clkTck : null;
    return {
      ...load,
      server: spec.name,
      round,
      cpuUsPerReq: cpuS !== null && load.calls > 0 ? (cpuS * 1e6) / load.calls : null,
      cpuCores: cpuS !== null ? cpuS / wallS : null,
      rssMb: treePeakRssMb(server),
    };
  } finally {
    await stop(server);
  }
}

/** Runs every (round, clients, server) step, interleaving servers within each client count. */
async function runAll(
  opts: Options,
  setup: Setup,
  clkTck: number,
  progress: (m: string) => void,
): Promise<Sample[]> {
  const samples: Sample[] = [];
  const total = opts.rounds * opts.clients.length * setup.specs.length;
  let step = 0;
  for (let round = 1; round <= opts.rounds; round++) {
    // Rotate the order each round so no server always runs right after another's load.
    const shift = (round - 1) % setup.specs.length;
    const order = [...setup.specs.slice(shift), ...setup.specs.slice(0, shift)];
    for (const clients of opts.clients) {
      for (const spec of order) {
        step++;
        progress(`[${step}/${total}] round ${round}, ${clients} clients: ${spec.name}`);
        const s = await measure(spec, clients, round, opts, setup, clkTck);
        samples.push(s);
        progress(
          `[${step}/${total}]   ${spec.name}: ${s.rps.toFixed(0)} rps, p50 ${s.p50Us} µs, ` +
            `p99 ${s.p99Us} µs, cpu ${fmt(s.cpuUsPerReq, 1)} µs/req`,
        );
      }
    }
  }
  return samples;
}

// ---------------------------------------------------------------------------

async function main(argv: string[]): Promise<number> {
  let opts: Options;
  try {
    opts = parseOptions(argv);
  } catch (e) {
    console.error(`${(e as Error).message}\n\n${USAGE}`);
    return 2;
  }
  if (opts.help) {
    console.log(USAGE);
    return 0;
  }
  const tty = Deno.stderr.isTerminal();
  const started = performance.now();
  const progress = (m: string) => {
    if (!tty) return;
    const t = ((performance.now() - started) / 1000).toFixed(0).padStart(4);
    console.error(`[${t}s] ${m}`);
  };

  const onSignal = () => {
    if (interrupted) {
      // Second Ctrl+C: no more patience for graceful stops.
      for (const c of live) for (const p of c.tree().keys()) signal(p, "SIGKILL");
      Deno.exit(130);
    }
    interrupted = true;
    console.error("\ninterrupted: stopping child processes");
    stopAll(1000).finally(() => Deno.exit(130));
  };
  // Windows accepts only SIGINT (and SIGBREAK) listeners.
  const signals: Deno.Signal[] = Deno.build.os === "windows" ? ["SIGINT"] : ["SIGINT", "SIGTERM"];
  for (const s of signals) Deno.addSignalListener(s, onSignal);

  try {
    const root = projectRoot();
    const setup = await prepare(opts, root, progress);
    const clkTck = Number(await output("getconf", ["CLK_TCK"])) || 100;
    const perRun = opts.seconds + opts.warmup + 1.5;
    const runs = opts.rounds * opts.clients.length * setup.specs.length;
    progress(`${runs} runs, about ${Math.ceil(runs * perRun)} s`);

    const samples = await runAll(opts, setup, clkTck, progress);
    const summaries = summarize(samples, opts);
    const config = {
      seconds: opts.seconds,
      warmup: opts.warmup,
      rounds: opts.rounds,
      clients: opts.clients,
      servers: opts.only,
      cpus: navigator.hardwareConcurrency,
      loadavg: Deno.build.os === "windows" ? null : Deno.loadavg(),
      os: `${Deno.build.os} ${Deno.build.arch}`,
      deno: Deno.version.deno,
      python: setup.python,
      lomqCommand: setup.specs.find((s) => s.name === "lomq")
        ? Deno.env.get("LOMQ_BIN") ?? "deno run main.ts"
        : null,
      date: new Date().toISOString(),
    };
    if (opts.json) {
      console.log(
        JSON.stringify({ config, results: summaries, ratios: ratios(summaries), samples }),
      );
    } else {
      const heading = `lomq bench: ${opts.seconds} s per run after ${opts.warmup} s warm-up, ` +
        `median of ${opts.rounds} round(s); ${config.cpus} CPUs, ${config.os}, ` +
        `deno ${config.deno}, load average ${config.loadavg?.map((l) => l.toFixed(2)).join(" ")}`;
      console.log(formatReport(summaries, heading));
    }
    return 0;
  } catch (e) {
    // Ctrl+C in a terminal signals the children too: their deaths can surface as an
    // error before our own listener runs, so give it a moment to claim the failure.
    await within(new Promise<never>(() => {}), 200);
    if (interrupted) return 130;
    if (e instanceof BenchError) console.error(`bench: ${e.message}`);
    else console.error(e);
    return 1;
  } finally {
    await stopAll();
    for (const s of signals) Deno.removeSignalListener(s, onSignal);
  }
}

if (import.meta.main) Deno.exit(await main(Deno.args));
