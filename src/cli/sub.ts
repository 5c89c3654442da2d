/**
 * `lomq sub [--uri URI] [--count N] [TOPIC...]`: prints what a publisher sends, one JSON
 * line per message.
 *
 * @module
 */

import { CURVE_CLIENT_HELP, CURVE_CLIENT_SPECS, curveClientSocketOptions } from "./security.ts";
import { DEFAULT_PUB_URI } from "../client/subscriber.ts";
import { createSocket, type Socket, ZmqError } from "../zmtp/mod.ts";
import {
  type CommandModule,
  numberOption,
  type OptionSpec,
  runCommand,
  stringOption,
  UsageError,
} from "./args.ts";
import { bytesToJsonText, decodeTagged, taggedToJson } from "./json.ts";
import { onStopSignal } from "./signals.ts";

/** Help text for `lomq sub`. */
export const SUB_HELP = `Usage: lomq sub [--uri URI] [--count N] [TOPIC...]

Subscribes to a lomq or LuaOverMQ publisher and prints one JSON line per message:
  {"topic": "...", "value": ..., "time": SECONDS}
"time" is when the message arrived, in seconds since the epoch (like LuaOverMQ.time()).
Values print as in lomq call (exact integers, 100.0 for floats, {"$bin": ...}).
A message that is not (topic, msgpack value) prints its frames: {"topic", "frames", "time"}.

Each TOPIC is a prefix; with none, every message is printed. Runs until Ctrl+C
(exit 0), or until --count messages arrived. Messages published before the
subscription reaches the publisher are not seen (ZeroMQ's PUB/SUB works so).

Options:
  -u, --uri URI      the publisher's endpoint (default ${DEFAULT_PUB_URI})
  -n, --count N      exit after N messages
${CURVE_CLIENT_HELP}
  -h, --help         show this help

Examples:
  lomq sub                                   everything from ${DEFAULT_PUB_URI}
  lomq sub --uri tcp://127.0.0.1:9005 quotes. trades.
  lomq sub --count 1 heartbeat               wait for one heartbeat, print it, exit

Exit codes: 0 stopped by Ctrl+C or --count reached, 2 usage error.`;

const SPECS: OptionSpec[] = [
  { name: "uri", short: "u", takesValue: true },
  { name: "count", short: "n", takesValue: true },
  ...CURVE_CLIENT_SPECS,
];

const encoder = new TextEncoder();

/** Runs `lomq sub`; returns the exit code. */
export function sub(args: string[]): Promise<number> {
  return runCommand({ name: "sub", help: SUB_HELP, specs: SPECS }, args, async (parsed) => {
    const uri = stringOption(parsed, "uri", DEFAULT_PUB_URI);
    const limit = numberOption(parsed, "count", { min: 1 }) ?? Infinity;
    const topics = parsed.positionals.length === 0 ? [""] : parsed.positionals;

    let socket: Socket;
    try {
      socket = createSocket("SUB", curveClientSocketOptions(parsed));
      for (const topic of topics) socket.subscribe(topic);
      socket.connect(uri);
    } catch (error) {
      if (error instanceof ZmqError) throw new UsageError(error.message);
      throw error;
    }
    const stop = new AbortController();
    const removeSignals = onStopSignal(() => stop.abort());
    let printed = 0;
    try {
      while (printed < limit && (await socket.readable(undefined, stop.signal))) {
        // Everything already queued goes out in one write: a busy publisher costs one
        // syscall per batch, not per message.
        const lines: string[] = [];
        for (let frames = socket.tryRecv(); frames; frames = socket.tryRecv()) {
          lines.push(messageLine(frames));
          if (printed + lines.length >= limit) break;
        }
        printed += lines.length;
        if (!(await writeOut(lines.join("")))) break;
      }
    } finally {
      removeSignals();
      await socket.close(0);
    }
    return 0;
  });
}

/** One message as a JSON line. */
export function messageLine(frames: Uint8Array[], arrivedAt = nowSeconds()): string {
  const topic = bytesToJsonText(frames[0]);
  const time = String(arrivedAt);
  if (frames.length === 2) {
    try {
      const value = taggedToJson(decodeTagged(frames[1]));
      return `{"topic":${topic},"value":${value},"time":${time}}\n`;
    } catch {
      // not msgpack: fall through and show the raw frames
    }
  }
  const rest = frames.slice(1).map((frame) => taggedToJson({ type: "bin", value: frame }));
  return `{"topic":${topic},"frames":[${rest.join(",")}],"time":${time}}\n`;
}

function nowSeconds(): number {
  return (performance.timeOrigin + performance.now()) / 1000;
}

/** Writes to stdout; false when the reader went away (`lomq sub | head -1`). */
async function writeOut(text: string): Promise<boolean> {
  let bytes = encoder.encode(text);
  try {
    while (bytes.length > 0) bytes = bytes.subarray(await Deno.stdout.write(bytes));
    return true;
  } catch (error) {
    if (error instanceof Deno.errors.BrokenPipe) return false;
    throw error;
  }
}

/** `lomq sub`, for the command table. */
export const COMMAND: CommandModule = { help: SUB_HELP, main: sub };
