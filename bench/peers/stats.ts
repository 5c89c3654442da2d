/**
 * Statistics of the peers harness: medians over interleaved rounds, and lomq's medians
 * divided by each other server's on the same workload.
 *
 * @module
 */

/**
 * Who served a measured run: lomq, the C libzmq peer of the workload, or an extra: `base`
 * (lomq at another commit), `floor` (bench/floor.ts: Deno's TCP and lomq's frame codec
 * answering with fixed bytes, the most a Deno server can do) and `pysrv`.
 */
export type Role = "lomq" | "libzmq" | "pysrv" | "base" | "floor";

/** Every role, in the order they run within one step of a round. */
export const ROLES: readonly Role[] = ["libzmq", "lomq", "base", "floor", "pysrv"];

/** One measured run of one server on one workload. */
export interface Sample {
  workload: string;
  role: Role;
  round: number;
  /** Operations over the run: calls answered, or messages delivered to the subscriber. */
  count: number;
  /** Calls per second (RPC) or messages delivered per second (publishing). */
  rate: number;
  /** Client-side round-trip latencies (RPC only). */
  p50Us: number | null;
  p99Us: number | null;
  /** Server CPU time (user + system, process tree) per operation; null without /proc. */
  cpuUsPerOp: number | null;
  /** Peak resident set (VmHWM summed over the process tree) in MiB; null without /proc. */
  rssMb: number | null;
  /** Publishing: sequence numbers the subscriber never saw, and how many runs of them. */
  lost: number | null;
  gaps: number | null;
}

/** The medians of the samples of one (workload, role) pair. */
export interface Summary {
  workload: string;
  role: Role;
  rounds: number;
  /** Operations over all rounds. */
  count: number;
  rate: number;
  /** The slowest and fastest round, to show the spread. */
  rateMin: number;
  rateMax: number;
  p50Us: number | null;
  p99Us: number | null;
  cpuUsPerOp: number | null;
  rssMb: number | null;
  lost: number | null;
  gaps: number | null;
}

/** lomq against one other server on one workload: lomq's median over the other's. */
export interface Ratio {
  workload: string;
  peer: Role;
  /** Above 1: lomq served more. */
  rate: number;
  /** Above 1: lomq was slower or cost more. */
  p99: number | null;
  cpuPerOp: number | null;
}

/** The median of a non-empty list (mean of the middle two for an even count). */
export function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
}

function medianOrNull(values: (number | null)[]): number | null {
  return values.length === 0 || values.some((v) => v === null) ? null : median(values as number[]);
}

/** Groups samples by (workload, role), in the order given, and takes every metric's median. */
export function summarize(samples: Sample[], workloads: readonly string[]): Summary[] {
  const out: Summary[] = [];
  for (const workload of workloads) {
    for (const role of ROLES) {
      const group = samples.filter((s) => s.workload === workload && s.role === role);
      if (group.length === 0) continue;
      const rates = group.map((s) => s.rate);
      out.push({
        workload,
        role,
        rounds: group.length,
        count: group.reduce((sum, s) => sum + s.count, 0),
        rate: median(rates),
        rateMin: Math.min(...rates),
        rateMax: Math.max(...rates),
        p50Us: medianOrNull(group.map((s) => s.p50Us)),
        p99Us: medianOrNull(group.map((s) => s.p99Us)),
        cpuUsPerOp: medianOrNull(group.map((s) => s.cpuUsPerOp)),
        rssMb: medianOrNull(group.map((s) => s.rssMb)),
        lost: medianOrNull(group.map((s) => s.lost)),
        gaps: medianOrNull(group.map((s) => s.gaps)),
      });
    }
  }
  return out;
}

function divide(a: number | null, b: number | null): number | null {
  return a === null || b === null || b === 0 ? null : a / b;
}

/** lomq's medians divided by every other server's on the same workload. */
export function ratios(summaries: Summary[]): Ratio[] {
  const out: Ratio[] = [];
  for (const lomq of summaries.filter((s) => s.role === "lomq")) {
    for (const other of summaries) {
      if (other.role === "lomq" || other.workload !== lomq.workload) continue;
      out.push({
        workload: lomq.workload,
        peer: other.role,
        rate: lomq.rate / other.rate,
        p99: divide(lomq.p99Us, other.p99Us),
        cpuPerOp: divide(lomq.cpuUsPerOp, other.cpuUsPerOp),
      });
    }
  }
  return out;
}
