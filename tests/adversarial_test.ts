// Adversarial clients against a real lomq process: requests built to crash the server or
// corrupt its answers, then wire-level abuse of the ZMTP connection itself. In every case
// the process stays alive, a normal pyzmq client's add(1, 2) keeps getting 3 within 1 s (3 s
// while the attack moves tens of MiB per message) during and after the attack, and the
// server's resident memory stays under a stated bound.
//
// The attacks, the requests: count-wrap bombs, the nested array32 bomb, deep nesting, 60 MiB
// strings and method names, more arguments than a Lua stack holds, every global and alias
// that is not the script's own function, the lifecycle functions and their aliases, the
// shell from inside a handler, a memory bomb under --max-memory 64. The wire: a PING flood
// whose PONGs are never read, 1 MiB echoes pipelined and never read, unfinished big frames,
// a slow-loris, 2,000 idle connections, a SUBSCRIBE flood. Loopback only, bounded counts.
import assert from "node:assert/strict";
import { freePort, type LomqProcess, ROOT, startLomq } from "./helpers/lomq.ts";
import { pythonForInterop, skipInterop } from "./helpers/python.ts";
import { RawPeer } from "./zmtp/util.ts";
import { concat } from "./helpers/fuzz.ts";

const SCRIPT = `${ROOT}tests/fixtures/adversarial.lua`;
const python = (await pythonForInterop()) ?? "python3";
const MiB = 1024 * 1024;
/** The promise of the brief: a normal client's call is answered within this, always. */
const PROBE_MS = 1000;
/**
 * The bound while the attack moves tens of MiB per message: the one thread that serves every
 * client copies each such message into a fresh buffer and into the Lua heap, and on a VM whose
 * page faults are slow (measured on this project's CI machine: about 10 ms per MiB of memory
 * touched for the first time) that alone holds the thread for up to a second. Three seconds
 * still tells a server that keeps serving from one that stalls or hangs.
 */
const HEAVY_PROBE_MS = 3000;

// ---- a pyzmq client driven over stdin/stdout ----------------------------------------------

/**
 * A Python process holding pyzmq REQ sockets. Each stdin line is a JSON command: `expr` is a
 * Python expression giving the request (bytes, or a list of frames); the reply comes back as
 * one JSON line. A call that times out replaces its socket (a REQ socket is stuck after a
 * request that got no reply).
 */
const DRIVER = String.raw`
import sys, json, time, math, zmq, msgpack
uri = sys.argv[1]
ctx = zmq.Context()
def make():
    s = ctx.socket(zmq.REQ)
    s.setsockopt(zmq.LINGER, 0)
    s.connect(uri)
    return s
def nils(n):
    return b"\xc0" * n
def nested_bomb(total, depth=99):
    # ["echo", [[[...]]]]: every nested array32 claims all the bytes that follow it.
    body = bytearray(b"\xdd\x00\x00\x00\x02\xa4echo")
    for _ in range(depth):
        body += b"\xdd" + (total - len(body) - 5).to_bytes(4, "big")
    return bytes(body + nils(total - len(body)))
def jsonable(v):
    if isinstance(v, (bytes, bytearray)):
        return {"bin": bytes(v[:64]).hex(), "len": len(v)}
    if isinstance(v, str):
        return v if len(v) <= 4096 else v[:4096] + "...(%d chars)" % len(v)
    if isinstance(v, (list, tuple)):
        return [jsonable(x) for x in v[:1000]]
    if isinstance(v, dict):
        return {str(k): jsonable(x) for k, x in list(v.items())[:1000]}
    if isinstance(v, float) and not math.isfinite(v):
        return str(v)
    return v
sock = make()
for line in sys.stdin:
    cmd = json.loads(line)
    body = eval(cmd["expr"])
    frames = body if isinstance(body, list) else [body]
    s = make() if cmd.get("fresh") else sock
    start = time.perf_counter()
    s.send_multipart(frames)
    out = {"status": "TIMEOUT"}
    if s.poll(cmd.get("timeout", 5000)):
        parts = s.recv_multipart()
        out = {"status": parts[0].decode("latin-1"), "frames": len(parts)}
        if len(parts) == 2:
            payload = parts[1]
            out["len"] = len(payload)
            try:
                value = msgpack.unpackb(payload, strict_map_key=False, raw=False)
            except UnicodeDecodeError:
                value = msgpack.unpackb(payload, strict_map_key=False, raw=True)
            except Exception as e:
                out["decodeError"] = repr(e)
                value = None
            out["value"] = jsonable(value) if len(payload) <= 1 << 20 else None
    out["ms"] = (time.perf_counter() - start) * 1000
    if s is not sock:
        s.close()
    elif out["status"] == "TIMEOUT":
        sock.close()
        sock = make()
    sys.stdout.write(json.dumps(out) + "\n")
    sys.stdout.flush()
`;

/** One reply as the driver reports it. */
interface CallResult {
  /** "OK", "ERROR", or "TIMEOUT" when no reply came in time. */
  status: string;
  /** How long the call took, send to reply, in ms. */
  ms: number;
  /** Frames of the reply. */
  frames?: number;
  /** Bytes of the payload. */
  len?: number;
  /** The decoded payload (bin as {bin, len}; omitted past 1 MiB). */
  value?: unknown;
  /** Why the payload did not decode as msgpack. */
  decodeError?: string;
}

class PyDriver {
  readonly #child: Deno.ChildProcess;
  readonly #writer: WritableStreamDefaultWriter<Uint8Array>;
  readonly #reader: ReadableStreamDefaultReader<string>;
  readonly #stderr: Promise<string>;
  #buffer = "";
  #queue: Promise<unknown> = Promise.resolve();

  constructor(uri: string) {
    this.#child = new Deno.Command(python, {
      args: ["-u", "-c", DRIVER, uri],
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    this.#writer = this.#child.stdin.getWriter();
    this.#reader = this.#child.stdout.pipeThrough(new TextDecoderStream()).getReader();
    this.#stderr = new Response(this.#child.stderr).text();
  }

  /** Sends the request `expr` evaluates to (Python) and resolves with the reply. */
  call(expr: string, options: { timeout?: number; fresh?: boolean } = {}): Promise<CallResult> {
    const run = this.#queue.then(() => this.#call(expr, options));
    this.#queue = run.catch(() => {});
    return run;
  }

  /** add(1, 2) within `ms` ({@link PROBE_MS} unless told): the normal client of the brief. */
  probe(fresh = false, ms = PROBE_MS): Promise<CallResult> {
    return this.call('msgpack.packb(["add", 1, 2])', { timeout: ms, fresh });
  }

  async #call(expr: string, options: { timeout?: number; fresh?: boolean }): Promise<CallResult> {
    const timeout = options.timeout ?? 5000;
    await this.#writer.write(
      new TextEncoder().encode(JSON.stringify({ expr, timeout, fresh: options.fresh }) + "\n"),
    );
    let timer: ReturnType<typeof setTimeout> | undefined;
    const expired = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new Error(`the Python driver did not answer within ${timeout + 20000} ms`)),
        timeout + 20000,
      );
    });
    try {
      return JSON.parse(await Promise.race([this.#line(), expired]));
    } finally {
      clearTimeout(timer);
    }
  }

  async #line(): Promise<string> {
    for (;;) {
      const newline = this.#buffer.indexOf("\n");
      if (newline >= 0) {
        const line = this.#buffer.slice(0, newline);
        this.#buffer = this.#buffer.slice(newline + 1);
        return line;
      }
      const { value, done } = await this.#reader.read();
      if (done) throw new Error(`the Python driver ended:\n${await this.#stderr}`);
      this.#buffer += value;
    }
  }

  async close(): Promise<void> {
    await this.#writer.close().catch(() => {});
    const timer = setTimeout(() => this.#child.kill("SIGKILL"), 5000);
    await this.#child.status;
    clearTimeout(timer);
    await this.#reader.cancel().catch(() => {});
    await this.#stderr;
  }
}

// ---- resident memory of the server ---------------------------------------------------------

/** The process and its descendants (a launcher may run lomq as its child). */
function processTree(pid: number): number[] {
  const out = [pid];
  for (let i = 0; i < out.length; i++) {
    try {
      const children = Deno.readTextFileSync(`/proc/${out[i]}/task/${out[i]}/children`);
      for (const child of children.trim().split(/\s+/)) if (child) out.push(Number(child));
    } catch {
      // gone, or not Linux
    }
  }
  return out;
}

/** A field of /proc/PID/status in MiB, summed over the tree; NaN when /proc is missing. */
function statusMiB(pids: number[], field: "VmRSS" | "VmHWM"): number {
  let total = 0;
  let seen = false;
  for (const pid of pids) {
    try {
      const status = Deno.readTextFileSync(`/proc/${pid}/status`);
      const m = new RegExp(`^${field}:\\s+(\\d+) kB`, "m").exec(status);
      if (m) {
        total += Number(m[1]) / 1024;
        seen = true;
      }
    } catch {
      // gone
    }
  }
  return seen ? total : NaN;
}

/**
 * Samples the server's RSS while an attack runs. The kernel's peak (VmHWM) is reset first
 * when /proc/PID/clear_refs allows, so a spike between two samples is seen too.
 */
class RssWatch {
  readonly startMiB: number;
  #peak: number;
  #hwmReset = true;
  readonly #pids: number[];
  readonly #timer: ReturnType<typeof setInterval>;

  constructor(pid: number) {
    this.#pids = processTree(pid);
    for (const p of this.#pids) {
      try {
        Deno.writeTextFileSync(`/proc/${p}/clear_refs`, "5");
      } catch {
        this.#hwmReset = false;
      }
    }
    this.startMiB = statusMiB(this.#pids, "VmRSS");
    this.#peak = this.startMiB;
    this.#timer = setInterval(() => this.#sample(), 20);
  }

  #sample(): void {
    const now = statusMiB(this.#pids, "VmRSS");
    if (now > this.#peak) this.#peak = now;
  }

  /** Stops sampling; the peak RSS seen, in MiB. */
  stop(): number {
    clearInterval(this.#timer);
    this.#sample();
    if (this.#hwmReset) {
      const hwm = statusMiB(this.#pids, "VmHWM");
      if (hwm > this.#peak) this.#peak = hwm;
    }
    return this.#peak;
  }
}

// ---- the server under attack ----------------------------------------------------------------

/** A lomq process running the fixture, with a prober (the normal client) and an attacker. */
class Target {
  readonly lomq: LomqProcess;
  readonly uri: string;
  readonly pubUri: string;
  readonly prober: PyDriver;
  readonly attacker: PyDriver;
  exited = false;

  private constructor(lomq: LomqProcess, uri: string, pubUri: string) {
    this.lomq = lomq;
    this.uri = uri;
    this.pubUri = pubUri;
    this.prober = new PyDriver(uri);
    this.attacker = new PyDriver(uri);
    void lomq.child.status.then(() => this.exited = true);
  }

  /** Starts `lomq run [options] adversarial.lua REP PUB` with `env` added. */
  static async start(options: string[] = [], env?: Record<string, string>): Promise<Target> {
    const port = freePort();
    const uri = `tcp://127.0.0.1:${port}`;
    const pubUri = `tcp://127.0.0.1:${freePort()}`;
    const lomq = await startLomq(["run", ...options, SCRIPT, uri, pubUri], port, env);
    const target = new Target(lomq, uri, pubUri);
    const first = await target.prober.call('msgpack.packb(["add", 1, 2])', { timeout: 10000 });
    assert.equal(first.status, "OK", "the server answers its first call");
    return target;
  }

  get pid(): number {
    return this.lomq.child.pid;
  }

  /**
   * Runs `attack` while the prober calls add(1, 2) every 50 ms (for at least `minMs`), and
   * watches the server's RSS. Then checks the process is alive and every probe, and one
   * more afterwards on a fresh connection and on the old one, got 3 within 1 s.
   */
  async underAttack<T>(
    what: string,
    attack: () => Promise<T>,
    options: { minMs?: number; maxGrowthMiB?: number; maxPeakMiB?: number; probeMs?: number } = {},
  ): Promise<{ value: T; growthMiB: number; peakMiB: number; probes: number }> {
    const minMs = options.minMs ?? 300;
    const probeMs = options.probeMs ?? PROBE_MS;
    const watch = new RssWatch(this.pid);
    const started = Date.now();
    let done = false;
    const probes: CallResult[] = [];
    const probing = (async () => {
      do {
        probes.push(await this.prober.probe(false, probeMs));
        await delay(50);
      } while (!done || Date.now() - started < minMs);
    })();
    let value: T;
    try {
      value = await attack();
    } finally {
      done = true;
      await probing;
    }
    const peakMiB = watch.stop();
    const growthMiB = peakMiB - watch.startMiB;
    const bad = probes.filter((p) => !served(p, probeMs));
    assert.deepEqual(
      bad,
      [],
      `${what}: ${bad.length} of ${probes.length} probes were not answered 3 within ${probeMs} ms`,
    );
    await this.assertServing(what, probeMs);
    if (options.maxGrowthMiB !== undefined && !Number.isNaN(growthMiB)) {
      assert.ok(
        growthMiB < options.maxGrowthMiB,
        `${what}: RSS grew by ${growthMiB.toFixed(0)} MiB (from ${watch.startMiB.toFixed(0)} to ${
          peakMiB.toFixed(0)
        }), bound ${options.maxGrowthMiB} MiB`,
      );
    }
    if (options.maxPeakMiB !== undefined && !Number.isNaN(peakMiB)) {
      assert.ok(
        peakMiB < options.maxPeakMiB,
        `${what}: peak RSS ${peakMiB.toFixed(0)} MiB, bound ${options.maxPeakMiB} MiB`,
      );
    }
    const slowest = Math.max(...probes.map((p) => p.ms));
    console.log(
      `  ${what}: RSS ${watch.startMiB.toFixed(0)} -> peak ${peakMiB.toFixed(0)} MiB, ` +
        `${probes.length} probes, slowest ${slowest.toFixed(0)} ms, ${Date.now() - started} ms`,
    );
    return { value, growthMiB, peakMiB, probes: probes.length };
  }

  /** The process is alive and both a fresh and the prober's old connection get add(1, 2). */
  async assertServing(what: string, probeMs = PROBE_MS): Promise<void> {
    assert.ok(!this.exited, `${what}: the lomq process is alive`);
    for (const fresh of [true, false]) {
      const probe = await this.prober.probe(fresh, probeMs);
      assert.ok(
        served(probe, probeMs),
        `${what}: add(1, 2) afterwards (fresh: ${fresh}): ${show(probe)}`,
      );
    }
    assert.ok(!this.exited, `${what}: the lomq process is alive`);
  }

  async close(): Promise<void> {
    await Promise.all([this.prober.close(), this.attacker.close()]);
    this.lomq.kill("SIGKILL");
    const out = await this.lomq.finish(5000);
    // LOMQ_TEST_VERBOSE=1 shows what the server logged (the peers it dropped, and why).
    if (Deno.env.get("LOMQ_TEST_VERBOSE")) console.log(out.stderr.slice(-20000));
  }
}

function served(probe: CallResult, ms = PROBE_MS): boolean {
  return probe.status === "OK" && probe.value === 3 && probe.ms < ms;
}

function show(result: CallResult): string {
  return JSON.stringify(result).slice(0, 600);
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Asserts an ERROR reply whose message matches `pattern`, and short. */
function assertError(result: CallResult, pattern: RegExp, what: string): void {
  assert.equal(result.status, "ERROR", `${what}: ${show(result)}`);
  assert.equal(result.decodeError, undefined, `${what}: the payload decodes`);
  assert.match(String(result.value), pattern, what);
  assert.ok((result.len ?? 0) < 1024, `${what}: the ERROR is short (${result.len} bytes)`);
}

/** A Python string literal of `text` (JSON string syntax is valid Python). */
function py(text: string): string {
  return JSON.stringify(text);
}

// ---- raw ZMTP bytes -------------------------------------------------------------------------

const enc = new TextEncoder();

/** A ZMTP 3.1 NULL-mechanism greeting (as client). */
function greeting(): Uint8Array {
  const g = new Uint8Array(64);
  g[0] = 0xff;
  g[9] = 0x7f;
  g[10] = 3;
  g[11] = 1;
  g.set(enc.encode("NULL"), 12);
  return g;
}

/** One frame: short when it fits, long otherwise; flags 1 MORE, 4 COMMAND. */
function frame(body: Uint8Array, flags = 0): Uint8Array {
  const long = body.length > 255;
  const out = new Uint8Array((long ? 9 : 2) + body.length);
  if (long) {
    out[0] = flags | 2;
    new DataView(out.buffer).setBigUint64(1, BigInt(body.length));
  } else {
    out[0] = flags;
    out[1] = body.length;
  }
  out.set(body, long ? 9 : 2);
  return out;
}

/** A command frame `name` + `data`. */
function command(name: string, data: Uint8Array = new Uint8Array(0)): Uint8Array {
  return frame(concat([new Uint8Array([name.length]), enc.encode(name), data]), 4);
}

/** READY announcing `type`. */
function ready(type: string): Uint8Array {
  const value = enc.encode(type);
  const property = concat([
    new Uint8Array([11]),
    enc.encode("Socket-Type"),
    new Uint8Array([0, 0, 0, value.length]),
    value,
  ]);
  return command("READY", property);
}

/** A message of `frames`. */
function message(frames: Uint8Array[]): Uint8Array {
  return concat(frames.map((f, i) => frame(f, i < frames.length - 1 ? 1 : 0)));
}

/** msgpack ["echo", bin of `n` bytes]. */
function echoBin(n: number): Uint8Array {
  const out = new Uint8Array(11 + n);
  out.set([0x92, 0xa4, ...enc.encode("echo"), 0xc6]);
  new DataView(out.buffer).setUint32(7, n);
  out.fill(0x62, 11);
  return out;
}

/**
 * Writes `chunk` over and over until `ms` pass, `maxBytes` are written, or the peer stops
 * reading (a write pending at the deadline is abandoned: closing the connection settles it)
 * or closes. Returns the bytes written.
 */
async function flood(
  conn: Deno.Conn,
  chunk: Uint8Array,
  ms: number,
  maxBytes: number,
): Promise<number> {
  const deadline = Date.now() + ms;
  let written = 0;
  let failed = false;
  while (written < maxBytes && Date.now() < deadline && !failed) {
    let off = 0;
    while (off < chunk.length) {
      let timer: ReturnType<typeof setTimeout> | undefined;
      const write = conn.write(chunk.subarray(off)).catch(() => -1);
      const n = await Promise.race([
        write,
        new Promise<number>((r) => timer = setTimeout(() => r(-2), deadline - Date.now())),
      ]);
      clearTimeout(timer);
      if (n < 0) {
        failed = true;
        break;
      }
      off += n;
      written += n;
    }
  }
  return written;
}

/** Writes all of `data`, false when the connection failed. */
async function writeAll(conn: Deno.Conn, data: Uint8Array): Promise<boolean> {
  try {
    let off = 0;
    while (off < data.length) off += await conn.write(data.subarray(off));
    return true;
  } catch {
    return false;
  }
}

// ---- the suite ------------------------------------------------------------------------------

const SECRET_NAME = "LOMQ_ADVERSARIAL_SECRET";
const SECRET = `s3cr3t-${crypto.randomUUID()}`;
/** The fixture's functions clients may call. */
const SCRIPT_FUNCTIONS = [
  "add",
  "echo",
  "count",
  "size",
  "lifecycle",
  "bomb",
  "shell",
  "pipe",
  "global_names",
];

Deno.test({
  name: "adversarial clients cannot crash a lomq server, corrupt its answers or blow its memory",
  ignore: skipInterop,
  async fn(t) {
    let target = await Target.start([], { [SECRET_NAME]: SECRET });
    /**
     * The same process for every case. A case that killed it or left it unable to serve
     * failed; the next case gets a new process, so that one failure does not hide the rest.
     */
    const live = async () => {
      if (target.exited || !served(await target.prober.probe(true))) {
        console.log("  (the server was dead or not serving: starting a new one)");
        await target.close();
        target = await Target.start([], { [SECRET_NAME]: SECRET });
      }
      return target;
    };
    try {
      await t.step("count-wrap bombs: array32 of 0xFFFFFFFF / 0x80000000 elements", async () => {
        const s = await live();
        const bombs: string[] = [];
        for (const count of ["0xFFFFFFFF", "0x80000000"]) {
          for (const n of [400, 1000]) {
            bombs.push(
              `b"\\xdd" + (${count}).to_bytes(4, "big") + msgpack.packb("echo") + nils(${n})`,
            );
            // The same counts inside the arguments, and as string lengths.
            bombs.push(`b"\\x92\\xa4echo\\xdd" + (${count}).to_bytes(4, "big") + nils(${n})`);
            bombs.push(`b"\\x92\\xa4echo\\xdf" + (${count}).to_bytes(4, "big") + nils(${n})`);
            bombs.push(`b"\\x92\\xa4echo\\xdb" + (${count}).to_bytes(4, "big") + b"x" * ${n}`);
            bombs.push(`b"\\x91\\xdb" + (${count}).to_bytes(4, "big") + b"echo" * ${n}`);
          }
        }
        await s.underAttack("count-wrap bombs", async () => {
          for (let round = 0; round < 10; round++) {
            for (const bomb of bombs) {
              assertError(await s.attacker.call(bomb), /^bad request: truncated msgpack/, bomb);
              const after = await s.attacker.call('msgpack.packb(["add", 1, 2])');
              assert.deepEqual([after.status, after.value], ["OK", 3], `add after ${bomb}`);
            }
          }
        }, { maxGrowthMiB: 64 });
      });

      await t.step("nested array32 bomb: 99 headers each claiming every byte left", async () => {
        const s = await live();
        for (const mib of [2, 1]) {
          await s.underAttack(`${mib} MiB nested bomb`, async () => {
            for (let i = 0; i < 3; i++) {
              const reply = await s.attacker.call(`nested_bomb(${mib * MiB})`);
              assertError(reply, /^bad request: truncated msgpack/, `${mib} MiB nested bomb`);
              assert.ok(reply.ms < 2000, `answered in ${reply.ms.toFixed(0)} ms, not quickly`);
            }
          }, { maxGrowthMiB: 256 });
        }
      });

      await t.step("nesting deeper than 100 levels: arrays, maps, array32", async () => {
        const s = await live();
        await s.underAttack("deep nesting", async () => {
          for (
            const [expr, what] of [
              ['b"\\x92\\xa4echo" + b"\\x91" * 101 + b"\\xc0"', "101 fixarrays"],
              ['b"\\x92\\xa4echo" + b"\\x91" * 100000 + b"\\xc0"', "100,000 fixarrays"],
              ['b"\\x92\\xa4echo" + b"\\x81\\xc3" * 100000 + b"\\xc0"', "100,000 maps"],
              ['b"\\x92\\xa4echo" + b"\\xdd\\x00\\x00\\x00\\x01" * 100000 + b"\\xc0"', "array32s"],
              ['b"\\x92\\xa4echo" + b"\\x91" * 2000000', "2,000,000 fixarrays, no leaf"],
            ]
          ) {
            assertError(await s.attacker.call(expr), /nesting deeper than 100 levels/, what);
          }
          const ok = await s.attacker.call('b"\\x92\\xa4echo" + b"\\x91" * 50 + b"\\x07"');
          assert.equal(ok.status, "OK", `50 levels are fine: ${show(ok)}`);
        }, { maxGrowthMiB: 64 });
      });

      await t.step("a 60 MiB string argument and a 60 MiB unknown method name", async () => {
        const s = await live();
        const n = 60 * MiB;
        await s.underAttack("60 MiB payloads", async () => {
          const size = await s.attacker.call(`msgpack.packb(["size", "x" * ${n}])`);
          assert.deepEqual([size.status, size.value], ["OK", n], show(size));
          const echo = await s.attacker.call(`msgpack.packb(["echo", "y" * ${n}])`);
          assert.deepEqual([echo.status, echo.len], ["OK", n + 5], show(echo));
          const add = await s.attacker.call(`msgpack.packb(["add", "z" * ${n}, 1])`);
          assertError(add, /attempt to (add|perform arithmetic)/, "add(60 MiB string, 1)");
          const name = await s.attacker.call(`msgpack.packb(["q" * ${n}, 1, 2])`);
          assertError(name, /^function 'q{1,256}\.\.\. \(62914560 bytes\)' not found$/, "name");
          const bin = await s.attacker.call(`msgpack.packb([b"q" * ${n}])`);
          assertError(bin, /first element is a bin/, "a 60 MiB bin as the method");
        }, { maxGrowthMiB: 700, probeMs: HEAVY_PROBE_MS });
      });

      await t.step("more arguments than a Lua stack holds: 1,000,001 nils", async () => {
        const s = await live();
        await s.underAttack("1,000,001 nils", async () => {
          const n = 1_000_001;
          const expr = (method: string, count: number) =>
            `b"\\xdd" + (${count + 1}).to_bytes(4, "big") + msgpack.packb(${
              py(method)
            }) + nils(${count})`;
          assertError(await s.attacker.call(expr("echo", n)), /too many values/, "echo");
          assertError(await s.attacker.call(expr("count", n)), /too many values/, "count");
          // Just under the decoder's limit: answered one way or the other, never a crash.
          const near = await s.attacker.call(expr("count", 899_999), { timeout: 10000 });
          assert.ok(["OK", "ERROR"].includes(near.status), show(near));
          const after = await s.attacker.call('msgpack.packb(["count", 1, 2, 3])');
          assert.deepEqual([after.status, after.value], ["OK", 3]);
        }, { maxGrowthMiB: 256 });
      });

      await t.step(
        "every global that is not the script's own function, and every alias",
        async () => {
          const s = await live();
          const listed = await s.attacker.call('msgpack.packb(["global_names"])');
          assert.equal(listed.status, "OK", show(listed));
          const globals = listed.value as string[];
          for (const name of ["getenv", "quit", "run", "stop", "start", "init", "os", "print"]) {
            assert.ok(globals.includes(name), `${name} is a global of the fixture`);
          }
          const names = [
            ...globals.filter((name) => !SCRIPT_FUNCTIONS.includes(name)),
            ...["os.getenv", "os.execute", "os.exit", "io.popen", "io.open", "load", "dofile"],
            ...["string.rep", "LuaOverMQ.bind", "_ENV", "", "add\0", "ADD", " add"],
          ];
          await s.underAttack("standard-library names", async () => {
            for (const name of names) {
              for (
                const args of [[SECRET_NAME], [0], ["true"], [
                  "return os.getenv(" + py(SECRET_NAME) + ")",
                ]]
              ) {
                const reply = await s.attacker.call(
                  `msgpack.packb(${JSON.stringify([name, ...args])})`,
                );
                const what = `${JSON.stringify(name)}(${JSON.stringify(args[0])})`;
                assert.equal(reply.status, "ERROR", `${what}: ${show(reply)}`);
                assert.equal(reply.value, `function '${name}' not found`, what);
                assert.ok(
                  !JSON.stringify(reply).includes(SECRET),
                  `${what} leaked the environment`,
                );
              }
            }
          }, { maxGrowthMiB: 64 });
          const runs = await s.attacker.call('msgpack.packb(["lifecycle"])');
          assert.deepEqual(
            runs.value,
            { main: 1, OnInit: 1, OnStop: 0 },
            "quit() and stop() never ran",
          );
        },
      );

      await t.step("OnStop, main, OnInit and their aliases are never run", async () => {
        const s = await live();
        await s.underAttack("lifecycle calls", async () => {
          for (const name of ["OnStop", "main", "OnInit", "stop", "start", "init"]) {
            for (let i = 0; i < 5; i++) {
              const reply = await s.attacker.call(`msgpack.packb([${py(name)}, ${i}])`);
              assert.equal(reply.value, `function '${name}' not found`, `${name}: ${show(reply)}`);
            }
          }
          // Were OnStop run, main's loop would end and the process exit about now.
          await delay(300);
        }, { maxGrowthMiB: 64 });
        const runs = await s.attacker.call('msgpack.packb(["lifecycle"])');
        assert.deepEqual(runs.value, { main: 1, OnInit: 1, OnStop: 0 });
      });

      await t.step("os.execute and io.popen inside a handler", async () => {
        const s = await live();
        await s.underAttack("the shell from a handler", async () => {
          for (
            const expr of [
              'msgpack.packb(["shell", "true"])',
              'msgpack.packb(["shell", "exit 3"])',
              'msgpack.packb(["shell"])',
              'msgpack.packb(["pipe", "echo hi"])',
              'msgpack.packb(["shell", "kill -9 $PPID"])',
            ]
          ) {
            const reply = await s.attacker.call(expr);
            assert.ok(["OK", "ERROR"].includes(reply.status), `${expr}: ${show(reply)}`);
            assert.equal(reply.decodeError, undefined);
            assert.doesNotMatch(String(reply.value), /internal error/, `${expr}: ${show(reply)}`);
            // The state is sound afterwards: results, and errors raised in Lua (a JavaScript
            // exception unwinding through Lua's frames would leave its error path broken).
            const after = await s.attacker.call('msgpack.packb(["echo", "still", 1])');
            assert.deepEqual([after.status, after.value], ["OK", ["still", 1]], `after ${expr}`);
            const error = await s.attacker.call('msgpack.packb(["add", "x", 1])');
            assertError(error, /attempt to (add|perform arithmetic)/, `an error after ${expr}`);
          }
        }, { maxGrowthMiB: 64 });
      });

      // ---- the wire ----------------------------------------------------------------------

      await t.step("wire: a PING flood whose PONGs are never read", async () => {
        const s = await live();
        const peer = await RawPeer.connect(s.uri);
        try {
          await peer.handshake("DEALER");
          const ping = command("PING", new Uint8Array([0, 0, ...enc.encode("0123456789abcdef")]));
          const chunk = concat(Array(65536 / ping.length | 0).fill(ping));
          const { value: written } = await s.underAttack(
            "PING flood",
            () => flood(peer.conn, chunk, 3000, 512 * MiB),
            { maxGrowthMiB: 128 },
          );
          console.log(`  ${(written / MiB).toFixed(0)} MiB of PINGs written`);
          assert.ok(written > 4 * MiB, `only ${written} bytes of PINGs were taken`);
        } finally {
          peer.close();
        }
      });

      await t.step("wire: 1 MiB echoes pipelined and never read are dropped", async () => {
        const s = await live();
        const peer = await RawPeer.connect(s.uri);
        try {
          await peer.handshake("DEALER");
          const request = message([new Uint8Array(0), echoBin(MiB)]);
          await s.underAttack("pipelined echoes", async () => {
            await flood(peer.conn, request, 6000, 400 * MiB);
            assert.ok(await peer.closedByPeer(8000), "the connection that never reads is dropped");
          }, { maxGrowthMiB: 400 });
        } finally {
          peer.close();
        }
      });

      await t.step("wire: unfinished big frames after READY", async () => {
        const s = await live();
        const peers: RawPeer[] = [];
        try {
          // Beyond the largest message: closed at once, whatever the size says.
          for (const size of [1n << 40n, 0xffff_ffff_ffff_ffffn, 0x8000_0000_0000_0000n]) {
            const peer = await RawPeer.connect(s.uri);
            peers.push(peer);
            await peer.handshake("DEALER");
            const header = new Uint8Array(9);
            header[0] = 2;
            new DataView(header.buffer).setBigUint64(1, size);
            await writeAll(peer.conn, concat([header, new Uint8Array(4096)]));
            assert.ok(await peer.closedByPeer(2000), `a frame of ${size} bytes closes at once`);
          }
          // Under the largest message, each left unfinished: 24 x 40 MiB held would be
          // 960 MiB; the socket holds at most 256 MiB for messages still arriving (the bound
          // below leaves room for read buffers the collector has not reclaimed yet).
          const unfinished: RawPeer[] = [];
          for (let i = 0; i < 24; i++) {
            const peer = await RawPeer.connect(s.uri);
            peers.push(peer);
            unfinished.push(peer);
            await peer.handshake("DEALER");
          }
          const header = new Uint8Array(9);
          header[0] = 2;
          new DataView(header.buffer).setBigUint64(1, BigInt(60 * MiB));
          const chunk = new Uint8Array(MiB).fill(0x61);
          await s.underAttack("unfinished frames", async () => {
            await Promise.all(unfinished.map(async (peer) => {
              if (!(await writeAll(peer.conn, header))) return;
              await flood(peer.conn, chunk, 6000, 40 * MiB);
            }));
            await delay(200);
          }, { maxGrowthMiB: 600, probeMs: HEAVY_PROBE_MS });
          const closed = await Promise.all(unfinished.map((peer) => peer.closedByPeer(300)));
          assert.ok(
            closed.some((c) => c),
            "connections past the socket's bound for unfinished messages are closed",
          );
        } finally {
          for (const peer of peers) peer.close();
        }
      });

      await t.step("wire: a slow-loris trickling bytes", async () => {
        const s = await live();
        const request = concat([
          greeting(),
          ready("REQ"),
          message([new Uint8Array(0), new Uint8Array([0x93, 0xa3, 0x61, 0x64, 0x64, 20, 22])]),
        ]);
        const peers = await Promise.all(Array.from({ length: 40 }, () => RawPeer.connect(s.uri)));
        try {
          await s.underAttack("slow-loris", async () => {
            // Each connection sends greeting, READY and a request one byte every 25 ms.
            await Promise.all(peers.map(async (peer, i) => {
              await delay(i);
              for (let at = 0; at < request.length; at++) {
                if (!(await writeAll(peer.conn, request.subarray(at, at + 1)))) return;
                await delay(25);
              }
            }));
            const replies = await Promise.all(peers.map((peer) => peer.readMessage(5000)));
            const good = replies.filter((r) => r !== undefined && r[1] === "OK" && r[2] === "*");
            assert.equal(good.length, peers.length, "each trickled request gets add(20, 22)");
          }, { maxGrowthMiB: 64 });
        } finally {
          for (const peer of peers) peer.close();
        }
      });

      await t.step("wire: a swarm of 2,000 idle handshaken connections", async () => {
        const s = await live();
        const peers: RawPeer[] = [];
        try {
          await s.underAttack("idle swarm", async () => {
            let failed = 0;
            for (let batch = 0; batch < 20; batch++) {
              await Promise.all(Array.from({ length: 100 }, async () => {
                try {
                  const peer = await RawPeer.connect(s.uri);
                  peers.push(peer);
                  await peer.handshake("DEALER");
                } catch {
                  failed++;
                }
              }));
            }
            assert.equal(failed, 0, "all 2,000 connections complete their handshake");
            for (let i = 0; i < 5; i++) {
              const fresh = await s.prober.probe(true);
              assert.ok(served(fresh), `a new client among 2,000 idle ones: ${show(fresh)}`);
            }
          }, { maxGrowthMiB: 300 });
        } finally {
          for (const peer of peers) peer.close();
        }
      });

      await t.step("wire: a SUBSCRIBE flood to the script's PUB", async () => {
        const s = await live();
        const many = await RawPeer.connect(s.pubUri);
        const large = await RawPeer.connect(s.pubUri);
        try {
          await many.handshake("SUB");
          await large.handshake("SUB");
          await s.underAttack("SUBSCRIBE flood", async () => {
            // 50,000 distinct prefixes (ZMTP 3.0-style messages and 3.1 commands), past the
            // bound of 10,000 per subscriber.
            const parts: Uint8Array[] = [];
            for (let i = 0; i < 50_000; i++) {
              const topic = enc.encode(`topic.${String(i).padStart(6, "0")}.${"p".repeat(24)}`);
              parts.push(
                i % 2 === 0
                  ? frame(concat([new Uint8Array([1]), topic]))
                  : command("SUBSCRIBE", topic),
              );
            }
            const subscriptions = concat(parts);
            await flood(many.conn, subscriptions, 4000, subscriptions.length);
            assert.ok(
              await many.closedByPeer(4000),
              "a subscriber past 10,000 prefixes is dropped",
            );
            // Two prefixes of 700 KiB: past the 1 MiB of prefixes a subscriber may hold.
            const big = (c: number) =>
              frame(concat([new Uint8Array([1]), new Uint8Array(700 << 10).fill(c)]));
            await writeAll(large.conn, concat([big(0x61), big(0x62)]));
            assert.ok(
              await large.closedByPeer(4000),
              "a subscriber past 1 MiB of prefixes is dropped",
            );
          }, { maxGrowthMiB: 128 });
        } finally {
          many.close();
          large.close();
        }
      });
    } finally {
      await target.close();
    }
  },
});

Deno.test({
  name: "adversarial: a memory bomb under --max-memory 64 fails its call only",
  ignore: skipInterop,
  async fn() {
    const target = await Target.start(["--max-memory", "64"]);
    try {
      const { peakMiB } = await target.underAttack("memory bomb", async () => {
        for (let i = 0; i < 3; i++) {
          const bomb = await target.attacker.call('msgpack.packb(["bomb"])', { timeout: 10000 });
          assert.deepEqual([bomb.status, bomb.value], ["ERROR", "not enough memory"], show(bomb));
          const next = await target.attacker.call('msgpack.packb(["add", 1, 2])');
          assert.deepEqual([next.status, next.value], ["OK", 3], "the next call is served");
        }
        // A request whose own arguments do not fit under the cap.
        const args = await target.attacker.call(
          'msgpack.packb(["count", "x" * (30 << 20), "y" * (30 << 20), "z" * (3 << 20)])',
          { timeout: 10000 },
        );
        assert.ok(
          args.status === "OK" || args.value === "not enough memory",
          `63 MiB of arguments: ${show(args)}`,
        );
      }, { maxGrowthMiB: 400 });
      assert.ok(peakMiB < 1024, `peak RSS ${peakMiB} MiB`);
    } finally {
      await target.close();
    }
  },
});
