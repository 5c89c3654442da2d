/**
 * Reading from a `Deno.Conn` with the least overhead the runtime allows.
 *
 * `Deno.Conn.read` wraps the runtime's read operation in an async function that also tracks
 * the pending promise for `ref()`/`unref()`, which lomq never uses: two promise hops and a
 * set update per read, on the path every request takes. Where the runtime exposes its core
 * read and the connection's resource id (Deno 2, as pinned by this project), reads call it
 * directly; anywhere else, or with `LOMQ_PORTABLE_IO=1`, the public method is used. Both
 * behave the same: the byte count, 0 at end of stream (callers never pass an empty buffer).
 *
 * @module
 */

import { onDeno, type Stream } from "./transport.ts";

/** Reads into a non-empty `buffer`; resolves with the byte count, 0 when the peer closed. */
export type ReadFunction = (buffer: Uint8Array) => Promise<number>;

type CoreRead = (rid: number, buffer: Uint8Array) => Promise<number>;

const RID_DESCRIPTION = "Deno.internal.rid";
const OPT_OUT = "LOMQ_PORTABLE_IO";

function optedOut(): boolean {
  // Queried first: a library user without --allow-env must not get a permission prompt.
  const query = { name: "env", variable: OPT_OUT } as const;
  if (Deno.permissions.querySync(query).state !== "granted") return false;
  return Deno.env.get(OPT_OUT) === "1";
}

function findCoreRead(): CoreRead | undefined {
  if (!onDeno || optedOut()) return undefined;
  const internalKey = (Deno as unknown as { internal?: symbol }).internal;
  if (internalKey === undefined) return undefined;
  const internal = (Deno as unknown as Record<symbol, { core?: { read?: unknown } }>)[internalKey];
  const read = internal?.core?.read;
  return typeof read === "function" ? read as CoreRead : undefined;
}

const coreRead = findCoreRead();

function resourceId(conn: Stream): number | undefined {
  for (const key of Object.getOwnPropertySymbols(conn)) {
    if (key.description !== RID_DESCRIPTION) continue;
    const rid = (conn as unknown as Record<symbol, unknown>)[key];
    return typeof rid === "number" ? rid : undefined;
  }
  return undefined;
}

/** The fastest correct way to read from `conn`. */
export function readerFor(conn: Stream): ReadFunction {
  const read = coreRead;
  const rid = read === undefined ? undefined : resourceId(conn);
  if (read === undefined || rid === undefined) {
    return async (buffer) => (await conn.read(buffer)) ?? 0;
  }
  return (buffer) => read(rid, buffer);
}

/** Whether {@link readerFor} uses the direct path (for tests and diagnostics). */
export const directReads: boolean = coreRead !== undefined;
