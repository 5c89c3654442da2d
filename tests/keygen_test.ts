/**
 * `lomq keygen`, the command line's CURVE flags and the Lua CURVE options, end to end:
 * keys pyzmq accepts, key files with safe modes, an allow-listed `lomq serve` called by
 * `lomq call` and by pyzmq, a script binding with libzmq's option names.
 */
import assert from "node:assert/strict";
import { pythonForInterop, skipInterop } from "./helpers/python.ts";
import { Client, RpcHandshakeError, RpcTimeoutError } from "../src/client/client.ts";
import { freePort, LomqProcess, runPython, startLomq } from "./helpers/lomq.ts";

/** Runs lomq in `cwd` to its end (bounded); `text` is its stdout and stderr together. */
async function lomq(
  args: string[],
  cwd: string,
): Promise<{ code: number; stdout: string; text: string }> {
  const out = await new LomqProcess(args, { cwd }).finish(20000);
  return { code: out.code, stdout: out.stdout, text: out.stdout + out.stderr };
}

Deno.test({
  name: "keygen: --json keys that pyzmq accepts; --out files with mode 0600 for the secret",
  ignore: skipInterop,
  async fn() {
    const python = (await pythonForInterop())!;
    const dir = await Deno.makeTempDir({ prefix: "lomq-keygen-" });
    try {
      const json = await lomq(["keygen", "--json"], dir);
      assert.equal(json.code, 0, json.text);
      const keys = JSON.parse(json.stdout);
      assert.equal(keys.public.length, 40);
      const check = await runPython(
        python,
        `import zmq; print(zmq.curve_public(${JSON.stringify(keys.secret)}.encode()).decode())`,
      );
      assert.equal(check.trim(), keys.public);

      const out = await lomq(["keygen", "--out", "server"], dir);
      assert.equal(out.code, 0, out.text);
      assert.equal((await Deno.stat(`${dir}/server.key`)).mode! & 0o777, 0o600);
      assert.equal(
        (await Deno.readTextFile(`${dir}/server.pub`)).trim(),
        out.stdout.trim(),
      );
      const again = await lomq(["keygen", "--out", "server"], dir);
      assert.equal(again.code, 1, "an existing key is never overwritten");
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "keygen: serve --curve-secret-file --curve-allow-file, called by lomq call and pyzmq",
  ignore: skipInterop,
  async fn() {
    const python = (await pythonForInterop())!;
    const dir = await Deno.makeTempDir({ prefix: "lomq-serve-curve-" });
    const port = freePort();
    const uri = `tcp://127.0.0.1:${port}`;
    try {
      for (const name of ["server", "alice", "mallory"]) {
        assert.equal((await lomq(["keygen", "--out", name], dir)).code, 0);
      }
      await Deno.copyFile(`${dir}/alice.pub`, `${dir}/clients`);
      await Deno.writeTextFile(
        `${dir}/f.lua`,
        "function add(a, b) return a + b end\n",
      );
      const server = await startLomq(
        [
          "serve",
          `${dir}/f.lua`,
          "--rpc",
          uri,
          "--curve-secret-file",
          `${dir}/server.key`,
          "--curve-allow-file",
          `${dir}/clients`,
        ],
        port,
      );
      try {
        const serverKey = (await Deno.readTextFile(`${dir}/server.pub`)).trim();
        // Refusals come back at the first failed handshake: with a 15 s timeout a call that
        // waited it out would say "within 15000 ms" (and outlast lomq()'s 20 s bound).
        const call = (extra: string[]) =>
          lomq([
            "call",
            "-u",
            uri,
            "-t",
            "15000",
            "--server-key",
            serverKey,
            ...extra,
            "add",
            "1",
            "2",
          ], dir);
        const ok = await call(["--secret-key-file", "alice.key"]);
        assert.equal(ok.code, 0, ok.text);
        assert.equal(ok.stdout.trim(), "3");
        // Refused, and the error says why rather than "is the server running?".
        const refused = await call(["--secret-key-file", "mallory.key"]);
        assert.equal(refused.code, 3, refused.text);
        assert.match(
          refused.text,
          /could not connect .*: the server answered, but the handshake failed: /,
        );
        assert.doesNotMatch(refused.text, /is the server running|within/);
        const wrongKey = await lomq(
          [
            "call",
            "-u",
            uri,
            "-t",
            "15000",
            "--server-key",
            (await Deno.readTextFile(`${dir}/mallory.pub`)).trim(),
            "add",
            "1",
            "2",
          ],
          dir,
        );
        assert.equal(wrongKey.code, 3, wrongKey.text);
        assert.match(wrongKey.text, /handshake failed: .*wrong server key/);
        assert.doesNotMatch(wrongKey.text, /within/);
        const plain = await lomq(["call", "-u", uri, "-t", "15000", "add", "1", "2"], dir);
        assert.equal(plain.code, 3, plain.text);
        assert.match(plain.text, /handshake failed: peer uses security mechanism CURVE/);
        assert.doesNotMatch(plain.text, /within/);
        const listed = await lomq(["ls", "-u", uri, "-t", "15000"], dir);
        assert.equal(listed.code, 3, listed.text);
        assert.match(listed.text, /handshake failed: peer uses security mechanism CURVE/);
        assert.doesNotMatch(listed.text, /within/);
        const benched = await lomq(
          ["bench", "-u", uri, "-c", "2", "-t", "15000", "--server-key", serverKey],
          dir,
        );
        assert.equal(benched.code, 3, benched.text);
        assert.match(benched.text, /handshake failed: peer refused the handshake: 400/);
        assert.doesNotMatch(benched.text, /within|is the server running/);
        await Deno.chmod(`${dir}/mallory.key`, 0o644);
        const unsafe = await call(["--secret-key-file", "mallory.key"]);
        assert.equal(unsafe.code, 2);
        assert.match(unsafe.text, /may be read by others \(mode 644\): run chmod 600/);
        const secret = (await Deno.readTextFile(`${dir}/alice.key`)).trim();
        const pub = (await Deno.readTextFile(`${dir}/alice.pub`)).trim();
        const reply = await runPython(
          python,
          `import zmq, msgpack
s = zmq.Context().socket(zmq.REQ)
s.curve_serverkey = b"${serverKey}"; s.curve_secretkey = b"${secret}"; s.curve_publickey = b"${pub}"
s.connect("${uri}"); s.send(msgpack.packb(["add", 2, 3]))
assert s.poll(5000), "no reply"
print(msgpack.unpackb(s.recv_multipart()[1]))`,
        );
        assert.equal(reply.trim(), "5");
        const client = new Client(uri, {
          timeoutMs: 5000,
          curve: { serverKey, secretKey: secret, publicKey: pub },
        });
        try {
          assert.equal(await client.call("add", 3, 4), 7);
        } finally {
          await client.close();
        }
        // The library: a refused key fails the call at once only when asked to; by default
        // the client retries (the server may yet allow the key) and the timeout says why.
        const malloryCurve = {
          serverKey,
          secretKey: (await Deno.readTextFile(`${dir}/mallory.key`)).trim(),
          publicKey: (await Deno.readTextFile(`${dir}/mallory.pub`)).trim(),
        };
        const failing = new Client(uri, {
          timeoutMs: 30000,
          curve: malloryCurve,
          failOnHandshakeError: true,
        });
        try {
          await assert.rejects(failing.call("add", 1, 2), (error: unknown) => {
            assert.ok(error instanceof RpcHandshakeError, String(error));
            assert.match(error.reason, /400/);
            return true;
          });
          assert.equal(failing.pending, 0);
        } finally {
          await failing.close();
        }
        const patient = new Client(uri, { timeoutMs: 600, curve: malloryCurve });
        try {
          await assert.rejects(patient.call("add", 1, 2), (error: unknown) => {
            assert.ok(error instanceof RpcTimeoutError, String(error));
            assert.equal(error.connected, false);
            assert.match(error.handshakeFailure ?? "", /400/);
            return true;
          });
        } finally {
          await patient.close();
        }
      } finally {
        await server.stop();
      }
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "keygen: a script binds with libzmq's CURVE option names; pyzmq calls it",
  ignore: skipInterop,
  async fn() {
    const python = (await pythonForInterop())!;
    const dir = await Deno.makeTempDir({ prefix: "lomq-lua-curve-" });
    const port = freePort();
    try {
      const keys = JSON.parse(
        (await lomq(["keygen", "--json"], dir)).stdout,
      );
      const client = JSON.parse(
        (await lomq(["keygen", "--json"], dir)).stdout,
      );
      await Deno.writeTextFile(`${dir}/server.key`, keys.secret + "\n", { mode: 0o600 });
      await Deno.writeTextFile(
        `${dir}/s.lua`,
        `require("LuaOverMQ")
function add(a, b) return a + b end
function main()
  local rpc = LuaOverMQ.bind("tcp://127.0.0.1:${port}", LuaOverMQ.REP, {
    curve_server = true, curve_secretkey_file = "${dir}/server.key",
    curve_allow = { "${client.public}" } })
  while rpc:process(100) == 0 do end
end
`,
      );
      const server = await startLomq(["run", `${dir}/s.lua`], port);
      try {
        const reply = await runPython(
          python,
          `import zmq, msgpack
s = zmq.Context().socket(zmq.REQ)
s.curve_serverkey = b"${keys.public}"; s.curve_secretkey = b"${client.secret}"; s.curve_publickey = b"${client.public}"
s.connect("tcp://127.0.0.1:${port}"); s.send(msgpack.packb(["add", 20, 22]))
assert s.poll(5000), "no reply"
print(msgpack.unpackb(s.recv_multipart()[1]))`,
        );
        assert.equal(reply.trim(), "42");
      } finally {
        await server.stop();
      }
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
