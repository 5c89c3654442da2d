/**
 * Starting lomq as a real subprocess for end-to-end tests, and running Python peers.
 *
 * `LOMQ_BIN=/path/to/lomq` tests a compiled binary (or any launcher) instead of
 * `deno run main.ts`.
 *
 * @module
 */

import { fileURLToPath } from "node:url";

/** The project root. */
export const ROOT: string = fileURLToPath(new URL("../../", import.meta.url));

/** The command that runs lomq: `[program, ...leading args]`. */
export function lomqCommand(): [string, string[]] {
  const bin = Deno.env.get("LOMQ_BIN");
  if (bin) return [bin, []];
  return [Deno.execPath(), [
    "run",
    "--allow-net",
    "--allow-read",
    "--allow-env",
    "--allow-write",
    `${ROOT}main.ts`,
  ]];
}

/** A free TCP port on loopback (bound and released; good enough on a test machine). */
export function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  return port;
}

/** Resolves once something accepts TCP connections on the port, or throws after `ms`. */
export async function waitForPort(port: number, ms = 20000, hostname = "127.0.0.1"): Promise<void> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    try {
      const conn = await Deno.connect({ hostname, port });
      conn.close();
      return;
    } catch {
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  throw new Error(`nothing listened on ${hostname}:${port} within ${ms} ms`);
}

/**
 * Starts `program` with no stdin and both outputs piped (the caller reads them), as the
 * tests' lomq and Python processes run.
 */
export function spawnPiped(
  program: string,
  args: string[],
  options: { cwd?: string; env?: Record<string, string> },
): Deno.ChildProcess {
  return new Deno.Command(program, {
    args,
    cwd: options.cwd,
    env: options.env,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
}

/** A running lomq process. */
export class LomqProcess {
  readonly child: Deno.ChildProcess;
  readonly #stdout: Promise<Uint8Array>;
  readonly #stderr: Promise<Uint8Array>;

  constructor(args: string[], options: { cwd?: string; env?: Record<string, string> } = {}) {
    const [program, lead] = lomqCommand();
    this.child = spawnPiped(program, [...lead, ...args], options);
    this.#stdout = new Response(this.child.stdout).bytes();
    this.#stderr = new Response(this.child.stderr).bytes();
  }

  /** Sends a signal (ignored if it already exited). */
  kill(signal: Deno.Signal = "SIGTERM"): void {
    try {
      this.child.kill(signal);
    } catch {
      // already gone
    }
  }

  /** Waits for the exit, killing the process if it outlives `ms`. */
  async finish(
    ms = 15000,
  ): Promise<{ code: number; stdout: string; stderr: string; bytes: Uint8Array }> {
    const timer = setTimeout(() => this.kill("SIGKILL"), ms);
    try {
      const status = await this.child.status;
      const bytes = await this.#stdout;
      const decoder = new TextDecoder();
      return {
        code: status.code,
        stdout: decoder.decode(bytes),
        stderr: decoder.decode(await this.#stderr),
        bytes,
      };
    } finally {
      clearTimeout(timer);
    }
  }

  /** Stops the process (SIGKILL) and waits; for cleanup in finally blocks. */
  async stop(): Promise<void> {
    this.kill("SIGKILL");
    await this.finish(5000);
  }
}

/**
 * Starts lomq with `args` and waits until something listens on `port`; when nothing
 * does, kills it and throws with its stderr.
 */
export async function startLomq(
  args: string[],
  port: number,
  env?: Record<string, string>,
): Promise<LomqProcess> {
  const lomq = new LomqProcess(args, { env });
  try {
    await waitForPort(port);
  } catch (error) {
    lomq.kill("SIGKILL");
    const out = await lomq.finish(5000);
    throw new Error(`${(error as Error).message}\nlomq ${args[0]} stderr:\n${out.stderr}`);
  }
  return lomq;
}

/**
 * Starts lomq on a script whose arg[1] is its RPC endpoint and waits for the port; `env`
 * adds variables to the inherited environment.
 */
export async function startServer(
  script: string,
  extraArgs: string[] = [],
  env?: Record<string, string>,
): Promise<{ lomq: LomqProcess; port: number; uri: string }> {
  const port = freePort();
  const uri = `tcp://127.0.0.1:${port}`;
  const lomq = await startLomq([script, uri, ...extraArgs], port, env);
  return { lomq, port, uri };
}

/** The script `lomq serve` runs in the tests: functions only, no main(). */
export const FUNCTIONS_SCRIPT = `${ROOT}tests/fixtures/functions.lua`;

/** `lomq serve functions.lua` with a PUB endpoint; resolves once it accepts calls. */
export async function startServe(
  scriptArgs: string[] = [],
): Promise<{ server: LomqProcess; rpc: string; pub: string }> {
  const rpcPort = freePort();
  const rpc = `tcp://127.0.0.1:${rpcPort}`;
  const pub = `tcp://127.0.0.1:${freePort()}`;
  const args = ["serve", FUNCTIONS_SCRIPT, "--rpc", rpc, "--pub", pub];
  if (scriptArgs.length > 0) args.push("--", ...scriptArgs);
  return { server: await startLomq(args, rpcPort), rpc, pub };
}

/** Starts Python code with the tests' helpers importable; the caller ends it. */
export function spawnPython(
  python: string,
  code: string,
): { child: Deno.ChildProcess; output: Promise<Deno.CommandOutput> } {
  const child = spawnPiped(python, ["-c", code], { env: { PYTHONPATH: `${ROOT}tests/helpers` } });
  return { child, output: child.output() };
}

/**
 * Runs Python code with the tests' helpers importable (`from rpc_client import ...`).
 * Returns stdout; throws with stderr when Python fails.
 */
export function runPython(python: string, code: string, ms = 30000): Promise<string> {
  return runChecked(python, ["-c", code], { env: { PYTHONPATH: `${ROOT}tests/helpers` }, ms });
}

/**
 * Runs a program to the end (killed when it outlives `ms`, default 60 s) and returns its exit
 * code and output. `env` adds to the inherited environment.
 */
export async function runBounded(
  program: string,
  args: string[],
  options: { cwd?: string; env?: Record<string, string>; ms?: number } = {},
): Promise<{ code: number; success: boolean; stdout: string; stderr: string }> {
  const child = spawnPiped(program, args, options);
  const timer = setTimeout(() => {
    try {
      child.kill("SIGKILL");
    } catch {
      // gone
    }
  }, options.ms ?? 60000);
  try {
    const out = await child.output();
    const decoder = new TextDecoder();
    return {
      code: out.code,
      success: out.success,
      stdout: decoder.decode(out.stdout),
      stderr: decoder.decode(out.stderr),
    };
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Runs a program to the end and returns its stdout; throws with its stderr when it fails
 * (killed when it outlives `ms`). `env` adds to the inherited environment.
 */
export async function runChecked(
  program: string,
  args: string[],
  options: { cwd?: string; env?: Record<string, string>; ms?: number } = {},
): Promise<string> {
  const out = await runBounded(program, args, options);
  if (!out.success) {
    const name = program.split("/").pop();
    throw new Error(`${name} failed (${out.code}):\n${out.stderr}\n${out.stdout}`);
  }
  return out.stdout;
}
