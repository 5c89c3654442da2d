/**
 * The Lua prelude's source, read once at start-up.
 *
 * @module
 */

/** Source of `lua/prelude.lua`. */
export const preludeSource: string = await Deno.readTextFile(
  new URL("../../lua/prelude.lua", import.meta.url),
);
