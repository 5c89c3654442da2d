/**
 * What the peers harness needs before it measures anything: the yardstick built, the
 * toolchain and Python found, and how to start each server of each workload.
 *
 * @module
 */

import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { BenchError } from "./errors.ts";
import { output, succeeds } from "./process.ts";
import type { Options } from "./options.ts";
import type { Role } from "./stats.ts";
import type { Workload } from "./workloads.ts";

/** A command to run: program, arguments, working folder. */
export interface Command {
  cmd: string;
  args: string[];
  cwd: string;
}

/** The built yardstick tools. */
export interface Tools {
  cload: string;
  csrv: string;
  cpub: string;
  csub: string;
}

/** A CURVE key pair in Z85 (40 characters each). */
export interface CurveKeys {
  public: string;
  secret: string;
}

/** Everything checked and built before measuring. */
export interface Setup {
  root: string;
  tools: Tools;
  /** A Python with pyzmq and msgpack (pysrv, CURVE keys), or null when not needed/found. */
  python: string | null;
  /** For the CURVE rows; null when no pyzmq could make them. */
  curve: CurveKeys | null;
  /** The lomq command before the script (`deno run ... main.ts`), and where it runs. */
  lomq: Command;
  /** The same for LOMQ_BASELINE's checkout; null without it. */
  base: Command | null;
  /** The lomq command's description for the report. */
  lomqDescription: string;
}

/** The project root: two folders above this file. */
export function projectRoot(): string {
  return resolve(dirname(fileURLToPath(import.meta.url)), "..", "..");
}

/** Debian packages missing for the C yardstick (gcc, libzmq headers). */
async function missingToolchain(): Promise<string[]> {
  if (!(await succeeds("gcc", ["--version"]))) {
    // Without gcc we cannot probe for zmq.h; name both so one install fixes it.
    return ["gcc", "libzmq3-dev"];
  }
  const hasZmq = await succeeds(
    "gcc",
    ["-E", "-x", "c", "-o", "/dev/null", "-"],
    "#include <zmq.h>\n",
  );
  return hasZmq ? [] : ["libzmq3-dev"];
}

const PY_PROBE =
  "import importlib.util as u; print(' '.join(m for m in ('zmq', 'msgpack') if u.find_spec(m) is None))";

/** A Python with pyzmq and msgpack, or the Debian packages that would provide one. */
async function findPython(): Promise<{ python: string } | { missing: string[] }> {
  const fromEnv = Deno.env.get("LOMQ_PYTHON");
  // Debian's python3-zmq lands in /usr/bin/python3, which pyenv and friends may shadow.
  const candidates = [...(fromEnv ? [fromEnv] : []), "python3", "/usr/bin/python3"];
  for (const python of candidates) {
    if ((await output(python, ["-c", PY_PROBE])) === "") return { python };
  }
  const debian = await output("/usr/bin/python3", ["-c", PY_PROBE]);
  if (debian === null) return { missing: ["python3", "python3-zmq", "python3-msgpack"] };
  return {
    missing: debian.split(" ").map((m) => (m === "zmq" ? "python3-zmq" : "python3-msgpack")),
  };
}

async function curveKeys(python: string): Promise<CurveKeys | null> {
  const line = await output(python, [
    "-c",
    "import zmq; print(*(k.decode() for k in zmq.curve_keypair()))",
  ]);
  const [pub, secret] = (line ?? "").split(" ");
  return pub?.length === 40 && secret?.length === 40 ? { public: pub, secret } : null;
}

const DENO_RUN = ["run", "--allow-net", "--allow-read", "--allow-env"];

function lomqCommand(root: string): Command {
  const bin = Deno.env.get("LOMQ_BIN")?.trim();
  if (bin) {
    const [cmd, ...pre] = bin.split(/\s+/);
    return { cmd, args: pre, cwd: root };
  }
  try {
    Deno.statSync(join(root, "main.ts"));
  } catch {
    throw new BenchError(
      `lomq: ${join(root, "main.ts")} does not exist; run the peers alone with ` +
        "--only libzmq,pysrv, or point LOMQ_BIN at a lomq command",
    );
  }
  return { cmd: Deno.execPath(), args: [...DENO_RUN, "main.ts"], cwd: root };
}

function baseCommand(): Command {
  const base = resolve(Deno.env.get("LOMQ_BASELINE") ?? "");
  try {
    Deno.statSync(join(base, "main.ts"));
  } catch {
    throw new BenchError(`base: set LOMQ_BASELINE to a lomq checkout (${base}/main.ts)`);
  }
  return { cmd: Deno.execPath(), args: [...DENO_RUN, "main.ts"], cwd: base };
}

/** Checks everything before any measuring, so a missing piece costs seconds, not a whole run. */
export async function prepare(opts: Options, progress: (m: string) => void): Promise<Setup> {
  const root = projectRoot();
  const yardstick = resolve(
    Deno.env.get("LOMQ_YARDSTICK") ?? join(root, "..", "shared", "yardstick"),
  );
  try {
    Deno.statSync(join(yardstick, "build.sh"));
  } catch {
    throw new BenchError(
      `yardstick not found: ${yardstick}/build.sh is missing (set LOMQ_YARDSTICK to its folder)`,
    );
  }
  const missing = await missingToolchain();
  const wantsPysrv = opts.roles.includes("pysrv") &&
    opts.workloads.some((w) => w.roles.includes("pysrv"));
  const wantsCurve = opts.workloads.some((w) => w.load.kind === "cload" && w.load.curve);
  let python: string | null = null;
  if (wantsPysrv || wantsCurve) {
    const found = await findPython();
    if ("python" in found) python = found.python;
    else if (wantsPysrv) missing.push(...found.missing);
  }
  if (missing.length > 0) {
    const extra = wantsPysrv
      ? "\n(pyzmq is looked for in $LOMQ_PYTHON, python3 and /usr/bin/python3; " +
        "or skip the Python peer with --only lomq,libzmq)"
      : "";
    throw new BenchError(
      `missing Debian packages: ${missing.join(" ")}\ninstall them with:\n` +
        `  apt-get update && apt-get install -y ${missing.join(" ")}${extra}`,
    );
  }
  const lomq = lomqCommand(root);
  const base = opts.roles.includes("base") ? baseCommand() : null;

  const out = join(root, ".bench", "yardstick");
  progress(`building the yardstick into ${out}`);
  const build = await new Deno.Command("sh", {
    args: [join(yardstick, "build.sh"), out],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (!build.success) {
    throw new BenchError(
      `building the yardstick failed (${yardstick}/build.sh ${out}):\n` +
        new TextDecoder().decode(build.stderr).trimEnd(),
    );
  }
  return {
    root,
    tools: {
      cload: join(out, "cload"),
      csrv: join(out, "csrv"),
      cpub: join(out, "cpub"),
      csub: join(out, "csub"),
    },
    python,
    curve: wantsCurve && python !== null ? await curveKeys(python) : null,
    lomq,
    base,
    lomqDescription: Deno.env.get("LOMQ_BIN") ?? "deno run main.ts",
  };
}

/** The name a role goes by in a workload's rows (`csrv --router`, `cpub`). */
export function roleName(role: Role, workload: Workload): string {
  if (role !== "libzmq") return role;
  if (workload.load.kind === "publish") return "cpub";
  return workload.load.router ? "csrv --router" : workload.load.curve ? "csrv --curve" : "csrv";
}

/**
 * How `role` serves `workload` on `uri`: lomq (and base) run bench/add.lua or
 * bench/publish.lua from this checkout; the peers are the yardstick's.
 */
export function serverCommand(
  setup: Setup,
  role: Role,
  workload: Workload,
  uri: string,
  seconds: number,
): Command {
  const load = workload.load;
  const { tools, root } = setup;
  if (role === "libzmq") {
    if (load.kind === "publish") {
      const args = [uri, String(seconds)];
      if (load.size > 0) args.push(String(load.size));
      return { cmd: tools.cpub, args, cwd: root };
    }
    const args = [uri];
    if (load.router) args.push("--router");
    if (load.curve && setup.curve) args.push("--curve", setup.curve.secret);
    return { cmd: tools.csrv, args, cwd: root };
  }
  if (role === "floor") {
    return {
      cmd: Deno.execPath(),
      args: ["run", "--allow-net", join(root, "bench", "floor.ts"), uri],
      cwd: root,
    };
  }
  if (role === "pysrv") {
    const yardstick = resolve(
      Deno.env.get("LOMQ_YARDSTICK") ?? join(root, "..", "shared", "yardstick"),
    );
    return { cmd: setup.python ?? "python3", args: [join(yardstick, "pysrv.py"), uri], cwd: root };
  }
  const lomq = role === "base" ? setup.base : setup.lomq;
  if (lomq === null) throw new BenchError("base: LOMQ_BASELINE is not set");
  let script: string[];
  if (load.kind === "publish") {
    script = [join(root, "bench", "publish.lua"), uri, String(seconds), String(load.size)];
  } else {
    script = [join(root, "bench", "add.lua"), uri, load.router ? "ROUTER" : "REP"];
    if (load.curve && setup.curve) {
      script.push("curve_server=true", `curve_secretkey=${setup.curve.secret}`);
    }
  }
  return { cmd: lomq.cmd, args: [...lomq.args, ...script], cwd: lomq.cwd };
}
