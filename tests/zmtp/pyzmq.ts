/**
 * Drives a real libzmq peer (pyzmq) in a Python subprocess for interop tests: one JSON
 * command per line on stdin, one JSON answer per line on stdout (see pyzmq_agent.py).
 *
 * @module
 */

import { findPython } from "../helpers/python.ts";

const AGENT = new URL("./pyzmq_agent.py", import.meta.url).pathname;
const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** UTF-8 bytes of a string. */
export function bytes(text: string): Uint8Array {
  return encoder.encode(text);
}

/** Frames as strings (for assertions). */
export function texts(frames: readonly Uint8Array[] | undefined): string[] | undefined {
  return frames?.map((f) => decoder.decode(f));
}

function toBase64(frame: Uint8Array | string): string {
  const data = typeof frame === "string" ? encoder.encode(frame) : frame;
  let s = "";
  for (const b of data) s += String.fromCharCode(b);
  return btoa(s);
}

function fromBase64(text: string): Uint8Array {
  const s = atob(text);
  const out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i);
  return out;
}

/** An answer from the agent. */
export type Answer = Record<string, unknown> & { ok: boolean; error?: string };

/** A pyzmq process with any number of sockets. */
export class PyAgent {
  #child: Deno.ChildProcess;
  #stdin: WritableStreamDefaultWriter<Uint8Array>;
  #stdout: ReadableStreamDefaultReader<Uint8Array>;
  #buffered = "";
  #stderr: Promise<string>;
  #stopped = false;
  #nextId = 0;

  private constructor(child: Deno.ChildProcess) {
    this.#child = child;
    this.#stdin = child.stdin.getWriter();
    this.#stdout = child.stdout.getReader();
    this.#stderr = new Response(child.stderr).text();
  }

  /** Starts an agent and waits until pyzmq is imported. */
  static async start(): Promise<PyAgent> {
    const python = await findPython();
    if (python === null) throw new Error("no Python with pyzmq");
    const child = new Deno.Command(python, {
      args: ["-u", AGENT],
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const agent = new PyAgent(child);
    const hello = await agent.#readAnswer(15000);
    if (!hello.ok) throw new Error(`agent failed to start: ${JSON.stringify(hello)}`);
    return agent;
  }

  async #readLine(): Promise<string | null> {
    for (;;) {
      const nl = this.#buffered.indexOf("\n");
      if (nl >= 0) {
        const line = this.#buffered.slice(0, nl);
        this.#buffered = this.#buffered.slice(nl + 1);
        return line;
      }
      const { value, done } = await this.#stdout.read();
      if (done) return null;
      this.#buffered += decoder.decode(value, { stream: true });
    }
  }

  async #readAnswer(timeoutMs: number): Promise<Answer> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new Error(`pyzmq agent did not answer within ${timeoutMs} ms`)),
        timeoutMs,
      );
    });
    try {
      const line = await Promise.race([this.#readLine(), timeout]);
      if (line === null) {
        throw new Error(`pyzmq agent exited: ${await this.#stderr}`);
      }
      return JSON.parse(line) as Answer;
    } finally {
      clearTimeout(timer);
    }
  }

  /** Sends one command and returns the answer (throws if none comes within `timeoutMs`). */
  async call(command: Record<string, unknown>, timeoutMs = 20000): Promise<Answer> {
    await this.#stdin.write(encoder.encode(JSON.stringify(command) + "\n"));
    return await this.#readAnswer(timeoutMs);
  }

  /** Like call(), but throws unless the answer is ok. */
  async must(command: Record<string, unknown>, timeoutMs?: number): Promise<Answer> {
    const answer = await this.call(command, timeoutMs);
    if (!answer.ok) throw new Error(`${JSON.stringify(command)} failed: ${answer.error}`);
    return answer;
  }

  /**
   * Creates a socket; returns its id. `opts` names libzmq options without the ZMQ_ prefix
   * (strings for keys and PLAIN credentials, 1 for the CURVE_SERVER and PLAIN_SERVER flags).
   */
  async socket(
    type: string,
    opts: Record<string, number | string> = {},
    identity?: Uint8Array | string,
  ): Promise<string> {
    const id = `s${this.#nextId++}`;
    const command: Record<string, unknown> = { op: "socket", id, type, opts };
    if (identity !== undefined) command.identity = toBase64(identity);
    await this.must(command);
    return id;
  }

  /** Binds and returns libzmq's LAST_ENDPOINT. */
  async bind(id: string, endpoint: string): Promise<string> {
    return (await this.must({ op: "bind", id, endpoint })).endpoint as string;
  }

  /** Connects. */
  async connect(id: string, endpoint: string): Promise<void> {
    await this.must({ op: "connect", id, endpoint });
  }

  /** Sends a multipart message; resolves false when libzmq would block (EAGAIN). */
  async send(id: string, frames: (Uint8Array | string)[], timeout = 5000): Promise<boolean> {
    const answer = await this.call({ op: "send", id, frames: frames.map(toBase64), timeout });
    if (!answer.ok && answer.error !== "EAGAIN") throw new Error(`send failed: ${answer.error}`);
    return answer.ok;
  }

  /** Receives a multipart message, or undefined on timeout. */
  async recv(id: string, timeout = 5000): Promise<Uint8Array[] | undefined> {
    const answer = await this.call({ op: "recv", id, timeout }, timeout + 20000);
    if (!answer.ok) {
      if (answer.error === "timeout") return undefined;
      throw new Error(`recv failed: ${answer.error}`);
    }
    return (answer.frames as string[]).map(fromBase64);
  }

  /** Receives until `quiet` ms pass without a message. */
  async drain(id: string, quiet = 200): Promise<Uint8Array[][]> {
    const answer = await this.must({ op: "drain", id, quiet }, 60000);
    return (answer.messages as string[][]).map((m) => m.map(fromBase64));
  }

  /** Like drain(), but returns only how many messages came and the last one. */
  async drainCount(id: string, quiet = 200): Promise<{ count: number; last: Uint8Array[] }> {
    const answer = await this.must({ op: "drain", id, quiet, summary: true }, 60000);
    return { count: answer.count as number, last: (answer.last as string[]).map(fromBase64) };
  }

  /** SUB: subscribe to a prefix. */
  async subscribe(id: string, prefix: Uint8Array | string): Promise<void> {
    await this.must({ op: "subscribe", id, prefix: toBase64(prefix) });
  }

  /** SUB: cancel one subscription. */
  async unsubscribe(id: string, prefix: Uint8Array | string): Promise<void> {
    await this.must({ op: "unsubscribe", id, prefix: toBase64(prefix) });
  }

  /** Closes one socket. */
  async closeSocket(id: string): Promise<void> {
    await this.must({ op: "close", id });
  }

  /** Sends a signal to the Python process (SIGSTOP freezes the peer). */
  signal(signal: Deno.Signal): void {
    this.#child.kill(signal);
  }

  /** Stops the agent (gracefully, else by SIGKILL) and releases every resource. */
  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    try {
      this.#child.kill("SIGCONT");
    } catch {
      // already gone
    }
    try {
      await this.#stdin.write(encoder.encode(JSON.stringify({ op: "exit" }) + "\n"));
      await this.#stdin.close();
    } catch {
      // the process already exited
    }
    const timer = setTimeout(() => {
      try {
        this.#child.kill("SIGKILL");
      } catch {
        // already gone
      }
    }, 5000);
    try {
      while (!(await this.#stdout.read()).done) {
        // discard
      }
      await this.#child.status;
      await this.#stderr;
    } finally {
      clearTimeout(timer);
    }
  }

  /** Kills the process at once (to simulate a crash) and releases every resource. */
  async kill(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    try {
      this.#child.kill("SIGKILL");
    } catch {
      // already gone
    }
    try {
      await this.#stdin.close();
    } catch {
      // pipe already broken
    }
    while (!(await this.#stdout.read()).done) {
      // discard
    }
    await this.#child.status;
    await this.#stderr;
  }
}
