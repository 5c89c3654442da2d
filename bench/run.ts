/**
 * The peers harness (`deno task bench:peers`): lomq side by side with the C libzmq peers
 * of the yardstick (`../shared/yardstick`) on every workload of its README (lockstep,
 * pipelined, payloads, CURVE, publishing), plus start-up time and idle CPU. Runs are
 * interleaved round by round and the report leads with the ratios lomq/peer of the
 * medians, since absolute numbers depend on the machine and its neighbours.
 *
 * The parts: `peers/options.ts` (command line), `peers/setup.ts` (yardstick, toolchain,
 * commands), `peers/process.ts` (process supervision), `peers/measure.ts` (one run),
 * `peers/stats.ts` (medians, ratios), `peers/report.ts` (tables).
 *
 * Usage: deno run --allow-all bench/run.ts [--rounds N] [--seconds S] [--workloads LIST] ...
 *
 * @module
 */

import { BenchError, UsageError } from "./peers/errors.ts";
import {
  IDLE_CLIENTS,
  type IdleResult,
  measure,
  measureIdle,
  measureStartup,
  type RunSettings,
  Unsupported,
} from "./peers/measure.ts";
import { type Options, parseOptions, USAGE } from "./peers/options.ts";
import { clockTicks, isInterrupted, onInterrupt, stopAll, within } from "./peers/process.ts";
import { formatReport, type IdleSummary, type StartupSummary } from "./peers/report.ts";
import { prepare, roleName, type Setup } from "./peers/setup.ts";
import { median, ratios, type Role, type Sample, summarize } from "./peers/stats.ts";
import type { Workload } from "./peers/workloads.ts";

/** What a whole run measured. */
interface Measurements {
  samples: Sample[];
  skipped: Map<string, string>;
  startup: Map<Role, number[]>;
  idle: IdleResult[];
}

function rotate<T>(items: readonly T[], by: number): T[] {
  const shift = items.length === 0 ? 0 : by % items.length;
  return [...items.slice(shift), ...items.slice(0, shift)];
}

function rolesOf(opts: Options, w: Workload): Role[] {
  return w.roles.filter((r) => opts.roles.includes(r));
}

/** Every (round, workload, server) step; the servers' order rotates every round. */
async function runAll(
  opts: Options,
  setup: Setup,
  settings: RunSettings,
  progress: (m: string) => void,
): Promise<Measurements> {
  const found: Measurements = { samples: [], skipped: new Map(), startup: new Map(), idle: [] };
  const sectionRoles = opts.roles.filter((r) => r === "lomq" || r === "libzmq" || r === "base");
  const total = opts.rounds * (opts.workloads.reduce((n, w) => n + rolesOf(opts, w).length, 0) +
    opts.sections.length * sectionRoles.length);
  let step = 0;
  for (let round = 1; round <= opts.rounds; round++) {
    for (const workload of opts.workloads) {
      for (const role of rotate(rolesOf(opts, workload), round - 1)) {
        step++;
        const name = roleName(role, workload);
        if (found.skipped.has(workload.id) && role === "lomq") continue;
        progress(`[${step}/${total}] round ${round}, ${workload.title}: ${name}`);
        try {
          const s = await measure(setup, role, workload, round, settings);
          found.samples.push(s);
          progress(
            `[${step}/${total}]   ${name}: ${s.rate.toFixed(0)} ${workload.unit}` +
              (s.p99Us !== null ? `, p99 ${s.p99Us} µs` : "") +
              (s.lost !== null ? `, lost ${s.lost}` : ""),
          );
        } catch (e) {
          if (!(e instanceof Unsupported)) throw e;
          found.skipped.set(workload.id, e.message);
          progress(`[${step}/${total}]   skipped: ${e.message}`);
        }
      }
    }
    for (const section of opts.sections) {
      for (const role of rotate(sectionRoles, round - 1)) {
        step++;
        progress(`[${step}/${total}] round ${round}, ${section}: ${role}`);
        if (section === "startup") {
          const ms = await measureStartup(setup, role, settings);
          found.startup.set(role, [...(found.startup.get(role) ?? []), ms]);
          progress(`[${step}/${total}]   ${role}: ${ms.toFixed(0)} ms to listening`);
        } else {
          const idle = await measureIdle(setup, role, settings);
          found.idle.push(idle);
          progress(`[${step}/${total}]   ${role}: ${idle.cpuPercent?.toFixed(2)}% of a core`);
        }
      }
    }
  }
  return found;
}

function startupSummaries(m: Measurements): StartupSummary[] {
  return [...m.startup].map(([role, ms]) => ({
    role,
    name: role === "libzmq" ? "csrv" : role,
    medianMs: median(ms),
    minMs: Math.min(...ms),
    maxMs: Math.max(...ms),
  }));
}

function idleSummaries(m: Measurements): IdleSummary[] {
  const roles = [...new Set(m.idle.map((i) => i.role))];
  return roles.map((role) => {
    const values = m.idle.filter((i) => i.role === role).map((i) => i.cpuPercent);
    return {
      role,
      name: role === "libzmq" ? "csrv" : role,
      clients: IDLE_CLIENTS,
      cpuPercent: values.some((v) => v === null) ? null : median(values as number[]),
    };
  });
}

async function main(argv: string[]): Promise<number> {
  let opts: Options;
  try {
    opts = parseOptions(argv);
  } catch (e) {
    if (!(e instanceof UsageError)) throw e;
    console.error(`${e.message}\n\n${USAGE}`);
    return 2;
  }
  if (opts.help) {
    console.log(USAGE);
    return 0;
  }
  const tty = Deno.stderr.isTerminal() || Deno.env.get("LOMQ_BENCH_PROGRESS") === "1";
  const started = performance.now();
  const progress = (m: string) => {
    if (!tty) return;
    const t = ((performance.now() - started) / 1000).toFixed(0).padStart(4);
    console.error(`[${t}s] ${m}`);
  };
  const removeListeners = onInterrupt();
  try {
    const setup = await prepare(opts, progress);
    const settings: RunSettings = {
      seconds: opts.seconds,
      warmup: opts.warmup,
      startTimeout: opts.startTimeout,
      clkTck: await clockTicks(),
    };
    const found = await runAll(opts, setup, settings, progress);
    const ids = opts.workloads.map((w) => w.id);
    const summaries = summarize(found.samples, ids);
    const config = {
      seconds: opts.seconds,
      warmup: opts.warmup,
      rounds: opts.rounds,
      workloads: ids,
      servers: opts.roles,
      cpus: navigator.hardwareConcurrency,
      loadavg: Deno.build.os === "windows" ? null : Deno.loadavg(),
      os: `${Deno.build.os} ${Deno.build.arch}`,
      deno: Deno.version.deno,
      python: setup.python,
      lomqCommand: setup.lomqDescription,
      date: new Date().toISOString(),
    };
    const startup = startupSummaries(found);
    const idle = idleSummaries(found);
    if (opts.json) {
      console.log(JSON.stringify({
        config,
        results: summaries,
        ratios: ratios(summaries),
        skipped: Object.fromEntries(found.skipped),
        startup,
        idle,
        samples: found.samples,
      }));
    } else {
      const heading = `lomq bench:peers: ${opts.seconds} s per run after ${opts.warmup} s ` +
        `warm-up, median of ${opts.rounds} interleaved round(s); ${config.cpus} CPUs, ` +
        `${config.os}, deno ${config.deno}, load average ` +
        `${config.loadavg?.map((l) => l.toFixed(2)).join(" ")}`;
      console.log(formatReport({
        heading,
        workloads: opts.workloads,
        summaries,
        skipped: found.skipped,
        peerName: (w) => roleName("libzmq", w),
        startup,
        idle,
      }));
    }
    return 0;
  } catch (e) {
    // Ctrl+C in a terminal signals the children too: their deaths can surface as an
    // error before our own listener runs, so give it a moment to claim the failure.
    await within(new Promise<never>(() => {}), 200);
    if (isInterrupted()) return 130;
    if (e instanceof BenchError) console.error(`bench: ${e.message}`);
    else console.error(e);
    return 1;
  } finally {
    await stopAll();
    removeListeners();
  }
}

if (import.meta.main) Deno.exit(await main(Deno.args));
