/**
 * Locating Node.js and npm for the tests of the client's Node build (clients/node).
 *
 * @module
 */

import { interopRequired } from "./python.ts";

async function works(program: string): Promise<boolean> {
  try {
    const out = await new Deno.Command(program, {
      args: ["--version"],
      stdout: "null",
      stderr: "null",
    }).output();
    return out.success;
  } catch {
    return false;
  }
}

/**
 * Whether `node` and `npm` run. Throws when they do not but LOMQ_REQUIRE_INTEROP is set, so
 * CI cannot skip the Node client's tests silently.
 */
export async function nodeForInterop(): Promise<boolean> {
  if (await works("node") && await works("npm")) return true;
  if (interopRequired()) {
    throw new Error(
      "LOMQ_REQUIRE_INTEROP is set but node or npm does not run; install Node.js 20 or later",
    );
  }
  return false;
}

/** Whether the Node.js tests should be ignored (node missing and not required). */
export const skipNode: boolean = !(await nodeForInterop());
