/**
 * `lomq ls [--uri URI] [--json] [--timeout MS]`: the functions a server lets clients call,
 * from the reserved method `lomq.functions` (see src/rpc/introspection.ts).
 *
 * @module
 */

import { DEFAULT_RPC_URI, RpcError, RpcHandshakeError, RpcTimeoutError } from "../client/client.ts";
import {
  type FunctionInfo,
  FUNCTIONS_METHOD,
  IntrospectionReplyError,
} from "../rpc/introspection.ts";
import { type CommandModule, flag, type OptionSpec, runCommand, UsageError } from "./args.ts";
import { CLIENT_SPECS, clientFromOptions, EXIT_SERVER_ERROR, EXIT_UNREACHABLE } from "./call.ts";
import { encodeBase64 } from "./json.ts";
import { CURVE_CLIENT_HELP } from "./security.ts";

const DEFAULT_LS_TIMEOUT_MS = 5000;

/** Help text for `lomq ls`. */
export const LS_HELP = `Usage: lomq ls [--uri URI] [--json] [--timeout MS] [--server-key Z85]

Lists the functions a lomq server lets clients call, one a line, with their
parameters: add(a, b), log(fmt, ...). It asks the server with the reserved
method ${FUNCTIONS_METHOD}, which answers what LuaOverMQ.expose and lomq serve
--expose allow, never the standard library, main, OnInit or OnStop.

A name that could disturb the terminal (control characters, spaces, quotes)
prints as a JSON string, "evil\\u001b[31m"(x); one that is not UTF-8 as
{"$bin": "<base64>"}.

Options:
  -u, --uri URI        the server's RPC endpoint (default ${DEFAULT_RPC_URI})
  -t, --timeout MS     how long to wait for each reply (default ${DEFAULT_LS_TIMEOUT_MS})
      --json           print one JSON array of {"name", "params", "vararg"}
${CURVE_CLIENT_HELP}
  -h, --help           show this help

Examples:
  lomq ls                                   # add(a, b) ...
  lomq ls --json                            # [{"name":"add","params":["a","b"],"vararg":false}]
  lomq ls --uri tcp://10.0.0.5:8004

Exit codes: 0 listed, 1 the server has no introspection (the original LuaOverMQ
and older lomq answer ERROR) or answered something else, 2 usage error, 3 no
reply in time or no connection to the server.`;

const SPECS: OptionSpec[] = [...CLIENT_SPECS, { name: "json", takesValue: false }];

/** Runs `lomq ls`; returns the exit code. */
export function ls(args: string[]): Promise<number> {
  return runCommand({ name: "ls", help: LS_HELP, specs: SPECS }, args, async (parsed) => {
    if (parsed.positionals.length > 0) {
      throw new UsageError(`unexpected argument '${parsed.positionals[0]}'`);
    }
    const { uri, client } = clientFromOptions(parsed, DEFAULT_LS_TIMEOUT_MS);
    try {
      const functions = await client.functions();
      if (flag(parsed, "json")) console.log(functionsToJson(functions));
      else if (functions.length === 0) console.error(`lomq ls: ${uri} offers no functions`);
      else console.log(functions.map(signature).join("\n"));
      return 0;
    } catch (error) {
      if (error instanceof RpcTimeoutError || error instanceof RpcHandshakeError) {
        console.error(`lomq ls: ${error.message}`);
        return EXIT_UNREACHABLE;
      }
      if (error instanceof RpcError) {
        console.error(
          `lomq ls: the server at ${uri} does not support introspection: it answered ` +
            `${FUNCTIONS_METHOD} with ERROR ${safeText(error.message)} (neither the ` +
            `original LuaOverMQ nor older lomq servers have it; lomq call METHOD still works)`,
        );
        return EXIT_SERVER_ERROR;
      }
      if (error instanceof IntrospectionReplyError) {
        console.error(`lomq ls: ${uri}: ${error.message}`);
        return EXIT_SERVER_ERROR;
      }
      throw error;
    } finally {
      await client.close();
    }
  });
}

/** `add(a, b)`, `log(fmt, ...)`: how a function is called, safe to print. */
export function signature(info: FunctionInfo): string {
  const params = info.params.map(safeName);
  if (info.vararg) params.push("...");
  return `${safeName(info.name)}(${params.join(", ")})`;
}

/**
 * Characters that would act on a terminal or hide what is printed: C0 and C1 controls,
 * DEL, and Unicode's invisible format characters (zero-width, bidirectional overrides).
 */
const UNSAFE_CLASS =
  "[\\u0000-\\u001f\\u007f-\\u009f\\u00ad\\u061c\\u200b-\\u200f\\u2028-\\u202e\\u2060-\\u2069\\ufeff]";
const UNSAFE = new RegExp(UNSAFE_CLASS);
const UNSAFE_ALL = new RegExp(UNSAFE_CLASS, "g");
/** Also quoted so that a signature reads unambiguously. */
const NEEDS_QUOTES = /[\s"'(),\\]|^$/;

function escapeUnsafe(text: string): string {
  return text.replace(UNSAFE_ALL, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`);
}

/** A name as is when harmless, else as a JSON string; bytes as `{"$bin": ...}`. */
function safeName(name: string | Uint8Array): string {
  if (typeof name !== "string") return `{"$bin":${JSON.stringify(encodeBase64(name))}}`;
  if (!UNSAFE.test(name) && !NEEDS_QUOTES.test(name)) return name;
  return escapeUnsafe(JSON.stringify(name));
}

/** A server's message, quoted and with every control character escaped. */
function safeText(text: string): string {
  return escapeUnsafe(JSON.stringify(text));
}

/**
 * The `--json` form: one line, names that are not UTF-8 as `{"$bin": ...}`, and every
 * character a terminal could act on escaped (still valid JSON).
 */
export function functionsToJson(functions: readonly FunctionInfo[]): string {
  const plain = functions.map(({ name, params, vararg }) => ({
    name: typeof name === "string" ? name : { $bin: encodeBase64(name) },
    params,
    vararg,
  }));
  return escapeUnsafe(JSON.stringify(plain));
}

/** `lomq ls`, for the command table. */
export const COMMAND: CommandModule = { help: LS_HELP, main: ls };
