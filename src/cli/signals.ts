/**
 * Ctrl+C and SIGTERM for the long-running client commands (`sub`, `bench`).
 *
 * @module
 */

/**
 * Calls `onStop` on the first Ctrl+C (or SIGTERM); a second one exits at once with 130,
 * for when the clean stop itself hangs. Returns a function that removes the listeners.
 */
export function onStopSignal(onStop: () => void): () => void {
  // Windows accepts only SIGINT and SIGBREAK; registering SIGTERM there throws.
  const names: Deno.Signal[] = Deno.build.os === "windows"
    ? ["SIGINT", "SIGBREAK"]
    : ["SIGINT", "SIGTERM"];
  let stopping = false;
  const listener = () => {
    if (stopping) Deno.exit(130);
    stopping = true;
    onStop();
  };
  for (const name of names) Deno.addSignalListener(name, listener);
  return () => {
    for (const name of names) Deno.removeSignalListener(name, listener);
  };
}
