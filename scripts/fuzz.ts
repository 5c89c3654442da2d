/**
 * `deno task fuzz --count N [--seed S] [--wire] [--case I]`: the request fuzzer of
 * `tests/fuzz_test.ts`, for longer runs. In-process by default (requests straight through
 * the decoder and dispatcher); `--wire` sends them from pyzmq to a lomq process instead.
 * `--case I` prints case I of the seed's run and serves it in-process, to look at a failure.
 * Shows progress on a terminal, prints a summary, and exits 1 on any failure.
 *
 * @module
 */

import { parseArgs } from "node:util";
import {
  formatSummary,
  type FuzzSummary,
  generateCase,
  hex,
  InProcessServer,
  parseSeed,
  problems,
  runInProcess,
  runOverWire,
  seedFromEnv,
} from "../tests/helpers/fuzz.ts";
import { findPython } from "../tests/helpers/python.ts";

const HELP = `Usage: deno task fuzz [--count N] [--seed S] [--wire] [--case I]

  --count N   requests to send (default 100000)
  --seed S    the run's seed (default LOMQ_FUZZ_SEED, else random); printed either way
  --wire      send them from pyzmq to a lomq process (needs python3 with pyzmq, msgpack)
  --case I    print case I of the run and its reply in-process, then exit`;

const encoder = new TextEncoder();

/** Runs the fuzzer as the command line asks; returns the exit code. */
async function main(args: string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args,
      options: {
        count: { type: "string" },
        seed: { type: "string" },
        wire: { type: "boolean" },
        case: { type: "string" },
        help: { type: "boolean", short: "h" },
      },
    }).values;
  } catch (error) {
    console.error(`fuzz: ${(error as Error).message}\n\n${HELP}`);
    return 2;
  }
  if (parsed.help) {
    console.log(HELP);
    return 0;
  }
  const count = Number(parsed.count ?? 100_000);
  if (!Number.isInteger(count) || count < 1) {
    console.error(`fuzz: --count takes a positive integer, got '${parsed.count}'`);
    return 2;
  }
  let seed: number;
  try {
    seed = parsed.seed !== undefined ? parseSeed(parsed.seed) : seedFromEnv();
  } catch (error) {
    console.error(`fuzz: ${(error as Error).message}`);
    return 2;
  }

  if (parsed.case !== undefined) return await showCase(seed, Number(parsed.case));

  const terminal = Deno.stdout.isTerminal();
  const started = performance.now();
  const progress = (done: number, summary: FuzzSummary) => {
    if (!terminal) return;
    const seconds = ((performance.now() - started) / 1000).toFixed(1);
    const line = `\r  ${done}/${count} requests, ${summary.failureCount} failures, ${seconds} s`;
    Deno.stdout.writeSync(encoder.encode(line));
  };
  console.log(
    `fuzz ${parsed.wire ? "over the wire" : "in-process"}: ${count} requests, seed ${seed}`,
  );
  let summary: FuzzSummary;
  if (parsed.wire) {
    const python = await findPython();
    if (python === null) {
      console.error("fuzz: --wire needs a python3 with pyzmq and msgpack (or set LOMQ_PYTHON)");
      return 2;
    }
    summary = await runOverWire({ count, seed, python, onProgress: progress });
  } else {
    summary = await runInProcess({ count, seed, onProgress: progress });
  }
  if (terminal) Deno.stdout.writeSync(encoder.encode("\r\x1b[K"));
  console.log(formatSummary(summary));
  const wrong = problems(summary, count);
  if (wrong.length > 0) {
    console.log(`FAILED: ${wrong.join("; ")}`);
    return 1;
  }
  console.log("ok");
  return 0;
}

/** Prints case `index` and what the in-process server answers to it. */
async function showCase(seed: number, index: number): Promise<number> {
  if (!Number.isInteger(index) || index < 0) {
    console.error("fuzz: --case takes a case index (a non-negative integer)");
    return 2;
  }
  const c = generateCase(seed, index);
  console.log(`case ${index} of seed ${seed}: ${c.kind}, ${c.frames.length} frame(s)`);
  c.frames.forEach((frame, i) => console.log(`  frame ${i}: ${hex(frame, 4096)}`));
  const server = await InProcessServer.create();
  try {
    const reply = await server.handle(c.frames);
    reply.forEach((frame, i) => console.log(`  reply ${i}: ${hex(frame, 512)}`));
  } catch (error) {
    console.log(`  crash: ${(error as Error)?.stack ?? String(error)}`);
    return 1;
  } finally {
    await server.close();
  }
  return 0;
}

Deno.exit(await main(Deno.args));
