/**
 * `lomq bench`: a load generator for lomq and LuaOverMQ servers.
 *
 * Every client is one DEALER connection keeping `--pipeline` requests in flight. With
 * `--pipeline 1` that is a lockstep client, on the wire exactly what a REQ client
 * sends (an empty delimiter, then the request); larger windows keep the server busy
 * while replies travel, which is what it takes to saturate it from one process.
 *
 * Each request carries an id in its envelope (see src/client/client.ts), so a reply
 * is matched to its own send time even after a lost request or a timeout.
 *
 * @module
 */

import { DEFAULT_RPC_URI, refusedHandshakeText } from "../client/client.ts";
import { replyId, requestFrames } from "../rpc/wire.ts";
import { EncodeError, encodeRequest } from "../client/msgpack.ts";
import { createSocket, type SecurityOptions, type Socket, ZmqError } from "../zmtp/mod.ts";
import { CURVE_CLIENT_HELP, CURVE_CLIENT_SPECS, curveClientSocketOptions } from "./security.ts";
import {
  type CommandModule,
  flag,
  numberOption,
  type OptionSpec,
  type ParsedArgs,
  runCommand,
  stringOption,
  UsageError,
} from "./args.ts";
import { Histogram } from "./histogram.ts";
import { parseArgument } from "./json.ts";
import { onStopSignal } from "./signals.ts";

/** Exit code when the server never answered (nothing listens, or it is stuck). */
export const EXIT_UNREACHABLE = 3;

const DEFAULT_DURATION_S = 5;
const DEFAULT_TIMEOUT_MS = 5000;
const PROGRESS_INTERVAL_MS = 500;

/** Help text for `lomq bench`. */
export const BENCH_HELP = `Usage: lomq bench [--uri URI] [--clients N] [--duration S | --requests N]
                  [--method NAME] [--args JSON] [--pipeline K] [--timeout MS] [--json]

Loads a lomq or LuaOverMQ server with calls of METHOD(ARGS...) and reports the
throughput, the latency percentiles and the errors.

Each client is one connection. With --pipeline 1 (the default) it calls in
lockstep like a REQ client; with --pipeline K it keeps K calls in flight, which
a single-threaded server answers back to back: use it to find the server's limit.
Latency is measured per call, from send to reply.

Options:
  -u, --uri URI        the server's RPC endpoint (default ${DEFAULT_RPC_URI})
  -c, --clients N      concurrent connections (default 1)
  -d, --duration S     run for S seconds (default ${DEFAULT_DURATION_S} unless --requests is given)
  -n, --requests N     run until N calls in total were answered
  -m, --method NAME    the method to call (default add)
  -a, --args JSON      its arguments as a JSON array (default [1,2]); 1.0 is a float
  -p, --pipeline K     calls in flight per connection (default 1, at most 1000)
  -t, --timeout MS     a call without a reply after MS counts as a timeout (default ${DEFAULT_TIMEOUT_MS})
      --json           print one JSON object instead of the report
${CURVE_CLIENT_HELP}
  -h, --help           show this help

A live progress line shows while stdout is a terminal. In the report, "errors"
are ERROR replies and "timeouts" calls that got no reply in time; latencies
cover every reply, OK or ERROR.

Examples:
  lomq bench                                       5 s, one lockstep client, add(1, 2)
  lomq bench --clients 8 --duration 10
  lomq bench --clients 4 --pipeline 16 --requests 200000 --json
  lomq bench --method echo --args '["hello", 1.5, [1, 2, 3]]'

Exit codes: 0 the run finished, 2 usage error, 3 the server never answered
(no connection, or no reply in time).`;

const SPECS: OptionSpec[] = [
  { name: "uri", short: "u", takesValue: true },
  { name: "clients", short: "c", takesValue: true },
  { name: "duration", short: "d", takesValue: true },
  { name: "requests", short: "n", takesValue: true },
  { name: "method", short: "m", takesValue: true },
  { name: "args", short: "a", takesValue: true },
  { name: "pipeline", short: "p", takesValue: true },
  { name: "timeout", short: "t", takesValue: true },
  { name: "json", takesValue: false },
  ...CURVE_CLIENT_SPECS,
];

/** What a bench run is asked to do. */
export interface BenchConfig {
  /** Server endpoint. */
  uri: string;
  /** Concurrent connections. */
  clients: number;
  /** Calls in flight per connection. */
  pipeline: number;
  /** Seconds to run, when bounded by time. */
  durationS: number | undefined;
  /** Answered calls to collect, when bounded by count. */
  requests: number | undefined;
  /** Method called. */
  method: string;
  /** Its arguments. */
  args: unknown[];
  /** Per-call timeout. */
  timeoutMs: number;
  /** Security options of every client socket (CURVE with --server-key). */
  security?: SecurityOptions;
}

/** The outcome of a run, as `--json` prints it. */
export interface BenchResult {
  /** Server endpoint. */
  uri: string;
  /** Method called. */
  method: string;
  /** Concurrent connections. */
  clients: number;
  /** Calls in flight per connection. */
  pipeline: number;
  /** Measured wall time in seconds. */
  seconds: number;
  /** Replies received (OK and ERROR). */
  requests: number;
  /** OK replies. */
  ok: number;
  /** ERROR replies. */
  errors: number;
  /** Calls that got no reply within the timeout. */
  timeouts: number;
  /** Replies per second. */
  rps: number;
  /** Reply latency percentiles in milliseconds. */
  latencyMs: { p50: number; p90: number; p99: number; max: number; mean: number };
}

/** Runs `lomq bench`; returns the exit code. */
export function bench(args: string[]): Promise<number> {
  return runCommand({ name: "bench", help: BENCH_HELP, specs: SPECS }, args, async (parsed) => {
    if (parsed.positionals.length > 0) {
      throw new UsageError(`unexpected argument '${parsed.positionals[0]}'`);
    }
    const config = readConfig(parsed);
    const json = flag(parsed, "json");
    const progress = progressWriter();
    let outcome: BenchResult | string;
    try {
      outcome = await runBench(config, progress);
    } finally {
      progress?.clear();
    }
    if (typeof outcome === "string") {
      console.error(`lomq bench: ${outcome}`);
      return EXIT_UNREACHABLE;
    }
    console.log(json ? JSON.stringify(outcome) : report(outcome, config));
    return 0;
  });
}

function readConfig(parsed: ParsedArgs): BenchConfig {
  const durationS = numberOption(parsed, "duration", { min: 0.001, max: 86400, integer: false });
  const requests = numberOption(parsed, "requests", { min: 1 });
  if (durationS !== undefined && requests !== undefined) {
    throw new UsageError("give --duration or --requests, not both");
  }
  const argsText = stringOption(parsed, "args", "[1,2]");
  const callArgs = parseArgument(argsText);
  if (!Array.isArray(callArgs)) {
    throw new UsageError(`--args must be a JSON array such as [1,2], got ${argsText}`);
  }
  return {
    uri: stringOption(parsed, "uri", DEFAULT_RPC_URI),
    clients: numberOption(parsed, "clients", { min: 1, max: 1000 }) ?? 1,
    pipeline: numberOption(parsed, "pipeline", { min: 1, max: 1000 }) ?? 1,
    durationS: requests === undefined ? durationS ?? DEFAULT_DURATION_S : undefined,
    requests,
    method: stringOption(parsed, "method", "add"),
    args: callArgs,
    timeoutMs: numberOption(parsed, "timeout", { min: 1, max: 0x7fff_ffff }) ?? DEFAULT_TIMEOUT_MS,
    security: curveClientSocketOptions(parsed),
  };
}

/** Live counters shared by every connection of a run. */
interface Tally {
  ok: number;
  errors: number;
  timeouts: number;
  issued: number;
  latency: Histogram;
}

/**
 * Runs the load; resolves with the result, or with a message when the server never
 * answered.
 */
export async function runBench(
  config: BenchConfig,
  progress?: { update(text: string): void },
): Promise<BenchResult | string> {
  let body: Uint8Array;
  try {
    body = encodeRequest(config.method, config.args);
  } catch (error) {
    if (error instanceof EncodeError) throw new UsageError(error.message);
    throw error;
  }
  const sockets: Socket[] = [];
  // Aborted when the run must end: its duration is over, or Ctrl+C (which still reports).
  const finish = new AbortController();
  const removeSignals = onStopSignal(() => finish.abort());
  try {
    try {
      for (let i = 0; i < config.clients; i++) {
        const socket = createSocket("DEALER", config.security);
        sockets.push(socket);
        socket.connect(config.uri);
      }
    } catch (error) {
      if (error instanceof ZmqError) throw new UsageError(error.message);
      throw error;
    }
    // Connecting is not what is measured: start the clock once every connection is up.
    const notConnected = await allConnected(sockets, config, finish.signal);
    if (notConnected !== undefined) return notConnected;
    const tally: Tally = { ok: 0, errors: 0, timeouts: 0, issued: 0, latency: new Histogram() };
    const started = performance.now();
    const total = config.requests;
    const endAt = config.durationS === undefined ? Infinity : started + config.durationS * 1000;
    const mayIssue = total === undefined
      ? () => performance.now() < endAt
      : () => tally.issued < total;
    const done = total === undefined
      ? () => performance.now() >= endAt
      : () => tally.ok + tally.errors + tally.timeouts >= total;

    const ticker = progress
      ? setInterval(() => progress.update(progressLine(tally, started)), PROGRESS_INTERVAL_MS)
      : undefined;
    const deadline = config.durationS === undefined
      ? undefined
      : setTimeout(() => finish.abort(), config.durationS * 1000);
    try {
      await Promise.all(
        sockets.map((socket) =>
          driveConnection(socket, body, config, tally, { mayIssue, done, signal: finish.signal })
        ),
      );
    } finally {
      clearInterval(ticker);
      clearTimeout(deadline);
    }
    const seconds = (Math.min(performance.now(), endAt) - started) / 1000;
    const replies = tally.ok + tally.errors;
    if (replies === 0) {
      return tally.timeouts > 0
        ? `no reply from ${config.uri} within ${config.timeoutMs} ms`
        : `no reply from ${config.uri} before the run ended`;
    }
    const ms = (micros: number) => Math.round(micros) / 1000;
    return {
      uri: config.uri,
      method: config.method,
      clients: config.clients,
      pipeline: config.pipeline,
      seconds: Math.round(seconds * 1000) / 1000,
      requests: replies,
      ok: tally.ok,
      errors: tally.errors,
      timeouts: tally.timeouts,
      rps: seconds > 0 ? Math.round(replies / seconds) : 0,
      latencyMs: {
        p50: ms(tally.latency.quantile(0.5)),
        p90: ms(tally.latency.quantile(0.9)),
        p99: ms(tally.latency.quantile(0.99)),
        max: ms(tally.latency.max),
        mean: ms(tally.latency.mean),
      },
    };
  } finally {
    removeSignals();
    await Promise.all(sockets.map((socket) => socket.close(0)));
  }
}

/**
 * Waits until every socket has a connection up: undefined then, else why not. A refused
 * handshake ends the wait at once, since the retries would meet the same refusal.
 */
async function allConnected(
  sockets: Socket[],
  config: BenchConfig,
  signal: AbortSignal,
): Promise<string | undefined> {
  const deadline = performance.now() + config.timeoutMs;
  while (!sockets.every((socket) => socket.peerCount > 0)) {
    for (const socket of sockets) {
      const reason = socket.lastHandshakeFailure;
      if (socket.peerCount === 0 && reason !== undefined) {
        return refusedHandshakeText(config.uri, reason);
      }
    }
    if (signal.aborted) return "interrupted before the connections were up";
    if (performance.now() >= deadline) {
      return `could not connect to ${config.uri} within ${config.timeoutMs} ms (is the server running?)`;
    }
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  return undefined;
}

/** Keeps one connection's window full until the run is done. */
async function driveConnection(
  socket: Socket,
  body: Uint8Array,
  config: BenchConfig,
  tally: Tally,
  run: { mayIssue(): boolean; done(): boolean; signal: AbortSignal },
): Promise<void> {
  // Send times by request id, in send order: the first entry is the oldest call.
  const inFlight = new Map<number, number>();
  let nextId = 0;

  const issue = (): void => {
    while (inFlight.size < config.pipeline && run.mayIssue()) {
      const id = nextId;
      nextId = (nextId + 1) >>> 0;
      if (!socket.trySend(requestFrames(id, body))) return; // at the HWM: the next reply makes room
      tally.issued++;
      inFlight.set(id, performance.now());
    }
  };

  issue();
  while (!run.signal.aborted && !run.done() && inFlight.size > 0) {
    const oldest = inFlight.values().next().value as number;
    const waitMs = Math.max(1, oldest + config.timeoutMs - performance.now());
    if (await socket.readable(waitMs, run.signal)) {
      const now = performance.now();
      for (let frames = socket.tryRecv(); frames; frames = socket.tryRecv()) {
        const id = replyId(frames);
        if (id === undefined) continue;
        const sentAt = inFlight.get(id);
        if (sentAt === undefined) continue; // the reply to a call already counted as a timeout
        inFlight.delete(id);
        const status = frames[2];
        if (status.length === 2 && status[0] === 0x4f && status[1] === 0x4b) tally.ok++;
        else tally.errors++;
        tally.latency.record((now - sentAt) * 1000);
      }
    }
    const expired = performance.now() - config.timeoutMs;
    for (const [id, sentAt] of inFlight) {
      if (sentAt > expired) break;
      inFlight.delete(id);
      tally.timeouts++;
    }
    issue();
  }
}

function progressLine(tally: Tally, started: number): string {
  const seconds = (performance.now() - started) / 1000;
  const replies = tally.ok + tally.errors;
  const rps = seconds > 0 ? Math.round(replies / seconds) : 0;
  const p99 = (tally.latency.quantile(0.99) / 1000).toFixed(3);
  return `${seconds.toFixed(1)} s  ${replies} calls  ${rps} calls/s  p99 ${p99} ms  ` +
    `errors ${tally.errors}  timeouts ${tally.timeouts}`;
}

/** The human-readable report. */
export function report(result: BenchResult, config: BenchConfig): string {
  const l = result.latencyMs;
  const f = (ms: number) => ms.toFixed(3);
  return [
    `lomq bench: ${result.method}(${
      JSON.stringify(config.args, jsonSafe).slice(1, -1)
    }) on ${result.uri}, ` +
    `${result.clients} client${result.clients === 1 ? "" : "s"} x pipeline ${result.pipeline}, ` +
    `${result.seconds.toFixed(2)} s`,
    `  throughput  ${result.rps} calls/s (${result.requests} replies)`,
    `  latency ms  p50 ${f(l.p50)}  p90 ${f(l.p90)}  p99 ${f(l.p99)}  max ${f(l.max)}  mean ${
      f(l.mean)
    }`,
    `  errors      ${result.errors} ERROR replies, ${result.timeouts} timeouts`,
  ].join("\n");
}

function jsonSafe(_key: string, value: unknown): unknown {
  if (typeof value === "bigint") return value.toString();
  if (value instanceof Uint8Array) return `<${value.length} bytes>`;
  return value;
}

/** A progress line on a terminal's stdout, rewritten in place. */
function progressWriter(): { update(text: string): void; clear(): void } | undefined {
  if (!Deno.stdout.isTerminal()) return undefined;
  const encoder = new TextEncoder();
  let shown = false;
  return {
    update(text) {
      Deno.stdout.writeSync(encoder.encode(`\r\x1b[K${text}`));
      shown = true;
    },
    clear() {
      if (shown) Deno.stdout.writeSync(encoder.encode("\r\x1b[K"));
    },
  };
}

/** `lomq bench`, for the command table. */
export const COMMAND: CommandModule = { help: BENCH_HELP, main: bench };
