import assert from "node:assert/strict";
import { skipInterop } from "../helpers/python.ts";
import { latin1 } from "../../src/zmtp/frame.ts";
import { createSocket, MAX_SUBSCRIPTION_BYTES } from "../../src/zmtp/mod.ts";
import { SubscriptionSet } from "../../src/zmtp/subscriptions.ts";
import { captureLog } from "./capture.ts";
import { bytes, PyAgent, texts } from "./pyzmq.ts";
import { delay, RawPeer, waitFor } from "./util.ts";

/** A deterministic generator (xorshift32), so a failure can be replayed. */
function random(seed: number): (n: number) => number {
  let state = seed >>> 0 || 1;
  return (n) => {
    state ^= state << 13;
    state >>>= 0;
    state ^= state >>> 17;
    state ^= state << 5;
    state >>>= 0;
    return state % n;
  };
}

/** Short strings over a 3-byte alphabet, so that prefixes share, split and merge a lot. */
function randomBytes(next: (n: number) => number, maxLength: number): Uint8Array {
  const out = new Uint8Array(next(maxLength + 1));
  for (let i = 0; i < out.length; i++) out[i] = 0x61 + next(3);
  return out;
}

Deno.test("subscriptions: the trie agrees with a brute-force multiset", () => {
  for (const seed of [1, 2, 3, 42, 1234]) {
    const next = random(seed);
    const set = new SubscriptionSet();
    const reference = new Map<string, number>();
    for (let step = 0; step < 3000; step++) {
      const prefix = randomBytes(next, 6);
      const key = latin1(prefix);
      const count = reference.get(key) ?? 0;
      if (next(3) < 2) {
        assert.equal(set.add(prefix), count === 0, `add ${key} (seed ${seed}, step ${step})`);
        reference.set(key, count + 1);
      } else {
        assert.equal(set.remove(prefix), count === 1, `remove ${key} (seed ${seed})`);
        if (count > 1) reference.set(key, count - 1);
        else reference.delete(key);
      }
      const topic = randomBytes(next, 8);
      const expected = [...reference.keys()].some((p) => latin1(topic).startsWith(p));
      assert.equal(set.matches(topic), expected, `match ${latin1(topic)} (seed ${seed})`);
      if (step % 100 === 0) {
        assert.equal(set.size, reference.size);
        const bytes = [...reference.keys()].reduce((sum, p) => sum + p.length, 0);
        assert.equal(set.bytes, bytes);
        const listed = [...set.prefixes()].map(latin1).sort();
        assert.deepEqual(listed, [...reference.keys()].sort());
      }
    }
    set.clear();
    assert.equal(set.size, 0);
    assert.equal(set.matches(new Uint8Array([0x61])), false);
  }
  // The empty prefix matches everything, even the empty topic, until its last cancel.
  const set = new SubscriptionSet();
  assert.equal(set.matches(new Uint8Array(0)), false);
  assert.equal(set.add(new Uint8Array(0)), true);
  assert.equal(set.add(new Uint8Array(0)), false);
  assert.equal(set.matches(new Uint8Array(0)), true);
  assert.equal(set.matches(bytes("anything")), true);
  assert.equal(set.remove(new Uint8Array(0)), false);
  assert.equal(set.remove(new Uint8Array(0)), true);
  assert.equal(set.remove(new Uint8Array(0)), false);
  assert.equal(set.matches(bytes("anything")), false);
});

Deno.test("subscriptions: matching cost does not grow with the number of prefixes", () => {
  const topics = Array.from({ length: 1000 }, (_, i) => bytes(`topic.${i % 97}.event.${i}`));
  const time = (set: SubscriptionSet) => {
    let hits = 0;
    const started = performance.now();
    for (let round = 0; round < 100; round++) {
      for (const topic of topics) if (set.matches(topic)) hits++;
    }
    return { ms: performance.now() - started, hits };
  };
  const few = new SubscriptionSet();
  few.add(bytes("topic.5."));
  const many = new SubscriptionSet();
  many.add(bytes("topic.5."));
  // 10,000 prefixes that share the topics' structure but never match them.
  for (let i = 0; i < 10_000; i++) many.add(bytes(`topic.${i % 97}.other.${i}`));
  time(few); // warm up
  time(many);
  const a = time(few);
  const b = time(many);
  assert.equal(a.hits, b.hits);
  // A linear scan would be thousands of times slower; allow for a noisy machine.
  assert.ok(
    b.ms < a.ms * 10 + 20,
    `1 prefix: ${a.ms.toFixed(1)} ms, 10,001: ${b.ms.toFixed(1)} ms`,
  );
});

Deno.test({
  name: "maxSubscriptions: a SUBSCRIBE flood is dropped, as is one of too many bytes",
  ignore: skipInterop,
  async fn() {
    const capture = captureLog();
    const pub = createSocket("PUB", { maxSubscriptions: 1000 });
    const endpoint = await pub.bind("tcp://127.0.0.1:0");
    const agent = await PyAgent.start();
    const flood = await RawPeer.connect(endpoint);
    const heavy = await RawPeer.connect(endpoint);
    let publishing = true;
    let published = 0;
    const ticker = (async () => {
      for (; publishing; published++) {
        pub.trySend([bytes("news"), bytes(`${published}`)]);
        await delay(5);
      }
    })();
    try {
      const sub = await agent.socket("SUB");
      await agent.subscribe(sub, "news");
      await agent.connect(sub, endpoint);
      assert.ok(await agent.recv(sub, 5000), "the good subscriber gets news");
      await flood.handshake("SUB");
      // Repeating a prefix costs nothing: only distinct ones count.
      for (let i = 0; i < 2000; i++) await flood.command("SUBSCRIBE", "same");
      await delay(100);
      assert.equal(pub.peerCount, 2);
      // With "same", 1000 distinct prefixes: the most allowed.
      for (let i = 0; i < 999; i++) await flood.command("SUBSCRIBE", `topic.${i}`);
      await delay(100);
      assert.equal(pub.peerCount, 2, "1000 distinct prefixes are allowed");
      await flood.command("SUBSCRIBE", "one-too-many");
      assert.equal(await flood.closedByPeer(3000), true, "the 1001st distinct prefix drops it");
      assert.equal(
        capture.matching("too many subscriptions: more than maxSubscriptions 1000 prefixes")
          .length,
        1,
      );
      // 20 prefixes of 60 KiB: few, but more than 1 MiB in all.
      await heavy.handshake("SUB");
      const big = new Uint8Array(60 * 1024).fill(0x78);
      let sent = 0;
      for (; sent < 20; sent++) {
        big[0] = 0x41 + sent;
        try {
          await heavy.command("SUBSCRIBE", big);
        } catch {
          break; // dropped meanwhile
        }
      }
      assert.equal(await heavy.closedByPeer(3000), true, "too many subscription bytes drop it");
      assert.ok(sent * big.length > MAX_SUBSCRIPTION_BYTES);
      assert.equal(
        capture.matching(
          `too many subscriptions: their prefixes take more than ${MAX_SUBSCRIPTION_BYTES} bytes`,
        ).length,
        1,
      );
      await waitFor(() => pub.peerCount === 1, "only the good subscriber to remain");
      const mark = published;
      for (let latest = -1; latest <= mark;) {
        const got = texts(await agent.recv(sub, 5000));
        assert.equal(got?.[0], "news", "the good subscriber keeps getting news");
        latest = Number(got[1]);
      }
    } finally {
      publishing = false;
      await ticker;
      flood.close();
      heavy.close();
      await agent.stop();
      await pub.close();
      capture.restore();
    }
  },
});
