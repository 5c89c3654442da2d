/**
 * Introspection: the reserved method `lomq.functions`, which every lomq REP and ROUTER
 * server answers with the functions a client may call.
 *
 * It is answered before any script function is looked up, so no script can shadow it (a
 * global `lomq` table, or a global literally named `lomq.functions`, changes nothing),
 * and the list follows exactly the rules the call path applies (what the script defined,
 * `LuaOverMQ.expose`, `lomq serve --expose`). Parameter names and `...` come from the
 * functions' debug information, read by the host through Lua's C API, never through the
 * script's `debug` table.
 *
 * Request: `["lomq.functions"]`, or `["lomq.functions", after]` for the page after the
 * name `after`. Reply (`OK`), a map:
 *
 * ```text
 * { "functions": [ { "name": "add", "params": ["a", "b"], "vararg": false },
 *                  { "name": "log", "params": ["fmt"], "vararg": true } ],
 *   "more": false }
 * ```
 *
 * Functions are sorted by name (byte order of the name as clients send it). A page holds
 * at most {@linkcode FUNCTIONS_PAGE_SIZE} functions and about
 * {@linkcode FUNCTIONS_PAGE_BYTES} bytes; `more` is true when there are more, which the
 * next request gets by passing the last name of this page. A name that is not UTF-8 comes
 * as msgpack bin (pass it back as bin). Servers without introspection (the original
 * LuaOverMQ, lomq before it) answer `ERROR`, as for any unknown function.
 *
 * ```ts
 * import { FUNCTIONS_METHOD, parseFunctionsPage } from "./introspection.ts";
 * const page = parseFunctionsPage({ functions: [{ name: "add", params: ["a", "b"], vararg: false }], more: false });
 * console.log(FUNCTIONS_METHOD, page.functions[0].name); // lomq.functions add
 * ```
 *
 * @module
 */

/** The reserved method that lists the callable functions. */
export const FUNCTIONS_METHOD = "lomq.functions";
/** Most functions in one reply to {@linkcode FUNCTIONS_METHOD}. */
export const FUNCTIONS_PAGE_SIZE = 10_000;
/** A reply stops adding functions once it holds about this many bytes. */
export const FUNCTIONS_PAGE_BYTES = 1024 * 1024;

/** One callable function, as `lomq.functions` describes it. */
export interface FunctionInfo {
  /** The name to call it by: a string, or the bytes of a name that is not UTF-8. */
  name: string | Uint8Array;
  /** The names of its parameters, in order. */
  params: string[];
  /** Whether it also takes `...`. */
  vararg: boolean;
}

/** One reply to `lomq.functions`. */
export interface FunctionsPage {
  /** The functions of this page, sorted by name. */
  functions: FunctionInfo[];
  /** Whether more follow: ask again with the last name of this page. */
  more: boolean;
}

/** A reply to `lomq.functions` that is not a function list. */
export class IntrospectionReplyError extends Error {
  /** The error class name, for logs and `instanceof`-free checks. */
  override name = "IntrospectionReplyError";
}

/**
 * Checks a decoded reply (maps as plain objects) against the shape above and returns it
 * typed; throws {@linkcode IntrospectionReplyError} naming what is wrong.
 */
export function parseFunctionsPage(value: unknown): FunctionsPage {
  const fail = (what: string): never => {
    throw new IntrospectionReplyError(`the reply to ${FUNCTIONS_METHOD} is not a list: ${what}`);
  };
  if (typeof value !== "object" || value === null) return fail("not a map");
  const { functions, more } = value as Record<string, unknown>;
  if (!Array.isArray(functions)) return fail("'functions' is not an array");
  if (typeof more !== "boolean") return fail("'more' is not a boolean");
  const checked = functions.map((entry, i): FunctionInfo => {
    const { name, params, vararg } = (entry ?? {}) as Record<string, unknown>;
    if (typeof name !== "string" && !(name instanceof Uint8Array)) {
      return fail(`function ${i} has no name`);
    }
    if (!Array.isArray(params) || !params.every((p) => typeof p === "string")) {
      return fail(`function ${i} has no list of parameter names`);
    }
    if (typeof vararg !== "boolean") return fail(`function ${i} has no 'vararg' boolean`);
    return { name, params, vararg };
  });
  return { functions: checked, more };
}
