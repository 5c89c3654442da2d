/**
 * Serving RPC requests from a REP or ROUTER socket: take a request, hand its body to a
 * handler, send the reply with the request's envelope. The one serve loop behind
 * `sock:process()` and `lomq serve`.
 *
 * The ZMTP layer only delivers messages; everything a request means lives here and in the
 * handler. Requests of one socket are served one at a time, in order: a handler that waits
 * or is paused for a time slice holds the socket's next request back until it replies.
 *
 * ```ts
 * import { createSocket } from "../zmtp/mod.ts";
 * import { RpcServer, STATUS_OK } from "./mod.ts";
 * const rep = createSocket("REP");
 * await rep.bind("tcp://127.0.0.1:0");
 * const server = new RpcServer(rep, { handle: () => [STATUS_OK, new Uint8Array([0xc0])] });
 * const stop = new AbortController();
 * const serving = server.serveUntil(stop.signal); // answers nil to every request
 * stop.abort();
 * await serving;
 * await rep.close();
 * ```
 *
 * @module
 */

import { type Frames, recycle, type Socket } from "../zmtp/mod.ts";
import { RouterSocket, type ServerRequest } from "../zmtp/router.ts";
import { bodyStart, DELIMITER, errorReply } from "./wire.ts";

/** Serves request bodies; implemented by the Lua dispatcher. */
export interface RequestHandler {
  /**
   * Serves one request body and returns the reply body (status and payload), or a promise
   * of it when the handler has to wait or was paused. The array `body` is the handler's
   * during the call only. The reply (the array and its frames) may stay valid only until
   * the next call: the server sends it before it calls again. Once the handler returns a
   * reply (not a promise), the body's frames are the server's again: it may reuse a large
   * body's buffer, so the handler keeps no view of them.
   * `budgetMs` is the call's time budget (0: none). Must not throw.
   */
  handle(body: Frames, budgetMs: number): Frames | Promise<Frames>;
}

/** {@linkcode RpcServer.serveNext}: nothing was queued. */
export const IDLE = 0;
/** {@linkcode RpcServer.serveNext}: a request was served and answered. */
export const SERVED = 1;

const NO_ENVELOPE: Frames = [];
// The routing frames of a request from a REQ, or a DEALER that sends what a REQ does.
const DELIMITER_ONLY: Frames = [DELIMITER];

/** Serves the requests of one REP or ROUTER socket. */
export class RpcServer {
  /** The socket served. */
  readonly socket: Socket;
  /** Each call's time budget in ms; 0 for none. */
  callTimeoutMs = 0;
  /**
   * Errno of the last reply: 0, or why it could not be sent (EHOSTUNREACH when a ROUTER
   * client left before its answer).
   */
  lastErrno = 0;

  readonly #handler: RequestHandler;
  readonly #router: RouterSocket | undefined;
  #busy = false;
  // The body of a one-frame request (all well-formed ones), handed to the handler.
  readonly #oneFrame: Frames = [DELIMITER];

  /** Serves `socket` (REP or ROUTER) with `handler`. */
  constructor(socket: Socket, handler: RequestHandler, callTimeoutMs = 0) {
    if (socket.type !== "REP" && socket.type !== "ROUTER") {
      throw new TypeError(`an RPC server needs a REP or ROUTER socket, not ${socket.type}`);
    }
    this.socket = socket;
    this.#handler = handler;
    // lomq's own ROUTER, which keeps the identity of a request with its sender.
    this.#router = socket instanceof RouterSocket ? socket : undefined;
    this.callTimeoutMs = callTimeoutMs;
  }

  /** Whether a request is being served (its handler waits or was paused). */
  get busy(): boolean {
    return this.#busy;
  }

  /**
   * Serves the next queued request, if any: {@linkcode IDLE} when none is queued,
   * {@linkcode SERVED} once it is answered, or a promise when its handler has to wait or
   * was paused (it resolves once the reply is sent). Throws while a previous request is
   * still being served: requests of a socket are served one at a time.
   */
  serveNext(): typeof IDLE | typeof SERVED | Promise<void> {
    if (this.#busy) {
      throw new Error("this socket is already serving a request (process() cannot nest)");
    }
    let request: ServerRequest | undefined;
    let head = NO_ENVELOPE;
    let body: Frames;
    const router = this.#router;
    if (router !== undefined) {
      request = router.takeRequest();
      if (request === undefined) return IDLE;
      // [routing..., "", body...]: what goes back in front of the reply, and the body.
      const frames = request.frames;
      const start = bodyStart(frames);
      if (start === 1) head = DELIMITER_ONLY;
      else if (start > 1) head = frames.slice(0, start);
      if (frames.length - start === 1) {
        body = this.#oneFrame;
        body[0] = frames[start];
      } else {
        body = frames.slice(start);
      }
    } else {
      const frames = this.socket.tryRecv();
      if (frames === undefined) return IDLE;
      body = frames; // REP keeps the envelope itself
    }
    // Busy from here: a handler that called back into serveNext would answer out of order.
    this.#busy = true;
    let reply: Frames | Promise<Frames>;
    try {
      reply = this.#handler.handle(body, this.callTimeoutMs);
    } catch (error) {
      reply = errorReply(`internal error: ${describeError(error)}`);
    }
    if (!(reply instanceof Promise)) {
      this.#busy = false;
      this.#send(request, head, reply);
      // Decoded and answered: a large body's buffer serves the next one (see handle()).
      for (let i = 0; i < body.length; i++) recycle(body[i]);
      return SERVED;
    }
    return reply.then(
      (frames) => this.#send(request, head, frames),
      (error) => this.#send(request, head, errorReply(`internal error: ${describeError(error)}`)),
    ).finally(() => this.#busy = false);
  }

  /** Serves until `signal` aborts (the request being served when it does is finished). */
  async serveUntil(signal: AbortSignal): Promise<void> {
    // readable() answers true at once while requests are queued, even after the abort.
    while (!signal.aborted && await this.socket.readable(undefined, signal)) {
      while (!signal.aborted) {
        const served = this.serveNext();
        if (served === IDLE) break;
        if (served !== SERVED) await served;
      }
    }
  }

  /** Sends `reply` to `request`'s sender behind `head` (ROUTER), or to REP's last request. */
  #send(request: ServerRequest | undefined, head: Frames, reply: Frames): void {
    if (request !== undefined) this.lastErrno = this.#router!.reply(request, head, reply);
    else this.lastErrno = this.socket.trySend(reply) ? 0 : this.socket.lastErrno;
  }
}

function describeError(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
