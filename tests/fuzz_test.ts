// The request fuzzer (tests/helpers/fuzz.ts): mutated requests straight through the decoder
// and dispatcher in this process, then over the wire from pyzmq to a lomq process. Each run
// prints its seed; LOMQ_FUZZ_SEED repeats one, and `deno task fuzz` runs longer.
import assert from "node:assert/strict";
import { formatSummary, problems, runInProcess, runOverWire, seedFromEnv } from "./helpers/fuzz.ts";
import { pythonForInterop, skipInterop } from "./helpers/python.ts";

const seed = seedFromEnv();
const python = (await pythonForInterop()) ?? "python3";

Deno.test("fuzz in-process: 100,000 mutated requests, each answered OK or ERROR with msgpack", async () => {
  const count = 100_000;
  console.log(`fuzz seed ${seed} (LOMQ_FUZZ_SEED=${seed} repeats this run)`);
  const summary = await runInProcess({ count, seed });
  console.log(formatSummary(summary));
  assert.deepEqual(problems(summary, count), [], formatSummary(summary));
  assert.ok(summary.sanity >= count / 60, "sanity calls were checked along the way");
  assert.ok(summary.ok > 0 && summary.error > 0, "both statuses were seen");
});

Deno.test({
  name: "fuzz over the wire: 10,000 mutated requests from pyzmq, every one answered",
  ignore: skipInterop,
  async fn() {
    const count = 10_000;
    console.log(`fuzz seed ${seed} (LOMQ_FUZZ_SEED=${seed} repeats this run)`);
    const summary = await runOverWire({ count, seed, python });
    console.log(formatSummary(summary));
    assert.deepEqual(problems(summary, count), [], formatSummary(summary));
  },
});
