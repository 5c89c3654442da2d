/**
 * Locating Node.js and npm for the tests of the client's Node build (clients/node).
 *
 * @module
 */

import { interopRequired, succeeds } from "./python.ts";

/**
 * Whether `node` and `npm` run. Throws when they do not but LOMQ_REQUIRE_INTEROP is set, so
 * CI cannot skip the Node client's tests silently.
 */
export async function nodeForInterop(): Promise<boolean> {
  if (await succeeds("node", ["--version"]) && await succeeds("npm", ["--version"])) return true;
  if (interopRequired()) {
    throw new Error(
      "LOMQ_REQUIRE_INTEROP is set but node or npm does not run; install Node.js 20 or later",
    );
  }
  return false;
}

/** Whether the Node.js tests should be ignored (node missing and not required). */
export const skipNode: boolean = !(await nodeForInterop());
