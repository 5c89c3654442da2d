/**
 * Parsing and formatting of ZeroMQ endpoints: `tcp://HOST:PORT` and `ipc://PATH`.
 *
 * @module
 */

import { EINVAL, EPROTONOSUPPORT, ZmqError } from "./errors.ts";

/** A TCP endpoint. `host` is without brackets; "*" means every interface. */
export interface TcpEndpoint {
  /** Transport. */
  transport: "tcp";
  /** Host name, IPv4 literal, IPv6 literal (no brackets), or "*". */
  host: string;
  /** Port; 0 asks the OS for an ephemeral port (bind only). */
  port: number;
}

/** A Unix domain socket endpoint. */
export interface IpcEndpoint {
  /** Transport. */
  transport: "ipc";
  /** Filesystem path; "*" asks for a fresh temporary path (bind only). */
  path: string;
}

/** A parsed endpoint. */
export type Endpoint = TcpEndpoint | IpcEndpoint;

function invalid(text: string, why?: string): ZmqError {
  const detail = why === undefined ? "" : ` (${why})`;
  return new ZmqError(
    EINVAL,
    `invalid endpoint '${text}': expected tcp://host:port or ipc://path${detail}`,
  );
}

const IPV4 = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/;
const IPV6 = /^[0-9A-Fa-f:.]+(%[0-9A-Za-z_.-]+)?$/;
const HOSTNAME = /^[A-Za-z0-9_]([A-Za-z0-9_.-]*[A-Za-z0-9_])?$/;

/** True for an IPv6 literal (without brackets). */
export function isIpv6(host: string): boolean {
  return host.includes(":");
}

/**
 * Parses an endpoint. `*` is accepted as the host (every interface) and as the port (an
 * ephemeral port, like port 0); whether they make sense is checked by bind/connect.
 * Throws ZmqError(EINVAL) with a message naming the endpoint when it is malformed.
 */
export function parseEndpoint(text: string): Endpoint {
  if (typeof text !== "string") throw invalid(String(text));
  const sep = text.indexOf("://");
  if (sep < 0) throw invalid(text);
  const scheme = text.slice(0, sep).toLowerCase();
  const rest = text.slice(sep + 3);
  if (scheme === "ipc") {
    if (rest === "") throw invalid(text, "empty path");
    if (rest.startsWith("@")) throw invalid(text, "abstract ipc names are not supported");
    return { transport: "ipc", path: rest };
  }
  if (scheme !== "tcp") {
    throw new ZmqError(
      EPROTONOSUPPORT,
      `invalid endpoint '${text}': transport '${scheme}' is not supported ` +
        "(expected tcp://host:port or ipc://path)",
    );
  }
  const colon = rest.lastIndexOf(":");
  if (colon < 0) throw invalid(text, "missing port");
  let host = rest.slice(0, colon);
  const portText = rest.slice(colon + 1);
  let port: number;
  if (portText === "*") {
    port = 0;
  } else if (/^\d{1,5}$/.test(portText) && Number(portText) <= 65535) {
    port = Number(portText);
  } else {
    throw invalid(text, `bad port '${portText}'`);
  }
  if (host.startsWith("[")) {
    if (!host.endsWith("]")) throw invalid(text, "unclosed '['");
    host = host.slice(1, -1);
    if (!isIpv6(host) || !IPV6.test(host)) throw invalid(text, `bad IPv6 address '${host}'`);
  } else if (host === "*") {
    // every interface
  } else if (isIpv6(host)) {
    throw invalid(text, "an IPv6 address needs brackets, e.g. tcp://[::1]:5555");
  } else if (IPV4.test(host)) {
    const octets = IPV4.exec(host)!.slice(1).map(Number);
    if (octets.some((o) => o > 255)) throw invalid(text, `bad IPv4 address '${host}'`);
  } else if (!HOSTNAME.test(host)) {
    throw invalid(text, host === "" ? "missing host" : `bad host '${host}'`);
  }
  return { transport: "tcp", host, port };
}

/** Formats an endpoint the way libzmq reports it (IPv6 hosts in brackets). */
export function formatEndpoint(endpoint: Endpoint): string {
  if (endpoint.transport === "ipc") return `ipc://${endpoint.path}`;
  const host = isIpv6(endpoint.host) ? `[${endpoint.host}]` : endpoint.host;
  return `tcp://${host}:${endpoint.port}`;
}
