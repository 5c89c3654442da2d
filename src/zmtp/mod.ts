/**
 * lomq's ZeroMQ layer: ZMTP 3.1 in TypeScript over Deno TCP and Unix sockets, interoperable
 * with libzmq peers.
 *
 * ```ts
 * const rep = createSocket("REP");
 * await rep.bind("tcp://127.0.0.1:5555");
 * while (await rep.readable()) {
 *   const request = rep.tryRecv();
 *   if (request) rep.trySend([new TextEncoder().encode("ok")]);
 * }
 * ```
 *
 * @module
 */

import { DealerSocket } from "./dealer.ts";
import { EINVAL, ZmqError } from "./errors.ts";
import type { SocketOptions } from "./options.ts";
import { PubSocket } from "./pub.ts";
import { PullSocket } from "./pull.ts";
import { PushSocket } from "./push.ts";
import { RepSocket } from "./rep.ts";
import { ReqSocket } from "./req.ts";
import { RouterSocket } from "./router.ts";
import type { Socket } from "./socket.ts";
import { SubSocket } from "./sub.ts";
import type { SocketType } from "./types.ts";

export { Socket } from "./socket.ts";
export { DealerSocket } from "./dealer.ts";
export { PubSocket } from "./pub.ts";
export { PullSocket } from "./pull.ts";
export { PushSocket } from "./push.ts";
export { RepSocket } from "./rep.ts";
export { ReqSocket } from "./req.ts";
export { RouterSocket } from "./router.ts";
export { SubSocket } from "./sub.ts";
export type { Frames, SocketType } from "./types.ts";
export type { SocketOptions } from "./options.ts";
export { DEFAULT_OPTIONS, MAX_SUBSCRIPTION_BYTES } from "./options.ts";
export { formatEndpoint, parseEndpoint } from "./endpoint.ts";
export type { Endpoint, IpcEndpoint, TcpEndpoint } from "./endpoint.ts";
export { MAX_FRAMES_PER_MESSAGE } from "./frame.ts";
export { recycle } from "./arena.ts";
export type { CurveKey, SecurityOptions } from "./security.ts";
export { curveSocketOptions, decodeCurveKey, readSecretKeyFile } from "./security.ts";
export type { CurveClientOptions } from "./security.ts";
export { curveKeyPair, curvePublicKey, loadCurve } from "./curve.ts";
export type { CurveKeyPair } from "./curve.ts";
export { z85Decode, z85Encode } from "./z85.ts";
export {
  EACCES,
  EADDRINUSE,
  EADDRNOTAVAIL,
  EAGAIN,
  ECONNREFUSED,
  EFSM,
  EHOSTUNREACH,
  EINVAL,
  EMSGSIZE,
  ENOENT,
  ENOTSUP,
  EPROTONOSUPPORT,
  errnoName,
  ETERM,
  ETIMEDOUT,
  ZmqError,
} from "./errors.ts";

/** Every socket type createSocket accepts. */
export const SOCKET_TYPES: readonly SocketType[] = [
  "PUB",
  "SUB",
  "REQ",
  "REP",
  "DEALER",
  "ROUTER",
  "PULL",
  "PUSH",
];

/**
 * Creates a socket of the given type. Throws ZmqError(EINVAL) for an unknown type or a bad
 * option value.
 */
export function createSocket(type: SocketType, options?: SocketOptions): Socket {
  switch (type) {
    case "REP":
      return new RepSocket(options);
    case "PUB":
      return new PubSocket(options);
    case "SUB":
      return new SubSocket(options);
    case "REQ":
      return new ReqSocket(options);
    case "DEALER":
      return new DealerSocket(options);
    case "ROUTER":
      return new RouterSocket(options);
    case "PUSH":
      return new PushSocket(options);
    case "PULL":
      return new PullSocket(options);
    default:
      throw new ZmqError(EINVAL, `unknown or unsupported socket type '${String(type)}'`);
  }
}
