// The first `deno task start` of a fresh checkout: nothing but Deno's own download
// progress and its `Task start ...` echo may come before the script's first line. What
// used to come: the boxed "Ignored build scripts ... msgpackr-extract ... deno
// approve-scripts" warning, printed whenever Deno sets up a node_modules that holds
// msgpackr's optional native extension (so a fresh node_modules shows it even with a warm
// DENO_DIR), and in a terminal a prompt for ffi access when msgpackr loaded that extension.
import assert from "node:assert/strict";
import { ROOT, runBounded } from "./helpers/lomq.ts";

/** Left out of the copy, which is then a checkout that never ran. */
const NOT_IN_A_CHECKOUT = new Set([".git", "node_modules", "dist", ".bench"]);
const SCRIPT_LINE = "first line from the script";
/** Deno's progress lines while it sets up node_modules (only on a first run). */
const DENO_PROGRESS = /^(Download|Initialize) \S+$/;
const TASK_ECHO = /^Task start deno run .*main\.ts --start 'first\.lua'$/;

// deno-lint-ignore no-control-regex
const ANSI = /\x1b\[[0-9;]*[A-Za-z]/g;

function plainLines(text: string): string[] {
  return text.replace(ANSI, "").replaceAll("\r", "").split("\n").filter((line) => line !== "");
}

async function copyTree(from: string, to: string): Promise<void> {
  const info = await Deno.lstat(from);
  if (info.isSymlink) return;
  if (!info.isDirectory) return await Deno.copyFile(from, to);
  await Deno.mkdir(to);
  for await (const entry of Deno.readDir(from)) {
    await copyTree(`${from}/${entry.name}`, `${to}/${entry.name}`);
  }
}

/** Runs `program args` in `cwd`, killed after `ms`; stdout and stderr as text. */
/** Whether util-linux `script` (a pseudo-terminal for a command) is available. */
async function haveScript(): Promise<boolean> {
  if (Deno.build.os !== "linux") return false;
  try {
    return (await new Deno.Command("script", { args: ["--version"], stdout: "null" }).output())
      .success;
  } catch {
    return false;
  }
}

Deno.test("the first deno task start of a fresh checkout prints only Deno's progress and its Task echo before the script's first line", async () => {
  const dir = await Deno.makeTempDir({ prefix: "lomq-first-run-" });
  try {
    for await (const entry of Deno.readDir(ROOT)) {
      if (!NOT_IN_A_CHECKOUT.has(entry.name)) {
        await copyTree(`${ROOT}${entry.name}`, `${dir}/${entry.name}`);
      }
    }
    await Deno.writeTextFile(`${dir}/first.lua`, `message(${JSON.stringify(SCRIPT_LINE)})\n`);

    // Piped, as CI and most tools run it; node_modules is set up by this very run.
    const piped = await runBounded(Deno.execPath(), ["task", "start", "first.lua"], {
      cwd: dir,
      ms: 120_000,
    });
    const output = `stdout:\n${piped.stdout}\nstderr:\n${piped.stderr}`;
    assert.equal(piped.code, 0, output);
    assert.equal(piped.stdout, "", output);
    const lines = plainLines(piped.stderr);
    const echo = lines.findIndex((line) => TASK_ECHO.test(line));
    assert.ok(echo >= 0, `no Task echo in\n${output}`);
    for (const line of lines.slice(0, echo)) assert.match(line, DENO_PROGRESS, output);
    assert.equal(lines[echo + 1], SCRIPT_LINE, output);
    assert.equal(lines.length, echo + 2, output);
    await Deno.stat(`${dir}/node_modules`); // the run did set node_modules up

    // In a terminal, where Deno would prompt for a permission the program asks for.
    if (await haveScript()) {
      const tty = await runBounded(
        "script",
        ["-qfec", `'${Deno.execPath()}' task start first.lua`, "/dev/null"],
        { cwd: dir, ms: 60_000 },
      );
      const ttyLines = plainLines(tty.stdout);
      assert.equal(tty.code, 0, tty.stdout + tty.stderr);
      assert.equal(ttyLines.length, 2, tty.stdout);
      assert.match(ttyLines[0], TASK_ECHO, tty.stdout);
      assert.equal(ttyLines[1], SCRIPT_LINE, tty.stdout);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
