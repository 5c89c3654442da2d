/**
 * The README cannot drift: every command block that talks to a server is run as printed,
 * against the server it names, and its output is compared with what the README shows.
 *
 * A block is annotated with an HTML comment right before it (invisible on GitHub):
 *
 *     <!-- readme-test: server=examples/prices.lua -->
 *
 * Keys (values with spaces in double quotes):
 * - `server=PATH`: the script to serve on the README's addresses (tcp://127.0.0.1:8004 and
 *   :8005): `lomq PATH` when it has a main(), else `lomq serve PATH --pub
 *   tcp://127.0.0.1:8005`, as the README says. Consecutive blocks naming the same server
 *   share one process (the README's examples are one session); `server=none` stops it.
 * - `skip="reason"`: not run; the reason says why (and what covers it instead).
 * - `cwd=DIR`: where the commands run (default: the checkout).
 * - `compare=shape`: numbers may differ (timings, figures, timestamps); the rest must not.
 *   Default `exact`.
 * - `vary="A|B"`: in shape comparison, any of these tokens may stand for another.
 * - `during="method arg...; method arg..."`: calls made over and over while the block runs
 *   (for blocks that print what is published).
 * - `expect="text"`: the output of a block that does not print its own.
 * - `timeout=S`: seconds each command may take (default 30).
 * - `file=PATH`: the block must be the file's text (a script the README shows).
 *
 * What runs: in a block with `$ ` lines, each command, whose printed output is the lines up
 * to the next `$ ` (`^C` there means: interrupt it once the lines before were printed); in
 * an `sh` block without prompts, each line (its output is not checked unless `expect`);
 * a `ts` block with `deno run --check`, a `python` block with a Python that has pyzmq, their
 * output being the block after a "prints" line, or `expect`. `lomq` becomes the tests'
 * launcher (tests/helpers/lomq.ts: `LOMQ_BIN` or `deno run main.ts`), `npx -y deno@X task`
 * the local deno, `python3` that Python. Python snippets run with clients/python on
 * PYTHONPATH.
 */

import assert from "node:assert/strict";
import { Client } from "../mod.ts";
import { COMMANDS } from "../src/cli/mod.ts";
import { lomqCommand, LomqProcess, ROOT, waitForPort } from "./helpers/lomq.ts";
import { Lines } from "./helpers/lines.ts";
import { pythonForInterop } from "./helpers/python.ts";

const README = `${ROOT}README.md`;
const RPC_PORT = 8004;
const PUB_PORT = 8005;
const DEFAULT_TIMEOUT_S = 30;

/** Script names in the README and help texts that stand for any script. */
const PLACEHOLDER_SCRIPTS = new Set(["SCRIPT.lua", "script.lua", "path/to/script.lua"]);

/** A fenced block of the README. */
interface Block {
  /** The fence's language ("" for none). */
  lang: string;
  text: string;
  /** 1-based line of the opening fence. */
  line: number;
  /** The readme-test comment before it, parsed. */
  annotation: Record<string, string> | undefined;
  /** The text of the block after a "prints" line that follows it. */
  prints: string | undefined;
}

/** The README's fenced blocks, with their annotations and printed outputs. */
function readmeBlocks(markdown: string): Block[] {
  const lines = markdown.split("\n");
  const blocks: Block[] = [];
  let annotation: Record<string, string> | undefined;
  for (let i = 0; i < lines.length; i++) {
    const comment = /^<!--\s*readme-test:(.*)-->\s*$/.exec(lines[i]);
    if (comment) {
      annotation = parseAnnotation(comment[1], i + 1);
      continue;
    }
    const fence = /^```(\w*)\s*$/.exec(lines[i]);
    if (!fence) {
      if (lines[i].trim() !== "") annotation = undefined;
      continue;
    }
    const start = i;
    const body: string[] = [];
    for (i++; i < lines.length && lines[i] !== "```"; i++) body.push(lines[i]);
    blocks.push({
      lang: fence[1],
      text: body.join("\n"),
      line: start + 1,
      annotation,
      prints: undefined,
    });
    annotation = undefined;
  }
  // "prints" between two blocks: the second is the first's output.
  for (let b = 0; b + 1 < blocks.length; b++) {
    const between = lines.slice(
      blocks[b].line + blocks[b].text.split("\n").length + 1,
      blocks[b + 1].line - 1,
    );
    if (between.map((l) => l.trim()).filter((l) => l !== "").join(" ") === "prints") {
      blocks[b].prints = blocks[b + 1].text;
    }
  }
  return blocks;
}

function parseAnnotation(text: string, line: number): Record<string, string> {
  const result: Record<string, string> = {};
  const pattern = /\s*([a-z]+)=(?:"([^"]*)"|(\S+))/gy;
  const source = text.trim();
  let end = 0;
  for (let match = pattern.exec(source); match; match = pattern.exec(source)) {
    result[match[1]] = match[2] ?? match[3];
    end = pattern.lastIndex;
  }
  const rest = source.slice(end).trim();
  if (rest !== "") {
    throw new Error(`README.md:${line}: cannot read the readme-test comment at '${rest}'`);
  }
  return result;
}

/** Whether a block talks to a server, and so must say how it is tested. */
function talksToServer(block: Block): boolean {
  if (block.lang === "lua") return false;
  return /^\$ lomq |\blomq (call|sub|bench)\b|task start call\b|\bnew (Client|Subscriber)\(|\bRPCClient\(|\bSubscriber\(/m
    .test(block.text);
}

/** Splits a command line into words as a POSIX shell would (quotes and backslashes). */
function shellWords(line: string): string[] {
  const words: string[] = [];
  let word: string | undefined;
  for (let i = 0; i < line.length; i++) {
    const c = line[i];
    if (c === "'") {
      const end = line.indexOf("'", i + 1);
      word = (word ?? "") + line.slice(i + 1, end);
      i = end;
    } else if (c === '"') {
      let j = i + 1;
      let text = "";
      for (; line[j] !== '"'; j++) text += line[j] === "\\" ? line[++j] : line[j];
      word = (word ?? "") + text;
      i = j;
    } else if (c === "\\") {
      word = (word ?? "") + line[++i];
    } else if (c === " " || c === "\t") {
      if (word !== undefined) words.push(word);
      word = undefined;
    } else if (c === "#" && word === undefined) {
      break; // a comment
    } else {
      word = (word ?? "") + c;
    }
  }
  if (word !== undefined) words.push(word);
  return words;
}

/** The program and arguments that run a README command here. */
function translate(words: string[], python: string | null): [string, string[]] {
  const [first, ...rest] = words;
  if (first === "lomq") {
    const [program, lead] = lomqCommand();
    return [program, [...lead, ...rest]];
  }
  if (first === "npx" && rest[0] === "-y" && /^deno@/.test(rest[1] ?? "")) {
    return [Deno.execPath(), rest.slice(2)];
  }
  if (first === "python3" && python !== null) return [python, rest];
  throw new Error(`the README test does not know how to run '${words.join(" ")}'`);
}

/** One README command run to its end (or interrupted), its output lines in arrival order. */
async function runCommand(
  program: string,
  args: string[],
  options: { cwd: string; env?: Record<string, string>; stdin?: string; timeoutS: number },
  interruptAfter?: number,
  expectedLines?: number,
): Promise<string[]> {
  const child = new Deno.Command(program, {
    args,
    cwd: options.cwd,
    env: { NO_COLOR: "1", ...options.env },
    stdin: options.stdin === undefined ? "null" : "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  if (options.stdin !== undefined) {
    const writer = child.stdin.getWriter();
    await writer.write(new TextEncoder().encode(options.stdin));
    await writer.close();
  }
  const out = new Lines(child.stdout);
  const err = new Lines(child.stderr);
  let exited = false;
  const status = child.status.then((s) => {
    exited = true;
    return s;
  });
  const kill = (signal: Deno.Signal) => {
    try {
      child.kill(signal);
    } catch {
      // exited
    }
  };
  const deadline = Date.now() + options.timeoutS * 1000;
  // A command the README shows interrupted (^C), or one that serves until stopped, is
  // stopped once it printed what the README shows.
  const enough = interruptAfter ?? expectedLines;
  let interrupted = false;
  while (!exited && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 25));
    if (enough !== undefined && !interrupted && out.lines.length + err.lines.length >= enough) {
      if (interruptAfter === undefined) await Promise.race([status, sleep(500)]);
      if (!exited) {
        kill("SIGINT");
        interrupted = true;
      }
    }
  }
  if (!exited) kill("SIGKILL");
  await status;
  await Promise.all([out.done, err.done]);
  const lines = [...out.lines, ...withoutDenoChatter(program, err.lines)];
  if (!exited) {
    throw new Error(
      `'${args.join(" ")}' did not end within ${options.timeoutS} s; it printed:\n${
        lines.join("\n")
      }`,
    );
  }
  return interrupted && enough !== undefined ? lines.slice(0, enough) : lines;
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** What deno itself says on stderr (a task's command line, type checking, downloads). */
const DENO_CHATTER = /^(Task|Check|Download) /;

/** The output of a command run through deno: its own lines without deno's. */
function withoutDenoChatter(program: string, lines: string[]): string[] {
  return program === Deno.execPath() ? lines.filter((line) => !DENO_CHATTER.test(line)) : lines;
}

/** Compares output lines with the README's, exactly or by shape. */
function assertOutput(actual: string[], expected: string[], block: Block, what: string): void {
  const annotation = block.annotation ?? {};
  const where = `README.md:${block.line}, ${what}`;
  if (annotation.compare !== "shape") {
    assert.deepEqual(actual, expected, `${where}: the output differs from the README's`);
    return;
  }
  const number = String.raw`-?\d+(?:\.\d+)?(?:e[+-]?\d+)?`;
  const vary = annotation.vary === undefined ? undefined : new RegExp(annotation.vary, "g");
  const shapes = expected.map((line) => {
    const tokens = vary === undefined ? [] : [...line.matchAll(vary)];
    let pattern = "";
    let at = 0;
    for (const token of tokens) {
      pattern += literalWithNumbers(line.slice(at, token.index), number);
      pattern += `(?:${annotation.vary})`;
      at = token.index + token[0].length;
    }
    return new RegExp(`^${pattern}${literalWithNumbers(line.slice(at), number)}$`);
  });
  const fits = actual.length === expected.length &&
    shapes.every((shape, i) => shape.test(actual[i]));
  assert.ok(
    fits,
    `${where}: the output does not have the README's shape (numbers may differ)\n` +
      `README:\n${expected.join("\n")}\nactual:\n${actual.join("\n")}`,
  );
}

function literalWithNumbers(text: string, number: string): string {
  return text.split(/-?\d+(?:\.\d+)?(?:e[+-]?\d+)?/).map(escapeRegExp).join(number);
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&");
}

/** The README's server, started when a block needs it and kept for the next ones. */
class Servers {
  #spec: string | undefined;
  #process: LomqProcess | undefined;

  async use(spec: string | undefined): Promise<void> {
    if (spec === this.#spec && (spec === undefined || this.#process !== undefined)) return;
    await this.stop();
    if (spec === undefined || spec === "none") return;
    await portsFree([RPC_PORT, PUB_PORT]);
    const source = await Deno.readTextFile(`${ROOT}${spec}`);
    const args = /^function main\s*\(/m.test(source)
      ? [spec]
      : ["serve", spec, "--pub", `tcp://127.0.0.1:${PUB_PORT}`];
    const server = new LomqProcess(args, { cwd: ROOT });
    try {
      await waitForPort(RPC_PORT);
    } catch (error) {
      await server.stop();
      throw error;
    }
    this.#process = server;
    this.#spec = spec;
  }

  async stop(): Promise<void> {
    const server = this.#process;
    this.#process = undefined;
    this.#spec = undefined;
    if (server === undefined) return;
    server.kill("SIGINT");
    await server.finish(10000);
  }
}

/** Waits (bounded) until nothing holds the README's ports; they are fixed, not free ones. */
async function portsFree(ports: number[]): Promise<void> {
  const deadline = Date.now() + 15000;
  for (;;) {
    const busy = ports.filter((port) => {
      try {
        Deno.listen({ hostname: "0.0.0.0", port }).close();
        return false;
      } catch {
        return true;
      }
    });
    if (busy.length === 0) return;
    if (Date.now() > deadline) {
      throw new Error(
        `port ${busy.join(" and ")} is in use: the README's examples use it, so the README ` +
          `test needs it free (stop the server holding it)`,
      );
    }
    await sleep(200);
  }
}

/** Calls made over and over while a block runs (`during`); stop() ends them. */
function startCalls(spec: string | undefined): { stop(): Promise<void> } {
  if (spec === undefined) return { stop: () => Promise.resolve() };
  const calls = spec.split(";").map((call) => shellWords(call.trim())).map(([method, ...args]) => ({
    method,
    args: args.map((arg) => {
      try {
        return JSON.parse(arg);
      } catch {
        return arg;
      }
    }),
  }));
  const client = new Client(`tcp://127.0.0.1:${RPC_PORT}`, { timeoutMs: 2000 });
  let running = true;
  const loop = (async () => {
    for (let round = 0; running && round < 2000; round++) {
      const { method, args } = calls[round % calls.length];
      await client.call(method, ...args).catch(() => {});
      await sleep(50);
    }
  })();
  return {
    async stop() {
      running = false;
      await loop;
      await client.close();
    },
  };
}

/** Runs one annotated block; returns what it checked, for the step's name. */
async function runBlock(block: Block, python: string | null): Promise<void> {
  const annotation = block.annotation!;
  const cwd = `${ROOT}${annotation.cwd ?? ""}`;
  const timeoutS = Number(annotation.timeout ?? DEFAULT_TIMEOUT_S);
  const expect = annotation.expect?.split("\\n");
  const calls = startCalls(annotation.during);
  try {
    if (block.lang === "ts" || block.lang === "python") {
      const [program, args] = block.lang === "ts"
        ? [Deno.execPath(), ["run", "--check", "--allow-all", "-"]]
        : [python!, ["-"]];
      const output = await runCommand(program, args, {
        cwd,
        env: block.lang === "python" ? { PYTHONPATH: `${ROOT}clients/python` } : undefined,
        stdin: block.text,
        timeoutS,
      });
      const expected = block.prints?.split("\n") ?? expect;
      assert.ok(
        expected !== undefined,
        `README.md:${block.line}: no "prints" block and no expect=`,
      );
      assertOutput(output, expected, block, `the ${block.lang} snippet`);
      return;
    }
    const lines = block.text.split("\n");
    const prompted = lines.some((line) => line.startsWith("$ "));
    for (let i = 0; i < lines.length; i++) {
      const line = lines[i];
      if (prompted && !line.startsWith("$ ")) continue;
      const command = prompted ? line.slice(2) : line;
      const words = shellWords(command);
      if (words.length === 0) continue;
      const printed: string[] = [];
      for (let j = i + 1; prompted && j < lines.length && !lines[j].startsWith("$ "); j++) {
        printed.push(lines[j]);
      }
      const interrupt = printed.indexOf("^C");
      const expected = prompted ? printed.filter((l) => l !== "^C") : expect;
      const [program, args] = translate(words, python);
      const output = await runCommand(
        program,
        args,
        { cwd, timeoutS },
        interrupt >= 0 ? interrupt : undefined,
        expected?.length,
      );
      if (expected !== undefined) assertOutput(output, expected, block, `'${command}'`);
    }
  } finally {
    await calls.stop();
  }
}

const markdown = await Deno.readTextFile(README);
const blocks = readmeBlocks(markdown);

Deno.test("README: every block that talks to a server says how it is tested", () => {
  const unannotated = blocks.filter((block) => talksToServer(block) && !block.annotation);
  assert.deepEqual(
    unannotated.map((block) => `README.md:${block.line}`),
    [],
    "these README blocks call a server but carry no readme-test comment: put " +
      "<!-- readme-test: server=examples/prices.lua --> (see tests/readme_test.ts) right " +
      'before each, or <!-- readme-test: skip="why" --> when it cannot run in a test',
  );
  for (const block of blocks) {
    const annotation = block.annotation;
    if (annotation === undefined) continue;
    const known = [
      "server",
      "skip",
      "cwd",
      "compare",
      "vary",
      "during",
      "expect",
      "timeout",
      "file",
    ];
    const unknown = Object.keys(annotation).filter((key) => !known.includes(key));
    assert.deepEqual(unknown, [], `README.md:${block.line}: unknown readme-test keys`);
    if ("skip" in annotation) {
      assert.ok(annotation.skip.trim() !== "", `README.md:${block.line}: skip needs a reason`);
    }
  }
});

Deno.test("README: the scripts it shows are the ones shipped", async () => {
  const shown = blocks.filter((block) => block.annotation?.file !== undefined);
  assert.ok(shown.length > 0, "no README block is marked as a shipped file");
  for (const block of shown) {
    const file = await Deno.readTextFile(`${ROOT}${block.annotation!.file}`);
    assert.equal(
      file.trimEnd(),
      block.text.trimEnd(),
      `README.md:${block.line} shows ${block.annotation!.file}, but the file differs`,
    );
  }
});

Deno.test("README and --help: every script they name exists", async () => {
  const [program, lead] = lomqCommand();
  const helps = await Promise.all(
    [["--help"], ...Object.keys(COMMANDS).map((name) => [name, "--help"])].map(async (args) => {
      const out = await new Deno.Command(program, { args: [...lead, ...args], cwd: ROOT }).output();
      return {
        args,
        text: new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr),
      };
    }),
  );
  const sources = [
    { where: "README.md", text: markdown },
    ...helps.map(({ args, text }) => ({
      where: `lomq ${args.join(" ")}`,
      text,
    })),
  ];
  const missing: string[] = [];
  for (const { where, text } of sources) {
    for (const [name] of text.matchAll(/[\w./-]*\w\.lua\b/g)) {
      if (PLACEHOLDER_SCRIPTS.has(name) || name.startsWith("/")) continue;
      const candidates = [`${ROOT}${name}`, `${ROOT}examples/${name}`];
      const found = await Promise.all(
        candidates.map((path) => Deno.stat(path).then(() => true, () => false)),
      );
      if (!found.some((exists) => exists)) missing.push(`${where}: ${name}`);
    }
  }
  assert.deepEqual(missing, [], "scripts named that are neither in the checkout nor in examples/");
});

Deno.test({
  name: "README: each annotated command block runs as printed and prints what it shows",
  // The README's commands are POSIX shell lines, and ^C is a SIGINT.
  ignore: Deno.build.os === "windows",
  async fn(t) {
    const python = await pythonForInterop();
    const servers = new Servers();
    try {
      for (const block of blocks) {
        const annotation = block.annotation;
        if (annotation === undefined || "file" in annotation) continue;
        const first = block.text.split("\n").find((line) => line.trim() !== "") ?? "";
        const name = `README.md:${block.line} (${block.lang || "output"}): ${first.slice(0, 60)}`;
        const needsPython = block.lang === "python" || /^(\$ )?python3 /m.test(block.text);
        if ("skip" in annotation || (needsPython && python === null)) {
          await t.step({ name, ignore: true, fn: () => {} });
          continue;
        }
        await t.step(name, async () => {
          await servers.use(annotation.server);
          await runBlock(block, python);
        });
      }
    } finally {
      await servers.stop();
    }
  },
});
