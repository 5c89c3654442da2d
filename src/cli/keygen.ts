/**
 * `lomq keygen [--json] [--out NAME]`: a new CURVE key pair, as libzmq's `curve_keygen`
 * prints it, or written to NAME.key (the secret, mode 0600) and NAME.pub.
 *
 * @module
 */

import { curveKeyPair, loadCurve, z85Encode } from "../zmtp/mod.ts";
import { type CommandModule, flag, type OptionSpec, runCommand, UsageError } from "./args.ts";

/** Help text for `lomq keygen`. */
export const KEYGEN_HELP = `Usage: lomq keygen [--json] [--out NAME]

Makes a new CURVE key pair (Z85, 40 characters each) for lomq serve
--curve-secret-file, lomq call --server-key, or any libzmq peer.

Options:
      --json       print {"public": "...", "secret": "..."}
  -o, --out NAME   write the secret key to NAME.key (mode 0600) and the public
                   key to NAME.pub, and print the public key; refuses to
                   overwrite an existing file
  -h, --help       show this help

Examples:
  lomq keygen --out server         server.key stays with the server; give server.pub out
  lomq keygen --out alice          a client's fixed identity: add alice.pub to the
                                   server's --curve-allow-file
  lomq keygen --json

Exit codes: 0 done, 1 a file could not be written, 2 usage error.`;

const SPECS: OptionSpec[] = [
  { name: "json", takesValue: false },
  { name: "out", short: "o", takesValue: true },
];

const encoder = new TextEncoder();

/** Runs `lomq keygen`; returns the exit code. */
export function keygen(args: string[]): Promise<number> {
  return runCommand({ name: "keygen", help: KEYGEN_HELP, specs: SPECS }, args, async (parsed) => {
    if (parsed.positionals.length > 0) {
      throw new UsageError(`unexpected argument '${parsed.positionals[0]}'`);
    }
    await loadCurve();
    const pair = curveKeyPair();
    const publicKey = z85Encode(pair.publicKey);
    const secretKey = z85Encode(pair.secretKey);
    const out = parsed.options.get("out");
    if (typeof out === "string") {
      try {
        // createNew: never replace a key someone relies on.
        await Deno.writeFile(`${out}.key`, encoder.encode(secretKey + "\n"), {
          mode: 0o600,
          createNew: true,
        });
        await Deno.writeFile(`${out}.pub`, encoder.encode(publicKey + "\n"), { createNew: true });
      } catch (error) {
        console.error(
          `lomq keygen: cannot write ${out}.key / ${out}.pub: ${(error as Error).message}`,
        );
        return 1;
      }
    }
    if (flag(parsed, "json")) console.log(JSON.stringify({ public: publicKey, secret: secretKey }));
    else if (typeof out === "string") console.log(publicKey);
    else console.log(`public: ${publicKey}\nsecret: ${secretKey}`);
    return 0;
  });
}

/** `lomq keygen`, for the command table. */
export const COMMAND: CommandModule = { help: KEYGEN_HELP, main: keygen };
