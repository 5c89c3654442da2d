/**
 * The peers harness's report: one ratio table (lomq against the C libzmq peer of every
 * workload), the extra servers' ratios, and the start-up and idle sections, as markdown.
 *
 * @module
 */

import { ratios, type Role, type Summary } from "./stats.ts";
import type { Workload } from "./workloads.ts";

/** Start-up times of one server, in ms over rounds. */
export interface StartupSummary {
  role: Role;
  name: string;
  medianMs: number;
  minMs: number;
  maxMs: number;
}

/** Idle CPU of one server (median over rounds). */
export interface IdleSummary {
  role: Role;
  name: string;
  clients: number;
  cpuPercent: number | null;
}

/** Everything the report shows. */
export interface ReportInput {
  heading: string;
  workloads: readonly Workload[];
  summaries: Summary[];
  /** Rows skipped, with why (lomq without CURVE). */
  skipped: Map<string, string>;
  /** The peer's name in each workload's rows. */
  peerName: (w: Workload) => string;
  startup: StartupSummary[];
  idle: IdleSummary[];
}

/** Start-up target from the issue: launch to listening, warm cache. */
export const STARTUP_TARGET_MS = 150;
/** Idle target: percent of one core with 100 heartbeating clients. */
export const IDLE_TARGET_PERCENT = 0.5;

function fmt(value: number | null, digits: number): string {
  return value === null || !Number.isFinite(value) ? "-" : value.toFixed(digits);
}

/** 1234 as "1234", 123456 as "123.5k": rates span five orders of magnitude. */
export function fmtRate(value: number | null): string {
  if (value === null || !Number.isFinite(value)) return "-";
  return value >= 10_000 ? `${(value / 1000).toFixed(1)}k` : value.toFixed(0);
}

function fmtRatio(value: number | null): string {
  return value === null || !Number.isFinite(value) ? "-" : `${value.toFixed(2)}x`;
}

/** A markdown table; columns from `numericFrom` on are right-aligned. */
export function markdownTable(header: string[], rows: string[][], numericFrom: number): string {
  const align = header.map((_, i) => (i >= numericFrom ? "---:" : "---"));
  return [header, align, ...rows].map((r) => `| ${r.join(" | ")} |`).join("\n");
}

/** The human-readable report. */
export function formatReport(input: ReportInput): string {
  const { summaries, workloads } = input;
  const find = (id: string, role: Role) =>
    summaries.find((s) => s.workload === id && s.role === role);
  const parts = [input.heading];
  const main: string[][] = [];
  for (const w of workloads) {
    const lomq = find(w.id, "lomq");
    const peer = find(w.id, "libzmq");
    if (!lomq && !peer) continue;
    const ratio = lomq && peer ? lomq.rate / peer.rate : null;
    const p99 = lomq?.p99Us != null && peer?.p99Us != null ? lomq.p99Us / peer.p99Us : null;
    main.push([
      w.title,
      input.peerName(w),
      w.unit,
      fmtRate(lomq?.rate ?? null),
      fmtRate(peer?.rate ?? null),
      fmtRatio(ratio),
      fmt(lomq?.p99Us ?? null, 0),
      fmt(peer?.p99Us ?? null, 0),
      fmtRatio(p99),
      fmt(lomq?.cpuUsPerOp ?? null, 2),
      fmt(peer?.cpuUsPerOp ?? null, 2),
      w.load.kind === "publish"
        ? `${fmt(lomq?.lost ?? null, 0)} / ${fmt(peer?.lost ?? null, 0)}`
        : "",
    ]);
  }
  if (main.length > 0) {
    parts.push(
      "",
      "lomq against C libzmq (rate above 1x: lomq is faster; p99 above 1x: lomq is slower):",
      "",
      markdownTable(
        [
          "workload",
          "peer",
          "unit",
          "lomq",
          "peer",
          "lomq/peer",
          "p99 µs lomq",
          "p99 µs peer",
          "p99 ratio",
          "cpu µs/op lomq",
          "cpu µs/op peer",
          "lost lomq / peer",
        ],
        main,
        3,
      ),
    );
  }
  const others = ratios(summaries).filter((r) => r.peer !== "libzmq");
  if (others.length > 0) {
    const title = (id: string) => workloads.find((w) => w.id === id)?.title ?? id;
    parts.push(
      "",
      "lomq against the other servers:",
      "",
      markdownTable(
        ["workload", "server", "its rate", "it/libzmq", "lomq/it", "p99 ratio", "cpu/op ratio"],
        others.map((r) => {
          const rate = find(r.workload, r.peer)?.rate ?? null;
          const libzmq = find(r.workload, "libzmq")?.rate ?? null;
          return [
            title(r.workload),
            r.peer,
            fmtRate(rate),
            fmtRatio(rate !== null && libzmq !== null ? rate / libzmq : null),
            fmtRatio(r.rate),
            fmtRatio(r.p99),
            fmtRatio(r.cpuPerOp),
          ];
        }),
        2,
      ),
    );
  }
  for (const [id, why] of input.skipped) parts.push("", `skipped ${id}: ${why}`);
  if (input.startup.length > 0) {
    parts.push(
      "",
      `Start-up, launch to listening (lomq's target: under ${STARTUP_TARGET_MS} ms):`,
      "",
      markdownTable(
        ["server", "median ms", "min ms", "max ms"],
        input.startup.map((s) => [s.name, fmt(s.medianMs, 0), fmt(s.minMs, 0), fmt(s.maxMs, 0)]),
        1,
      ),
    );
  }
  if (input.idle.length > 0) {
    parts.push(
      "",
      `Idle, clients connected with heartbeats every second (lomq's target: under ` +
        `${IDLE_TARGET_PERCENT}% of a core):`,
      "",
      markdownTable(
        ["server", "clients", "CPU % of a core"],
        input.idle.map((s) => [s.name, String(s.clients), fmt(s.cpuPercent, 2)]),
        1,
      ),
    );
  }
  return parts.join("\n");
}
