// The peers harness's pure parts (bench/peers): parsing the yardstick's output, the command
// line, medians and ratios, and the report; and that its floor server answers correctly.
// The measuring itself is not a test (timings).
import assert from "node:assert/strict";
import { UsageError } from "../bench/peers/errors.ts";
import { parseCloadLine, parseCsubLine } from "../bench/peers/measure.ts";
import { parseOptions } from "../bench/peers/options.ts";
import { formatReport } from "../bench/peers/report.ts";
import { median, ratios, type Sample, summarize } from "../bench/peers/stats.ts";
import { WORKLOADS } from "../bench/peers/workloads.ts";
import { freePort, ROOT, runPython, spawnPiped, waitForPort } from "./helpers/lomq.ts";
import { pythonForInterop, skipInterop } from "./helpers/python.ts";

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

Deno.test("the report puts each extra server beside libzmq: floor at 2x, lomq at half of it", () => {
  const samples = [
    sample("lockstep-8", "libzmq", 1, 100),
    sample("lockstep-8", "lomq", 1, 100),
    sample("lockstep-8", "floor", 1, 200),
  ];
  const report = formatReport({
    heading: "h",
    workloads: WORKLOADS.filter((w) => w.id === "lockstep-8"),
    summaries: summarize(samples, ["lockstep-8"]),
    skipped: new Map(),
    peerName: () => "csrv",
    startup: [],
    idle: [],
  });
  assert.match(report, /\| lockstep add, 8 clients \| floor \| 200 \| 2\.00x \| 0\.50x \|/);
  const curve = WORKLOADS.find((w) => w.id === "curve-8")!;
  assert.ok(!curve.roles.includes("floor"), "the floor speaks no CURVE");
});

// The floor must answer as csrv does, or cload's checks would stop the run: a real libzmq
// REQ (add) and DEALER (echo, two calls in flight) call it.
Deno.test({
  name: "bench/floor.ts answers add and echo as csrv does, to pyzmq REQ and DEALER",
  ignore: skipInterop,
  async fn() {
    const python = (await pythonForInterop())!;
    const port = freePort();
    const floor = spawnPiped(Deno.execPath(), [
      "run",
      "--allow-net",
      `${ROOT}bench/floor.ts`,
      `tcp://127.0.0.1:${port}`,
    ], {});
    const output = floor.output();
    try {
      await waitForPort(port, 30000);
      const out = await runPython(
        python,
        `
import json, msgpack, zmq
ctx = zmq.Context()
req = ctx.socket(zmq.REQ)
req.setsockopt(zmq.RCVTIMEO, 5000)
req.connect("tcp://127.0.0.1:${port}")
req.send(msgpack.packb(["add", 1, 2]))
status, result = req.recv_multipart()
dealer = ctx.socket(zmq.DEALER)
dealer.setsockopt(zmq.RCVTIMEO, 5000)
dealer.connect("tcp://127.0.0.1:${port}")
payloads = [b"x" * 1000, bytes(range(256)) * 400]
for p in payloads:
    dealer.send_multipart([b"", msgpack.packb(["echo", p])])
echoes = [dealer.recv_multipart() for _ in payloads]
print(json.dumps({
    "add": [status.decode(), msgpack.unpackb(result)],
    "echo": [[e[0].decode(), e[1].decode(), msgpack.unpackb(e[2]) == p] for e, p in zip(echoes, payloads)],
}))
ctx.destroy(linger=0)
`,
      );
      assert.deepEqual(JSON.parse(out), {
        add: ["OK", 3],
        echo: [["", "OK", true], ["", "OK", true]],
      });
    } finally {
      floor.kill("SIGKILL");
      await output;
    }
  },
});
