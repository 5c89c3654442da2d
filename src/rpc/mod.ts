/**
 * lomq's RPC layer: the LuaOverMQ wire format (requests, replies, envelopes, call ids) and
 * the serve loop of REP and ROUTER sockets, apart from the ZMTP layer below and the Lua
 * handler above.
 *
 * ```ts
 * import { parseReply, requestFrames, RpcServer } from "./mod.ts";
 * ```
 *
 * @module
 */

export * from "./wire.ts";
export * from "./server.ts";
