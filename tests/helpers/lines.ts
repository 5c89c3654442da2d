/**
 * A child's output read as it comes, line by line, for tests that wait for what a running
 * process prints.
 *
 * @module
 */

/** Collects a stream's lines as they arrive. */
export class Lines {
  /** The lines so far (the last, unfinished one only once the stream ended). */
  readonly lines: string[] = [];
  /** Resolves once the stream ended. */
  readonly done: Promise<void>;

  constructor(stream: ReadableStream<Uint8Array>) {
    this.done = (async () => {
      let partial = "";
      for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
        const parts = (partial + chunk).split("\n");
        partial = parts.pop() ?? "";
        this.lines.push(...parts);
      }
      if (partial !== "") this.lines.push(partial);
    })();
  }

  /** Waits (bounded) for a line matching `pattern` after the first `from`; its index. */
  async find(pattern: RegExp, from = 0, ms = 20000): Promise<number> {
    const deadline = Date.now() + ms;
    for (;;) {
      const index = this.lines.findIndex((line, i) => i >= from && pattern.test(line));
      if (index >= 0) return index;
      if (Date.now() > deadline) {
        throw new Error(`no line matching ${pattern} within ${ms} ms:\n${this.lines.join("\n")}`);
      }
      await new Promise((r) => setTimeout(r, 25));
    }
  }
}
