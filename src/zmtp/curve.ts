/**
 * CURVE (ZeroMQ RFC 25 ZMTP-CURVE, RFC 26 CurveZMQ): the client and server handshakes and the
 * MESSAGE boxes that carry every frame afterwards, on libsodium (npm:libsodium-wrappers, the
 * audited C library compiled to WebAssembly; see the README for why it and not a pure-JS one).
 *
 * The server keeps nothing between HELLO and INITIATE: its short-term secret travels to the
 * client and back inside a cookie sealed with a key of the process, replaced every minute (a
 * cookie stays valid for one more minute after that). Both sides precompute the shared key of
 * the short-term pair once (crypto_box_beforenm), so a message costs one secretbox, done
 * straight in libsodium's memory. Short nonces start at 1 and must strictly increase in each
 * direction; a replayed, reordered or forged box closes the connection.
 *
 * @module
 */

// Full specifiers (deno.json's versions, checked by tests/anywhere_test.ts): the client
// imports from any folder. Only the types at load time: the library itself is imported by
// loadCurve(), so that a program without CURVE never evaluates it (under Node.js its start-up
// needs Node's crypto module, which the Node build does not bundle).
// @deno-types="npm:@types/libsodium-wrappers@0.7.14"
// deno-lint-ignore no-import-prefix
import type SodiumWrappers from "npm:libsodium-wrappers@0.7.15";
import {
  concat,
  decodeProperties,
  encodeCommand,
  FLAG_COMMAND,
  FLAG_LONG,
  FLAG_MORE,
  readUint64,
  writeUint64,
} from "./frame.ts";
import { ProtocolError } from "./frame.ts";
import { HandshakeRefused, type HandshakeStep, type Mechanism, unexpected } from "./mechanism.ts";
import { allocateMessage, copyOf } from "./arena.ts";
import { z85Encode } from "./z85.ts";

/** A CURVE key pair (32-byte Curve25519 keys). */
export interface CurveKeyPair {
  /** The public key, to give to peers (Z85 of it: 40 characters). */
  publicKey: Uint8Array;
  /** The secret key, never to leave its owner. */
  secretKey: Uint8Array;
}

/** Who may connect to a CURVE server: answers for a client's long-term public key. */
export interface CurveAllowList {
  /** Whether the client with this public key (32 bytes) is let in. */
  allows(publicKey: Uint8Array): boolean;
}

// The part of libsodium's Emscripten module the message path uses directly.
interface SodiumModule {
  HEAPU8: Uint8Array;
  _malloc(size: number): number;
  _free(ptr: number): void;
  _crypto_box_easy_afternm(
    c: number,
    m: number,
    mlen: number,
    mlenHigh: number,
    n: number,
    k: number,
  ): number;
  _crypto_box_open_easy_afternm(
    m: number,
    c: number,
    clen: number,
    clenHigh: number,
    n: number,
    k: number,
  ): number;
}

let lib: SodiumModule | null = null;
// The library's API, set with lib by loadCurve().
let sodium: typeof SodiumWrappers;
let loading: Promise<void> | null = null;

/**
 * Loads libsodium (about 50 ms, once per process); null when it is loaded already. Nothing
 * loads it before a socket or a command needs CURVE, so NULL-only programs never pay for it.
 */
export function loadCurve(): Promise<void> | null {
  if (lib !== null) return null;
  // deno-lint-ignore no-import-prefix
  loading ??= import("npm:libsodium-wrappers@0.7.15").then(async (module) => {
    const loaded = module.default;
    await loaded.ready;
    sodium = loaded;
    lib = (loaded as unknown as { libsodium: SodiumModule }).libsodium;
  });
  return loading;
}

function loaded(): SodiumModule {
  if (lib === null) throw new Error("CURVE used before loadCurve() resolved");
  return lib;
}

/** A new random key pair (libsodium loaded, see {@linkcode loadCurve}). */
export function curveKeyPair(): CurveKeyPair {
  loaded();
  const pair = sodium.crypto_box_keypair();
  return { publicKey: pair.publicKey, secretKey: pair.privateKey };
}

/** The public key of a secret key (libsodium loaded). */
export function curvePublicKey(secretKey: Uint8Array): Uint8Array {
  loaded();
  return sodium.crypto_scalarmult_base(secretKey);
}

const MAC = 16;
const ascii = (text: string) => Uint8Array.from(text, (c) => c.charCodeAt(0));
const HELLO_PREFIX = ascii("CurveZMQHELLO---");
const WELCOME_PREFIX = ascii("WELCOME-");
const COOKIE_PREFIX = ascii("COOKIE--");
const INITIATE_PREFIX = ascii("CurveZMQINITIATE");
const VOUCH_PREFIX = ascii("VOUCH---");
const READY_PREFIX = ascii("CurveZMQREADY---");
const MESSAGE_FROM_CLIENT = ascii("CurveZMQMESSAGEC");
const MESSAGE_FROM_SERVER = ascii("CurveZMQMESSAGES");
const MESSAGE_NAME = ascii("\x07MESSAGE");
// The data of each handshake command (after its name), by RFC 26.
const HELLO_SIZE = 2 + 72 + 32 + 8 + 80;
const WELCOME_SIZE = 16 + 144;
const COOKIE_SIZE = 16 + 80;
const INITIATE_MIN = COOKIE_SIZE + 8 + MAC + 32 + 16 + 80;
const READY_MIN = 8 + MAC;
// A MESSAGE's data: the short nonce and a box holding at least the flags byte.
const MESSAGE_MIN = 8 + MAC + 1;
// Whether a frame is a MESSAGE command, its name compared as bytes (once per frame received).
function isMessage(body: Uint8Array): boolean {
  for (let i = 0; i < MESSAGE_NAME.length; i++) {
    if (body[i] !== MESSAGE_NAME[i]) return false;
  }
  return true;
}

// Small copies by hand: below 64 bytes the loop costs less than the subarray() set() needs.
function copy(to: Uint8Array, at: number, from: Uint8Array, start: number, end: number): void {
  const n = end - start;
  if (n < 64) {
    for (let i = 0; i < n; i++) to[at + i] = from[start + i];
  } else {
    to.set(from.subarray(start, end), at);
  }
}

/** Bytes a sealed frame adds to its body: MESSAGE's name, the nonce, the MAC, the flags. */
export const CURVE_FRAME_OVERHEAD = MESSAGE_NAME.length + 8 + MAC + 1;

function nonce(prefix: Uint8Array, tail: Uint8Array): Uint8Array {
  const n = new Uint8Array(24);
  n.set(prefix);
  n.set(tail, prefix.length);
  return n;
}

function shortNonce(value: number): Uint8Array {
  const n = new Uint8Array(8);
  writeUint64(n, 0, value);
  return n;
}

function equal(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && sodium.memcmp(a, b);
}

// libsodium throws for a low-order public key and the like; a peer's bytes must never make
// anything but a ProtocolError.
function open(what: string, box: () => Uint8Array): Uint8Array {
  try {
    return box();
  } catch {
    throw new ProtocolError(what);
  }
}

/**
 * The cookie key of the process: replaced every minute, the one before still opening cookies
 * for another minute, so that a client between WELCOME and INITIATE at the change gets in.
 */
const cookieKeys: { current: Uint8Array; previous: Uint8Array; since: number } = {
  current: new Uint8Array(0),
  previous: new Uint8Array(0),
  since: -Infinity,
};
const COOKIE_KEY_LIFETIME_MS = 60_000;

function cookieKey(): Uint8Array {
  const now = performance.now();
  if (now - cookieKeys.since >= COOKIE_KEY_LIFETIME_MS) {
    cookieKeys.previous = now - cookieKeys.since < 2 * COOKIE_KEY_LIFETIME_MS
      ? cookieKeys.current
      : new Uint8Array(0);
    cookieKeys.current = sodium.randombytes_buf(32);
    cookieKeys.since = now;
  }
  return cookieKeys.current;
}

function openCookie(cookie: Uint8Array): Uint8Array | null {
  cookieKey();
  const n = nonce(COOKIE_PREFIX, cookie.subarray(0, 16));
  for (const key of [cookieKeys.current, cookieKeys.previous]) {
    if (key.length === 0) continue;
    try {
      return sodium.crypto_secretbox_open_easy(cookie.subarray(16), n, key);
    } catch {
      // Not this key: try the previous one.
    }
  }
  return null;
}

// One region of libsodium's memory, reused by every box of the process (calls are
// synchronous): [key 32][send nonce 24][receive nonce 24][plaintext][box]. The key and the
// nonce prefixes stay from one box to the next while the same session seals and opens, so
// a lockstep call copies them once, not once per frame.
let scratch = 0;
let scratchSize = 0;
let scratchOwner: Session | null = null;
const SCRATCH_KEEP = 256 * 1024;
const KEY_AT = 0;
const SEND_NONCE_AT = 32;
const RECEIVE_NONCE_AT = 56;
/** Where a box's plaintext or ciphertext starts in the region. */
const DATA_AT = 80;

function region(size: number, owner: Session): number {
  const m = loaded();
  if (size > scratchSize) {
    if (scratch !== 0) m._free(scratch);
    scratchOwner = null;
    scratchSize = Math.max(size, 4096);
    scratch = m._malloc(scratchSize);
    if (scratch === 0) {
      scratchSize = 0;
      throw new Error("libsodium is out of memory");
    }
  }
  if (scratchOwner !== owner) {
    owner.place(m.HEAPU8, scratch);
    scratchOwner = owner;
  }
  return scratch;
}

// A region grown for one huge frame is given back, so that it does not stay held.
function release(): void {
  if (scratchSize > SCRATCH_KEEP) {
    loaded()._free(scratch);
    scratch = 0;
    scratchSize = 0;
    scratchOwner = null;
  }
}

/** The MESSAGE boxes of an established CURVE connection, in one direction each. */
class Session {
  #key: Uint8Array;
  #sendPrefix: Uint8Array;
  #receivePrefix: Uint8Array;
  #nonce: number;
  #peerNonce: number;

  constructor(key: Uint8Array, client: boolean, nonce: number, peerNonce: number) {
    this.#key = key;
    this.#sendPrefix = client ? MESSAGE_FROM_CLIENT : MESSAGE_FROM_SERVER;
    this.#receivePrefix = client ? MESSAGE_FROM_SERVER : MESSAGE_FROM_CLIENT;
    this.#nonce = nonce;
    this.#peerNonce = peerNonce;
  }

  /** Writes the key and both nonce prefixes where {@linkcode region} keeps them. */
  place(heap: Uint8Array, base: number): void {
    heap.set(this.#key, base + KEY_AT);
    heap.set(this.#sendPrefix, base + SEND_NONCE_AT);
    heap.set(this.#receivePrefix, base + RECEIVE_NONCE_AT);
  }

  seal(frames: Uint8Array): Uint8Array {
    // First pass: the frames' sizes, hence the output's.
    let total = 0;
    let largest = 0;
    for (let pos = 0; pos < frames.length;) {
      const long = (frames[pos] & FLAG_LONG) !== 0;
      const size = long ? readUint64(frames, pos + 1) : frames[pos + 1];
      const body = CURVE_FRAME_OVERHEAD + size;
      total += (body > 255 ? 9 : 2) + body;
      if (size > largest) largest = size;
      pos += (long ? 9 : 2) + size;
    }
    const m = loaded();
    const base = region(DATA_AT + 2 * (1 + largest) + MAC, this);
    const heap = m.HEAPU8;
    const plain = base + DATA_AT;
    const box = plain + 1 + largest;
    // Written before the next read, so a view of shared blocks (see arena.ts).
    const out = allocateMessage(total);
    let o = 0;
    for (let pos = 0; pos < frames.length;) {
      const flags = frames[pos];
      const long = (flags & FLAG_LONG) !== 0;
      const size = long ? readUint64(frames, pos + 1) : frames[pos + 1];
      const start = pos + (long ? 9 : 2);
      pos = start + size;
      const nonce = this.#nonce++;
      const body = CURVE_FRAME_OVERHEAD + size;
      // A frame of its own, flags 0, as libzmq sends it (it takes a COMMAND-flagged MESSAGE
      // for an unknown command).
      if (body > 255) {
        out[o] = FLAG_LONG;
        writeUint64(out, o + 1, body);
        o += 9;
      } else {
        out[o] = 0;
        out[o + 1] = body;
        o += 2;
      }
      copy(out, o, MESSAGE_NAME, 0, MESSAGE_NAME.length);
      o += MESSAGE_NAME.length;
      writeUint64(out, o, nonce);
      writeUint64(heap, base + SEND_NONCE_AT + 16, nonce);
      o += 8;
      heap[plain] = ((flags & FLAG_MORE) !== 0 ? 1 : 0) | ((flags & FLAG_COMMAND) !== 0 ? 2 : 0);
      copy(heap, plain + 1, frames, start, pos);
      m._crypto_box_easy_afternm(box, plain, 1 + size, 0, base + SEND_NONCE_AT, base + KEY_AT);
      copy(out, o, heap, box, box + MAC + 1 + size);
      o += MAC + 1 + size;
    }
    release();
    return out;
  }

  /** Flags of the frame open() returned last (1 more, 2 command). */
  flags = 0;

  open(message: Uint8Array): Uint8Array {
    if (!isMessage(message)) throw new ProtocolError("CURVE: a frame in clear after the handshake");
    // The short nonce follows the name; the box follows the nonce.
    const at = MESSAGE_NAME.length;
    if (message.length - at < MESSAGE_MIN) throw new ProtocolError("CURVE: MESSAGE too short");
    const nonce = readUint64(message, at);
    if (nonce <= this.#peerNonce) {
      throw new ProtocolError(
        `CURVE: MESSAGE nonce ${nonce} is not above the last one (${this.#peerNonce}): ` +
          "a replayed or reordered message",
      );
    }
    const boxSize = message.length - at - 8;
    const m = loaded();
    const base = region(DATA_AT + 2 * boxSize, this);
    const heap = m.HEAPU8;
    copy(heap, base + RECEIVE_NONCE_AT + 16, message, at, at + 8);
    const box = base + DATA_AT;
    const plain = box + boxSize;
    copy(heap, box, message, at + 8, message.length);
    const opened = m._crypto_box_open_easy_afternm(
      plain,
      box,
      boxSize,
      0,
      base + RECEIVE_NONCE_AT,
      base + KEY_AT,
    );
    if (opened !== 0) {
      release();
      throw new ProtocolError("CURVE: a MESSAGE box failed to open (corrupted or forged)");
    }
    this.#peerNonce = nonce;
    this.flags = heap[plain];
    // Small bodies as views of shared blocks, as received frames are (see arena.ts).
    const body = copyOf(heap, plain + 1, plain + boxSize - MAC);
    release();
    return body;
  }
}

function notReady(): never {
  throw new Error("CURVE: no MESSAGE before the handshake is complete");
}

/** What the CURVE client and server share once the handshake is done: the message session. */
abstract class CurveMechanism {
  readonly name = "CURVE";
  readonly encrypts = true;
  /** Set by the handshake's last step. */
  protected session: Session | null = null;

  seal(frames: Uint8Array): Uint8Array {
    return (this.session ?? notReady()).seal(frames);
  }

  open(message: Uint8Array): Uint8Array {
    return (this.session ?? notReady()).open(message);
  }

  get openedFlags(): number {
    return this.session?.flags ?? 0;
  }
}

/** The CURVE client: knows the server's public key; proves its own long-term key. */
export class CurveClient extends CurveMechanism implements Mechanism {
  readonly asServer = false;
  readonly peerName: string;
  #server: Uint8Array;
  #pair: CurveKeyPair;
  #short: CurveKeyPair | null = null;
  #metadata: Uint8Array;
  #key: Uint8Array | null = null;
  #nonce = 1;
  #state: "welcome" | "ready" | "done" = "welcome";

  /** `server` is the server's public key, `pair` ours, `metadata` our encoded properties. */
  constructor(server: Uint8Array, pair: CurveKeyPair, metadata: Uint8Array) {
    super();
    this.#server = server;
    this.#pair = pair;
    this.#metadata = metadata;
    this.peerName = z85Encode(server);
  }

  greet(): Uint8Array[] {
    const short = curveKeyPair();
    this.#short = short;
    const n = this.#nonce++;
    const box = sodium.crypto_box_easy(
      new Uint8Array(64),
      nonce(HELLO_PREFIX, shortNonce(n)),
      this.#server,
      short.secretKey,
    );
    const data = new Uint8Array(HELLO_SIZE);
    data[0] = 1;
    data.set(short.publicKey, 74);
    writeUint64(data, 106, n);
    data.set(box, 114);
    return [encodeCommand("HELLO", data)];
  }

  handshake(name: string, data: Uint8Array): HandshakeStep {
    if (name === "WELCOME" && this.#state === "welcome") return this.#welcome(data);
    if (name === "READY" && this.#state === "ready") return this.#ready(data);
    unexpected("CURVE", name);
  }

  #welcome(data: Uint8Array): HandshakeStep {
    if (data.length !== WELCOME_SIZE) throw new ProtocolError("CURVE: malformed WELCOME");
    const short = this.#short!;
    const plain = open(
      "CURVE: the server's WELCOME does not open with the server key we were given",
      () =>
        sodium.crypto_box_open_easy(
          data.subarray(16),
          nonce(WELCOME_PREFIX, data.subarray(0, 16)),
          this.#server,
          short.secretKey,
        ),
    );
    const serverShort = plain.subarray(0, 32);
    const cookie = plain.subarray(32, 32 + COOKIE_SIZE);
    const vouchNonce = sodium.randombytes_buf(16);
    const key = open(
      "CURVE: the server's short-term key is unusable",
      () => sodium.crypto_box_beforenm(serverShort, short.secretKey),
    );
    const vouch = sodium.crypto_box_easy(
      concat(short.publicKey, this.#server),
      nonce(VOUCH_PREFIX, vouchNonce),
      serverShort,
      this.#pair.secretKey,
    );
    const n = this.#nonce++;
    const box = sodium.crypto_box_easy_afternm(
      concat(this.#pair.publicKey, vouchNonce, vouch, this.#metadata),
      nonce(INITIATE_PREFIX, shortNonce(n)),
      key,
    );
    this.#key = key;
    this.#short = null;
    this.#state = "ready";
    return { reply: encodeCommand("INITIATE", concat(cookie, shortNonce(n), box)) };
  }

  #ready(data: Uint8Array): HandshakeStep {
    if (data.length < READY_MIN) throw new ProtocolError("CURVE: malformed READY");
    const key = this.#key!;
    const peerNonce = readUint64(data, 0);
    const metadata = open(
      "CURVE: the server's READY does not open",
      () =>
        sodium.crypto_box_open_easy_afternm(
          data.subarray(8),
          nonce(READY_PREFIX, data.subarray(0, 8)),
          key,
        ),
    );
    this.session = new Session(key, true, this.#nonce, peerNonce);
    this.#state = "done";
    return { peer: decodeProperties(metadata) };
  }
}

/** The CURVE server: holds the long-term secret key; lets in the clients `allow` allows. */
export class CurveServer extends CurveMechanism implements Mechanism {
  readonly asServer = true;
  peerName = "";
  #pair: CurveKeyPair;
  #allow: CurveAllowList | undefined;
  #metadata: Uint8Array;
  #peerNonce = 0;
  #state: "hello" | "initiate" | "done" = "hello";

  /** `allow` undefined lets in every client that knows our public key, as libzmq does. */
  constructor(pair: CurveKeyPair, allow: CurveAllowList | undefined, metadata: Uint8Array) {
    super();
    this.#pair = pair;
    this.#allow = allow;
    this.#metadata = metadata;
  }

  greet(): Uint8Array[] {
    return [];
  }

  handshake(name: string, data: Uint8Array): HandshakeStep {
    if (name === "HELLO" && this.#state === "hello") return this.#hello(data);
    if (name === "INITIATE" && this.#state === "initiate") return this.#initiate(data);
    unexpected("CURVE", name);
  }

  #hello(data: Uint8Array): HandshakeStep {
    if (data.length !== HELLO_SIZE) throw new ProtocolError("CURVE: malformed HELLO");
    if (data[0] !== 1) {
      throw new ProtocolError(`CURVE: unsupported HELLO version ${data[0]}.${data[1]}`);
    }
    const clientShort = data.subarray(74, 106);
    const n = data.subarray(106, 114);
    // One key agreement serves both HELLO's box and WELCOME's (crypto_box would do it twice).
    let key: Uint8Array;
    try {
      key = sodium.crypto_box_beforenm(clientShort, this.#pair.secretKey);
      sodium.crypto_box_open_easy_afternm(data.subarray(114), nonce(HELLO_PREFIX, n), key);
    } catch {
      throw new HandshakeRefused(
        "CURVE: the client's HELLO does not open with our key: it was given another server key",
        "HELLO does not open: wrong server key",
      );
    }
    this.#peerNonce = readUint64(n, 0);
    // The short-term secret leaves with the cookie: nothing of it stays here.
    const short = curveKeyPair();
    const cookieNonce = sodium.randombytes_buf(16);
    const cookie = concat(
      cookieNonce,
      sodium.crypto_secretbox_easy(
        concat(clientShort, short.secretKey),
        nonce(COOKIE_PREFIX, cookieNonce),
        cookieKey(),
      ),
    );
    const welcomeNonce = sodium.randombytes_buf(16);
    const box = sodium.crypto_box_easy_afternm(
      concat(short.publicKey, cookie),
      nonce(WELCOME_PREFIX, welcomeNonce),
      key,
    );
    this.#state = "initiate";
    return { reply: encodeCommand("WELCOME", concat(welcomeNonce, box)) };
  }

  #initiate(data: Uint8Array): HandshakeStep {
    if (data.length < INITIATE_MIN) throw new ProtocolError("CURVE: malformed INITIATE");
    const cookie = openCookie(data.subarray(0, COOKIE_SIZE));
    if (cookie === null) {
      throw new ProtocolError(
        "CURVE: INITIATE carries a cookie we did not issue, or an expired one",
      );
    }
    const clientShort = cookie.subarray(0, 32);
    const serverShortSecret = cookie.subarray(32, 64);
    const n = readUint64(data, COOKIE_SIZE);
    if (n <= this.#peerNonce) {
      throw new ProtocolError("CURVE: INITIATE nonce not above HELLO's: a replayed handshake");
    }
    const key = open(
      "CURVE: the client's short-term key is unusable",
      () => sodium.crypto_box_beforenm(clientShort, serverShortSecret),
    );
    const plain = open(
      "CURVE: INITIATE does not open",
      () =>
        sodium.crypto_box_open_easy_afternm(
          data.subarray(COOKIE_SIZE + 8),
          nonce(INITIATE_PREFIX, data.subarray(COOKIE_SIZE, COOKIE_SIZE + 8)),
          key,
        ),
    );
    const client = plain.slice(0, 32);
    const vouch = open(
      "CURVE: the client's vouch does not open: it does not hold the key it claims",
      () =>
        sodium.crypto_box_open_easy(
          plain.subarray(48, 128),
          nonce(VOUCH_PREFIX, plain.subarray(32, 48)),
          client,
          serverShortSecret,
        ),
    );
    if (
      !equal(vouch.subarray(0, 32), clientShort) || !equal(vouch.subarray(32), this.#pair.publicKey)
    ) {
      throw new ProtocolError("CURVE: the client's vouch is for another connection or server");
    }
    const peer = decodeProperties(plain.subarray(128));
    this.peerName = z85Encode(client);
    if (this.#allow !== undefined && !this.#allow.allows(client)) {
      // "400" as libzmq's ZAP handlers answer: clients report an authentication failure.
      throw new HandshakeRefused(
        `CURVE client key ${this.peerName} is not in the allow-list`,
        "400",
      );
    }
    const readyNonce = 1;
    const box = sodium.crypto_box_easy_afternm(
      this.#metadata,
      nonce(READY_PREFIX, shortNonce(readyNonce)),
      key,
    );
    this.session = new Session(key, false, readyNonce + 1, n);
    this.#state = "done";
    return { reply: encodeCommand("READY", concat(shortNonce(readyNonce), box)), peer };
  }
}
