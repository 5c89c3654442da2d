/**
 * A FIFO with O(1) push and shift.
 *
 * `Array.prototype.shift` is O(n) on large arrays, and per-connection queues can hold
 * thousands of messages at a high-water mark, so the head advances by index and the array is
 * compacted only once the consumed part dominates.
 *
 * @module
 */

/** First-in first-out queue. */
export class Queue<T> {
  #items: (T | undefined)[] = [];
  #head = 0;

  /** Number of queued items. */
  get length(): number {
    return this.#items.length - this.#head;
  }

  /** Appends an item at the tail. */
  push(item: T): void {
    this.#items.push(item);
  }

  /** Removes and returns the head, or undefined when empty. */
  shift(): T | undefined {
    const items = this.#items;
    if (this.#head >= items.length) return undefined;
    const item = items[this.#head];
    // Drop the reference so a consumed message can be collected before compaction.
    items[this.#head] = undefined;
    this.#head++;
    if (this.#head === items.length) {
      items.length = 0;
      this.#head = 0;
    } else if (this.#head >= 1024 && this.#head * 2 >= items.length) {
      this.#items = items.slice(this.#head);
      this.#head = 0;
    }
    return item;
  }

  /** The head without removing it, or undefined when empty. */
  peek(): T | undefined {
    return this.#head < this.#items.length ? this.#items[this.#head] : undefined;
  }

  /** Removes every item. */
  clear(): void {
    this.#items = [];
    this.#head = 0;
  }
}

/**
 * A queue of encoded messages that also knows their total size, for byte bounds
 * (sndbufBytes): kept here, next to the queue itself, so the count can never drift from the
 * contents whoever pushes, shifts or clears.
 */
export class ByteQueue extends Queue<Uint8Array> {
  #bytes = 0;

  /** Total length of the queued arrays. */
  get bytes(): number {
    return this.#bytes;
  }

  /** Appends a message at the tail. */
  override push(chunk: Uint8Array): void {
    this.#bytes += chunk.length;
    super.push(chunk);
  }

  /** Removes and returns the head, or undefined when empty. */
  override shift(): Uint8Array | undefined {
    const chunk = super.shift();
    if (chunk !== undefined) this.#bytes -= chunk.length;
    return chunk;
  }

  /** Removes every message. */
  override clear(): void {
    this.#bytes = 0;
    super.clear();
  }
}
