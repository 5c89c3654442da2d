import assert from "node:assert/strict";
import { skipInterop } from "../helpers/python.ts";
import { createSocket, EADDRINUSE, EINVAL, ZmqError } from "../../src/zmtp/mod.ts";
import { PyAgent } from "./pyzmq.ts";
import { serveEcho } from "./util.ts";

Deno.test({
  name: "ipc: ipc://* binds a fresh path that libzmq can reach; the file goes on close",
  ignore: skipInterop || Deno.build.os === "windows",
  async fn() {
    const rep = createSocket("REP");
    const endpoint = await rep.bind("ipc://*");
    assert.match(endpoint, /^ipc:\/\/\/.+\.sock$/);
    const path = endpoint.slice("ipc://".length);
    assert.ok(Deno.lstatSync(path).isSocket);
    const server = serveEcho(rep);
    const agent = await PyAgent.start();
    try {
      const req = await agent.socket("REQ");
      await agent.connect(req, endpoint);
      assert.equal((await agent.call({ op: "requests", id: req, count: 20 })).ok, true);
    } finally {
      await agent.stop();
      await rep.close();
    }
    assert.equal(await server, 20);
    assert.throws(() => Deno.lstatSync(path), Deno.errors.NotFound);
  },
});

Deno.test({
  name: "ipc: a stale socket file is replaced, a live one is not, a regular file is refused",
  ignore: Deno.build.os === "windows",
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "lomq-ipc-" });
    const first = createSocket("PULL");
    const second = createSocket("PULL");
    try {
      // A socket file left behind by a process that died without unlinking it.
      const stale = `${dir}/stale.sock`;
      // Moving a live socket file away and closing its listener leaves a file nobody serves.
      const listener = Deno.listen({ transport: "unix", path: `${dir}/live.sock` });
      await Deno.rename(`${dir}/live.sock`, stale);
      listener.close();
      assert.ok(Deno.lstatSync(stale).isSocket);
      assert.equal(await first.bind(`ipc://${stale}`), `ipc://${stale}`);

      await assert.rejects(
        () => second.bind(`ipc://${stale}`),
        (err: unknown) =>
          err instanceof ZmqError && err.errno === EADDRINUSE &&
          err.message.startsWith(`cannot bind ipc://${stale}: address already in use`),
      );

      const regular = `${dir}/regular`;
      await Deno.writeTextFile(regular, "not a socket");
      await assert.rejects(
        () => second.bind(`ipc://${regular}`),
        (err: unknown) =>
          err instanceof ZmqError && err.errno === EINVAL && /not a socket/.test(err.message),
      );
      assert.equal(await Deno.readTextFile(regular), "not a socket");

      await assert.rejects(
        () => second.bind(`ipc://${dir}/missing/x.sock`),
        (err: unknown) => err instanceof ZmqError && /no such file or directory/.test(err.message),
      );
    } finally {
      await first.close();
      await second.close();
      await Deno.remove(dir, { recursive: true });
    }
  },
});
