/**
 * Giving the event loop one full turn, I/O included, and coming back as soon as possible:
 * what a preempted Lua thread waits for before it resumes.
 *
 * Deno runs timers, immediates and message events without polling sockets in between
 * (measured: a loop of 5 ms slices separated by `setImmediate` or a `MessageChannel` post
 * starved a TCP echo for seconds), and `setTimeout(0)` waits 1-2 ms. A read that completes
 * only through the I/O poll does what is needed: one byte written to one end of a loopback
 * pair and read from the other, about 50 µs, during which every socket that is ready is
 * served. The pair is opened on first use; where it cannot be (no network permission), a
 * timer stands in.
 *
 * ```ts
 * import { eventLoopTurn } from "./turn.ts";
 * await eventLoopTurn(); // pending reads, accepts, timers and signals have been handled
 * ```
 *
 * @module
 */

interface Pair {
  writer: Deno.Conn;
  reader: Deno.Conn;
}

const ONE = new Uint8Array([1]);
const sink = new Uint8Array(64);

let pair: Promise<Pair | undefined> | undefined;
let inFlight: Promise<void> | undefined;

async function openPair(): Promise<Pair | undefined> {
  try {
    const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    try {
      const accepted = listener.accept();
      const writer = await Deno.connect({
        hostname: "127.0.0.1",
        port: (listener.addr as Deno.NetAddr).port,
      });
      const reader = await accepted;
      writer.setNoDelay(true);
      return { writer, reader };
    } finally {
      listener.close();
    }
  } catch {
    return undefined;
  }
}

async function turn(): Promise<void> {
  pair ??= openPair();
  const conns = await pair;
  try {
    if (conns === undefined) throw new Error("no loopback pair");
    await conns.writer.write(ONE);
    await conns.reader.read(sink);
  } catch {
    pair = undefined;
    await new Promise((resolve) => setTimeout(resolve, 0));
  }
}

/**
 * Resolves after the event loop has polled for I/O and run what was ready. Concurrent
 * callers share one turn.
 */
export function eventLoopTurn(): Promise<void> {
  inFlight ??= turn().finally(() => inFlight = undefined);
  return inFlight;
}

/** Closes the loopback pair (tests check that nothing is left open). */
export async function closeEventLoopTurn(): Promise<void> {
  const conns = await pair;
  pair = undefined;
  if (conns === undefined) return;
  for (const conn of [conns.writer, conns.reader]) {
    try {
      conn.close();
    } catch {
      // already closed
    }
  }
}
