/**
 * Where the Lua engine's WebAssembly binary is found.
 *
 * wasmoon's emscripten glue locates `glue.wasm` beside its own files, which exists in
 * `node_modules` during development. Returning undefined keeps that default.
 *
 * @module
 */

/** The location passed to wasmoon, or undefined for its default. */
export function wasmLocation(): Promise<string | undefined> {
  return Promise.resolve(undefined);
}
