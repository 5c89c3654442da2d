/**
 * A multiset of topic prefixes, for PUB (what each subscriber wants) and SUB (what we asked
 * for, to filter locally and to replay to new connections).
 *
 * @module
 */

import { latin1 } from "./frame.ts";

interface Entry {
  prefix: Uint8Array;
  count: number;
}

/**
 * Prefix subscriptions with counts: subscribing twice needs two cancels, as in libzmq.
 * Matching is a linear scan over distinct prefixes, which is fast for the handful of topics
 * RPC servers publish; the empty prefix short-circuits to "everything".
 */
export class SubscriptionSet {
  #entries = new Map<string, Entry>();
  #all = 0;

  /** Number of distinct prefixes. */
  get size(): number {
    return this.#entries.size;
  }

  /** Adds one subscription; returns true when the prefix was not subscribed before. */
  add(prefix: Uint8Array): boolean {
    const key = latin1(prefix);
    const entry = this.#entries.get(key);
    if (prefix.length === 0) this.#all++;
    if (entry !== undefined) {
      entry.count++;
      return false;
    }
    this.#entries.set(key, { prefix: prefix.slice(), count: 1 });
    return true;
  }

  /** Removes one subscription; returns true when that was the prefix's last one. */
  remove(prefix: Uint8Array): boolean {
    const key = latin1(prefix);
    const entry = this.#entries.get(key);
    if (entry === undefined) return false;
    if (prefix.length === 0) this.#all--;
    if (--entry.count > 0) return false;
    this.#entries.delete(key);
    return true;
  }

  /** Whether some subscribed prefix starts `topic` (the first frame of a message). */
  matches(topic: Uint8Array): boolean {
    if (this.#all > 0) return true;
    for (const { prefix } of this.#entries.values()) {
      const n = prefix.length;
      if (n > topic.length) continue;
      let i = 0;
      while (i < n && prefix[i] === topic[i]) i++;
      if (i === n) return true;
    }
    return false;
  }

  /** Each distinct prefix once. */
  *prefixes(): IterableIterator<Uint8Array> {
    for (const { prefix } of this.#entries.values()) yield prefix;
  }

  /** Forgets everything. */
  clear(): void {
    this.#entries.clear();
    this.#all = 0;
  }
}
