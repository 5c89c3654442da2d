import assert from "node:assert/strict";
import {
  allocate,
  allocatePooled,
  BLOCK_SIZE,
  copyOf,
  POOL_KEEP,
  POOL_MAX,
  POOL_MIN,
  recycle,
  SMALL_LIMIT,
} from "../../src/zmtp/arena.ts";
import { encodeMessage, FrameReader } from "../../src/zmtp/frame.ts";
import { directReads } from "../../src/zmtp/io.ts";

Deno.test("arena: small arrays are zero-filled and never overlap; large ones stand alone", () => {
  const handed: Uint8Array[] = [];
  // More than two blocks' worth, so block changes are crossed.
  for (let i = 0; handed.length < 3 * BLOCK_SIZE / 16; i++) {
    const size = 1 + (i * 7) % 40;
    const array = allocate(size);
    assert.equal(array.length, size);
    assert.ok(array.every((byte) => byte === 0), "a fresh array is zero-filled");
    array.fill(i & 0xff);
    handed.push(array);
  }
  handed.forEach((array, i) => assert.ok(array.every((byte) => byte === (i & 0xff)), `#${i}`));
  const large = allocate(SMALL_LIMIT + 1);
  assert.equal(large.byteOffset, 0);
  assert.equal(large.buffer.byteLength, SMALL_LIMIT + 1);
  const source = Uint8Array.from({ length: 100 }, (_, i) => i);
  assert.deepEqual([...copyOf(source, 3, 9)], [3, 4, 5, 6, 7, 8]);
  assert.deepEqual(copyOf(source, 10, 90), source.slice(10, 90));
});

Deno.test("frames: received bodies stay intact while the read buffer is reused", () => {
  // A REP or SUB socket queues bodies while later reads overwrite the reader's buffer.
  const reader = new FrameReader(1 << 20, 4096);
  const kept: Uint8Array[] = [];
  const expected: string[] = [];
  for (let round = 0; round < 200; round++) {
    const texts = Array.from({ length: 5 }, (_, i) => `r${round}-m${i}-${"z".repeat(round % 50)}`);
    const wire = texts.map((text) => encodeMessage([new TextEncoder().encode(text)]));
    for (const bytes of wire) {
      reader.target().set(bytes);
      reader.commit(bytes.length);
      while (reader.next()) kept.push(reader.body);
    }
    expected.push(...texts);
  }
  assert.deepEqual(kept.map((body) => new TextDecoder().decode(body)), expected);
});

Deno.test("io: the pinned Deno takes the direct read path (LOMQ_PORTABLE_IO=1 opts out)", () => {
  const portable = Deno.env.get("LOMQ_PORTABLE_IO") === "1";
  assert.equal(directReads, !portable, "reads fell back to Deno.Conn.read: see src/zmtp/io.ts");
});

Deno.test("pool: a large array given back is handed out again, once, and only if it was pooled", () => {
  const first = allocatePooled(POOL_MIN + 10);
  assert.equal(first.length, POOL_MIN + 10);
  assert.ok(first.buffer.byteLength < 2 * first.length, "pins at most twice its size");
  recycle(first);
  recycle(first); // given back twice: must not be handed out twice
  const again = allocatePooled(POOL_MIN + 20);
  assert.equal(again.buffer, first.buffer, "the returned buffer is reused");
  const other = allocatePooled(POOL_MIN + 20);
  assert.notEqual(other.buffer, first.buffer, "a buffer given back twice is handed out once");
  // Arrays the pool did not hand out are ignored, as are views into pooled ones.
  const own = new Uint8Array(POOL_MIN + 20);
  recycle(own);
  recycle(other.subarray(1));
  const third = allocatePooled(POOL_MIN + 20);
  assert.notEqual(third.buffer, own.buffer);
  assert.notEqual(third.buffer, other.buffer);
  // A message for several peers (PUB) has no single holder: never pooled.
  const shared = encodeMessage([new Uint8Array(POOL_MIN)], 0, undefined, true);
  recycle(shared);
  assert.notEqual(allocatePooled(shared.length).buffer, shared.buffer);
});

Deno.test("pool: what it keeps is bounded by POOL_KEEP", () => {
  const size = POOL_MAX;
  const arrays = Array.from({ length: 2 * POOL_KEEP / size + 2 }, () => allocatePooled(size));
  for (const array of arrays) recycle(array);
  const buffers = new Set(arrays.map((array) => array.buffer));
  let reused = 0;
  for (let i = 0; i < arrays.length; i++) {
    if (buffers.has(allocatePooled(size).buffer)) reused++;
  }
  assert.ok(reused > 0 && reused * size <= POOL_KEEP, `kept ${reused} buffers of ${size}`);
});
