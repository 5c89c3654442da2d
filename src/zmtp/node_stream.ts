/**
 * The byte transport under Node.js, where there is no `Deno` global: a `node:net` socket
 * behind the few members of `Deno.Conn` a ZMTP connection uses (read, write, close,
 * remoteAddr). Everything above the bytes (greeting, frames, heartbeats, sockets) is the
 * same code under both runtimes; only `dial` picks this when Deno is absent.
 *
 * `node:net` is imported when the first connection is dialed, so Deno never loads it and
 * a bundle of the client keeps it as an import for Node to resolve.
 *
 * @module
 */

import type { Socket as NetSocket } from "node:net";
import type { Endpoint } from "./endpoint.ts";

/** What a ZMTP connection needs of its byte stream: the parts of `Deno.Conn` it calls. */
export type Stream = Pick<Deno.Conn, "read" | "write" | "close" | "remoteAddr">;

/** Node's error codes that mean the peer or the network ended the connection. */
const ENDED_CODES: Readonly<Record<string, string>> = {
  ECONNRESET: "connection reset by peer",
  EPIPE: "broken pipe (peer closed the connection)",
  ECONNABORTED: "connection aborted",
  ETIMEDOUT: "connection timed out",
  ENOTCONN: "not connected",
  ERR_STREAM_DESTROYED: "connection closed",
  ERR_STREAM_WRITE_AFTER_END: "connection closed",
};

function codeOf(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === "string" ? code : undefined;
}

/** Whether a Node.js I/O error means the connection ended (as opposed to a local fault). */
export function isNodeTransportError(err: unknown): boolean {
  const code = codeOf(err);
  return code !== undefined && code in ENDED_CODES;
}

/** Human-readable reason for a Node.js I/O failure. */
export function describeNodeIoError(err: unknown): string {
  const known = ENDED_CODES[codeOf(err) ?? ""];
  if (known !== undefined) return known;
  return err instanceof Error ? err.message : String(err);
}

/**
 * Adapts a connected `net.Socket`. The socket stays in paused mode and is drained by
 * `read()`, so Node stops reading from the OS while nobody takes the bytes: a server that
 * floods a client that does not keep up fills Node's buffer of one high-water mark, not
 * memory.
 */
class NodeStream implements Stream {
  readonly remoteAddr: Deno.Addr;
  readonly #socket: NetSocket;
  #leftover: Uint8Array | null = null;
  #ended = false;
  #error: unknown = undefined;
  #wake: (() => void) | null = null;

  constructor(socket: NetSocket, remoteAddr: Deno.Addr) {
    this.#socket = socket;
    this.remoteAddr = remoteAddr;
    const wake = () => {
      const resolve = this.#wake;
      this.#wake = null;
      resolve?.();
    };
    socket.on("readable", wake);
    socket.on("end", () => {
      this.#ended = true;
      wake();
    });
    socket.on("close", () => {
      this.#ended = true;
      wake();
    });
    socket.on("error", (err) => {
      this.#error ??= err;
      wake();
    });
  }

  async read(buffer: Uint8Array): Promise<number | null> {
    for (;;) {
      const chunk = this.#leftover ?? this.#socket.read() as Uint8Array | null;
      this.#leftover = null;
      if (chunk !== null && chunk.length > 0) {
        const n = Math.min(chunk.length, buffer.length);
        buffer.set(n === chunk.length ? chunk : chunk.subarray(0, n));
        if (n < chunk.length) this.#leftover = chunk.subarray(n);
        return n;
      }
      if (this.#error !== undefined) throw this.#error;
      if (this.#ended) return null;
      await new Promise<void>((resolve) => this.#wake = resolve);
    }
  }

  /**
   * Resolves once Node has handed the bytes to the OS: the caller reuses its buffer after
   * that, and Node keeps a reference to it until then.
   */
  write(bytes: Uint8Array): Promise<number> {
    return new Promise<number>((resolve, reject) => {
      try {
        this.#socket.write(bytes, (err) => err ? reject(err) : resolve(bytes.length));
      } catch (err) {
        reject(err);
      }
    });
  }

  close(): void {
    this.#socket.destroy();
  }
}

/** Connects with `node:net` (Nagle off for TCP); rejects with Node's error on failure. */
export async function dialNode(endpoint: Endpoint, signal?: AbortSignal): Promise<Stream> {
  const net = await import("node:net");
  signal?.throwIfAborted();
  const socket = endpoint.transport === "ipc"
    ? net.createConnection({ path: endpoint.path })
    : net.createConnection({ host: endpoint.host, port: endpoint.port, noDelay: true });
  // Paused from the start: bytes wait in Node's buffer until the connection reads them.
  socket.pause();
  await new Promise<void>((resolve, reject) => {
    const fail = (err: unknown) => {
      cleanup();
      socket.destroy();
      reject(err);
    };
    const onAbort = () => fail(signal?.reason);
    const onConnect = () => {
      cleanup();
      resolve();
    };
    const cleanup = () => {
      socket.off("error", fail);
      socket.off("connect", onConnect);
      signal?.removeEventListener("abort", onAbort);
    };
    socket.once("error", fail);
    socket.once("connect", onConnect);
    signal?.addEventListener("abort", onAbort, { once: true });
  });
  const remoteAddr: Deno.Addr = endpoint.transport === "ipc"
    ? { transport: "unix", path: endpoint.path }
    : { transport: "tcp", hostname: socket.remoteAddress ?? endpoint.host, port: endpoint.port };
  return new NodeStream(socket, remoteAddr);
}
