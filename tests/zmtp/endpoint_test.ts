import assert from "node:assert/strict";
import { EINVAL, formatEndpoint, parseEndpoint, ZmqError } from "../../src/zmtp/mod.ts";

Deno.test("endpoint: accepted forms", () => {
  assert.deepEqual(parseEndpoint("tcp://*:5555"), { transport: "tcp", host: "*", port: 5555 });
  assert.deepEqual(parseEndpoint("tcp://0.0.0.0:0"), {
    transport: "tcp",
    host: "0.0.0.0",
    port: 0,
  });
  assert.deepEqual(parseEndpoint("tcp://127.0.0.1:*"), {
    transport: "tcp",
    host: "127.0.0.1",
    port: 0,
  });
  assert.deepEqual(parseEndpoint("tcp://localhost:80"), {
    transport: "tcp",
    host: "localhost",
    port: 80,
  });
  assert.deepEqual(parseEndpoint("tcp://[::1]:7"), { transport: "tcp", host: "::1", port: 7 });
  assert.deepEqual(parseEndpoint("tcp://[::]:65535"), {
    transport: "tcp",
    host: "::",
    port: 65535,
  });
  assert.deepEqual(parseEndpoint("tcp://[fe80::1%eth0]:1"), {
    transport: "tcp",
    host: "fe80::1%eth0",
    port: 1,
  });
  assert.deepEqual(parseEndpoint("ipc:///tmp/x.sock"), { transport: "ipc", path: "/tmp/x.sock" });
  assert.equal(formatEndpoint({ transport: "tcp", host: "::1", port: 9 }), "tcp://[::1]:9");
  assert.equal(formatEndpoint({ transport: "ipc", path: "/a" }), "ipc:///a");
});

Deno.test("endpoint: malformed ones throw EINVAL naming the endpoint", () => {
  for (
    const bad of [
      "x",
      "tcp://",
      "tcp://127.0.0.1",
      "tcp://127.0.0.1:",
      "tcp://127.0.0.1:65536",
      "tcp://127.0.0.1:-1",
      "tcp://127.0.0.1:port",
      "tcp://::1:5",
      "tcp://[::1:5",
      "tcp://256.1.1.1:5",
      "tcp://:5",
      "tcp://a b:5",
      "ipc://",
    ]
  ) {
    assert.throws(
      () => parseEndpoint(bad),
      (err: unknown) =>
        err instanceof ZmqError && err.errno === EINVAL && err.code === "EINVAL" &&
        err.message.startsWith(
          `invalid endpoint '${bad}': expected tcp://host:port or ipc://path`,
        ),
      bad,
    );
  }
  assert.throws(() => parseEndpoint("udp://1.2.3.4:5"), /transport 'udp' is not supported/);
});
