/**
 * CURVE and PLAIN against libzmq (pyzmq): every socket pair encrypted in both roles, the
 * allow-list (and its file edited while serving), a wrong server key, tampered, replayed and
 * reordered boxes on a raw connection, Z85 against zmq.z85, PLAIN passwords.
 */
import assert from "node:assert/strict";
import { skipInterop } from "../helpers/python.ts";
import { configureLog } from "../../src/log.ts";
import {
  createSocket,
  curveKeyPair,
  loadCurve,
  type Socket,
  z85Decode,
  z85Encode,
} from "../../src/zmtp/mod.ts";
import { CurveClient } from "../../src/zmtp/curve.ts";
import { Subscriber } from "../../src/client/subscriber.ts";
import {
  decodeCommand,
  encodeCommand,
  encodeMessage,
  encodeProperties,
} from "../../src/zmtp/frame.ts";
import { buildGreeting } from "../../src/zmtp/greeting.ts";
import { PAIRINGS } from "./pairings.ts";
import { bytes, PyAgent, texts } from "./pyzmq.ts";
import { RawPeer, serveEcho, waitFor } from "./util.ts";

await loadCurve();

/** Collects the log's lines for the test's duration. */
function captureLog(): { lines: string[]; stop(): void } {
  const lines: string[] = [];
  configureLog({ level: "warn", sink: (line) => lines.push(line), linesPerSecond: 1000 });
  return { lines, stop: () => configureLog({ level: "quiet" }) };
}

/** A pyzmq CURVE client's options for a server with public key `server`. */
async function pyClient(agent: PyAgent, server: string): Promise<Record<string, string>> {
  const pair = await agent.must({ op: "keypair" });
  return {
    CURVE_SERVERKEY: server,
    CURVE_PUBLICKEY: pair.public as string,
    CURVE_SECRETKEY: pair.secret as string,
  };
}

Deno.test({
  name: "curve: every socket pair with pyzmq, encrypted, lomq as server and as client",
  ignore: skipInterop,
  async fn(t) {
    const agent = await PyAgent.start();
    try {
      const server = await agent.must({ op: "keypair" });
      const serverPublic = server.public as string;
      const serverSecret = server.secret as string;
      for (const [name, pairing] of Object.entries(PAIRINGS)) {
        for (const lomqServes of [true, false]) {
          await t.step(
            `${name}, ${lomqServes ? "lomq" : "libzmq"} is the CURVE server`,
            async () => {
              const socket = createSocket(pairing.lomq, {
                ...pairing.lomqOptions,
                ...(lomqServes
                  ? { curveServer: true, curveSecretKey: serverSecret }
                  : { curveServerKey: serverPublic }),
              });
              const py = await agent.socket(pairing.py, {
                ...pairing.pyOptions,
                ...(lomqServes
                  ? await pyClient(agent, serverPublic)
                  : { CURVE_SERVER: 1, CURVE_SECRETKEY: serverSecret }),
              }, pairing.pyIdentity);
              try {
                if (lomqServes) await agent.connect(py, await socket.bind("tcp://127.0.0.1:0"));
                else socket.connect(await agent.bind(py, "tcp://127.0.0.1:*"));
                await pairing.scenario(socket, agent, py);
              } finally {
                await agent.closeSocket(py);
                await socket.close();
              }
            },
          );
        }
      }
    } finally {
      await agent.stop();
    }
  },
});

Deno.test({
  name: "curve: the allow-list serves listed keys, refuses (and logs) others, and follows its file",
  ignore: skipInterop,
  async fn() {
    const agent = await PyAgent.start();
    const log = captureLog();
    const dir = await Deno.makeTempDir({ prefix: "lomq-curve-" });
    const allowFile = `${dir}/clients`;
    const server = curveKeyPair();
    const rep = createSocket("REP", {
      curveServer: true,
      curveSecretKey: server.secretKey,
      curveAllowFile: allowFile,
      curveAllow: [],
    });
    const serving = serveEcho(rep);
    try {
      const endpoint = await rep.bind("tcp://127.0.0.1:0");
      const serverKey = z85Encode(server.publicKey);
      const alice = await pyClient(agent, serverKey);
      const bob = await pyClient(agent, serverKey);
      await Deno.writeTextFile(allowFile, `# who may call\n${alice.CURVE_PUBLICKEY}\nnot-a-key\n`);
      const ask = async (who: Record<string, string>, body: string, timeout: number) => {
        const req = await agent.socket("REQ", who);
        try {
          await agent.connect(req, endpoint);
          await agent.send(req, [body]);
          return texts(await agent.recv(req, timeout));
        } finally {
          await agent.closeSocket(req);
        }
      };
      assert.deepEqual(await ask(alice, "a1", 5000), ["re:a1"]);
      assert.equal(await ask(bob, "b1", 700), undefined);
      await waitFor(
        () => log.lines.some((l) => l.includes(`${bob.CURVE_PUBLICKEY} is not in the allow-list`)),
        "the refusal of bob's key in the log",
      );
      assert.ok(
        log.lines.some((l) => l.includes(bob.CURVE_PUBLICKEY) && l.includes("tcp://127.0.0.1:")),
        "the refusal names the peer's address",
      );
      assert.ok(log.lines.some((l) => l.includes("clients:3: skipped")), log.lines.join("\n"));
      assert.deepEqual(await ask(alice, "a2", 5000), ["re:a2"], "alice is still served");

      // The file changes while the server runs: bob in, alice out.
      await Deno.writeTextFile(allowFile, `${bob.CURVE_PUBLICKEY}  # bob, added later\n`);
      assert.deepEqual(await ask(bob, "b2", 5000), ["re:b2"]);
      assert.equal(await ask(alice, "a3", 700), undefined);
    } finally {
      log.stop();
      await rep.close();
      await serving;
      await agent.stop();
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "curve: a wrong server key fails the handshake, without a hang, both ways",
  ignore: skipInterop,
  async fn() {
    const agent = await PyAgent.start();
    const log = captureLog();
    const server = curveKeyPair();
    const rep = createSocket("REP", { curveServer: true, curveSecretKey: server.secretKey });
    const serving = serveEcho(rep);
    const stranger = z85Encode(curveKeyPair().publicKey);
    try {
      // pyzmq with the wrong key against lomq: no reply, the refusal logged, lomq serves on.
      const endpoint = await rep.bind("tcp://127.0.0.1:0");
      const wrong = await agent.socket("REQ", await pyClient(agent, stranger));
      await agent.connect(wrong, endpoint);
      await agent.send(wrong, ["x"]);
      assert.equal(await agent.recv(wrong, 700), undefined);
      await waitFor(() => log.lines.some((l) => l.includes("HELLO does not open")), "log line");
      const right = await agent.socket("REQ", await pyClient(agent, z85Encode(server.publicKey)));
      await agent.connect(right, endpoint);
      await agent.send(right, ["y"]);
      assert.deepEqual(texts(await agent.recv(right)), ["re:y"]);

      // lomq with the wrong key against pyzmq: the request times out, the reason is logged.
      const pyServer = await agent.must({ op: "keypair" });
      const pyRep = await agent.socket("REP", {
        CURVE_SERVER: 1,
        CURVE_SECRETKEY: pyServer.secret as string,
      });
      const pyEndpoint = await agent.bind(pyRep, "tcp://127.0.0.1:*");
      const req = createSocket("REQ", { curveServerKey: stranger });
      try {
        req.connect(pyEndpoint);
        assert.equal(await req.send([bytes("q")], 1000), true);
        assert.equal(await req.recv(700), undefined);
        await waitFor(
          () => log.lines.some((l) => l.includes("during the CURVE handshake (a wrong server key")),
          "the client's log line",
        );
      } finally {
        await req.close();
      }
    } finally {
      log.stop();
      await rep.close();
      await serving;
      await agent.stop();
    }
  },
});

/** A raw CURVE client on a lomq REP server, driven with the library's own mechanism. */
async function rawCurvePeer(endpoint: string, serverKey: Uint8Array) {
  const client = new CurveClient(
    serverKey,
    curveKeyPair(),
    encodeProperties([["Socket-Type", bytes("REQ")]]),
  );
  const peer = await RawPeer.connect(endpoint);
  const hello = client.greet()[0];
  const greeting = buildGreeting("CURVE", false);
  await peer.write(greeting);
  await peer.write(hello);
  for (let step = 0; step < 2; step++) {
    const frame = await peer.readFrame(5000);
    assert.ok(frame !== undefined, "a handshake command from the server");
    const { name, data } = decodeCommand(frame.body);
    const answer = client.handshake(name, data);
    if (answer.reply !== undefined) await peer.write(answer.reply);
  }
  const request = (body: string) => client.seal(encodeMessage([new Uint8Array(0), bytes(body)]));
  const reply = async (): Promise<string[]> => {
    const parts: string[] = [];
    for (;;) {
      const frame = await peer.readFrame(5000);
      assert.ok(frame !== undefined, "a reply");
      parts.push(new TextDecoder().decode(client.open(frame.body)));
      if ((client.openedFlags & 1) === 0) return parts;
    }
  };
  return { peer, request, reply };
}

Deno.test("curve: a flipped byte, a replayed and a reordered box each close that connection only", async () => {
  const log = captureLog();
  const server = curveKeyPair();
  const rep = createSocket("REP", { curveServer: true, curveSecretKey: server.secretKey });
  const serving = serveEcho(rep);
  try {
    const endpoint = await rep.bind("tcp://127.0.0.1:0");
    const bystander = await rawCurvePeer(endpoint, server.publicKey);

    const tampered = await rawCurvePeer(endpoint, server.publicKey);
    const box = tampered.request("t");
    box[box.length - 3] ^= 1;
    await tampered.peer.write(box);
    assert.equal(await tampered.peer.closedByPeer(5000), true);
    assert.ok(log.lines.some((l) => l.includes("box failed to open")), log.lines.join("\n"));

    const replayed = await rawCurvePeer(endpoint, server.publicKey);
    const first = replayed.request("r1");
    await replayed.peer.write(first);
    assert.deepEqual(await replayed.reply(), ["", "re:r1"]);
    await replayed.peer.write(first);
    assert.equal(await replayed.peer.closedByPeer(5000), true);
    assert.ok(log.lines.some((l) => l.includes("a replayed or reordered message")));

    const reordered = await rawCurvePeer(endpoint, server.publicKey);
    const earlier = reordered.request("o1");
    const later = reordered.request("o2");
    await reordered.peer.write(later);
    assert.deepEqual(await reordered.reply(), ["", "re:o2"]);
    await reordered.peer.write(earlier);
    assert.equal(await reordered.peer.closedByPeer(5000), true);

    // The well-behaved peer kept its connection all along.
    await bystander.peer.write(bystander.request("still"));
    assert.deepEqual(await bystander.reply(), ["", "re:still"]);
    bystander.peer.close();
  } finally {
    log.stop();
    await rep.close();
    await serving;
  }
});

Deno.test({
  name: "curve: Z85 and key pairs agree with pyzmq",
  ignore: skipInterop,
  async fn() {
    const agent = await PyAgent.start();
    try {
      assert.equal(
        z85Encode(new Uint8Array([0x86, 0x4f, 0xd2, 0x6f, 0xb5, 0x59, 0xf7, 0x5b])),
        "HelloWorld",
      );
      for (let i = 0; i < 20; i++) {
        const data = crypto.getRandomValues(new Uint8Array(4 * (i + 1)));
        const theirs = await agent.must({
          op: "z85_encode",
          data: btoa(String.fromCharCode(...data)),
        });
        assert.equal(z85Encode(data), theirs.text);
        assert.deepEqual(z85Decode(theirs.text as string), data);
      }
      assert.throws(() => z85Decode("abcd"), /multiple of 5/);
      assert.throws(() => z85Decode('abc"e'), /not a Z85 character/);
      const pair = curveKeyPair();
      const derived = await agent.must({ op: "curve_public", secret: z85Encode(pair.secretKey) });
      assert.equal(derived.public, z85Encode(pair.publicKey));
    } finally {
      await agent.stop();
    }
  },
});

Deno.test({
  name: "plain: pyzmq clients with good and bad passwords; lomq as a PLAIN client",
  ignore: skipInterop,
  async fn() {
    const agent = await PyAgent.start();
    const log = captureLog();
    const dir = await Deno.makeTempDir({ prefix: "lomq-plain-" });
    const users = `${dir}/users`;
    await Deno.writeTextFile(users, "# user:password\nalice:open sesame\n");
    const rep = createSocket("REP", { plainServer: true, plainUsersFile: users });
    const serving = serveEcho(rep);
    let req: Socket | undefined;
    try {
      const endpoint = await rep.bind("tcp://127.0.0.1:0");
      const ask = async (password: string, timeout: number) => {
        const id = await agent.socket("REQ", {
          PLAIN_USERNAME: "alice",
          PLAIN_PASSWORD: password,
        });
        try {
          await agent.connect(id, endpoint);
          await agent.send(id, ["hi"]);
          return texts(await agent.recv(id, timeout));
        } finally {
          await agent.closeSocket(id);
        }
      };
      assert.deepEqual(await ask("open sesame", 5000), ["re:hi"]);
      assert.equal(await ask("guess", 700), undefined);
      await waitFor(() => log.lines.some((l) => l.includes("PLAIN user 'alice' refused")), "log");

      // lomq as the client of a pyzmq PLAIN server checking passwords with pyzmq's ZAP handler.
      await agent.must({ op: "auth_plain", passwords: { bob: "pw" } });
      const pyRep = await agent.socket("REP", { PLAIN_SERVER: 1 });
      const pyEndpoint = await agent.bind(pyRep, "tcp://127.0.0.1:*");
      req = createSocket("REQ", { plainUsername: "bob", plainPassword: "pw" });
      req.connect(pyEndpoint);
      assert.equal(await req.send([bytes("q")], 5000), true);
      assert.deepEqual(texts(await agent.recv(pyRep)), ["q"]);
      await agent.send(pyRep, ["a"]);
      assert.deepEqual(texts(await req.recv(5000)), ["a"]);
    } finally {
      log.stop();
      await req?.close();
      await rep.close();
      await serving;
      await agent.stop();
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "curve: heartbeats travel inside MESSAGE boxes, both ways, with pyzmq",
  ignore: skipInterop,
  async fn() {
    const agent = await PyAgent.start();
    const lines: string[] = [];
    configureLog({ level: "debug", sink: (line) => lines.push(line), linesPerSecond: 1000 });
    const server = curveKeyPair();
    const rep = createSocket("REP", {
      curveServer: true,
      curveSecretKey: server.secretKey,
      heartbeatIvlMs: 50,
      heartbeatTimeoutMs: 400,
    });
    const serving = serveEcho(rep);
    try {
      const endpoint = await rep.bind("tcp://127.0.0.1:0");
      const req = await agent.socket("REQ", {
        ...(await pyClient(agent, z85Encode(server.publicKey))),
        HEARTBEAT_IVL: 50,
        HEARTBEAT_TIMEOUT: 400,
      });
      await agent.connect(req, endpoint);
      await agent.send(req, ["before"]);
      assert.deepEqual(texts(await agent.recv(req)), ["re:before"]);
      // Long enough for PINGs and PONGs both ways; a PING libzmq could not open (or that we
      // could not) would have dropped the connection by a heartbeat timeout.
      await new Promise((resolve) => setTimeout(resolve, 1200));
      await agent.send(req, ["after"]);
      assert.deepEqual(texts(await agent.recv(req)), ["re:after"]);
      assert.deepEqual(lines.filter((l) => /dropped|disconnected/.test(l)), []);
      await agent.closeSocket(req);
    } finally {
      configureLog({ level: "quiet" });
      await rep.close();
      await serving;
      await agent.stop();
    }
  },
});

Deno.test("curve: the TypeScript Subscriber takes { curve: { serverKey } }", async () => {
  const server = curveKeyPair();
  const pub = createSocket("PUB", { curveServer: true, curveSecretKey: server.secretKey });
  const endpoint = await pub.bind("tcp://127.0.0.1:0");
  const subscriber = new Subscriber(endpoint, ["price."], {
    curve: { serverKey: z85Encode(server.publicKey) },
  });
  try {
    const received = (async () => {
      for await (const publication of subscriber) return publication;
    })();
    let publication: Awaited<typeof received> | undefined;
    // A subscriber misses what is published before its subscription arrives: publish until
    // the first publication comes through.
    for (let i = 0; i < 200 && publication === undefined; i++) {
      pub.trySend([bytes("price.EURUSD"), new Uint8Array([0x03])]);
      publication = await Promise.race([
        received,
        new Promise<undefined>((resolve) => setTimeout(() => resolve(undefined), 25)),
      ]);
    }
    assert.equal(publication?.topic, "price.EURUSD");
    assert.equal(publication?.value, 3);
  } finally {
    await subscriber.close();
    await pub.close();
  }
});

Deno.test("curve: hostile handshakes close their connection, logged, and others are served", async () => {
  const log = captureLog();
  const server = curveKeyPair();
  const rep = createSocket("REP", { curveServer: true, curveSecretKey: server.secretKey });
  const serving = serveEcho(rep);
  const greeting = buildGreeting("CURVE", false);
  const metadata = encodeProperties([["Socket-Type", bytes("REQ")]]);
  try {
    const endpoint = await rep.bind("tcp://127.0.0.1:0");
    const attempt = async (commands: Uint8Array[]) => {
      const peer = await RawPeer.connect(endpoint);
      await peer.write(greeting);
      for (const command of commands) await peer.write(command);
      const closed = await peer.closedByPeer(5000);
      peer.close();
      return closed;
    };
    const hello = new CurveClient(server.publicKey, curveKeyPair(), metadata).greet()[0];
    // A HELLO one byte short, and one whose client key is all zeros (a low-order point).
    const short = encodeCommand("HELLO", decodeCommand(hello.subarray(2)).data.subarray(1));
    assert.equal(await attempt([short]), true);
    const zero = hello.slice();
    zero.fill(0, 2 + 6 + 74, 2 + 6 + 106);
    assert.equal(await attempt([zero]), true);
    // A well-formed HELLO, then an INITIATE whose cookie the server never issued.
    const forged = encodeCommand("INITIATE", crypto.getRandomValues(new Uint8Array(300)));
    assert.equal(await attempt([hello, forged]), true);
    // INITIATE first, MESSAGE before READY, READY from a client: each out of place.
    assert.equal(await attempt([forged]), true);
    assert.equal(await attempt([encodeCommand("MESSAGE", new Uint8Array(40))]), true);
    assert.equal(await attempt([encodeCommand("READY")]), true);
    for (const reason of ["malformed HELLO", "HELLO does not open", "cookie we did not issue"]) {
      assert.ok(log.lines.some((l) => l.includes(reason)), `${reason} in\n${log.lines.join("\n")}`);
    }
    const honest = await rawCurvePeer(endpoint, server.publicKey);
    await honest.peer.write(honest.request("ok"));
    assert.deepEqual(await honest.reply(), ["", "re:ok"]);
    honest.peer.close();
  } finally {
    log.stop();
    await rep.close();
    await serving;
  }
});
