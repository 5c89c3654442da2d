/**
 * Fresh byte arrays for small messages, carved out of shared blocks.
 *
 * Under Deno every `new Uint8Array` (and `slice`) allocates its own backing store, which costs
 * about 0.3 µs even for zero bytes, while a view into an existing buffer costs a tenth of that.
 * A request/reply server allocates two small arrays per request (the received body, the
 * encoded reply), so small arrays are handed out as disjoint views of a shared block instead.
 * A view is never handed out twice, so holders may keep and even modify theirs.
 *
 * A block stays alive while any view into it does; blocks are small so that a holder keeping
 * one message pins at most {@link BLOCK_SIZE} bytes.
 *
 * @module
 */

import { copyBytes } from "../bytes.ts";

/** Size of a shared block. */
export const BLOCK_SIZE = 8 * 1024;
/** Larger requests get an array of their own. */
export const SMALL_LIMIT = 512;

/** Disjoint views of shared blocks of one size; a block is replaced once it is used up. */
class Blocks {
  readonly #size: number;
  #block: Uint8Array;
  #used = 0;

  constructor(size: number) {
    this.#size = size;
    this.#block = new Uint8Array(size);
  }

  /** A view of `size` (at most the block size) bytes that no one else sees. */
  take(size: number): Uint8Array {
    if (this.#used + size > this.#size) {
      this.#block = new Uint8Array(this.#size);
      this.#used = 0;
    }
    // Made from the buffer: a third cheaper than subarray, which looks up a species first.
    const view = new Uint8Array(this.#block.buffer, this.#used, size);
    this.#used += size;
    return view;
  }
}

const smallBlocks = new Blocks(BLOCK_SIZE);

/** A zero-filled array of `size` bytes that no one else sees. */
export function allocate(size: number): Uint8Array {
  return size > SMALL_LIMIT ? new Uint8Array(size) : smallBlocks.take(size);
}

/** A copy of `source[start, end)` in a fresh array (see {@link allocate}). */
export function copyOf(source: Uint8Array, start: number, end: number): Uint8Array {
  const size = end - start;
  if (size > SMALL_LIMIT) return source.slice(start, end);
  const out = allocate(size);
  copyBytes(out, 0, source, start, size);
  return out;
}

/** Outgoing messages and received frames of at least this size come from {@link allocatePooled}. */
export const POOL_MIN = 64 * 1024;
/** Larger ones get an array of their own, left to the collector. */
export const POOL_MAX = 4 * 1024 * 1024;
/** Most bytes of returned buffers kept for reuse; more are left to the collector. */
export const POOL_KEEP = 8 * 1024 * 1024;

/**
 * Buffers of large messages, reused once written (or, received, once decoded). A fresh 100 KB
 * array costs more than the message's copies together: the allocator hands out new zeroed
 * pages, and the collector runs for the external memory (measured: a third of a 100 KB echo's
 * CPU). Sizes are powers of two, so a message pins at most twice its size.
 */
class BufferPool {
  /** Returned buffers by size: index k holds buffers of 2^k bytes. */
  readonly #free: ArrayBuffer[][] = [];
  /** Buffers handed out and not returned: only these may come back, and only once. */
  readonly #out = new WeakSet<ArrayBuffer>();
  #kept = 0;

  take(size: number): Uint8Array<ArrayBuffer> {
    const k = Math.ceil(Math.log2(size));
    let buffer = this.#free[k]?.pop();
    if (buffer === undefined) buffer = new ArrayBuffer(2 ** k);
    else this.#kept -= buffer.byteLength;
    this.#out.add(buffer);
    return new Uint8Array(buffer, 0, size);
  }

  give(view: Uint8Array): void {
    const buffer = view.buffer as ArrayBuffer;
    if (view.byteOffset !== 0 || !this.#out.delete(buffer)) return;
    if (this.#kept + buffer.byteLength > POOL_KEEP) return;
    this.#kept += buffer.byteLength;
    (this.#free[Math.log2(buffer.byteLength)] ??= []).push(buffer);
  }
}

const pool = new BufferPool();

/**
 * An array of `size` bytes, {@link POOL_MIN} to {@link POOL_MAX}, whose contents are
 * undefined (the caller writes all of it), for a message with a single holder: once done with
 * it, the holder gives it back with {@link recycle}.
 */
export function allocatePooled(size: number): Uint8Array<ArrayBuffer> {
  return pool.take(size);
}

/**
 * Gives back an array of {@link allocatePooled} that nothing refers to any more; it may be
 * handed out again at once. Any other array (or one given back already) is ignored, so
 * holders may pass whatever they are done with.
 */
export function recycle(chunk: Uint8Array): void {
  if (chunk.length >= POOL_MIN) pool.give(chunk);
}

/** Encoded outgoing messages up to this size share blocks of {@link MESSAGE_BLOCK_SIZE}. */
export const MESSAGE_LIMIT = 2048;
/**
 * Size of a block shared by outgoing messages: 16 of the largest, so a message still queued
 * pins at most 16 times its size, as {@link BLOCK_SIZE} does for small ones.
 */
export const MESSAGE_BLOCK_SIZE = 32 * 1024;

const messageBlocks = new Blocks(MESSAGE_BLOCK_SIZE);

/**
 * Like {@link allocate}, for an encoded outgoing message: those up to {@link MESSAGE_LIMIT}
 * bytes (a publisher's 1 KB values, a 1 KB reply) are views too, of a second set of blocks.
 * Outgoing messages live until they are written, so the blocks are freed soon. Large ones
 * come from {@link allocatePooled} unless `shared` (queued to more than one peer): the
 * connection that writes one gives it back ({@link recycle}).
 */
export function allocateMessage(size: number, shared = false): Uint8Array {
  if (size <= SMALL_LIMIT) return smallBlocks.take(size);
  if (size <= MESSAGE_LIMIT) return messageBlocks.take(size);
  // A message queued to several peers (PUB) has no single holder to give it back.
  if (shared || size < POOL_MIN || size > POOL_MAX) return new Uint8Array(size);
  return pool.take(size);
}
