/**
 * Small helpers shared by the ZMTP tests: bounded waiting, an echo server loop, and a raw
 * ZMTP peer for sending what well-behaved libraries never send.
 *
 * @module
 */

import {
  encodeCommand,
  encodeMessage,
  encodeReady,
  FrameReader,
  type Framing,
} from "../../src/zmtp/frame.ts";
import { buildGreeting } from "../../src/zmtp/greeting.ts";
import type { Socket } from "../../src/zmtp/mod.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Resolves after `ms`. */
export function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Polls `condition` every 10 ms; throws after `timeoutMs` with `what` in the message. */
export async function waitFor(
  condition: () => boolean,
  what: string,
  timeoutMs = 5000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    }
    await delay(10);
  }
}

/**
 * Serves a REP (or other replying) socket: each request [body...] is answered with
 * ["re:" + first frame, ...rest]. Runs until the socket closes; returns the count served.
 */
export async function serveEcho(socket: Socket, log?: string[]): Promise<number> {
  let served = 0;
  while (await socket.readable()) {
    for (;;) {
      const request = socket.tryRecv();
      if (request === undefined) break;
      log?.push(decoder.decode(request[0]));
      const first = new Uint8Array(3 + request[0].length);
      first.set(encoder.encode("re:"));
      first.set(request[0], 3);
      socket.trySend([first, ...request.slice(1)]);
      served++;
    }
  }
  return served;
}

/**
 * Feeds `bytes` to `reader` in pieces of at most `step` bytes, calling `onFrame` for every
 * frame it completes (read it from the reader's `flags` and `body`).
 */
export function feedFrames(
  reader: FrameReader,
  bytes: Uint8Array,
  step: number,
  onFrame: () => void,
): void {
  let pos = 0;
  while (pos < bytes.length) {
    const target = reader.target();
    const n = Math.min(step, target.length, bytes.length - pos);
    target.set(bytes.subarray(pos, pos + n));
    reader.commit(n);
    pos += n;
    while (reader.next()) onFrame();
  }
}

/**
 * Feeds `bytes` to a reader of `framing` in pieces of `step` bytes and collects every frame
 * (bodies as text).
 */
export function readAllFrames(
  bytes: Uint8Array,
  step: number,
  framing: Framing = 3,
  max = 1 << 20,
): { flags: number; body: string }[] {
  const reader = new FrameReader(max);
  reader.framing = framing;
  const frames: { flags: number; body: string }[] = [];
  feedFrames(reader, bytes, step, () => {
    frames.push({ flags: reader.flags, body: decoder.decode(reader.body) });
  });
  return frames;
}

/** Splits "tcp://host:port" for Deno.connect. */
export function hostPort(endpoint: string): { hostname: string; port: number } {
  const m = /^tcp:\/\/\[?([^\]]*)\]?:(\d+)$/.exec(endpoint);
  if (m === null) throw new Error(`not a tcp endpoint: ${endpoint}`);
  return { hostname: m[1], port: Number(m[2]) };
}

/** A hand-driven ZMTP peer over a raw TCP connection. */
export class RawPeer {
  /** The transport connection. */
  readonly conn: Deno.Conn;
  #reader = new FrameReader(1 << 30);
  #greetingDone = false;
  #pending: Promise<number | null> | null = null;
  #closed = false;

  private constructor(conn: Deno.Conn) {
    this.conn = conn;
  }

  /** Opens a TCP connection without sending anything. */
  static async connect(endpoint: string): Promise<RawPeer> {
    return new RawPeer(await Deno.connect(hostPort(endpoint)));
  }

  /** Wraps a connection accepted by a test's own listener. */
  static wrap(conn: Deno.Conn): RawPeer {
    return new RawPeer(conn);
  }

  /**
   * Reads exactly `n` raw bytes (no greeting skipped: for peers speaking an older ZMTP), or
   * undefined on EOF/timeout. A timeout closes the connection, unless `keepOpen`: then the
   * read stays pending and the next one takes what it brings.
   */
  async readBytes(n: number, timeoutMs: number, keepOpen = false): Promise<Uint8Array | undefined> {
    const deadline = Date.now() + timeoutMs;
    while (this.#reader.available().length < n) {
      if (await this.#readSome(deadline - Date.now(), keepOpen) === null) return undefined;
    }
    const bytes = this.#reader.available().slice(0, n);
    this.#reader.skip(n);
    return bytes;
  }

  /** Writes raw bytes. */
  async write(data: Uint8Array): Promise<void> {
    let off = 0;
    while (off < data.length) off += await this.conn.write(data.subarray(off));
  }

  /** Sends greeting (version 3.`minor`) and READY announcing `type`, then reads the peer's. */
  async handshake(type: string, minor = 1): Promise<Map<string, string>> {
    await this.hello(type, minor);
    const frame = await this.readFrame(5000);
    if (frame === undefined || (frame.flags & 4) === 0) throw new Error("no READY from peer");
    return new Map([["raw", decoder.decode(frame.body)]]);
  }

  /**
   * Sends greeting (version 3.`minor`) and READY announcing `type`, without waiting for the
   * peer's: for peers to be refused, whose READY may never come.
   */
  async hello(type: string, minor = 1): Promise<void> {
    const greeting = buildGreeting();
    greeting[11] = minor;
    await this.write(greeting);
    await this.write(encodeReady([["Socket-Type", encoder.encode(type)]]));
  }

  /** Sends a message. */
  async send(frames: (Uint8Array | string)[]): Promise<void> {
    await this.write(
      encodeMessage(frames.map((f) => typeof f === "string" ? encoder.encode(f) : f)),
    );
  }

  /** Sends a command. */
  async command(name: string, data: Uint8Array | string = ""): Promise<void> {
    await this.write(encodeCommand(name, typeof data === "string" ? encoder.encode(data) : data));
  }

  /**
   * Reads the next frame (after skipping the peer's greeting), or undefined on EOF/timeout.
   * A timeout closes the connection unless `keepOpen` (see readBytes).
   */
  async readFrame(
    timeoutMs: number,
    keepOpen = false,
  ): Promise<{ flags: number; body: Uint8Array } | undefined> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (!this.#greetingDone && this.#reader.available().length >= 64) {
        this.#reader.skip(64);
        this.#greetingDone = true;
      }
      if (this.#greetingDone && this.#reader.next()) {
        return { flags: this.#reader.flags, body: this.#reader.body };
      }
      const n = await this.#readSome(deadline - Date.now(), keepOpen);
      if (n === null) return undefined;
    }
  }

  /** Reads the next message (skipping commands), or undefined on EOF/timeout (see readFrame). */
  async readMessage(timeoutMs: number, keepOpen = false): Promise<string[] | undefined> {
    const deadline = Date.now() + timeoutMs;
    const parts: string[] = [];
    for (;;) {
      const frame = await this.readFrame(deadline - Date.now(), keepOpen);
      if (frame === undefined) return undefined;
      if ((frame.flags & 4) !== 0) continue;
      parts.push(decoder.decode(frame.body));
      if ((frame.flags & 1) === 0) return parts;
    }
  }

  async #readSome(timeoutMs: number, keepOpen = false): Promise<number | null> {
    if (timeoutMs <= 0 || this.#closed) return null;
    let timer: ReturnType<typeof setTimeout> | undefined;
    // A read left pending by a timeout still fills the target it was given.
    const read = this.#pending ?? this.conn.read(this.#reader.target()).catch(() => null);
    this.#pending = null;
    const timeout = new Promise<"timeout">((resolve) =>
      timer = setTimeout(() => resolve("timeout"), timeoutMs)
    );
    const result = await Promise.race([read, timeout]);
    clearTimeout(timer);
    if (result === "timeout") {
      if (keepOpen) {
        this.#pending = read;
        return null;
      }
      // The read stays pending; closing the connection settles it.
      this.close();
      await read;
      return null;
    }
    if (result === null) {
      this.close();
      return null;
    }
    this.#reader.commit(result);
    return result;
  }

  /**
   * Resolves true when the other side closes the connection within `timeoutMs` (EOF or
   * reset), false when it is still open then. Consumes whatever arrives meanwhile.
   */
  async closedByPeer(timeoutMs: number): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    const buf = new Uint8Array(65536);
    for (;;) {
      const left = deadline - Date.now();
      if (left <= 0) return false;
      let timer: ReturnType<typeof setTimeout> | undefined;
      const read = this.conn.read(buf).catch(() => null);
      const result = await Promise.race([
        read,
        new Promise<"timeout">((resolve) => timer = setTimeout(() => resolve("timeout"), left)),
      ]);
      clearTimeout(timer);
      if (result === "timeout") {
        this.close();
        await read;
        return false;
      }
      if (result === null) return true;
    }
  }

  /** Closes the connection (idempotent). */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    try {
      this.conn.close();
    } catch {
      // already closed
    }
  }
}
