// Shares equal strings between cached objects. Every managed Secret of one ECRPullSecret carries
// the same token content (several KiB with a real ECR token), and each watch event or list page
// parses its own copy: keeping one copy per distinct value makes the cache's size depend on the
// number of tokens, not the number of namespaces.

export class StringInterner {
  readonly #limit: number;
  readonly #values = new Map<string, string>();
  /** What the last call returned, and so the most recently seen value. */
  #last: string | undefined;

  /** Keeps at most `limit` distinct values, forgetting the least recently seen first. */
  constructor(limit: number) {
    if (!Number.isInteger(limit) || limit < 1)
      throw new RangeError(`limit must be a positive integer, got ${limit}`);
    this.#limit = limit;
  }

  /** The kept string equal to `value`, or `value` itself, now kept. */
  intern(value: string): string {
    // The value the last call kept comes again and again (each Secret of one CR carries the same
    // token). Comparing with it takes a pass over both strings at most; a lookup in the map first
    // hashes the whole of a new string, several KiB for a token: about 4 % of a cold converge's CPU.
    if (value === this.#last) return this.#last;
    const kept = this.#values.get(value);
    if (kept !== undefined) {
      // Re-inserted, so it counts as recently seen.
      this.#values.delete(value);
      this.#values.set(kept, kept);
      this.#last = kept;
      return kept;
    }
    this.#values.set(value, value);
    if (this.#values.size > this.#limit) {
      const oldest = this.#values.keys().next();
      if (oldest.done !== true) this.#values.delete(oldest.value);
    }
    this.#last = value;
    return value;
  }

  has(value: string): boolean {
    return this.#values.has(value);
  }

  get size(): number {
    return this.#values.size;
  }
}
