/**
 * PLAIN (ZeroMQ RFC 24): a user name and password in HELLO, in clear, for libzmq peers that
 * use it on trusted networks. Nothing is encrypted, before or after the handshake.
 *
 * @module
 */

import { decodeProperties, encodeCommand, ProtocolError } from "./frame.ts";
import { HandshakeRefused, type HandshakeStep, type Mechanism, unexpected } from "./mechanism.ts";

/** Checks a PLAIN user's password; undefined lets everyone in (libzmq without ZAP). */
export interface PlainUsers {
  /** Whether `user` with `password` may connect. */
  accepts(user: string, password: string): boolean;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

function lengthPrefixed(text: string, what: string): Uint8Array {
  const bytes = encoder.encode(text);
  if (bytes.length > 255) throw new RangeError(`PLAIN ${what} is longer than 255 bytes`);
  const out = new Uint8Array(1 + bytes.length);
  out[0] = bytes.length;
  out.set(bytes, 1);
  return out;
}

abstract class PlainBase {
  readonly name = "PLAIN";
  readonly encrypts = false;
  readonly openedFlags = 0;
  peerName = "";
  protected metadata: Uint8Array;

  constructor(metadata: Uint8Array) {
    this.metadata = metadata;
  }

  seal(frames: Uint8Array): Uint8Array {
    return frames;
  }

  open(data: Uint8Array): Uint8Array {
    return data;
  }
}

/** The PLAIN client: sends its user name and password, then its metadata. */
export class PlainClient extends PlainBase implements Mechanism {
  readonly asServer = false;
  #hello: Uint8Array;
  #state: "welcome" | "ready" = "welcome";

  /** Throws RangeError when the user name or password is longer than 255 bytes. */
  constructor(user: string, password: string, metadata: Uint8Array) {
    super(metadata);
    const u = lengthPrefixed(user, "user name");
    const p = lengthPrefixed(password, "password");
    this.#hello = new Uint8Array(u.length + p.length);
    this.#hello.set(u);
    this.#hello.set(p, u.length);
    this.peerName = user;
  }

  greet(): Uint8Array[] {
    return [encodeCommand("HELLO", this.#hello)];
  }

  handshake(name: string, data: Uint8Array): HandshakeStep {
    if (name === "WELCOME" && this.#state === "welcome") {
      this.#state = "ready";
      return { reply: encodeCommand("INITIATE", this.metadata) };
    }
    if (name === "READY" && this.#state === "ready") return { peer: decodeProperties(data) };
    unexpected("PLAIN", name);
  }
}

/** The PLAIN server: checks HELLO's user and password, then exchanges metadata. */
export class PlainServer extends PlainBase implements Mechanism {
  readonly asServer = true;
  #users: PlainUsers | undefined;
  #state: "hello" | "initiate" = "hello";

  /** `users` undefined accepts any user name and password, as libzmq does without ZAP. */
  constructor(users: PlainUsers | undefined, metadata: Uint8Array) {
    super(metadata);
    this.#users = users;
  }

  greet(): Uint8Array[] {
    return [];
  }

  handshake(name: string, data: Uint8Array): HandshakeStep {
    if (name === "HELLO" && this.#state === "hello") {
      const userLength = data[0] ?? 0;
      const passwordAt = 1 + userLength;
      if (data.length < passwordAt + 1 || data.length !== passwordAt + 1 + data[passwordAt]) {
        throw new ProtocolError("PLAIN: malformed HELLO");
      }
      const user = decoder.decode(data.subarray(1, passwordAt));
      const password = decoder.decode(data.subarray(passwordAt + 1));
      this.peerName = user;
      if (this.#users !== undefined && !this.#users.accepts(user, password)) {
        throw new HandshakeRefused(
          `PLAIN user '${user}' refused: unknown or wrong password`,
          "400",
        );
      }
      this.#state = "initiate";
      return { reply: encodeCommand("WELCOME") };
    }
    if (name === "INITIATE" && this.#state === "initiate") {
      return { reply: encodeCommand("READY", this.metadata), peer: decodeProperties(data) };
    }
    unexpected("PLAIN", name);
  }
}
