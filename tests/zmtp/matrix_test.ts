/**
 * Every supported socket pair against a real libzmq (pyzmq), in both roles, with either side
 * binding, over TCP and ipc.
 */
import { skipInterop } from "../helpers/python.ts";
import { createSocket } from "../../src/zmtp/mod.ts";
import { PAIRINGS } from "./pairings.ts";
import { PyAgent } from "./pyzmq.ts";

let ipcCounter = 0;

for (const [name, pairing] of Object.entries(PAIRINGS)) {
  Deno.test({
    name: `matrix: ${name}`,
    ignore: skipInterop,
    async fn(t) {
      const agent = await PyAgent.start();
      const dir = await Deno.makeTempDir({ prefix: "lomq-matrix-" });
      try {
        for (const transport of ["tcp", "ipc"] as const) {
          for (const lomqBinds of [true, false]) {
            const label = `${transport}, ${lomqBinds ? "lomq binds" : "libzmq binds"}`;
            await t.step(label, async () => {
              const socket = createSocket(pairing.lomq, pairing.lomqOptions);
              const py = await agent.socket(pairing.py, pairing.pyOptions, pairing.pyIdentity);
              try {
                const address = transport === "tcp"
                  ? "tcp://127.0.0.1:0"
                  : `ipc://${dir}/s${ipcCounter++}.sock`;
                if (lomqBinds) {
                  const endpoint = await socket.bind(address);
                  await agent.connect(py, endpoint);
                } else {
                  const endpoint = await agent.bind(
                    py,
                    transport === "tcp" ? "tcp://127.0.0.1:*" : address,
                  );
                  socket.connect(endpoint);
                }
                await pairing.scenario(socket, agent, py);
              } finally {
                await agent.closeSocket(py);
                await socket.close();
              }
            });
          }
        }
      } finally {
        await agent.stop();
        await Deno.remove(dir, { recursive: true });
      }
    },
  });
}
