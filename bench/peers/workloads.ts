/**
 * The workloads of the peers harness: every pair of ../shared/yardstick/README.md, each a
 * row of the ratio table, with how lomq and its C libzmq peer are started for it and what
 * measures them.
 *
 * @module
 */

import type { Role } from "./stats.ts";

/** Calls made by cload: lockstep REQ clients, or DEALERs keeping calls in flight. */
export interface CloadLoad {
  kind: "cload";
  clients: number;
  /** cload's extra arguments (`--pipeline 64`, `--payload 1000`). */
  args: string[];
  /** The server is a ROUTER (`csrv --router`, lomq's ROUTER socket). */
  router: boolean;
  /** CURVE: lomq binds with `curve_server`, csrv gets `--curve SECRET`, cload `--curve PUBLIC`. */
  curve: boolean;
}

/** Publications counted by csub: a Lua loop of `pub:send("t", i)` against cpub. */
export interface PublishLoad {
  kind: "publish";
  /** Bytes of the bin carried with each sequence number (`{i, bin}`); 0 sends `i` alone. */
  size: number;
}

/** One row of the table. */
export interface Workload {
  /** Stable name for `--workloads` and JSON (`pipelined-8`). */
  id: string;
  /** The group `--workloads` may name instead (`pipelined`). */
  group: string;
  /** What the row says. */
  title: string;
  /** What the rate counts. */
  unit: "rps" | "msg/s";
  load: CloadLoad | PublishLoad;
  /**
   * The roles this workload runs: lomq and libzmq always, base where set, floor without
   * CURVE (it has none), pysrv where it can serve it.
   */
  roles: readonly Role[];
}

function rpc(
  id: string,
  group: string,
  title: string,
  clients: number,
  args: string[],
  extra: { router?: boolean; curve?: boolean; pysrv?: boolean } = {},
): Workload {
  return {
    id,
    group,
    title,
    unit: "rps",
    load: {
      kind: "cload",
      clients,
      args,
      router: extra.router ?? false,
      curve: extra.curve ?? false,
    },
    roles: [
      "libzmq",
      "lomq",
      "base",
      ...(extra.curve ? [] : ["floor" as const]),
      ...(extra.pysrv ? ["pysrv" as const] : []),
    ],
  };
}

const PIPELINE = ["--pipeline", "64"];

/** Every workload, in table order. */
export const WORKLOADS: readonly Workload[] = [
  rpc("lockstep-1", "lockstep", "lockstep add, 1 client", 1, [], { pysrv: true }),
  rpc("lockstep-8", "lockstep", "lockstep add, 8 clients", 8, [], { pysrv: true }),
  rpc("pipelined-1", "pipelined", "pipelined add, 1 client x 64 (ROUTER)", 1, PIPELINE, {
    router: true,
  }),
  rpc("pipelined-8", "pipelined", "pipelined add, 8 clients x 64 (ROUTER)", 8, PIPELINE, {
    router: true,
  }),
  rpc("echo-1k-1", "payload", "echo 1 KB, 1 client", 1, ["--payload", "1000"]),
  rpc("echo-1k-8", "payload", "echo 1 KB, 8 clients", 8, ["--payload", "1000"]),
  rpc("echo-100k-1", "payload", "echo 100 KB, 1 client", 1, ["--payload", "100000"]),
  rpc("echo-1m-4", "payload", "echo 1 MB, 4 clients", 4, ["--payload", "1000000"]),
  rpc("curve-1", "curve", "CURVE lockstep add, 1 client", 1, [], { curve: true }),
  rpc("curve-8", "curve", "CURVE lockstep add, 8 clients", 8, [], { curve: true }),
  {
    id: "publish-small",
    group: "publish",
    title: 'publishing pub:send("t", i), delivered to csub',
    unit: "msg/s",
    load: { kind: "publish", size: 0 },
    roles: ["libzmq", "lomq", "base"],
  },
  {
    id: "publish-1k",
    group: "publish",
    title: 'publishing pub:send("t", {i, bin(1000)}), delivered to csub',
    unit: "msg/s",
    load: { kind: "publish", size: 1000 },
    roles: ["libzmq", "lomq", "base"],
  },
];

/** The sections measured besides the table rows: start-up time and idle CPU. */
export const SECTIONS = ["startup", "idle"] as const;

/** One of {@linkcode SECTIONS}. */
export type Section = (typeof SECTIONS)[number];

/** Every name `--workloads` accepts: ids, groups and sections. */
export function workloadNames(): string[] {
  return [...new Set([...WORKLOADS.flatMap((w) => [w.group, w.id]), ...SECTIONS])];
}
