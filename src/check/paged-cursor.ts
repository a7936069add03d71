// Walks a keyset-paged store listing one item at a time, holding one page in memory.

export class PagedCursor<T> {
  private page: T[] = [];
  private index = 0;
  private last: T | undefined;
  private exhausted = false;

  /** `fetch(last)` returns the page after `last` (undefined: the first page), at most `limit` items. */
  constructor(
    private readonly fetch: (last: T | undefined, limit: number) => Promise<T[]>,
    private readonly limit: number,
  ) {}

  /** The next item without consuming it; undefined at the end. */
  async peek(): Promise<T | undefined> {
    if (this.index < this.page.length) return this.page[this.index];
    if (this.exhausted) return undefined;
    this.page = await this.fetch(this.last, this.limit);
    this.index = 0;
    // A short page is the last one: no query just to learn that nothing follows.
    if (this.page.length < this.limit) this.exhausted = true;
    if (this.page.length > 0) this.last = this.page[this.page.length - 1];
    return this.page[0];
  }

  async next(): Promise<T | undefined> {
    const item = await this.peek();
    if (item !== undefined) this.index++;
    return item;
  }
}
