/**
 * The Lua prelude's source, embedded in the module graph.
 *
 * `lua/prelude.lua` stays the source of truth; it is imported as text rather than read
 * at start-up so that it travels inside `deno compile` output and `deno run` from any
 * directory: a compiled binary has no checkout to read from. Deno 2.9 accepts
 * `type: "text"` imports without an unstable flag (only `type: "bytes"` still needs
 * `--unstable-raw-imports`).
 *
 * @module
 */

import source from "../../lua/prelude.lua" with { type: "text" };

/** Source of `lua/prelude.lua`. */
export const preludeSource: string = source;
