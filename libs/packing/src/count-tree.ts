/**
 * Counts over the integer keys 0..maxKey with O(log maxKey) update, predecessor and successor
 * queries: a perfect binary tree of subtree sums laid out in an Int32Array (leaf k at
 * `size + k`). The packers use it as a multiset of lengths ("largest piece that still fits")
 * and of remaining capacities ("tightest open sequence that fits").
 */
export class CountTree {
  private readonly size: number;
  private readonly tree: Int32Array;

  constructor(readonly maxKey: number) {
    let size = 1;
    while (size <= maxKey) size <<= 1;
    this.size = size;
    this.tree = new Int32Array(2 * size);
  }

  get total(): number {
    return this.tree[1];
  }

  count(key: number): number {
    return this.tree[this.size + key];
  }

  add(key: number, delta: number): void {
    for (let i = this.size + key; i >= 1; i >>= 1) this.tree[i] += delta;
  }

  /** Largest key <= `key` with a non-zero count, or -1. */
  predecessor(key: number): number {
    if (key < 0) return -1;
    let i = this.size + Math.min(key, this.maxKey);
    if (this.tree[i] > 0) return i - this.size;
    while (i > 1) {
      if ((i & 1) === 1 && this.tree[i - 1] > 0) {
        i -= 1;
        while (i < this.size) i = this.tree[2 * i + 1] > 0 ? 2 * i + 1 : 2 * i;
        return i - this.size;
      }
      i >>= 1;
    }
    return -1;
  }

  /** Smallest key >= `key` with a non-zero count, or -1. */
  successor(key: number): number {
    if (key > this.maxKey) return -1;
    let i = this.size + Math.max(key, 0);
    if (this.tree[i] > 0) return i - this.size;
    while (i > 1) {
      if ((i & 1) === 0 && this.tree[i + 1] > 0) {
        i += 1;
        while (i < this.size) i = this.tree[2 * i] > 0 ? 2 * i : 2 * i + 1;
        return i - this.size;
      }
      i >>= 1;
    }
    return -1;
  }
}
