/**
 * A multiset of topic prefixes, for PUB (what each subscriber wants) and SUB (what we asked
 * for, to filter locally and to replay to new connections).
 *
 * @module
 */

import { concat, EMPTY } from "./frame.ts";

/** A node of the radix tree: the prefix it ends is the labels on the path from the root. */
class Node {
  /** Bytes on the edge from the parent; empty only for the root. */
  label: Uint8Array;
  /** Subscriptions to exactly the prefix ending here. */
  count = 0;
  /** Children in the order of their labels' first bytes (all distinct); null when none. */
  children: Node[] | null = null;

  constructor(label: Uint8Array) {
    this.label = label;
  }
}

/** Index of the child whose label starts with `byte`, or the one's complement of its slot. */
function findChild(children: Node[], byte: number): number {
  let lo = 0;
  let hi = children.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >>> 1;
    const first = children[mid].label[0];
    if (first < byte) lo = mid + 1;
    else if (first > byte) hi = mid - 1;
    else return mid;
  }
  return ~lo;
}

/**
 * Prefix subscriptions with counts: subscribing twice needs two cancels, as in libzmq.
 *
 * The prefixes live in a compressed byte trie (a radix tree, as in libzmq): each edge holds
 * a run of bytes and each node at most one child per next byte, kept sorted, so matching a
 * topic costs at most its length in byte comparisons (plus a binary search per node) however
 * many prefixes there are, and memory follows the bytes of the prefixes, not 256-way tables.
 * The empty prefix matches everything.
 */
export class SubscriptionSet {
  // Every node but the root has subscriptions of its own or at least two children.
  #root = new Node(EMPTY);
  #size = 0;
  #bytes = 0;

  /** Number of distinct prefixes. */
  get size(): number {
    return this.#size;
  }

  /** Total length of the distinct prefixes, what a subscriber makes us hold. */
  get bytes(): number {
    return this.#bytes;
  }

  /** Adds one subscription; returns true when the prefix was not subscribed before. */
  add(prefix: Uint8Array): boolean {
    let node = this.#root;
    let pos = 0;
    while (pos < prefix.length) {
      const children = node.children;
      const index = children === null ? -1 : findChild(children, prefix[pos]);
      if (index < 0) {
        const leaf = new Node(prefix.slice(pos));
        leaf.count = 1;
        if (children === null) node.children = [leaf];
        else children.splice(~index, 0, leaf);
        return this.#added(prefix);
      }
      const child = children![index];
      const label = child.label;
      let common = 1;
      while (common < label.length && pos + common < prefix.length) {
        if (label[common] !== prefix[pos + common]) break;
        common++;
      }
      if (common < label.length) {
        // The prefix leaves (or ends inside) this edge: split it where they part.
        const branch = new Node(label.slice(0, common));
        child.label = label.slice(common);
        branch.children = [child];
        children![index] = branch;
        node = branch;
      } else {
        node = child;
      }
      pos += common;
    }
    if (node.count++ > 0) return false;
    return this.#added(prefix);
  }

  /** Removes one subscription; returns true when that was the prefix's last one. */
  remove(prefix: Uint8Array): boolean {
    const path: Node[] = [];
    let node = this.#root;
    let pos = 0;
    while (pos < prefix.length) {
      const children = node.children;
      const index = children === null ? -1 : findChild(children, prefix[pos]);
      if (index < 0) return false;
      const child = children![index];
      const label = child.label;
      if (label.length > prefix.length - pos) return false;
      for (let i = 1; i < label.length; i++) if (label[i] !== prefix[pos + i]) return false;
      path.push(node);
      node = child;
      pos += label.length;
    }
    if (node.count === 0) return false;
    if (--node.count > 0) return false;
    this.#size--;
    this.#bytes -= prefix.length;
    if (path.length > 0) this.#prune(node, path);
    return true;
  }

  /** Whether some subscribed prefix starts `topic` (the first frame of a message). */
  matches(topic: Uint8Array): boolean {
    let node = this.#root;
    if (node.count > 0) return true;
    const n = topic.length;
    let pos = 0;
    while (pos < n) {
      const children = node.children;
      if (children === null) return false;
      const index = findChild(children, topic[pos]);
      if (index < 0) return false;
      const child = children[index];
      const label = child.label;
      const length = label.length;
      if (length > n - pos) return false;
      for (let i = 1; i < length; i++) if (label[i] !== topic[pos + i]) return false;
      if (child.count > 0) return true;
      node = child;
      pos += length;
    }
    return false;
  }

  /** Each distinct prefix once. */
  *prefixes(): IterableIterator<Uint8Array> {
    const stack: [Node, Uint8Array][] = [[this.#root, EMPTY]];
    for (let top = stack.pop(); top !== undefined; top = stack.pop()) {
      const [node, prefix] = top;
      if (node.count > 0) yield prefix;
      const children = node.children;
      if (children === null) continue;
      for (let i = children.length - 1; i >= 0; i--) {
        stack.push([children[i], concat(prefix, children[i].label)]);
      }
    }
  }

  /** Forgets everything. */
  clear(): void {
    this.#root = new Node(EMPTY);
    this.#size = 0;
    this.#bytes = 0;
  }

  #added(prefix: Uint8Array): boolean {
    this.#size++;
    this.#bytes += prefix.length;
    return true;
  }

  /**
   * Restores the invariant after `node` (not the root; `path` holds its ancestors) lost its
   * last subscription: a leaf goes, and a node left with one child merges into it.
   */
  #prune(node: Node, path: Node[]): void {
    const parent = path[path.length - 1];
    if (node.children === null) {
      const siblings = parent.children!;
      siblings.splice(findChild(siblings, node.label[0]), 1);
      if (siblings.length === 0) parent.children = null;
      else if (parent.count === 0 && siblings.length === 1 && path.length > 1) {
        this.#merge(parent, path[path.length - 2]);
      }
    } else if (node.children.length === 1) {
      this.#merge(node, parent);
    }
  }

  /** Replaces `node`, which has no subscriptions and one child, by that child. */
  #merge(node: Node, parent: Node): void {
    const child = node.children![0];
    child.label = concat(node.label, child.label);
    const siblings = parent.children!;
    siblings[findChild(siblings, node.label[0])] = child;
  }
}
