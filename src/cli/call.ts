/**
 * `lomq call [--uri URI] [--timeout MS] [--msgpack-hex] METHOD [ARG...]`: one RPC call
 * from the shell, the result printed as JSON.
 *
 * @module
 */

import { Client, DEFAULT_RPC_URI, RpcHandshakeError, RpcTimeoutError } from "../client/client.ts";
import { EncodeError } from "../client/msgpack.ts";
import { ZmqError } from "../zmtp/mod.ts";
import {
  type CommandModule,
  flag,
  numberOption,
  type OptionSpec,
  type ParsedArgs,
  runCommand,
  stringOption,
  UsageError,
} from "./args.ts";
import { CURVE_CLIENT_HELP, CURVE_CLIENT_SPECS, curveClientSocketOptions } from "./security.ts";
import { decodeTagged, MalformedError, parseArgument, taggedToJson, toHex } from "./json.ts";

/** Exit code: the server answered ERROR. */
export const EXIT_SERVER_ERROR = 1;
/** Exit code: no reply in time, or no connection. */
export const EXIT_UNREACHABLE = 3;

const DEFAULT_CALL_TIMEOUT_MS = 5000;

/** Help text for `lomq call`. */
export const CALL_HELP =
  `Usage: lomq call [--uri URI] [--timeout MS] [--msgpack-hex] [--server-key Z85]
                 METHOD [ARG...]

Calls METHOD(ARG...) on a lomq or LuaOverMQ server and prints the result as JSON.

Each ARG is JSON: 1 is an integer, 1.0 a float, "text" or a bare word a string,
[1, 2] an array, {"a": 1} a map. Binary is {"$bin": "<base64>"}. Put -- before
arguments that start with a dash but are not numbers. A number is sent as written
or refused: an integer beyond 64 bits, or a float beyond float64 (1E400 would be
Infinity; write {"$float": "Infinity"} to mean it) is a usage error.

The result prints as one line of JSON. Integers are exact (also beyond 2^53),
floats show a decimal point (100.0), binary prints as {"$bin": "<base64>"}.

Options:
  -u, --uri URI        the server's RPC endpoint (default ${DEFAULT_RPC_URI})
  -t, --timeout MS     how long to wait for the reply (default ${DEFAULT_CALL_TIMEOUT_MS})
      --msgpack-hex    print the reply's raw msgpack payload as hex instead of JSON
${CURVE_CLIENT_HELP}
  -h, --help           show this help

Examples:
  lomq call add 1 2                               # prints 3
  lomq call echo 1.0 word '[1, {"a": true}]'      # prints [1.0,"word",[1,{"a":true}]]
  lomq call echo 9007199254740993 '{"$bin": "AP8="}'
  lomq call --uri tcp://10.0.0.5:8004 --timeout 500 status
  lomq call --msgpack-hex add 1 2                 # prints 03
  lomq call --server-key "$(cat server.pub)" add 1 2

Exit codes: 0 the call returned, 1 the server answered ERROR (its message on
stderr), 2 usage error, 3 no reply in time or no connection to the server.`;

/** The options of every command that calls a server: `--uri` and `--timeout`. */
export const CLIENT_SPECS: readonly OptionSpec[] = [
  { name: "uri", short: "u", takesValue: true },
  { name: "timeout", short: "t", takesValue: true },
  ...CURVE_CLIENT_SPECS,
];

const SPECS: OptionSpec[] = [...CLIENT_SPECS, { name: "msgpack-hex", takesValue: false }];

/**
 * A client for `--uri` (default {@linkcode DEFAULT_RPC_URI}) with `--timeout` (default
 * `defaultTimeoutMs`); a malformed endpoint is a {@linkcode UsageError}.
 */
export function clientFromOptions(
  parsed: ParsedArgs,
  defaultTimeoutMs: number,
): { uri: string; client: Client } {
  const uri = stringOption(parsed, "uri", DEFAULT_RPC_URI);
  const timeoutMs = numberOption(parsed, "timeout", { min: 1, max: 0x7fff_ffff }) ??
    defaultTimeoutMs;
  try {
    return {
      uri,
      // One call and out: a refusal ends it at once rather than after the retries' timeout.
      client: new Client(uri, {
        timeoutMs,
        socket: curveClientSocketOptions(parsed),
        failOnHandshakeError: true,
      }),
    };
  } catch (error) {
    if (error instanceof ZmqError) throw new UsageError(error.message);
    throw error;
  }
}

/** Runs `lomq call`; returns the exit code. */
export function call(args: string[]): Promise<number> {
  return runCommand({ name: "call", help: CALL_HELP, specs: SPECS }, args, async (parsed) => {
    const [method, ...rawArgs] = parsed.positionals;
    if (method === undefined) throw new UsageError("missing the METHOD to call");
    const callArgs = rawArgs.map(parseArgument);
    const { client } = clientFromOptions(parsed, DEFAULT_CALL_TIMEOUT_MS);
    try {
      const reply = await client.request(method, callArgs);
      if (!reply.ok) {
        console.error(`ERROR: ${errorText(reply.payload)}`);
        return EXIT_SERVER_ERROR;
      }
      if (flag(parsed, "msgpack-hex")) {
        console.log(toHex(reply.payload));
        return 0;
      }
      try {
        console.log(taggedToJson(decodeTagged(reply.payload)));
      } catch (error) {
        if (!(error instanceof MalformedError)) throw error;
        console.error(
          `lomq call: the reply is not valid msgpack (${error.message}); raw: ${
            toHex(reply.payload)
          }`,
        );
        return EXIT_SERVER_ERROR;
      }
      return 0;
    } catch (error) {
      if (error instanceof RpcTimeoutError || error instanceof RpcHandshakeError) {
        console.error(`lomq call: ${error.message}`);
        return EXIT_UNREACHABLE;
      }
      if (error instanceof EncodeError) throw new UsageError(error.message);
      throw error;
    } finally {
      await client.close();
    }
  });
}

/** The server's error value as one line: the message itself when it is a string. */
function errorText(payload: Uint8Array): string {
  try {
    const value = decodeTagged(payload);
    return value.type === "str" ? value.value : taggedToJson(value);
  } catch {
    return `(undecodable error payload ${toHex(payload)})`;
  }
}

/** `lomq call`, for the command table. */
export const COMMAND: CommandModule = { help: CALL_HELP, main: call };
