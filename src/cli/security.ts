/**
 * The command line's CURVE options, shared by the subcommands: `--server-key Z85` and
 * `--secret-key-file F` for clients (call, sub, bench), `--curve-secret-file F` and
 * `--curve-allow-file F` for `lomq serve`.
 *
 * @module
 */

import {
  type CurveClientOptions,
  curveSocketOptions,
  decodeCurveKey,
  readSecretKeyFile,
  type SecurityOptions,
} from "../zmtp/mod.ts";
import { type OptionSpec, type ParsedArgs, UsageError } from "./args.ts";

/** The options of a CURVE client. */
export const CURVE_CLIENT_SPECS: readonly OptionSpec[] = [
  { name: "server-key", short: "k", takesValue: true },
  { name: "secret-key-file", takesValue: true },
];

/** Their help lines. */
export const CURVE_CLIENT_HELP =
  `  -k, --server-key Z85 encrypt with CURVE, to the server with this public key
      --secret-key-file F  our fixed CURVE identity (a file from lomq keygen --out);
                       without it, an ephemeral key pair`;

/** The socket options `--server-key` and `--secret-key-file` ask for; UsageError when bad. */
export function curveClientSocketOptions(parsed: ParsedArgs): SecurityOptions {
  const serverKey = parsed.options.get("server-key");
  const secretFile = parsed.options.get("secret-key-file");
  if (typeof serverKey !== "string") {
    if (typeof secretFile === "string") {
      throw new UsageError("--secret-key-file needs --server-key (the server's public key)");
    }
    return {};
  }
  const curve: CurveClientOptions = { serverKey: checkedKey(serverKey, "--server-key") };
  if (typeof secretFile === "string") curve.secretKey = secretKeyFrom(secretFile);
  return curveSocketOptions(curve);
}

/** The options of a CURVE server. */
export const CURVE_SERVER_SPECS: readonly OptionSpec[] = [
  { name: "curve-secret-file", takesValue: true },
  { name: "curve-allow-file", takesValue: true },
];

/** Their help lines. */
export const CURVE_SERVER_HELP = `      --curve-secret-file F
                   encrypt with CURVE: the server's secret key (lomq keygen --out)
      --curve-allow-file F
                   only clients whose public key is in F (one a line) may connect;
                   re-read when it changes`;

/** The socket options of `--curve-secret-file` and `--curve-allow-file`; UsageError when bad. */
export function curveServerSocketOptions(parsed: ParsedArgs): SecurityOptions {
  const secretFile = parsed.options.get("curve-secret-file");
  const allowFile = parsed.options.get("curve-allow-file");
  if (typeof secretFile !== "string") {
    if (typeof allowFile === "string") {
      throw new UsageError("--curve-allow-file needs --curve-secret-file (the server's key)");
    }
    return {};
  }
  const options: SecurityOptions = { curveServer: true, curveSecretKey: secretKeyFrom(secretFile) };
  if (typeof allowFile === "string") {
    try {
      Deno.statSync(allowFile);
    } catch (error) {
      throw new UsageError(`cannot read the allow file ${allowFile}: ${(error as Error).message}`);
    }
    options.curveAllowFile = allowFile;
  }
  return options;
}

function checkedKey(text: string, what: string): string {
  try {
    decodeCurveKey(text, what);
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
  return text;
}

function secretKeyFrom(path: string): Uint8Array {
  try {
    return readSecretKeyFile(path);
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
}
