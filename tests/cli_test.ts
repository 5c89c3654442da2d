// The lomq subcommands (call, sub, bench, serve, help) as real processes against real servers.
import assert from "node:assert/strict";
import { Client } from "../mod.ts";
import { decodeTagged, parseArgument, taggedToJson } from "../src/cli/json.ts";
import { Float } from "../src/client/msgpack.ts";
import { Histogram } from "../src/cli/histogram.ts";
import { UsageError } from "../src/cli/args.ts";
import config from "../deno.json" with { type: "json" };
import {
  freePort,
  FUNCTIONS_SCRIPT,
  lomqCommand,
  LomqProcess,
  ROOT,
  spawnPiped,
  startServe,
  startServer,
} from "./helpers/lomq.ts";

const SERVER = `${ROOT}tests/fixtures/server.lua`;
const FUNCTIONS = FUNCTIONS_SCRIPT;

/** Runs lomq to its end. */
function lomq(args: string[], ms = 20000): ReturnType<LomqProcess["finish"]> {
  return new LomqProcess(args).finish(ms);
}

/** A lomq process whose stdout is read line by line while it runs. */
class StreamingLomq {
  readonly child: Deno.ChildProcess;
  readonly #lines: string[] = [];
  readonly #reading: Promise<void>;
  readonly #stderr: Promise<string>;

  constructor(args: string[]) {
    const [program, lead] = lomqCommand();
    const child = spawnPiped(program, [...lead, ...args], {});
    this.child = child;
    this.#stderr = new Response(child.stderr).text();
    this.#reading = (async () => {
      let partial = "";
      for await (const chunk of child.stdout.pipeThrough(new TextDecoderStream())) {
        const parts = (partial + chunk).split("\n");
        partial = parts.pop() ?? "";
        this.#lines.push(...parts);
      }
    })();
  }

  /** Waits (up to `ms`) until at least `count` lines arrived; returns every line so far. */
  async lines(count: number, ms = 5000): Promise<string[]> {
    const deadline = Date.now() + ms;
    while (this.#lines.length < count && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    return [...this.#lines];
  }

  /** Waits for the exit (SIGKILL after `ms`). */
  async finish(ms = 10000): Promise<{ code: number; stderr: string; lines: string[] }> {
    const timer = setTimeout(() => this.kill("SIGKILL"), ms);
    try {
      const status = await this.child.status;
      await this.#reading;
      return { code: status.code, stderr: await this.#stderr, lines: [...this.#lines] };
    } finally {
      clearTimeout(timer);
    }
  }

  kill(signal: Deno.Signal): void {
    try {
      this.child.kill(signal);
    } catch {
      // already gone
    }
  }
}

// ---- help, version, mistakes ----------------------------------------------------------

Deno.test("--version prints deno.json's version; --help and every COMMAND --help show usage and examples", async () => {
  const version = await lomq(["--version"]);
  assert.equal(version.code, 0);
  assert.equal(version.stdout.trim(), `lomq ${config.version}`);

  const help = await lomq(["--help"]);
  assert.equal(help.code, 0);
  for (const command of ["run", "serve", "call", "ls", "sub", "bench"]) {
    assert.match(help.stdout, new RegExp(`^  ${command} `, "m"), `${command} is listed`);
  }
  const helps = await Promise.all(
    ["run", "serve", "call", "ls", "sub", "bench"].map((command) => lomq([command, "--help"])),
  );
  for (const [i, command] of ["run", "serve", "call", "ls", "sub", "bench"].entries()) {
    assert.equal(helps[i].code, 0, command);
    assert.match(helps[i].stdout, new RegExp(`^Usage: lomq ${command} `), command);
    assert.match(helps[i].stdout, /\nExamples:\n {2}lomq /, command);
  }
  // Help also works after other options.
  const late = await lomq(["call", "--uri", "tcp://127.0.0.1:1", "--help"]);
  assert.equal(late.code, 0);
  assert.match(late.stdout, /^Usage: lomq call/);
});

Deno.test("an unknown command or option is one line naming the nearest valid one, exit 2", async () => {
  const cases: [string[], RegExp][] = [
    [["cal", "add"], /unknown command 'cal' \(did you mean 'call'\?\)/],
    [["bnech"], /unknown command 'bnech' \(did you mean 'bench'\?\)/],
    [["--verison"], /unknown option '--verison' \(did you mean '--version'\?\)/],
    [
      ["call", "--tiemout", "5", "add"],
      /unknown option '--tiemout' \(did you mean '--timeout'\?\)/,
    ],
    [["bench", "--pipelin", "4"], /unknown option '--pipelin' \(did you mean '--pipeline'\?\)/],
    [["sub", "--cuont=3"], /unknown option '--cuont' \(did you mean '--count'\?\)/],
    [["ls", "--josn"], /unknown option '--josn' \(did you mean '--json'\?\)/],
    [["ls", "extra"], /unexpected argument 'extra'/],
    [
      ["serve", "x.lua", "--rcp", "tcp://127.0.0.1:1"],
      /unknown option '--rcp' \(did you mean '--rpc'\?\)/,
    ],
    [["call"], /missing the METHOD/],
    [["call", "--timeout", "soon", "add"], /--timeout must be an integer/],
    [["call", "--uri"], /option --uri needs a value/],
    [["call", "--uri", "http://x", "add"], /endpoint|transport|http/i],
    [["call", "echo", "[1,"], /argument '\[1,' is not valid JSON/],
    [["call", "echo", "123456789012345678901234"], /does not fit in 64 bits/],
    [["call", "echo", "18446744073709551616"], /integer 18446744073709551616 does not fit/],
    [["call", "echo", "1E400"], /number 1E400 is too large for a float64.*"\$float": "Infinity"/],
    [["call", "echo", "-1E400"], /number -1E400 is too large.*"\$float": "-Infinity"/],
    [["call", "echo", "[1, 1e-400]"], /number 1e-400 is too small for a float64/],
    [["bench", "--duration", "1", "--requests", "5"], /not both/],
    [["bench", "--args", "{}"], /--args must be a JSON array/],
    [["serve"], /missing the SCRIPT\.lua/],
  ];
  // In batches: two dozen deno processes starting at once contend for node_modules' lock,
  // and one that waits long prints "Blocking waiting for file lock" on stderr.
  const results: Awaited<ReturnType<typeof lomq>>[] = [];
  for (let i = 0; i < cases.length; i += 8) {
    results.push(...await Promise.all(cases.slice(i, i + 8).map(([args]) => lomq(args))));
  }
  results.forEach((out, i) => {
    const [args, pattern] = cases[i];
    assert.equal(out.code, 2, `${args.join(" ")}: ${out.stderr}`);
    assert.match(out.stderr, pattern, args.join(" "));
    assert.equal(
      out.stderr.trim().split("\n").length,
      1,
      `one line for ${args.join(" ")}: ${out.stderr}`,
    );
    assert.equal(out.stdout, "");
  });
});

// ---- call ------------------------------------------------------------------------------

Deno.test("call prints results as JSON with exact integers, visible floats and $bin", async () => {
  const { lomq: server, uri } = await startServer(SERVER);
  try {
    const cases: [string[], string][] = [
      [["add", "1", "2"], "3"],
      [["add", "1.5", "2"], "3.5"],
      [["echo", "1.0"], "1.0"],
      [["float3"], "3.0"],
      [["echo", "-5", "-2.5e3"], "[-5,-2500.0]"],
      [["maxint"], "[9223372036854775807,-9223372036854775808]"],
      [["echo", "9007199254740993"], "9007199254740993"],
      [
        ["types", "1", "1.0", "word", '"quoted"', "true", "null", "[]", "{}"],
        '["integer","float","string","string","boolean","nil","table","table"]',
      ],
      [["echo", "hello world", '{"a":[1,{"b":false}]}'], '["hello world",{"a":[1,{"b":false}]}]'],
      [["binary"], '{"$bin":"/wD+"}'],
      [["echo", '{"$bin":"AP8="}'], '{"$bin":"AP8="}'],
      [["keys"], '{"$map":[[1,"int"],["1","str"]]}'],
      [["forced_map"], '{"1":10,"2":20}'],
      [["empty"], "{}"],
      [["empty_array"], "[]"],
      [["none"], "null"],
      [["echo", '{"$float":"Infinity"}', '{"$float":2}'], '[{"$float":"Infinity"},2.0]'],
      [["strlen", "--", "--not-an-option"], "15"],
    ];
    const outs = await Promise.all(cases.map(([args]) => lomq(["call", "--uri", uri, ...args])));
    outs.forEach((out, i) => {
      assert.equal(out.code, 0, `${cases[i][0].join(" ")}: ${out.stderr}`);
      assert.equal(out.stdout, cases[i][1] + "\n", cases[i][0].join(" "));
    });
    const hex = await lomq(["call", "-u", uri, "--msgpack-hex", "echo", "1.0", "x"]);
    assert.equal(hex.code, 0, hex.stderr);
    assert.equal(hex.stdout, "92cb3ff0000000000000a178\n");
  } finally {
    await server.stop();
  }
});

Deno.test("call: ERROR replies exit 1 with the message on stderr; no server or no reply exits 3 naming the address", async () => {
  const { server, rpc } = await startServe(["first"]);
  const deadPort = freePort();
  const dead = `tcp://127.0.0.1:${deadPort}`;
  try {
    const [failed, missing, table, unreachable, slow] = await Promise.all([
      lomq(["call", "--uri", rpc, "fail", "it broke"]),
      lomq(["call", "--uri", rpc, "publish", "t", "1"]),
      lomq(["call", "--uri", rpc, "echo", "12345678901234567890"]),
      lomq(["call", "--uri", dead, "--timeout", "300", "add", "1", "2"]),
      lomq(["call", "--uri", rpc, "--timeout", "200", "slow", "1500", "late"]),
    ]);
    assert.equal(failed.code, 1);
    assert.equal(failed.stdout, "");
    assert.equal(failed.stderr, "ERROR: it broke\n");
    // publish() exists for the script but is not callable by clients.
    assert.equal(missing.code, 1);
    assert.equal(missing.stderr, "ERROR: function 'publish' not found\n");
    assert.equal(table.code, 1);
    assert.match(table.stderr, /^ERROR: .*above the largest Lua integer/);
    assert.equal(unreachable.code, 3);
    assert.match(
      unreachable.stderr,
      new RegExp(`could not connect to ${dead.replaceAll(".", "\\.")} within 300 ms`),
    );
    assert.equal(slow.code, 3);
    assert.match(
      slow.stderr,
      new RegExp(`call 'slow' to ${rpc.replaceAll(".", "\\.")} got no reply within 200 ms`),
    );
  } finally {
    await server.stop();
  }
});

// ---- sub -------------------------------------------------------------------------------

Deno.test("sub prints one JSON line per publication, filters topics, and Ctrl+C exits 0", async () => {
  const { server, rpc, pub } = await startServe(["first"]);
  const client = new Client(rpc);
  const sub = new StreamingLomq(["sub", "--uri", pub, "q.", "z"]);
  try {
    // The subscription travels asynchronously: publish markers until one is printed.
    let lines: string[] = [];
    for (let attempt = 0; attempt < 200 && lines.length === 0; attempt++) {
      await client.call("announce", "q.ready", attempt);
      lines = await sub.lines(1, 50);
    }
    assert.ok(lines.length > 0, "sub printed nothing");
    const ready = JSON.parse(lines[0]);
    assert.equal(ready.topic, "q.ready");
    const skip = (await sub.lines(Infinity, 300)).length;

    const before = Date.now() / 1000;
    await client.call("announce", "other", 1);
    // (an array and a one-key map: a Lua table's key order is not stable across runs)
    await client.call("announce", "q.price", [new Float(100), 2n ** 62n + 1n, { bid: 1.5 }]);
    await client.call("announce", "zz", new Uint8Array([0xff]));
    await client.call("announce", "q.end", null);
    const all = await sub.lines(skip + 3);
    const after = Date.now() / 1000;
    const got = all.slice(skip);
    assert.deepEqual(
      got.map((line) => line.replace(/"time":[\d.e+]+/, '"time":T')),
      [
        '{"topic":"q.price","value":[100.0,4611686018427387905,{"bid":1.5}],"time":T}',
        '{"topic":"zz","value":{"$bin":"/w=="},"time":T}',
        '{"topic":"q.end","value":null,"time":T}',
      ],
    );
    for (const line of got) {
      const time = JSON.parse(line).time;
      assert.ok(
        time >= before - 1 && time <= after + 1,
        `time ${time} is the arrival time in seconds`,
      );
    }

    const stopped = Date.now();
    sub.kill("SIGINT");
    const out = await sub.finish();
    assert.equal(out.code, 0, out.stderr);
    assert.ok(Date.now() - stopped < 2000, "Ctrl+C ends sub promptly");
  } finally {
    sub.kill("SIGKILL");
    await sub.finish();
    await client.close();
    await server.stop();
  }
});

Deno.test("sub --count N exits 0 by itself after N messages", async () => {
  const { server, rpc, pub } = await startServe(["first"]);
  const client = new Client(rpc);
  const sub = new StreamingLomq(["sub", "-u", pub, "--count", "3"]);
  try {
    let exited = false;
    const finished = sub.finish(20000).then((out) => {
      exited = true;
      return out;
    });
    for (let i = 0; i < 400 && !exited; i++) {
      await client.call("announce", "tick", i);
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    const out = await finished;
    assert.equal(out.code, 0, out.stderr);
    assert.equal(out.lines.filter((line) => line !== "").length, 3);
    for (const line of out.lines.filter((line) => line !== "")) {
      assert.equal(JSON.parse(line).topic, "tick");
    }
  } finally {
    sub.kill("SIGKILL");
    await client.close();
    await server.stop();
  }
});

// ---- bench -----------------------------------------------------------------------------

Deno.test("bench --json against a real server returns sane numbers", async () => {
  const { server, rpc } = await startServe(["first"]);
  try {
    const out = await lomq(
      [
        "bench",
        "--uri",
        rpc,
        "-c",
        "3",
        "-p",
        "8",
        "-n",
        "3000",
        "--method",
        "counter",
        "--args",
        "[]",
        "--json",
      ],
      60000,
    );
    assert.equal(out.code, 0, out.stderr);
    const result = JSON.parse(out.stdout);
    assert.equal(
      out.stdout.trim().split("\n").length,
      1,
      "one JSON object, no progress line off a terminal",
    );
    assert.equal(result.requests, 3000);
    assert.equal(result.ok, 3000);
    assert.equal(result.errors, 0);
    assert.equal(result.timeouts, 0);
    assert.equal(result.clients, 3);
    assert.equal(result.pipeline, 8);
    assert.ok(result.seconds > 0 && result.seconds < 60, `seconds ${result.seconds}`);
    assert.ok(
      Math.abs(result.rps - result.requests / result.seconds) <= result.rps * 0.01 + 1,
      "rps = requests / seconds",
    );
    const l = result.latencyMs;
    assert.ok(l.p50 > 0 && l.p50 <= l.p90 && l.p90 <= l.p99 && l.p99 <= l.max, JSON.stringify(l));
    assert.ok(l.mean > 0 && l.mean <= l.max, JSON.stringify(l));
    // The server really served them: its counter moved by 3000, plus this call.
    const client = new Client(rpc);
    try {
      assert.equal(await client.call("counter"), 3001);
    } finally {
      await client.close();
    }
  } finally {
    await server.stop();
  }
});

Deno.test("bench: a duration run, ERROR replies counted as errors, the text report", async () => {
  const { server, rpc } = await startServe(["first"]);
  try {
    const [timed, failing] = await Promise.all([
      lomq(["bench", "-u", rpc, "--duration", "1", "--json"], 30000),
      lomq(["bench", "-u", rpc, "--method", "fail", "--args", '["no"]', "--requests", "50"], 30000),
    ]);
    assert.equal(timed.code, 0, timed.stderr);
    const result = JSON.parse(timed.stdout);
    assert.ok(result.seconds >= 0.99 && result.seconds < 1.5, `seconds ${result.seconds}`);
    assert.ok(result.requests > 10 && result.errors === 0, JSON.stringify(result));

    assert.equal(failing.code, 0, failing.stderr);
    assert.match(
      failing.stdout,
      /^lomq bench: fail\("no"\) on tcp:\/\/127\.0\.0\.1:\d+, 1 client x pipeline 1, /,
    );
    assert.match(failing.stdout, /throughput +\d+ calls\/s \(50 replies\)/);
    assert.match(failing.stdout, /latency ms +p50 [\d.]+ +p90 [\d.]+ +p99 [\d.]+ +max [\d.]+/);
    assert.match(failing.stdout, /errors +50 ERROR replies, 0 timeouts/);
  } finally {
    await server.stop();
  }
});

Deno.test("bench against a port where nothing listens exits 3 naming the address", async () => {
  const port = freePort();
  const out = await lomq([
    "bench",
    "--uri",
    `tcp://127.0.0.1:${port}`,
    "--timeout",
    "300",
    "--duration",
    "1",
  ]);
  assert.equal(out.code, 3);
  assert.match(
    out.stderr,
    new RegExp(`could not connect to tcp://127\\.0\\.0\\.1:${port} within 300 ms`),
  );
  assert.equal(out.stdout, "");
});

// ---- serve -----------------------------------------------------------------------------

Deno.test("serve answers the script's functions, passes arguments after --, and Ctrl+C exits 0", async () => {
  const { server, rpc } = await startServe(["first"]);
  const client = new Client(rpc);
  try {
    assert.equal(await client.call("add", 2, 3), 5);
    assert.equal(await client.call("script_arg"), "first");
    assert.equal(await client.call("announce", "t", 1), 0, "publish() returns 0 once bound");
    assert.equal(await client.call("published_at_start"), 0, "publish() works at the top level");
    await assert.rejects(client.call("print", "x"), /function 'print' not found/);
    await client.close();
    const stopped = Date.now();
    server.kill("SIGINT");
    const out = await server.finish(10000);
    assert.equal(out.code, 0, out.stderr);
    assert.ok(Date.now() - stopped < 2000, "stopped promptly");
    assert.match(
      out.stderr,
      /lomq serve: serving .*functions\.lua on tcp:\/\/127\.0\.0\.1:\d+, publishing on tcp:/,
    );
  } finally {
    await client.close();
    await server.stop();
  }
});

Deno.test("serve: a missing script exits 2, a busy address exits 1 naming it, a failing top level exits 1", async () => {
  const holder = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const busy = `tcp://127.0.0.1:${(holder.addr as Deno.NetAddr).port}`;
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(`${dir}/broken.lua`, "error('top level failed')\n");
    await Deno.writeTextFile(`${dir}/own_publish.lua`, "function publish() end\n");
    const [missing, rpcBusy, pubBusy, broken, ownPublish] = await Promise.all([
      lomq(["serve", `${dir}/nope.lua`]),
      lomq(["serve", FUNCTIONS, "--rpc", busy]),
      lomq(["serve", FUNCTIONS, "--rpc", `tcp://127.0.0.1:${freePort()}`, "--pub", busy]),
      lomq(["serve", `${dir}/broken.lua`, "--rpc", `tcp://127.0.0.1:${freePort()}`]),
      lomq(["serve", `${dir}/own_publish.lua`, "--pub", `tcp://127.0.0.1:${freePort()}`]),
    ]);
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /cannot read script .*nope\.lua/);
    assert.equal(rpcBusy.code, 1);
    assert.match(
      rpcBusy.stderr,
      new RegExp(`${busy.replaceAll(".", "\\.")}.*address already in use`),
    );
    assert.equal(pubBusy.code, 1);
    assert.match(
      pubBusy.stderr,
      new RegExp(`${busy.replaceAll(".", "\\.")}.*address already in use`),
    );
    assert.equal(broken.code, 1);
    assert.match(broken.stderr, /top level failed/);
    assert.equal(ownPublish.code, 1);
    assert.match(ownPublish.stderr, /defines its own 'publish'/);
  } finally {
    holder.close();
    await Deno.remove(dir, { recursive: true });
  }
});

// ---- JSON conventions (no processes) ----------------------------------------------------

Deno.test("arguments: number literals keep int/float, bare words are strings, $bin/$float/$map", () => {
  assert.equal(parseArgument("1"), 1);
  assert.deepEqual(parseArgument("1.0"), new Float(1));
  assert.deepEqual(parseArgument("2e3"), new Float(2000));
  assert.equal(parseArgument("-0"), 0);
  assert.equal(parseArgument("9223372036854775807"), 9223372036854775807n);
  assert.equal(parseArgument("18446744073709551615"), 18446744073709551615n);
  assert.equal(parseArgument("-9223372036854775808"), -9223372036854775808n);
  assert.deepEqual(parseArgument("1.7976931348623157e308"), new Float(Number.MAX_VALUE));
  assert.deepEqual(parseArgument("5e-324"), new Float(Number.MIN_VALUE));
  assert.deepEqual(parseArgument("0e-400"), new Float(0));
  assert.deepEqual(parseArgument("-0.0"), new Float(-0));
  for (const text of ["1E400", "-1e309", "[1.8e308]", '{"$float": 1e400}', "1e-400", "-2.5E-999"]) {
    assert.throws(() => parseArgument(text), UsageError, text);
  }
  for (const text of ["18446744073709551616", "-9223372036854775809"]) {
    assert.throws(() => parseArgument(text), /does not fit in 64 bits/, text);
  }
  assert.equal(parseArgument("hello"), "hello");
  assert.equal(parseArgument(""), "");
  assert.equal(parseArgument("1.2.3"), "1.2.3");
  assert.equal(parseArgument('"1"'), "1");
  assert.deepEqual(parseArgument('[1, 1.5, {"a": 2.0}]'), [1, new Float(1.5), { a: new Float(2) }]);
  assert.deepEqual(parseArgument('{"$bin": "AAH/"}'), new Uint8Array([0, 1, 255]));
  assert.deepEqual(parseArgument('{"$float": "NaN"}'), new Float(NaN));
  assert.deepEqual(
    parseArgument('{"$map": [[1, "a"], ["1", "b"]]}'),
    new Map<unknown, unknown>([[1, "a"], ["1", "b"]]),
  );
  assert.throws(() => parseArgument("{oops"), /not valid JSON/);
  assert.throws(() => parseArgument('{"$bin": "@@"}'), /not valid base64/);
});

Deno.test("results: floats show a point, integers are exact, odd maps and bytes have tagged forms", () => {
  const json = (hex: string) =>
    taggedToJson(decodeTagged(new Uint8Array(hex.match(/../g)!.map((h) => parseInt(h, 16)))));
  assert.equal(json("cb4059000000000000"), "100.0");
  assert.equal(json("cb8000000000000000"), "-0.0");
  assert.equal(json("ca3fc00000"), "1.5");
  assert.equal(json("cb7ff0000000000000"), '{"$float":"Infinity"}');
  assert.equal(json("cb7ff8000000000000"), '{"$float":"NaN"}');
  assert.equal(json("cb4415af1d78b58c40"), "100000000000000000000.0");
  assert.equal(json("cb444b1ae4d6e2ef50"), "1e+21");
  assert.equal(json("cfffffffffffffffff"), "18446744073709551615");
  assert.equal(json("d38000000000000000"), "-9223372036854775808");
  assert.equal(json("a2c3a9"), '"é"');
  assert.equal(json("a1ff"), '{"$bin":"/w=="}', "a str that is not UTF-8 keeps its bytes");
  assert.equal(json("82c301c200"), '{"$map":[[true,1],[false,0]]}');
  assert.equal(json("d40501"), '{"$ext":[5,"AQ=="]}');
  assert.throws(() => json("92"), /truncated/);
  assert.throws(() => json("0101"), /unexpected bytes/);
});

Deno.test("the latency histogram is exact below 2 ms and within 0.1% above", () => {
  const histogram = new Histogram();
  for (let micros = 1; micros <= 1000; micros++) histogram.record(micros);
  assert.equal(histogram.quantile(0.5), 500);
  assert.equal(histogram.quantile(0.99), 990);
  assert.equal(histogram.max, 1000);
  const wide = new Histogram();
  for (const micros of [5_000, 123_456, 9_876_543]) wide.record(micros);
  assert.ok(Math.abs(wide.quantile(0.33) - 5_000) <= 5);
  assert.ok(Math.abs(wide.quantile(0.66) - 123_456) <= 124);
  assert.equal(wide.quantile(1), 9_876_543);
  assert.equal(new Histogram().quantile(0.5), 0);
});
