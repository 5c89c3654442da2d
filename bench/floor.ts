/**
 * The floor under lomq in the peers harness (`deno`): Deno's TCP and lomq's frame codec,
 * and nothing else. No sockets layer, no Lua, no msgpack. It answers cload's calls with
 * fixed bytes (`add`: 3; `echo`: its argument as it came), all replies to one read in one
 * write, as lomq's ROUTER does. What lomq costs above this server is lomq's own serving
 * path; what this server lacks against csrv is the price of Deno's I/O.
 *
 * It speaks just enough ZMTP 3.1 for cload (NULL mechanism, no heartbeats) and trusts its
 * peer: a benchmark tool, never a server.
 *
 * usage: deno run --allow-net bench/floor.ts tcp://127.0.0.1:PORT
 *
 * @module
 */

import {
  ascii,
  concat,
  EMPTY,
  encodeMessage,
  encodeReady,
  FLAG_COMMAND,
  FLAG_MORE,
  FrameReader,
} from "../src/zmtp/frame.ts";
import { buildGreeting, GREETING_SIZE } from "../src/zmtp/greeting.ts";
import { type Endpoint, parseEndpoint } from "../src/zmtp/endpoint.ts";

const MAX_MESSAGE_SIZE = 64 * 1024 * 1024;
const STATUS_OK = ascii("OK");
/** msgpack 3, what `add(1, 2)` returns. */
const THREE = new Uint8Array([0x03]);
/** msgpack `["echo", x]` starts with these bytes; x follows. */
const ECHO_CALL = new Uint8Array([0x92, 0xa4, ...ascii("echo")]);

function isEcho(body: Uint8Array): boolean {
  if (body.length < ECHO_CALL.length) return false;
  for (let i = 0; i < ECHO_CALL.length; i++) if (body[i] !== ECHO_CALL[i]) return false;
  return true;
}

/** The reply frames to a request body: `[delimiter, OK, result]`. */
function replyTo(body: Uint8Array): Uint8Array {
  const result = isEcho(body) ? body.subarray(ECHO_CALL.length) : THREE;
  return encodeMessage([EMPTY, STATUS_OK, result]);
}

async function writeAll(conn: Deno.Conn, data: Uint8Array): Promise<void> {
  for (let at = 0; at < data.length;) at += await conn.write(data.subarray(at));
}

async function serve(conn: Deno.TcpConn): Promise<void> {
  conn.setNoDelay(true);
  await writeAll(conn, buildGreeting("NULL", false));
  await writeAll(conn, encodeReady([["Socket-Type", ascii("ROUTER")]]));
  const reader = new FrameReader(MAX_MESSAGE_SIZE);
  let greeting = GREETING_SIZE;
  const replies: Uint8Array[] = [];
  for (;;) {
    const target = reader.target();
    const n = await conn.read(target);
    if (n === null) return;
    reader.commit(n);
    if (greeting > 0) {
      const skipped = Math.min(greeting, reader.available().length);
      reader.skip(skipped);
      greeting -= skipped;
      if (greeting > 0) continue;
    }
    while (reader.next()) {
      if ((reader.flags & FLAG_COMMAND) !== 0) continue; // READY, PING: nothing to answer
      if ((reader.flags & FLAG_MORE) === 0) replies.push(replyTo(reader.body));
    }
    if (replies.length > 0) {
      const out = replies.length === 1 ? replies[0] : concat(...replies);
      replies.length = 0;
      await writeAll(conn, out);
    }
  }
}

if (import.meta.main) {
  let endpoint: Endpoint | undefined;
  try {
    endpoint = parseEndpoint(Deno.args[0] ?? "");
  } catch {
    // reported below
  }
  if (endpoint?.transport !== "tcp") {
    console.error("usage: deno run --allow-net bench/floor.ts tcp://HOST:PORT");
    Deno.exit(2);
  }
  const listener = Deno.listen({ hostname: endpoint.host, port: endpoint.port });
  for await (const conn of listener) serve(conn).catch(() => conn.close());
}
