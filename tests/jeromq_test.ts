/**
 * Interop with Debian's JeroMQ 0.3.6, a pure-Java stack that speaks ZMTP 2.0: it calls a
 * `lomq serve` server (REQ to REP, and a SUB on its PUB), and a lomq REQ calls it. Skipped
 * when java or the jar is missing, unless LOMQ_REQUIRE_INTEROP is set.
 *
 * Needs: `apt-get install libjeromq-java openjdk-17-jre-headless` (the jar is at
 * /usr/share/java/jeromq.jar; LOMQ_JEROMQ_JAR names another).
 */

import assert from "node:assert/strict";
import { interopRequired } from "./helpers/python.ts";
import { ROOT, startServe } from "./helpers/lomq.ts";
import { createSocket } from "../src/zmtp/mod.ts";

const JAR = Deno.env.get("LOMQ_JEROMQ_JAR") ?? "/usr/share/java/jeromq.jar";
const PEER = `${ROOT}tests/fixtures/JeromqPeer.java`;

async function javaWorks(): Promise<boolean> {
  try {
    await Deno.stat(JAR);
    const out = await new Deno.Command("java", { args: ["-version"], stderr: "null" }).output();
    return out.success;
  } catch {
    return false;
  }
}

const available = await javaWorks();
if (!available && interopRequired()) {
  throw new Error(
    `LOMQ_REQUIRE_INTEROP is set but JeroMQ cannot run (java on PATH and ${JAR} needed); ` +
      "install libjeromq-java and openjdk-17-jre-headless (apt) or set LOMQ_JEROMQ_JAR",
  );
}

/** Runs JeromqPeer.java with `args`; killed after 60 s. Returns its exit code and lines. */
function startPeer(args: string[]): { lines: AsyncIterator<string>; done: Promise<number> } {
  const child = new Deno.Command("java", {
    args: ["-cp", JAR, PEER, ...args],
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const timer = setTimeout(() => child.kill("SIGKILL"), 60_000);
  const lines = child.stdout.pipeThrough(new TextDecoderStream()).pipeThrough(splitLines());
  return {
    lines: lines[Symbol.asyncIterator](),
    done: child.status.then((status) => {
      clearTimeout(timer);
      return status.code;
    }),
  };
}

function splitLines(): TransformStream<string, string> {
  let rest = "";
  return new TransformStream({
    transform(chunk, controller) {
      const parts = (rest + chunk).split("\n");
      rest = parts.pop()!;
      for (const line of parts) controller.enqueue(line);
    },
    flush(controller) {
      if (rest !== "") controller.enqueue(rest);
    },
  });
}

async function allLines(lines: AsyncIterator<string>): Promise<string[]> {
  const out: string[] = [];
  for (let next = await lines.next(); !next.done; next = await lines.next()) out.push(next.value);
  return out;
}

const hex = (text: string) =>
  [...new TextEncoder().encode(text)].map((b) => b.toString(16).padStart(2, "0")).join("");

Deno.test({
  name: "JeroMQ 0.3.6 (ZMTP 2.0) calls lomq serve: REQ to REP, and a SUB on its PUB",
  ignore: !available,
  async fn() {
    const { server, rpc, pub } = await startServe();
    try {
      // msgpack ["add", 1, 2], then ["announce", "news", 7] (publishes "news", 7).
      const add = startPeer(["call", rpc, "93a3" + hex("add") + "0102"]);
      assert.deepEqual(await allLines(add.lines), [`reply ${hex("OK")} 03`]);
      assert.equal(await add.done, 0);
      const announce = "93a8" + hex("announce") + "a4" + hex("news") + "07";
      const sub = startPeer(["call", rpc, announce, pub, "news"]);
      const lines = await allLines(sub.lines);
      assert.equal(lines.length, 2, lines.join("\n"));
      assert.match(lines[0], new RegExp(`^reply ${hex("OK")} `));
      assert.equal(lines[1], `message ${hex("news")} 07`);
      assert.equal(await sub.done, 0);
    } finally {
      await server.stop();
    }
  },
});

Deno.test({
  name: "a lomq REQ calls a JeroMQ 0.3.6 REP",
  ignore: !available,
  async fn() {
    const peer = startPeer(["rep", "2"]);
    const req = createSocket("REQ");
    try {
      const first = await peer.lines.next();
      const port = /^port (\d+)$/.exec(first.done ? "" : first.value)?.[1];
      assert.ok(port !== undefined, `JeroMQ said ${JSON.stringify(first.value)}`);
      req.connect(`tcp://127.0.0.1:${port}`);
      for (const body of ["ping", "x".repeat(1000)]) {
        assert.equal(await req.send([new TextEncoder().encode(body)], 5000), true);
        const reply = await req.recv(10_000);
        assert.deepEqual(reply?.map((f) => new TextDecoder().decode(f)), [`jq:${body}`]);
      }
      assert.equal(await peer.done, 0);
    } finally {
      await req.close();
      await allLines(peer.lines);
      await peer.done;
    }
  },
});
