/**
 * Security options of a socket (libzmq's CURVE and PLAIN options), the files they name, and
 * the choice of a connection's mechanism from them.
 *
 * Files named by options (allow-lists, PLAIN users) are looked at on every handshake and read
 * again when they changed, so an edit applies to the next client without a restart; a line
 * that does not parse is logged and skipped.
 *
 * @module
 */

import { log } from "../log.ts";
import {
  type CurveAllowList,
  CurveClient,
  curveKeyPair,
  curvePublicKey,
  CurveServer,
} from "./curve.ts";
import { EINVAL, ZmqError } from "./errors.ts";
import { type Mechanism, NullMechanism } from "./mechanism.ts";
import { PlainClient, PlainServer, type PlainUsers } from "./plain.ts";
import { z85Decode, z85Encode } from "./z85.ts";

/** A CURVE key: 40 characters of Z85, or the 32 raw bytes (40 bytes are taken as Z85 text). */
export type CurveKey = string | Uint8Array;

/** The security options of a socket, by libzmq's names (ZMQ_CURVE_SERVER is curveServer). */
export interface SecurityOptions {
  /** Be the CURVE server of every connection (needs curveSecretKey). */
  curveServer?: boolean;
  /** Our long-term secret key: the server's, or a client's fixed identity. */
  curveSecretKey?: CurveKey;
  /** Our long-term public key; derived from curveSecretKey when not given. */
  curvePublicKey?: CurveKey;
  /**
   * Be a CURVE client of the server with this public key. Without curveSecretKey the socket
   * gets an ephemeral key pair of its own.
   */
  curveServerKey?: CurveKey;
  /** CURVE server: the client public keys let in (with curveAllowFile: either). */
  curveAllow?: readonly CurveKey[];
  /** CURVE server: a file of client public keys let in, one a line, `#` comments. */
  curveAllowFile?: string;
  /** Be the PLAIN server of every connection. */
  plainServer?: boolean;
  /** PLAIN client: the user name (sends PLAIN HELLO). */
  plainUsername?: string;
  /** PLAIN client: the password, sent in clear. */
  plainPassword?: string;
  /** PLAIN server: a file of `user:password` lines; without it any user is accepted. */
  plainUsersFile?: string;
}

/** The names of {@linkcode SecurityOptions}, for option validation. */
export const SECURITY_OPTIONS: ReadonlySet<string> = new Set<keyof SecurityOptions>([
  "curveServer",
  "curveSecretKey",
  "curvePublicKey",
  "curveServerKey",
  "curveAllow",
  "curveAllowFile",
  "plainServer",
  "plainUsername",
  "plainPassword",
  "plainUsersFile",
]);

const decoder = new TextDecoder();

/** The 32 bytes of a key given as Z85 text or raw bytes; throws RangeError saying what is wrong. */
export function decodeCurveKey(key: CurveKey, what = "a CURVE key"): Uint8Array {
  if (key instanceof Uint8Array) {
    if (key.length === 32) return key.slice();
    if (key.length !== 40) {
      throw new RangeError(`${what} is 40 Z85 characters or 32 bytes, got ${key.length} bytes`);
    }
    key = decoder.decode(key);
  }
  if (typeof key !== "string" || key.length !== 40) {
    throw new RangeError(`${what} is 40 Z85 characters or 32 bytes`);
  }
  try {
    return z85Decode(key);
  } catch (error) {
    throw new RangeError(`${what} is not valid Z85: ${(error as Error).message}`);
  }
}

/** Throws ZmqError(EINVAL) unless `value` suits security option `name`. */
export function validateSecurityOption(name: keyof SecurityOptions, value: unknown): void {
  if (value === undefined) return;
  const fail = (what: string): never => {
    throw new ZmqError(EINVAL, `option ${name} must be ${what}`);
  };
  switch (name) {
    case "curveServer":
    case "plainServer":
      if (typeof value !== "boolean") fail("true or false");
      return;
    case "curveSecretKey":
    case "curvePublicKey":
    case "curveServerKey":
      try {
        decodeCurveKey(value as CurveKey, `option ${name}`);
      } catch (error) {
        throw new ZmqError(EINVAL, (error as Error).message);
      }
      return;
    case "curveAllow":
      if (!Array.isArray(value)) fail("a list of public keys");
      for (const key of value as CurveKey[]) {
        try {
          decodeCurveKey(key, `a key of option ${name}`);
        } catch (error) {
          throw new ZmqError(EINVAL, (error as Error).message);
        }
      }
      return;
    case "plainUsername":
    case "plainPassword":
      if (typeof value !== "string" || new TextEncoder().encode(value).length > 255) {
        fail("a string of at most 255 bytes");
      }
      return;
    case "curveAllowFile":
    case "plainUsersFile":
      if (typeof value !== "string" || value === "") fail("a file path");
      return;
  }
}

/**
 * A file read again whenever its size, modification time or inode changed (looked at once per
 * handshake: one stat). A missing or unreadable file yields `fallback` and is logged.
 */
class WatchedFile<T> {
  readonly path: string;
  #parse: (text: string, path: string) => T;
  #fallback: T;
  #stamp = "";
  #value: T;

  constructor(path: string, parse: (text: string, path: string) => T, fallback: T) {
    this.path = path;
    this.#parse = parse;
    this.#fallback = fallback;
    this.#value = fallback;
  }

  get value(): T {
    let stamp: string;
    try {
      const info = Deno.statSync(this.path);
      stamp = `${info.size}:${info.mtime?.getTime()}:${info.ino}`;
    } catch (error) {
      stamp = "missing";
      if (this.#stamp !== stamp) {
        log.warn(`cannot read ${this.path}: ${(error as Error).message}; nobody is let in`);
        this.#value = this.#fallback;
      }
      this.#stamp = stamp;
      return this.#value;
    }
    if (stamp !== this.#stamp) {
      this.#stamp = stamp;
      try {
        this.#value = this.#parse(Deno.readTextFileSync(this.path), this.path);
      } catch (error) {
        log.warn(`cannot read ${this.path}: ${(error as Error).message}; nobody is let in`);
        this.#value = this.#fallback;
      }
    }
    return this.#value;
  }
}

/**
 * The meaningful lines of a key or user file: trimmed, without blanks and `#` comments. A Z85
 * key may itself begin with `#`, so a line whose first word is a key is never a comment.
 */
function lines(text: string): { line: string; number: number }[] {
  const out: { line: string; number: number }[] = [];
  text.split(/\r?\n/).forEach((raw, i) => {
    const line = raw.trim();
    if (line === "" || (line.startsWith("#") && !isKey(line.split(/\s/)[0]))) return;
    out.push({ line, number: i + 1 });
  });
  return out;
}

function isKey(word: string): boolean {
  try {
    decodeCurveKey(word);
    return true;
  } catch {
    return false;
  }
}

/** Parses an allow-list file: one Z85 public key a line; a bad line is logged and skipped. */
export function parseAllowFile(text: string, path: string): Set<string> {
  const keys = new Set<string>();
  for (const { line, number } of lines(text)) {
    const key = line.split(/\s/)[0];
    try {
      keys.add(z85Encode(decodeCurveKey(key)));
    } catch (error) {
      log.warn(`${path}:${number}: skipped: ${(error as Error).message}`);
    }
  }
  return keys;
}

/** Parses a PLAIN users file: `user:password` lines; a bad line is logged and skipped. */
export function parseUsersFile(text: string, path: string): Map<string, string> {
  const users = new Map<string, string>();
  for (const { line, number } of lines(text)) {
    const colon = line.indexOf(":");
    if (colon <= 0) {
      log.warn(`${path}:${number}: skipped: expected user:password`);
      continue;
    }
    users.set(line.slice(0, colon), line.slice(colon + 1));
  }
  return users;
}

const allowFiles = new Map<string, WatchedFile<Set<string>>>();
const userFiles = new Map<string, WatchedFile<Map<string, string>>>();
const allowLists = new WeakMap<readonly CurveKey[], Set<string>>();

function watched<T>(
  cache: Map<string, WatchedFile<T>>,
  path: string,
  parse: (text: string, path: string) => T,
  fallback: T,
): WatchedFile<T> {
  let file = cache.get(path);
  if (file === undefined) {
    file = new WatchedFile(path, parse, fallback);
    cache.set(path, file);
  }
  return file;
}

function allowListOf(options: SecurityOptions): CurveAllowList | undefined {
  const listed = options.curveAllow;
  const path = options.curveAllowFile;
  if (listed === undefined && path === undefined) return undefined;
  let keys: Set<string> | undefined;
  if (listed !== undefined) {
    keys = allowLists.get(listed);
    if (keys === undefined) {
      keys = new Set(listed.map((k) => z85Encode(decodeCurveKey(k))));
      allowLists.set(listed, keys);
    }
  }
  const file = path === undefined
    ? undefined
    : watched(allowFiles, path, parseAllowFile, new Set<string>());
  return {
    allows(publicKey: Uint8Array): boolean {
      const text = z85Encode(publicKey);
      return keys?.has(text) === true || file?.value.has(text) === true;
    },
  };
}

function usersOf(options: SecurityOptions): PlainUsers | undefined {
  const path = options.plainUsersFile;
  if (path === undefined) return undefined;
  const file = watched(userFiles, path, parseUsersFile, new Map<string, string>());
  return {
    accepts(user: string, password: string): boolean {
      const expected = file.value.get(user);
      return expected !== undefined && expected === password;
    },
  };
}

/**
 * The mechanism for a new connection of a socket with these options: CURVE when curveServer
 * or curveServerKey is set, else PLAIN when plainServer or plainUsername is, else NULL.
 * `metadata` is our encoded READY properties. Throws ZmqError(EINVAL) for an incomplete setup.
 */
export function createMechanism(options: SecurityOptions, metadata: Uint8Array): Mechanism {
  if (options.curveServer === true) {
    if (options.curveSecretKey === undefined) {
      throw new ZmqError(EINVAL, "a CURVE server needs curve_secretkey (or --curve-secret-file)");
    }
    return new CurveServer(keyPairOf(options), allowListOf(options), metadata);
  }
  if (options.curveServerKey !== undefined) {
    return new CurveClient(decodeCurveKey(options.curveServerKey), keyPairOf(options), metadata);
  }
  if (options.plainServer === true) return new PlainServer(usersOf(options), metadata);
  if (options.plainUsername !== undefined) {
    return new PlainClient(options.plainUsername, options.plainPassword ?? "", metadata);
  }
  return new NullMechanism(metadata);
}

// Ephemeral client pairs, one per options object (socket), kept across reconnections.
const ephemeral = new WeakMap<SecurityOptions, { publicKey: Uint8Array; secretKey: Uint8Array }>();

function keyPairOf(options: SecurityOptions): { publicKey: Uint8Array; secretKey: Uint8Array } {
  if (options.curveSecretKey === undefined) {
    let pair = ephemeral.get(options);
    if (pair === undefined) {
      pair = curveKeyPair();
      ephemeral.set(options, pair);
    }
    return pair;
  }
  const secretKey = decodeCurveKey(options.curveSecretKey);
  const publicKey = options.curvePublicKey === undefined
    ? curvePublicKey(secretKey)
    : decodeCurveKey(options.curvePublicKey);
  return { publicKey, secretKey };
}

/** Whether these options make connections use CURVE (which needs libsodium loaded first). */
export function usesCurve(options: SecurityOptions): boolean {
  return options.curveServer === true || options.curveServerKey !== undefined;
}

/**
 * Reads a secret key file: the Z85 secret alone (as `lomq keygen --out` writes it), or a
 * ZeroMQ certificate's `secret-key = "..."` line. Refuses, with an error saying how to fix it,
 * a file that group or others may read (on Linux and macOS).
 */
export function readSecretKeyFile(path: string): Uint8Array {
  let info: Deno.FileInfo;
  try {
    info = Deno.statSync(path);
  } catch (error) {
    throw new Error(`cannot read the secret key file ${path}: ${(error as Error).message}`);
  }
  if (Deno.build.os !== "windows" && info.mode !== null && (info.mode & 0o077) !== 0) {
    const mode = (info.mode & 0o777).toString(8).padStart(3, "0");
    throw new Error(
      `the secret key file ${path} may be read by others (mode ${mode}): ` +
        `run chmod 600 ${path}`,
    );
  }
  const text = Deno.readTextFileSync(path);
  const cert = /secret-key\s*=\s*"([^"]{40})"/.exec(text);
  const key = cert?.[1] ?? lines(text)[0]?.line;
  if (key === undefined) throw new Error(`the secret key file ${path} holds no key`);
  try {
    return decodeCurveKey(key, `the key in ${path}`);
  } catch (error) {
    throw new Error((error as Error).message);
  }
}

/** CURVE as a client sees it: the server's public key, and optionally a fixed key pair. */
export interface CurveClientOptions {
  /** The server's public key (40 Z85 characters or 32 bytes). */
  serverKey: CurveKey;
  /** Our public key; derived from secretKey when not given. */
  publicKey?: CurveKey;
  /** Our secret key; without it the socket gets an ephemeral pair. */
  secretKey?: CurveKey;
}

/**
 * The socket options for {@linkcode CurveClientOptions} (none for undefined).
 *
 * ```ts
 * createSocket("DEALER", curveSocketOptions({ serverKey: "rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7" }));
 * ```
 */
export function curveSocketOptions(curve: CurveClientOptions | undefined): SecurityOptions {
  if (curve === undefined) return {};
  return {
    curveServerKey: curve.serverKey,
    curvePublicKey: curve.publicKey,
    curveSecretKey: curve.secretKey,
  };
}
