// The peers harness's pure parts (bench/peers): parsing the yardstick's output, the command
// line, medians and ratios, and the report. The measuring itself is not a test (timings).
import assert from "node:assert/strict";
import { UsageError } from "../bench/peers/errors.ts";
import { parseCloadLine, parseCsubLine } from "../bench/peers/measure.ts";
import { parseOptions } from "../bench/peers/options.ts";
import { formatReport } from "../bench/peers/report.ts";
import { median, ratios, type Sample, summarize } from "../bench/peers/stats.ts";
import { WORKLOADS } from "../bench/peers/workloads.ts";

Deno.test("cload and csub lines parse; a line missing a field does not", () => {
  assert.deepEqual(
    parseCloadLine("calls=100 seconds=1.00 rps=100 p50_us=90 p99_us=120 clients=8\n"),
    { calls: 100, seconds: 1, rps: 100, p50Us: 90, p99Us: 120, clients: 8 },
  );
  assert.equal(parseCloadLine("calls=100 seconds=1.00 rps=100"), null);
  assert.deepEqual(
    parseCsubLine("received=10 seconds=2.00 mps=5 mbps=0.1 gaps=1 lost=3 reordered=0"),
    { received: 10, seconds: 2, mps: 5, gaps: 1, lost: 3, reordered: 0 },
  );
  assert.equal(parseCsubLine("csub: nothing received in 10 s"), null);
});

Deno.test("--workloads takes groups and ids; unknown names are usage errors", () => {
  const o = parseOptions(["--workloads", "pipelined,echo-100k-1,startup", "--rounds", "3"]);
  assert.deepEqual(o.workloads.map((w) => w.id), ["pipelined-1", "pipelined-8", "echo-100k-1"]);
  assert.deepEqual(o.sections, ["startup"]);
  assert.equal(o.rounds, 3);
  assert.equal(parseOptions([]).workloads.length, WORKLOADS.length);
  assert.throws(() => parseOptions(["--workloads", "pipelind"]), UsageError);
  assert.throws(() => parseOptions(["--only", "zmq"]), UsageError);
  assert.throws(() => parseOptions(["--rounds", "0"]), UsageError);
});

function sample(workload: string, role: Sample["role"], round: number, rate: number): Sample {
  return {
    workload,
    role,
    round,
    count: rate,
    rate,
    p50Us: 10,
    p99Us: role === "lomq" ? 30 : 20,
    cpuUsPerOp: role === "lomq" ? 2 : 4,
    rssMb: 1,
    lost: null,
    gaps: null,
  };
}

Deno.test("medians over rounds, lomq over each peer, and the report's rows", () => {
  assert.equal(median([3, 1, 2]), 2);
  assert.equal(median([4, 1, 2, 3]), 2.5);
  const samples = [
    sample("pipelined-8", "lomq", 1, 300),
    sample("pipelined-8", "lomq", 2, 100),
    sample("pipelined-8", "lomq", 3, 200),
    sample("pipelined-8", "libzmq", 1, 400),
    sample("pipelined-8", "libzmq", 2, 400),
  ];
  const summaries = summarize(samples, ["pipelined-8"]);
  assert.deepEqual(summaries.map((s) => [s.role, s.rate, s.rateMin, s.rateMax]), [
    ["libzmq", 400, 400, 400],
    ["lomq", 200, 100, 300],
  ]);
  const [r] = ratios(summaries);
  assert.equal(r.rate, 0.5);
  assert.equal(r.p99, 1.5);
  assert.equal(r.cpuPerOp, 0.5);
  const report = formatReport({
    heading: "h",
    workloads: WORKLOADS.filter((w) => w.id === "pipelined-8"),
    summaries,
    skipped: new Map([["curve-1", "no CURVE"]]),
    peerName: () => "csrv --router",
    startup: [],
    idle: [],
  });
  assert.match(
    report,
    /\| pipelined add, 8 clients x 64 \(ROUTER\) \| csrv --router \| rps \| 200 \| 400 \| 0\.50x \|/,
  );
  assert.match(report, /skipped curve-1: no CURVE/);
});
