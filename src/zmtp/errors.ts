/**
 * Error numbers and the error class of the ZMTP layer.
 *
 * The numbers are Linux errno values (plus libzmq's own EFSM and ETERM) because the Lua API
 * hands them to scripts through `sock:errno()`, and scripts ported from libzmq compare them
 * with the numbers they know.
 *
 * @module
 */

/** Resource temporarily unavailable: the operation would block. */
export const EAGAIN = 11;
/** Permission denied (for instance a privileged port). */
export const EACCES = 13;
/** No such file or directory (an ipc path whose directory is missing). */
export const ENOENT = 2;
/** Invalid argument. */
export const EINVAL = 22;
/** Message too long. */
export const EMSGSIZE = 90;
/** Transport not supported (ipc on Windows). */
export const EPROTONOSUPPORT = 93;
/** Operation not supported by this socket type. */
export const ENOTSUP = 95;
/** Address already in use. */
export const EADDRINUSE = 98;
/** Address not available on this host. */
export const EADDRNOTAVAIL = 99;
/** Operation timed out. */
export const ETIMEDOUT = 110;
/** Connection refused. */
export const ECONNREFUSED = 111;
/** Host unreachable; also a ROUTER send to an unknown or gone peer. */
export const EHOSTUNREACH = 113;
/** Operation not valid in the socket's current state (libzmq's number). */
export const EFSM = 156384763;
/** The socket was closed (libzmq's number for a terminated context). */
export const ETERM = 156384765;

const NAMES: Readonly<Record<number, string>> = {
  [EAGAIN]: "EAGAIN",
  [EACCES]: "EACCES",
  [ENOENT]: "ENOENT",
  [EINVAL]: "EINVAL",
  [EMSGSIZE]: "EMSGSIZE",
  [EPROTONOSUPPORT]: "EPROTONOSUPPORT",
  [ENOTSUP]: "ENOTSUP",
  [EADDRINUSE]: "EADDRINUSE",
  [EADDRNOTAVAIL]: "EADDRNOTAVAIL",
  [ETIMEDOUT]: "ETIMEDOUT",
  [ECONNREFUSED]: "ECONNREFUSED",
  [EHOSTUNREACH]: "EHOSTUNREACH",
  [EFSM]: "EFSM",
  [ETERM]: "ETERM",
};

/** Returns the symbolic name of an errno ("EAGAIN"), or "E<number>" for unknown ones. */
export function errnoName(errno: number): string {
  return NAMES[errno] ?? `E${errno}`;
}

/** An error carrying an errno, thrown by bind/connect and by misuse of the API. */
export class ZmqError extends Error {
  /** Linux errno (or libzmq's EFSM/ETERM). */
  readonly errno: number;
  /** Symbolic name of {@linkcode ZmqError.errno}, e.g. "EADDRINUSE". */
  readonly code: string;

  /** Creates an error; `message` should name what failed and why, for a human. */
  constructor(errno: number, message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "ZmqError";
    this.errno = errno;
    this.code = errnoName(errno);
  }
}

/**
 * Turns a failure of `Deno.listen` into a ZmqError whose message names the address and gives
 * a reason a user can act on, instead of Deno's bare OS text.
 */
export function bindError(address: string, err: unknown): ZmqError {
  const [errno, reason] = describeBindFailure(err);
  return new ZmqError(errno, `cannot bind ${address}: ${reason}`, { cause: err });
}

function describeBindFailure(err: unknown): [number, string] {
  if (err instanceof ZmqError) return [err.errno, err.message];
  if (err instanceof Deno.errors.AddrInUse) {
    return [
      EADDRINUSE,
      "address already in use (another process is listening there; pick another port or stop it)",
    ];
  }
  if (err instanceof Deno.errors.AddrNotAvailable) {
    return [EADDRNOTAVAIL, "address not available (no local interface has this address)"];
  }
  if (err instanceof Deno.errors.NotCapable) {
    return [
      EACCES,
      "permission denied by Deno (run with --allow-net, and for ipc --allow-read --allow-write)",
    ];
  }
  if (err instanceof Deno.errors.PermissionDenied) {
    return [
      EACCES,
      "permission denied (ports below 1024 need privileges; for ipc check the directory's permissions)",
    ];
  }
  if (err instanceof Deno.errors.NotFound) {
    return [ENOENT, "no such file or directory (the ipc socket's directory must exist)"];
  }
  const text = err instanceof Error ? err.message : String(err);
  return [EINVAL, text];
}
