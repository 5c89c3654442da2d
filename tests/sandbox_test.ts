// The script sandbox (src/lua/sandbox.ts): each replaced standard-library function behaves as
// documented, from a protected call in a fresh engine, and the state stays usable afterwards.
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { LuaType } from "../src/lua/api.ts";
import { LuaEngine } from "../src/lua/engine.ts";
import { installSandbox } from "../src/lua/sandbox.ts";

const ROOT = fileURLToPath(new URL("../", import.meta.url));
const encoder = new TextEncoder();

/** A fresh engine with the sandbox installed (or a plain one, as a reference). */
async function fresh(sandboxed = true): Promise<LuaEngine> {
  const engine = await LuaEngine.create();
  if (sandboxed) installSandbox(engine);
  return engine;
}

/** What a chunk gave: its status and its values, each as `type:text` (comparable across engines). */
interface Outcome {
  ok: boolean;
  values: string[];
}

/**
 * Runs `source` in a protected call on the main state. A JavaScript exception escaping the
 * wasm (what the sandbox exists to prevent) fails the test with its message.
 */
function run(engine: LuaEngine, source: string): Outcome {
  const m = engine.m;
  const L = engine.L;
  m._lua_settop(L, 0);
  const failure = engine.load(L, encoder.encode(source), "=case");
  if (failure !== undefined) return { ok: false, values: [`compile:${failure}`] };
  let status: number;
  try {
    status = engine.pcall(L, 0);
  } catch (error) {
    throw new Error(`a JavaScript exception escaped the wasm: ${error}`);
  }
  const values: string[] = [];
  for (let i = 1; i <= m._lua_gettop(L); i++) {
    const type = m._lua_type(L, i);
    // Addresses differ between engines: tables, functions and userdata compare by type.
    const text = type === LuaType.STRING || type === LuaType.NUMBER ||
        type === LuaType.BOOLEAN || type === LuaType.NIL
      ? engine.api.describe(L, i)
      : "";
    values.push(`${["nil", "boolean", "", "number", "string"][type] ?? type}:${text}`);
  }
  m._lua_settop(L, 0);
  return { ok: status === 0, values };
}

/** The values of a chunk that must succeed. */
function values(engine: LuaEngine, source: string): string[] {
  const outcome = run(engine, source);
  assert.ok(outcome.ok, `${source} failed: ${outcome.values.join(", ")}`);
  return outcome.values;
}

/** The message of a chunk that must raise an error. */
function errorOf(engine: LuaEngine, source: string): string {
  const outcome = run(engine, source);
  assert.ok(!outcome.ok, `${source} did not fail: ${outcome.values.join(", ")}`);
  return outcome.values[0].replace(/^string:/, "");
}

/** The state is still usable: a later, unrelated chunk runs. */
function assertUsable(engine: LuaEngine): void {
  assert.deepEqual(values(engine, "return 1 + 2"), ["number:3"]);
}

Deno.test("os.execute: no shell, no JavaScript exception, a Lua failure for a command", async () => {
  const engine = await fresh();
  assert.deepEqual(values(engine, "return os.execute()"), ["boolean:false"]);
  for (const command of [`"true"`, `""`, `"rm -rf /tmp/lomq-never"`, `42`]) {
    const [result, message] = values(engine, `return os.execute(${command})`);
    assert.equal(result, "nil:nil");
    assert.match(message, /^string:os\.execute is not available in lomq: /);
  }
  assert.equal(
    errorOf(engine, "return os.execute({})"),
    "case:1: bad argument #1 to 'execute' (string expected, got table)",
  );
  assert.match(errorOf(engine, `return io.popen("ls")`), /io\.popen is not available in lomq/);
  assertUsable(engine);
});

Deno.test("file functions: no file is opened, in memory or on disk", async () => {
  const engine = await fresh();
  const name = `sandbox-probe-${crypto.randomUUID()}.txt`;
  for (const call of [`io.open("${name}", "w")`, `io.open("/tmp/x")`, "io.tmpfile()"]) {
    const [result, message] = values(engine, `return ${call}`);
    assert.equal(result, "nil:nil", call);
    assert.match(message, /is not available in lomq: scripts cannot open files/, call);
  }
  for (const call of [`os.remove("${name}")`, `os.rename("${name}", "b")`, `loadfile("x.lua")`]) {
    const [result, message] = values(engine, `return ${call}`);
    assert.equal(result, "nil:nil", call);
    assert.match(message, /is not available in lomq/, call);
  }
  for (
    const call of [
      `io.lines("${name}")`,
      `io.input("${name}")`,
      `io.output("${name}")`,
      "os.tmpname()",
      `dofile("x.lua")`,
    ]
  ) {
    assert.match(errorOf(engine, `return ${call}`), /^case:1: .* is not available in lomq: /, call);
  }
  // Argument errors stay the standard ones.
  const reference = await fresh(false);
  for (
    const call of [
      `io.open("x", "rw")`,
      `io.open("x", {})`,
      "io.open()",
      "io.write({})",
      `io.write("a", 1, nil)`,
      "io.stdout:write({})",
      "io.stdout.write(1)",
    ]
  ) {
    assert.deepEqual(run(engine, `return ${call}`), run(reference, `return ${call}`), call);
  }
  assert.equal(
    errorOf(engine, "return io.open({})"),
    "case:1: bad argument #1 to 'open' (string expected, got table)",
  );
  assert.equal(
    errorOf(engine, "return io.input(5 > 4)"),
    "case:1: bad argument #1 to 'input' (FILE* expected, got boolean)",
  );
  // The default files can still be queried and switched between the standard handles.
  assert.deepEqual(
    values(
      engine,
      "local a = io.input() == io.stdin local b = io.output(io.stderr) == io.stderr " +
        "io.output(io.stdout) return a, b, io.output() == io.stdout, io.type(io.stdout)",
    ),
    ["boolean:true", "boolean:true", "boolean:true", "string:file"],
  );
  await assert.rejects(Deno.stat(`${ROOT}${name}`), Deno.errors.NotFound);
  await assert.rejects(Deno.stat(name), Deno.errors.NotFound);
  assertUsable(engine);
});

Deno.test("reading standard input raises an error instead of blocking", async () => {
  const engine = await fresh();
  const calls = [
    "io.read()",
    `io.read("n")`,
    `io.read("a")`,
    "io.lines()",
    "io.stdin:read()",
    "io.stdin:lines()",
    "io.input():read(1)",
    "dofile()",
    "debug.debug()",
  ];
  for (const call of calls) {
    assert.match(
      errorOf(engine, `return ${call}`),
      /^case:1: .* is not available in lomq: reading standard input would stop/,
      call,
    );
  }
  const [result, message] = values(engine, "return loadfile()");
  assert.equal(result, "nil:nil");
  assert.match(message, /reading standard input would stop/);
  assert.match(errorOf(engine, "return io.stdout:read()"), /can only be written/);
  assert.equal(
    errorOf(engine, "return io.stdin.read(1)"),
    "case:1: bad argument #1 to 'read' (FILE* expected, got number)",
  );
  assertUsable(engine);
});

Deno.test("load: source text only; bytecode, even damaged, never reaches the VM", async () => {
  const engine = await fresh();
  assert.deepEqual(values(engine, `return load("return 1 + 1")()`), ["number:2"]);
  assert.deepEqual(values(engine, `return load("return x", "c", "t", {x = 5})()`), ["number:5"]);
  assert.deepEqual(values(engine, `return load(42)`), [
    "nil:nil",
    `string:[string "42"]:1: unexpected symbol near '42'`,
  ]);
  // An explicit nil environment is kept, as Lua keeps it.
  assert.match(errorOf(engine, `return load("return x", nil, nil, nil)()`), /upvalue '_ENV'/);
  const pieces = `local i = 0 return function() i = i + 1 if i == 1 then return "return 7" end end`;
  assert.deepEqual(values(engine, `return load((function() ${pieces} end)())()`), ["number:7"]);
  for (
    const call of [
      "load(string.dump(function() return 1 end))",
      `load(string.dump(function() return 1 end), "d", "b")`,
      `load(string.dump(function() return 1 end), "d", "bt")`,
      `load("return 1", "c", "b")`,
      `load((function() local d = string.dump(print == nil and print or function() end)
        local done return function() if not done then done = true return d end end end)())`,
    ]
  ) {
    const [result, message] = values(engine, `return ${call}`);
    assert.equal(result, "nil:nil", call);
    assert.match(message, /^string:binary chunks are not accepted in lomq/, call);
  }
  assert.equal(
    errorOf(engine, "return load({})"),
    "case:1: bad argument #1 to 'load' (function expected, got table)",
  );
  const reference = await fresh(false);
  for (const call of ["load(function() return {} end)", `load("x x", "=name")`]) {
    assert.deepEqual(run(engine, `return ${call}`), run(reference, `return ${call}`), call);
  }
  assert.equal(
    errorOf(engine, `return load("x", {})`),
    "case:1: bad argument #2 to 'load' (string expected, got table)",
  );
  // Without the sandbox, this fuzzing ends in "RuntimeError: memory access out of bounds".
  const fuzz = values(
    engine,
    `local d = string.dump(function(a, b) local t = {a, b, x = 1} for i = 1, 3 do
       t[i] = (t[i] or 0) + i end return t, #t, a .. b end)
     local seed, loaded = 12345, 0
     local function rnd(n) seed = (seed * 1103515245 + 12345) % 2147483648 return seed % n + 1 end
     for _ = 1, 3000 do
       local bytes = {d:byte(1, -1)}
       for _ = 1, rnd(3) do bytes[rnd(#bytes)] = rnd(256) - 1 end
       local f = load(string.char(table.unpack(bytes)), "fuzz", "b")
       if f then loaded = loaded + 1 pcall(f, 1, 2) end
     end
     return loaded`,
  );
  assert.deepEqual(fuzz, ["number:0"]);
  assertUsable(engine);
});

Deno.test("debug.sethook cannot remove or replace lomq's hook", async () => {
  const engine = await fresh();
  const lomqHook = ["string:external hook", "string:", "number:10000"];
  assert.deepEqual(values(engine, "return debug.gethook()"), lomqHook);
  for (
    const call of ["debug.sethook()", `debug.sethook(print, "l")`, `debug.sethook(print, "", 1)`]
  ) {
    assert.match(
      errorOf(engine, call),
      /^case:1: debug\.sethook is not available in lomq: lomq's own hook/,
      call,
    );
  }
  assert.deepEqual(values(engine, "return debug.gethook()"), lomqHook);
  // Harmless as it is (Lua 5.4.6 ignores the new limit): the C stack stays bounded.
  assert.deepEqual(values(engine, "return debug.setcstacklimit(1000000)"), ["number:200"]);
  assert.match(
    errorOf(
      engine,
      "local t = setmetatable({}, {__index = function(t, k) return t[k] end}) return t.x",
    ),
    /C stack overflow/,
  );
  assertUsable(engine);
});

Deno.test("string.rep: the standard results and errors, without an endless loop in C", async () => {
  const engine = await fresh();
  const reference = await fresh(false);
  const calls = [
    `string.rep("ab", 3)`,
    `string.rep("ab", 3, ", ")`,
    `string.rep("ab", 1, ", ")`,
    `string.rep("ab", 0, ", ")`,
    `string.rep("ab", -5)`,
    `string.rep("", 5, "-")`,
    `string.rep("x", 2, "")`,
    `string.rep(12, 3, 4)`,
    `string.rep("a\\0b", 4, "\\0")`,
    `string.rep("xyz", 100000, "|"):sub(-10)`,
    `#string.rep("0123456789", 123457, "ab")`,
    `string.rep("x", 3.0)`,
    `("ab"):rep(2)`,
    `string.rep()`,
    `string.rep("x")`,
    `string.rep("x", 1.5)`,
    `string.rep("x", "2")`,
    `string.rep("x", {})`,
    `("x"):rep({})`,
    `string.rep("x", 2, {})`,
    `string.rep("x", 2^31)`,
    `string.rep("xy", 2^30, "z")`,
    `string.rep("x", math.maxinteger)`,
  ];
  for (const call of calls) {
    assert.deepEqual(run(engine, `return ${call}`), run(reference, `return ${call}`), call);
  }
  // C loops once per copy even when there is nothing to copy: seconds here, hours for 2^40.
  const started = performance.now();
  assert.deepEqual(
    values(engine, `return #string.rep("", 4e8), #string.rep("", 4e8, ""), #string.rep("", 9)`),
    ["number:0", "number:0", "number:0"],
  );
  assert.ok(performance.now() - started < 500, "an empty string.rep took too long");
  assertUsable(engine);
});

Deno.test("table.move: the standard results and errors; a long move can be preempted and stopped", async () => {
  const engine = await fresh();
  const reference = await fresh(false);
  const build = (n: number) => `local t = {} for i = 1, ${n} do t[i] = i end`;
  const digest = "local s = 0 for k, v in pairs(r) do s = (s * 31 + k * 7 + v) % 1000000007 end " +
    "return s, #r, r[1], r[#r]";
  const cases = [
    `${build(10)} local r = table.move(t, 2, 5, 1) ${digest}`,
    `${build(10)} local r = table.move(t, 1, 5, 3) ${digest}`,
    `${build(10)} local r = table.move(t, 1, 10, 1, {}) ${digest}`,
    `${build(200000)} local r = table.move(t, 1, 150000, 3) ${digest}`,
    `${build(200000)} local r = table.move(t, 3, 150002, 1) ${digest}`,
    `${build(200000)} local r = table.move(t, 1, 65537, 65536) ${digest}`,
    `${build(200000)} local r = table.move(t, 1, 131073, 2, t) ${digest}`,
    `${build(200000)} local r = table.move(t, 10, 200000, 1, {}) ${digest}`,
    `${build(70000)} local r = table.move(t, 1, 70000, 70001) ${digest}`,
    `local log = {}
     local src = setmetatable({}, {__index = function(_, k) log[#log + 1] = k return k * 2 end})
     local dst = setmetatable({}, {__newindex = function(t, k, v) rawset(t, k, v + 1) end})
     local r = table.move(src, 1, 100000, 5, dst)
     return #log, log[1], log[#log], r[5], r[100004], rawlen(r)`,
    "return table.move({}, 1, 0, 1) ~= nil",
    "return table.move({1, 2}, 1, 2)",
    "return table.move({1, 2}, 1, 2, 1, 5)",
    "return table.move(5, 1, 2, 1)",
    "return table.move(setmetatable({}, {}), 1, 2, 1)",
    "return table.move({}, 1.5, 2, 1)",
    "return table.move({}, 1, 2)",
    "return table.move({}, -1, math.maxinteger, 1)",
    "return table.move({}, 1, 10, math.maxinteger)",
    "return table.move({}, 1, math.maxinteger, 2)",
    "return table.move({1, 2, 3}, 1, 3, 2, nil)[3]",
    `return pcall(table.move, setmetatable({}, {__index = function() error("boom") end}), 1, 100000, 1, {})`,
  ];
  for (const source of cases) {
    assert.deepEqual(run(engine, source), run(reference, source), source);
  }

  // A move of 2^26 nils: seconds of C without the sandbox, during which no timer fires.
  const thread = engine.newHostThread("handler");
  thread.budgetMs = 300;
  assert.equal(
    engine.load(thread.state, encoder.encode("table.move({}, 1, 2^26, 1) return 1"), "=move"),
    undefined,
  );
  let ticks = 0;
  const timer = setInterval(() => ticks++, 10);
  const started = performance.now();
  const outcome = await engine.drive(thread, engine.step(thread, 0));
  clearInterval(timer);
  engine.release(thread);
  assert.deepEqual(outcome, { ok: false, stopped: true, reason: "handler exceeded 300 ms" });
  assert.ok(performance.now() - started < 2000, "the budget did not stop the move in time");
  assert.ok(ticks >= 5, `the event loop ran ${ticks} times during the move`);
  assertUsable(engine);
});

Deno.test("package.searchers: only the preload searcher, no in-memory file paths", async () => {
  const engine = await fresh();
  assert.deepEqual(values(engine, "return #package.searchers"), ["number:1"]);
  assert.deepEqual(
    values(engine, `package.preload.m = function() return "mod" end return require("m")`),
    ["string:mod", "string::preload:"],
  );
  const message = errorOf(engine, `return require("nope")`);
  assert.match(message, /module 'nope' not found/);
  assert.doesNotMatch(message, /\/usr\/local/);
  assertUsable(engine);
});

Deno.test("installing twice changes nothing", async () => {
  const engine = await fresh();
  installSandbox(engine);
  assert.deepEqual(values(engine, "return os.execute()"), ["boolean:false"]);
  assert.deepEqual(values(engine, `return string.rep("ab", 2, "-")`), ["string:ab-ab"]);
  assertUsable(engine);
});

/**
 * A child process that installs the sandbox and runs `source` as a host thread, then
 * writes "alive" to stderr: run with open, idle stdin (which a read would wait on forever)
 * and with lomq's permissions or none.
 */
async function child(source: string, permissions: string[]) {
  const file = await Deno.makeTempFile({ suffix: ".ts" });
  const url = (path: string) => new URL(path, `file://${ROOT}`).href;
  await Deno.writeTextFile(
    file,
    `import { LuaEngine } from ${JSON.stringify(url("src/lua/engine.ts"))};
     import { installSandbox } from ${JSON.stringify(url("src/lua/sandbox.ts"))};
     const engine = await LuaEngine.create();
     installSandbox(engine);
     engine.load(engine.L, new TextEncoder().encode(${JSON.stringify(source)}), "=child");
     const outcome = await engine.run(engine.L, 0);
     console.error(JSON.stringify(outcome));
     console.error("alive");`,
  );
  try {
    const process = new Deno.Command(Deno.execPath(), {
      args: ["run", "--no-prompt", "--quiet", `--config=${ROOT}deno.json`, ...permissions, file],
      cwd: ROOT,
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const writer = process.stdin.getWriter(); // kept open and idle
    const timer = setTimeout(() => process.kill("SIGKILL"), 20000);
    const output = await process.output();
    clearTimeout(timer);
    await writer.close().catch(() => {});
    return {
      code: output.code,
      stdout: output.stdout,
      stderr: new TextDecoder().decode(output.stderr),
    };
  } finally {
    await Deno.remove(file);
  }
}

for (
  const [label, permissions] of [
    ["lomq's permissions", ["--allow-net", "--allow-read", "--allow-env", "--allow-write"]],
    ["no permission", []],
  ] as const
) {
  Deno.test(`a child process with ${label} survives every replaced function`, async () => {
    const script = `
      local results = {}
      local function try(f, ...) results[#results + 1] = select("#", pcall(f, ...)) end
      try(os.execute, "true") try(os.execute) try(io.popen, "ls")
      try(io.read) try(io.lines) try(io.stdin.read, io.stdin) try(dofile) try(loadfile)
      try(debug.debug) try(debug.sethook)
      try(io.open, "x", "w") try(os.remove, "x") try(os.rename, "x", "y") try(os.tmpname)
      try(load, string.dump(function() end))
      try(string.rep, "", 2^40) try(table.move, {}, 1, 10, 1)
      io.write("bytes:", "\\0\\255\\n", 1, " ", 1.0, " ", 2^63, " ", -0.0, "|")
      io.stdout:write("method|")
      io.stderr:write("to stderr\\n")
      io.write(string.rep("x", 300000), "|end")
      assert(#results == 17)`;
    const { code, stdout, stderr } = await child(script, [...permissions]);
    assert.equal(code, 0, stderr);
    assert.match(stderr, /\{"ok":true\}\nalive\n$/);
    assert.match(stderr, /^to stderr\n/);
    const expected = new Uint8Array([
      ...encoder.encode("bytes:"),
      0,
      255,
      10,
      ...encoder.encode("1 1 9.2233720368548e+18 -0|method|"),
      ...encoder.encode("x".repeat(300000)),
      ...encoder.encode("|end"),
    ]);
    assert.deepEqual(stdout, expected);
  });
}
