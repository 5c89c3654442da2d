/**
 * Opening listeners and outgoing connections for parsed endpoints, with errors a user can act
 * on. Under Deno the streams are `Deno.Conn`s; under Node.js (no `Deno` global: the client's
 * Node build) connections go through `node:net` (see node_stream.ts) and binding is refused.
 *
 * @module
 */

import { bindError, EINVAL, ENOTSUP, EPROTONOSUPPORT, ZmqError } from "./errors.ts";
import { type Endpoint, formatEndpoint } from "./endpoint.ts";
import { dialNode, type Stream } from "./node_stream.ts";

export type { Stream } from "./node_stream.ts";

/** Whether the Deno runtime is present; false under Node.js. */
export const onDeno: boolean = typeof Deno !== "undefined";

/** Whether the platform is Windows, under either runtime. */
export function onWindows(): boolean {
  if (onDeno) return Deno.build.os === "windows";
  return (globalThis as { process?: { platform?: string } }).process?.platform === "win32";
}

/** A listening endpoint. */
export interface Bound {
  /** The listener to accept from. */
  listener: Deno.Listener;
  /** The actual endpoint (port 0 and ipc://* resolved), as bind() reports it. */
  endpoint: string;
}

function assertIpcSupported(): void {
  if (onWindows()) {
    throw new ZmqError(
      EPROTONOSUPPORT,
      "ipc is not supported on Windows (use tcp://127.0.0.1:PORT instead)",
    );
  }
}

function tempIpcPath(): string {
  // Not $TMPDIR: on macOS it is long enough to overflow the 104-byte Unix socket path limit.
  return `/tmp/lomq-${Deno.pid}-${crypto.randomUUID().slice(0, 8)}.sock`;
}

/** Whether something accepts connections at a Unix socket path. */
async function ipcInUse(path: string): Promise<boolean> {
  try {
    const conn = await Deno.connect({ transport: "unix", path });
    conn.close();
    return true;
  } catch {
    return false;
  }
}

/** Listens on `endpoint`; throws ZmqError naming the address and the reason on failure. */
export async function listen(endpoint: Endpoint): Promise<Bound> {
  if (!onDeno) {
    throw new ZmqError(
      ENOTSUP,
      `cannot bind ${formatEndpoint(endpoint)}: binding needs Deno (the Node.js build of ` +
        "lomq's client only connects)",
    );
  }
  if (endpoint.transport === "ipc") {
    assertIpcSupported();
    const path = endpoint.path === "*" ? tempIpcPath() : endpoint.path;
    const address = `ipc://${path}`;
    try {
      return { listener: Deno.listen({ transport: "unix", path }), endpoint: address };
    } catch (err) {
      if (!(err instanceof Deno.errors.AddrInUse)) throw bindError(address, err);
      // A socket file left by a crashed process blocks bind forever; libzmq unlinks blindly,
      // which would steal the path from a live server, so remove it only when nobody answers.
      let isSocket = false;
      try {
        isSocket = Deno.lstatSync(path).isSocket === true;
      } catch {
        // vanished meanwhile: retry below
        isSocket = true;
      }
      if (!isSocket) {
        throw new ZmqError(
          EINVAL,
          `cannot bind ${address}: a file that is not a socket exists at that path`,
        );
      }
      if (await ipcInUse(path)) throw bindError(address, err);
      try {
        Deno.removeSync(path);
      } catch {
        // someone else removed it
      }
      try {
        return { listener: Deno.listen({ transport: "unix", path }), endpoint: address };
      } catch (again) {
        throw bindError(address, again);
      }
    }
  }
  const hostname = endpoint.host === "*" ? "0.0.0.0" : endpoint.host;
  const address = formatEndpoint({ transport: "tcp", host: hostname, port: endpoint.port });
  let listener: Deno.TcpListener;
  try {
    listener = Deno.listen({ hostname, port: endpoint.port });
  } catch (err) {
    throw bindError(address, err);
  }
  const addr = listener.addr;
  return {
    listener,
    endpoint: formatEndpoint({ transport: "tcp", host: addr.hostname, port: addr.port }),
  };
}

/** Opens a connection to `endpoint` (Nagle off for TCP). */
export async function dial(endpoint: Endpoint, signal?: AbortSignal): Promise<Stream> {
  if (!onDeno) return await dialNode(endpoint, signal);
  if (endpoint.transport === "ipc") {
    assertIpcSupported();
    return await Deno.connect({ transport: "unix", path: endpoint.path });
  }
  const conn = await Deno.connect({ hostname: endpoint.host, port: endpoint.port, signal });
  try {
    conn.setNoDelay(true);
  } catch {
    // Reset already; the connection will report it on the first read.
  }
  return conn;
}

/** Describes the remote end of an accepted or dialed connection, for diagnostics. */
export function describeRemote(conn: Stream): string {
  const addr = conn.remoteAddr;
  if (addr.transport === "tcp" || addr.transport === "udp") {
    const host = addr.hostname.includes(":") ? `[${addr.hostname}]` : addr.hostname;
    return `tcp://${host}:${addr.port}`;
  }
  if (addr.transport === "unix" || addr.transport === "unixpacket") {
    return `ipc://${addr.path || "(unnamed)"}`;
  }
  return addr.transport;
}

/** Disables Nagle on accepted TCP connections (small replies must not wait 40 ms). */
export function tuneAccepted(conn: Deno.Conn): void {
  const tcp = conn as Partial<Deno.TcpConn>;
  if (conn.remoteAddr.transport === "tcp" && typeof tcp.setNoDelay === "function") {
    try {
      tcp.setNoDelay(true);
    } catch {
      // the connection may already be gone
    }
  }
}
