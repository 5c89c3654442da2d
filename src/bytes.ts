/**
 * Copying a run of bytes between arrays, the way that is fastest for its length; and
 * writing all of an array to a synchronous writer.
 *
 * `target.set(source.subarray(...))` makes a view (an allocation) and crosses into the
 * runtime's copy, which for a handful of bytes costs several times the bytes themselves;
 * msgpack keys, method names and small values are mostly that short. A plain loop has no
 * such fixed cost, so runs up to {@linkcode SHORT_COPY} bytes are copied by one.
 *
 * ```ts
 * import { copyBytes } from "./bytes.ts";
 * const out = new Uint8Array(4);
 * copyBytes(out, 1, new Uint8Array([7, 8, 9]), 1, 2);
 * console.log(out); // Uint8Array(4) [ 0, 8, 9, 0 ]
 * ```
 *
 * @module
 */

/** Writes all of `bytes` to a synchronous writer (stdout, stderr), which may take less a call. */
export function writeAllSync(
  target: { writeSync(p: Uint8Array): number },
  bytes: Uint8Array,
): void {
  let offset = 0;
  while (offset < bytes.length) offset += target.writeSync(bytes.subarray(offset));
}

/** Longest run copied by a loop; longer ones go through `set`. */
export const SHORT_COPY = 32;

/** Copies `source[start, start + n)` to `target` at `at`. */
export function copyBytes(
  target: Uint8Array,
  at: number,
  source: Uint8Array,
  start: number,
  n: number,
): void {
  if (n <= SHORT_COPY) {
    for (let i = 0; i < n; i++) target[at + i] = source[start + i];
  } else {
    target.set(start === 0 && n === source.length ? source : source.subarray(start, start + n), at);
  }
}
