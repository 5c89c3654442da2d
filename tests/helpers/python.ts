/**
 * Locating a Python interpreter that has pyzmq and msgpack, the real libzmq peer the
 * interop tests talk to.
 *
 * Debian's python3-zmq installs into /usr/bin/python3, which is not always the first
 * python3 on PATH (pyenv and friends shadow it), so several candidates are tried.
 *
 * @module
 */

let cached: Promise<string | null> | undefined;

/** Candidates in order: $LOMQ_PYTHON, python3 on PATH, Debian's /usr/bin/python3. */
function candidates(): string[] {
  const fromEnv = Deno.env.get("LOMQ_PYTHON");
  const list = ["python3", "/usr/bin/python3", "python"];
  return fromEnv ? [fromEnv, ...list] : list;
}

/** Whether `program args...` runs and exits 0 (false when it is not there at all). */
export async function succeeds(program: string, args: string[]): Promise<boolean> {
  try {
    const out = await new Deno.Command(program, { args, stdout: "null", stderr: "null" })
      .output();
    return out.success;
  } catch {
    return false;
  }
}

function probe(python: string): Promise<boolean> {
  return succeeds(python, ["-c", "import zmq, msgpack"]);
}

/** Returns the path of a Python with pyzmq and msgpack importable, or null. */
export function findPython(): Promise<string | null> {
  cached ??= (async () => {
    for (const python of candidates()) {
      if (await probe(python)) return python;
    }
    return null;
  })();
  return cached;
}

/** True when the environment demands the interop tests run (CI sets this). */
export function interopRequired(): boolean {
  const value = Deno.env.get("LOMQ_REQUIRE_INTEROP");
  return value !== undefined && value !== "" && value !== "0";
}

/**
 * Returns a Python with pyzmq, or null when the interop tests may be skipped.
 * Throws when pyzmq is missing but LOMQ_REQUIRE_INTEROP is set, so CI cannot
 * silently skip the tests that prove libzmq interoperability.
 */
export async function pythonForInterop(): Promise<string | null> {
  const python = await findPython();
  if (python) return python;
  if (interopRequired()) {
    throw new Error(
      "LOMQ_REQUIRE_INTEROP is set but no Python with pyzmq and msgpack was found; " +
        "install python3-zmq and python3-msgpack (apt) or set LOMQ_PYTHON",
    );
  }
  return null;
}

/** Whether interop tests should be ignored (pyzmq missing and not required). */
export const skipInterop: boolean = (await pythonForInterop()) === null;
