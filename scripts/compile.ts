/**
 * Builds lomq's single-file binaries with `deno compile`.
 *
 *   deno task compile                  dist/lomq (dist/lomq.exe on Windows), this machine
 *   deno task compile --target TARGET  dist/lomq-TARGET[.exe]
 *   deno task compile:all              dist/lomq-TARGET[.exe] for every release target
 *
 * `deno compile` wraps the program around `denort`, a runtime it downloads from
 * dl.deno.land for each target. Where that download is impossible, this stops with one
 * line that says so instead of deno's error chain; `DENORT_BIN=/path/to/denort` supplies
 * the runtime for this machine's target (the full `deno` binary is not a denort).
 *
 * @module
 */

import { basename, join } from "node:path";
import { GENERATED, installedGlue, render } from "./embed.ts";

/** The release targets, in the order `compile:all` builds them. */
export const TARGETS: readonly string[] = [
  "x86_64-unknown-linux-gnu",
  "aarch64-unknown-linux-gnu",
  "x86_64-apple-darwin",
  "aarch64-apple-darwin",
  "x86_64-pc-windows-msvc",
];

/**
 * What the binary may do, baked in by `deno compile`; the same as `deno task start`.
 * lomq serves and dials TCP (net), reads the script and the modules it requires (read),
 * and gives scripts os.getenv (env). It spawns nothing. It writes no files either, but
 * Deno counts a unix socket as one: binding `ipc://` creates the socket file (and removes
 * a stale one), and even connecting needs write access, so ipc needs --allow-write.
 */
export const PERMISSIONS: readonly string[] = [
  "--allow-net",
  "--allow-read",
  "--allow-env",
  "--allow-write",
];

const ROOT = new URL("../", import.meta.url);

/** The one-line message for a missing denort runtime. */
export function denortMessage(target: string, cause?: string): string {
  const why = cause ? ` (${cause})` : " (no network access to dl.deno.land here)";
  return `lomq compile: deno compile could not download its denort runtime for ${target}${why}; ` +
    "set DENORT_BIN=/path/to/denort and retry, or build in GitHub Actions";
}

/** The output path for `target`, or for this machine when `target` is undefined. */
export function outputFor(target: string | undefined): string {
  if (target === undefined) return Deno.build.os === "windows" ? "dist/lomq.exe" : "dist/lomq";
  return `dist/lomq-${target}${target.includes("windows") ? ".exe" : ""}`;
}

/**
 * How deno words a failure to get its runtime. Not just "denort": the progress line
 * "Download .../denort-TARGET.zip" comes before any later, unrelated error.
 */
const RUNTIME_FAILURE = [
  /Setting up base binary/,
  /Could not find denort/,
  /error sending request for url \(https:\/\/dl\.deno\.land/,
];

/**
 * Reads deno's failure output and, when it is the denort download that failed, returns
 * the innermost cause (for example "dns error: failed to lookup address information").
 * Returns undefined for any other failure (a type error, a bad flag), which is shown as is.
 */
export function denortFailure(stderr: string): string | undefined {
  // deno colours its output even when piped, so strip ANSI escapes before matching.
  // deno-lint-ignore no-control-regex
  const text = stderr.replace(/\x1b\[[0-9;]*m/g, "");
  if (!RUNTIME_FAILURE.some((pattern) => pattern.test(text))) return undefined;
  // The causes are numbered under "Caused by:"; the backtrace after them is numbered too.
  const chain = text.split(/^Caused by:$/m)[1]?.split(/^Stack backtrace:$/m)[0] ?? "";
  const causes = [...chain.matchAll(/^\s*\d+: (.+)$/gm)].map((m) => m[1].trim());
  return innermost(causes.at(-1) ?? text.trim().split("\n").at(-1)?.trim() ?? "");
}

/** Drops the wrappers around a network error ("error sending request for url (...): "). */
function innermost(message: string): string {
  return message
    .replace(/^\w*Error: /, "")
    .replace(/^error sending request for url \([^)]*\): /, "")
    .replace(/^client error \(\w+\): /, "");
}

function fail(message: string): never {
  console.error(message);
  Deno.exit(1);
}

async function denoDir(): Promise<string | undefined> {
  try {
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["info", "--json"],
      stdout: "piped",
      stderr: "null",
    }).output();
    return out.success ? JSON.parse(new TextDecoder().decode(out.stdout)).denoDir : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Fails fast, before the slow type check, when a runtime must be downloaded and
 * dl.deno.land cannot be reached at all. Any HTTP answer counts as reachable: deno
 * compile then reports real problems (an unknown target, a missing release) itself.
 */
async function ensureRuntimeReachable(targets: string[]): Promise<void> {
  const version = Deno.version.deno;
  const dir = await denoDir();
  const missing = targets.filter((target) => {
    if (!dir) return true;
    try {
      return !Deno.statSync(join(dir, "dl", "release", `v${version}`, `denort-${target}.zip`))
        .isFile;
    } catch {
      return true;
    }
  });
  if (missing.length === 0) return;
  try {
    const response = await fetch(
      `https://dl.deno.land/release/v${version}/denort-${missing[0]}.zip`,
      { method: "HEAD", signal: AbortSignal.timeout(15000) },
    );
    await response.body?.cancel();
  } catch (error) {
    const cause = error instanceof Error ? String(error.cause ?? error) : String(error);
    fail(denortMessage(missing[0], innermost(cause.split("\n")[0])));
  }
}

async function checkEmbedded(): Promise<void> {
  const glue = await installedGlue();
  let current = "";
  try {
    current = await Deno.readTextFile(GENERATED);
  } catch {
    // missing: reported below like a stale file
  }
  if (current.replaceAll("\r\n", "\n") !== await render(glue)) {
    fail(
      `lomq compile: src/lua/embedded/glue_wasm.ts does not match the installed ` +
        `wasmoon@${glue.version}; run 'deno task embed' first`,
    );
  }
}

async function compile(target: string | undefined): Promise<void> {
  const output = outputFor(target);
  const args = [
    "compile",
    ...PERMISSIONS,
    ...(target ? ["--target", target] : []),
    "--output",
    output,
    "main.ts",
  ];
  const result = await new Deno.Command(Deno.execPath(), {
    args,
    cwd: ROOT,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const stderr = new TextDecoder().decode(result.stderr);
  if (!result.success) {
    const cause = denortFailure(stderr);
    if (cause !== undefined) fail(denortMessage(target ?? Deno.build.target, cause));
    await Deno.stderr.write(result.stderr);
    await Deno.stdout.write(result.stdout);
    Deno.exit(result.code || 1);
  }
  const size = Deno.statSync(new URL(output, ROOT)).size;
  console.error(`lomq compile: built ${output} (${(size / 1048576).toFixed(1)} MB)`);
}

async function main(args: string[]): Promise<void> {
  let targets: (string | undefined)[] = [undefined];
  if (args.includes("--all")) {
    targets = [...TARGETS];
  } else {
    const at = args.indexOf("--target");
    if (at >= 0) {
      const target = args[at + 1];
      if (!target || !TARGETS.includes(target)) {
        fail(`lomq compile: --target needs one of ${TARGETS.join(", ")}`);
      }
      targets = [target];
    }
  }
  const concrete = targets.map((t) => t ?? Deno.build.target);

  const denort = Deno.env.get("DENORT_BIN");
  if (denort) {
    try {
      if (!Deno.statSync(denort).isFile) throw new Error("not a file");
    } catch {
      fail(`lomq compile: DENORT_BIN=${denort} is not a file; point it at a denort binary`);
    }
    // The full deno binary is accepted by deno compile but makes a binary that starts
    // deno's REPL instead of lomq.
    if (/^deno(\.exe)?$/i.test(basename(denort))) {
      fail(
        `lomq compile: DENORT_BIN=${denort} is the full deno, not a denort runtime; ` +
          `unzip denort-${Deno.build.target}.zip from dl.deno.land/release/v${Deno.version.deno}/`,
      );
    }
    // deno compile uses DENORT_BIN for whatever --target says, which would put this
    // machine's runtime inside every other platform's binary.
    if (concrete.some((t) => t !== Deno.build.target)) {
      fail(
        `lomq compile: DENORT_BIN is a runtime for one platform, but deno compile would ` +
          `use it for every target; unset it to cross-compile (the download works in CI)`,
      );
    }
  } else {
    await ensureRuntimeReachable(concrete);
  }

  await checkEmbedded();
  await Deno.mkdir(new URL("dist/", ROOT), { recursive: true });
  for (const target of targets) await compile(target);
}

if (import.meta.main) {
  await main(Deno.args);
}
