/**
 * Every supported socket pair with a libzmq (pyzmq) peer: a short exchange each, run by the
 * interop matrix (matrix_test.ts) and again under CURVE (curve_test.ts).
 *
 * @module
 */
import assert from "node:assert/strict";
import type { Socket, SocketOptions, SocketType } from "../../src/zmtp/mod.ts";
import { EHOSTUNREACH } from "../../src/zmtp/mod.ts";
import { bytes, type PyAgent, texts } from "./pyzmq.ts";

/** One exchange between a lomq socket and a pyzmq socket (its id). */
export type Scenario = (lomq: Socket, agent: PyAgent, py: string) => Promise<void>;

/** A lomq socket type, its libzmq counterpart, and what they exchange. */
export interface Pairing {
  lomq: SocketType;
  py: string;
  lomqOptions?: SocketOptions;
  pyOptions?: Record<string, number | string>;
  pyIdentity?: string;
  scenario: Scenario;
}

const b = (frames: string[]) => frames.map(bytes);

async function lomqRecv(socket: Socket): Promise<string[] | undefined> {
  return texts(await socket.recv(5000));
}

/** SUB side needs the subscription to reach the publisher first ("slow joiner"). */
async function syncFromPy(agent: PyAgent, pub: string, sub: Socket, topic: string) {
  for (let i = 0; i < 250; i++) {
    await agent.send(pub, [topic]);
    const got = await sub.recv(20);
    if (got !== undefined) {
      assert.deepEqual(texts(got), [topic]);
      while (await sub.recv(50) !== undefined) {
        // drain duplicates of the sync message
      }
      return;
    }
  }
  throw new Error("subscription never reached the pyzmq publisher");
}

async function syncFromLomq(pub: Socket, agent: PyAgent, sub: string, topic: string) {
  for (let i = 0; i < 250; i++) {
    assert.equal(pub.trySend([bytes(topic)]), true);
    const got = await agent.recv(sub, 20);
    if (got !== undefined) {
      assert.deepEqual(texts(got), [topic]);
      await agent.drain(sub, 50);
      return;
    }
  }
  throw new Error("subscription never reached the lomq publisher");
}

/** Every pairing, by name. */
export const PAIRINGS: Record<string, Pairing> = {
  "lomq REQ - libzmq REP": {
    lomq: "REQ",
    py: "REP",
    async scenario(req, agent, rep) {
      for (let i = 0; i < 3; i++) {
        assert.equal(await req.send(b([`q${i}`, "more"]), 5000), true);
        assert.deepEqual(texts(await agent.recv(rep)), [`q${i}`, "more"]);
        await agent.send(rep, [`a${i}`]);
        assert.deepEqual(await lomqRecv(req), [`a${i}`]);
      }
    },
  },
  "lomq REP - libzmq REQ": {
    lomq: "REP",
    py: "REQ",
    async scenario(rep, agent, req) {
      for (let i = 0; i < 3; i++) {
        await agent.send(req, [`q${i}`]);
        assert.deepEqual(await lomqRecv(rep), [`q${i}`]);
        assert.equal(rep.trySend(b([`a${i}`, "x"])), true);
        assert.deepEqual(texts(await agent.recv(req)), [`a${i}`, "x"]);
      }
    },
  },
  "lomq REQ - libzmq ROUTER": {
    lomq: "REQ",
    py: "ROUTER",
    lomqOptions: { identity: bytes("lomq-req") },
    async scenario(req, agent, router) {
      assert.equal(await req.send(b(["q"]), 5000), true);
      assert.deepEqual(texts(await agent.recv(router)), ["lomq-req", "", "q"]);
      await agent.send(router, ["lomq-req", "", "a"]);
      assert.deepEqual(await lomqRecv(req), ["a"]);
    },
  },
  "lomq ROUTER - libzmq REQ": {
    lomq: "ROUTER",
    py: "REQ",
    pyIdentity: "py-req",
    async scenario(router, agent, req) {
      await agent.send(req, ["q"]);
      assert.deepEqual(await lomqRecv(router), ["py-req", "", "q"]);
      assert.equal(router.trySend(b(["nobody", "", "x"])), false);
      assert.equal(router.lastErrno, EHOSTUNREACH);
      assert.equal(router.trySend(b(["py-req", "", "a"])), true);
      assert.deepEqual(texts(await agent.recv(req)), ["a"]);
    },
  },
  "lomq DEALER - libzmq REP": {
    lomq: "DEALER",
    py: "REP",
    async scenario(dealer, agent, rep) {
      assert.equal(await dealer.send(b(["", "q1"]), 5000), true);
      assert.equal(await dealer.send(b(["", "q2"]), 5000), true);
      assert.deepEqual(texts(await agent.recv(rep)), ["q1"]);
      await agent.send(rep, ["a1"]);
      assert.deepEqual(texts(await agent.recv(rep)), ["q2"]);
      await agent.send(rep, ["a2"]);
      assert.deepEqual(await lomqRecv(dealer), ["", "a1"]);
      assert.deepEqual(await lomqRecv(dealer), ["", "a2"]);
    },
  },
  "lomq REP - libzmq DEALER": {
    lomq: "REP",
    py: "DEALER",
    async scenario(rep, agent, dealer) {
      await agent.send(dealer, ["hop", "", "q"]);
      assert.deepEqual(await lomqRecv(rep), ["q"]);
      assert.equal(rep.trySend(b(["a"])), true);
      assert.deepEqual(texts(await agent.recv(dealer)), ["hop", "", "a"]);
    },
  },
  "lomq DEALER - libzmq ROUTER": {
    lomq: "DEALER",
    py: "ROUTER",
    lomqOptions: { identity: bytes("lomq-dealer") },
    async scenario(dealer, agent, router) {
      assert.equal(await dealer.send(b(["q1"]), 5000), true);
      assert.equal(await dealer.send(b(["q2", "x"]), 5000), true);
      assert.deepEqual(texts(await agent.recv(router)), ["lomq-dealer", "q1"]);
      assert.deepEqual(texts(await agent.recv(router)), ["lomq-dealer", "q2", "x"]);
      await agent.send(router, ["lomq-dealer", "a1"]);
      await agent.send(router, ["lomq-dealer", "a2"]);
      assert.deepEqual(await lomqRecv(dealer), ["a1"]);
      assert.deepEqual(await lomqRecv(dealer), ["a2"]);
    },
  },
  "lomq ROUTER - libzmq DEALER": {
    lomq: "ROUTER",
    py: "DEALER",
    async scenario(router, agent, dealer) {
      // No identity announced: lomq generates 0x00 + 4 bytes, as libzmq does.
      await agent.send(dealer, ["q1"]);
      const got = await router.recv(5000);
      assert.ok(got !== undefined);
      assert.equal(got[0].length, 5);
      assert.equal(got[0][0], 0);
      assert.deepEqual(texts(got.slice(1)), ["q1"]);
      assert.equal(router.trySend([got[0], bytes("a1"), bytes("x")]), true);
      assert.deepEqual(texts(await agent.recv(dealer)), ["a1", "x"]);
    },
  },
  "lomq PUB - libzmq SUB": {
    lomq: "PUB",
    py: "SUB",
    async scenario(pub, agent, sub) {
      await agent.subscribe(sub, "t.");
      await syncFromLomq(pub, agent, sub, "t.sync");
      for (const topic of ["u.1", "t.1", "t", "t.2"]) pub.trySend(b([topic, "body"]));
      assert.deepEqual((await agent.drain(sub, 200)).map(texts), [["t.1", "body"], [
        "t.2",
        "body",
      ]]);
    },
  },
  "lomq SUB - libzmq PUB": {
    lomq: "SUB",
    py: "PUB",
    async scenario(sub, agent, pub) {
      sub.subscribe("t.");
      await syncFromPy(agent, pub, sub, "t.sync");
      for (const topic of ["u.1", "t.1", "t", "t.2"]) await agent.send(pub, [topic, "body"]);
      assert.deepEqual(await lomqRecv(sub), ["t.1", "body"]);
      assert.deepEqual(await lomqRecv(sub), ["t.2", "body"]);
      assert.equal(await sub.recv(200), undefined);
      sub.unsubscribe("t.");
      sub.subscribe("u.");
      await syncFromPy(agent, pub, sub, "u.sync");
      await agent.send(pub, ["t.3"]);
      await agent.send(pub, ["u.3"]);
      assert.deepEqual(await lomqRecv(sub), ["u.3"]);
    },
  },
  "lomq PUSH - libzmq PULL": {
    lomq: "PUSH",
    py: "PULL",
    async scenario(push, agent, pull) {
      for (let i = 0; i < 20; i++) assert.equal(await push.send(b([`m${i}`, "x"]), 5000), true);
      const got = await agent.drain(pull, 300);
      assert.deepEqual(got.map(texts), Array.from({ length: 20 }, (_, i) => [`m${i}`, "x"]));
    },
  },
  "lomq PULL - libzmq PUSH": {
    lomq: "PULL",
    py: "PUSH",
    async scenario(pull, agent, push) {
      for (let i = 0; i < 20; i++) await agent.send(push, [`m${i}`]);
      for (let i = 0; i < 20; i++) assert.deepEqual(await lomqRecv(pull), [`m${i}`]);
    },
  },
};
