/**
 * lomq's client libraries: call a lomq (or LuaOverMQ) server and subscribe to what it
 * publishes, from Deno or any TypeScript runtime Deno can host.
 *
 * ```ts
 * import { Client, Float, RpcError, Subscriber } from "./mod.ts";
 *
 * await using client = new Client("tcp://127.0.0.1:8004", { timeoutMs: 1000 });
 * const sum = await client.call("add", 1, 2);                          // 3
 * const exact = await client.call("echo", 9007199254740993n);          // a bigint
 * await client.call("echo", new Float(100));                           // sent as 100.0
 * const results = await Promise.all([1, 2, 3].map((n) => client.call("add", n, n)));
 *
 * for await (const { topic, value } of new Subscriber("tcp://127.0.0.1:8005", ["quotes."])) {
 *   console.log(topic, value);
 * }
 * ```
 *
 * @module
 */

export {
  type CallOptions,
  Client,
  ClientClosedError,
  type ClientOptions,
  DEFAULT_RPC_URI,
  DEFAULT_TIMEOUT_MS,
  type RawReply,
  RpcError,
  RpcHandshakeError,
  RpcTimeoutError,
} from "./src/client/client.ts";
export {
  DEFAULT_PUB_URI,
  type Publication,
  Subscriber,
  type SubscriberOptions,
} from "./src/client/subscriber.ts";
export { createDecoder, encode, EncodeError, Float, type MapMode } from "./src/client/msgpack.ts";
export {
  type FunctionInfo,
  FUNCTIONS_METHOD,
  type FunctionsPage,
  IntrospectionReplyError,
} from "./src/rpc/introspection.ts";
export type { SocketOptions } from "./src/zmtp/options.ts";
