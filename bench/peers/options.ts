/**
 * The command line of the peers harness (`deno task bench:peers`).
 *
 * @module
 */

import { parseArgs } from "node:util";
import { UsageError } from "./errors.ts";
import { type Role, ROLES } from "./stats.ts";
import { type Section, SECTIONS, type Workload, workloadNames, WORKLOADS } from "./workloads.ts";

/** The command-line options, validated. */
export interface Options {
  /** Seconds of measured load per run. */
  seconds: number;
  /** How many times every (workload, server) run is repeated; the median is reported. */
  rounds: number;
  /** Seconds of unmeasured load before each measured RPC run (JIT and caches warm up). */
  warmup: number;
  /** Seconds a server gets to start answering before it counts as failed. */
  startTimeout: number;
  /** Table rows to measure, in table order. */
  workloads: Workload[];
  /** Sections to measure besides the table. */
  sections: Section[];
  /** Servers to run, in {@linkcode ROLES} order. */
  roles: Role[];
  /** Print one JSON object instead of tables. */
  json: boolean;
  /** Print usage and exit. */
  help: boolean;
}

/** The usage text printed by `--help` and after a usage error. */
export const USAGE = `usage: deno task bench:peers [options]
       (deno run --allow-all bench/run.ts [options])

  --seconds S        measured load per run, seconds (default 5)
  --rounds N         repeat every run N times and report medians (default 1)
  --warmup S         unmeasured load before each RPC run, seconds (default 1)
  --start-timeout S  how long a server may take to answer (default 30)
  --workloads LIST   rows and sections to measure, by group or id (default all):
                     ${workloadNames().join(",")}
  --only LIST        servers among lomq,libzmq,base,floor,pysrv (default all; base
                     only with LOMQ_BASELINE; floor, Deno's I/O with fixed replies,
                     serves the rows without CURVE; pysrv the lockstep rows)
  --json             print one JSON object instead of tables
  -h, --help         this text

environment: LOMQ_YARDSTICK (yardstick folder), LOMQ_BIN (lomq command,
word-split, run as "$LOMQ_BIN bench/add.lua URI ..."), LOMQ_PYTHON (a Python
with pyzmq and msgpack), LOMQ_BASELINE (another lomq checkout, measured in the
same rounds as "base": how a change compares with the code before it)`;

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

function list(raw: string): string[] {
  return raw.split(",").map((s) => s.trim()).filter((s) => s !== "");
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
        rounds: { type: "string" },
        warmup: { type: "string" },
        "start-timeout": { type: "string" },
        workloads: { type: "string" },
        only: { type: "string" },
        json: { type: "boolean" },
        help: { type: "boolean", short: "h" },
      },
    });
  } catch (e) {
    throw new UsageError(e instanceof Error ? e.message : String(e));
  }
  const v = parsed.values;
  const known = workloadNames();
  const names = v.workloads === undefined ? known : list(v.workloads);
  for (const name of names) {
    if (!known.includes(name)) {
      throw new UsageError(`--workloads: unknown "${name}" (known: ${known.join(", ")})`);
    }
  }
  const everything = ROLES.filter((r) => r !== "base" || Deno.env.get("LOMQ_BASELINE"));
  const wanted = v.only === undefined ? everything : list(v.only);
  for (const name of wanted) {
    if (!(ROLES as readonly string[]).includes(name)) {
      throw new UsageError(`--only: unknown server "${name}" (known: ${ROLES.join(", ")})`);
    }
  }
  return {
    seconds: parseNumber("seconds", v.seconds ?? "5", 0.1, 3600, false),
    rounds: parseNumber("rounds", v.rounds ?? "1", 1, 100, true),
    warmup: parseNumber("warmup", v.warmup ?? "1", 0, 600, false),
    startTimeout: parseNumber("start-timeout", v["start-timeout"] ?? "30", 1, 600, false),
    workloads: WORKLOADS.filter((w) => names.includes(w.id) || names.includes(w.group)),
    sections: SECTIONS.filter((s) => names.includes(s)),
    roles: ROLES.filter((r) => wanted.includes(r)),
    json: v.json ?? false,
    help: v.help ?? false,
  };
}
