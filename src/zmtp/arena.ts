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
    const view = this.#block.subarray(this.#used, this.#used + size);
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
  if (size <= 32) {
    for (let i = 0; i < size; i++) out[i] = source[start + i];
  } else {
    out.set(source.subarray(start, end));
  }
  return out;
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
 * Outgoing messages live until they are written, so the blocks are freed soon.
 */
export function allocateMessage(size: number): Uint8Array {
  if (size <= SMALL_LIMIT) return smallBlocks.take(size);
  return size > MESSAGE_LIMIT ? new Uint8Array(size) : messageBlocks.take(size);
}
