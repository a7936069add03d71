// Answers remembered by the exact bytes of their request: a GET's URL, a POST's body (DER starts with 0x30, a URL
// with "/", so the two never collide). A repeated request, the common case for a hot certificate, then skips
// decoding, parsing and lookup, which cost as much CPU as all of node:http's own work for it. Parsing is a pure
// function of the bytes, and a remembered answer is asked again each time it is used (HotAnswer.served()), so
// nothing stale or revoked is served from here.
import { LRUCache } from 'lru-cache';
import type { HotAnswer, ServedResponse } from '../source/source';

// Heap per entry beside its key string (counted by its length): lru-cache's slots, the HotAnswer object and
// the string header. An estimate, kept generous: the memo is a small share of the cache's budget.
const ENTRY_OVERHEAD_BYTES = 200;

export class RequestMemo {
  private readonly lru: LRUCache<string, HotAnswer>;

  constructor(maxBytes: number) {
    this.lru = new LRUCache<string, HotAnswer>({ maxSize: maxBytes, sizeCalculation: (_a, key) => key.length + ENTRY_OVERHEAD_BYTES });
  }

  /** The remembered answer for these request bytes, if it may be served now. */
  served(key: string): ServedResponse | undefined {
    return this.lru.get(key)?.served();
  }

  /** Only for requests without a nonce: with one, no two requests share their bytes. */
  remember(key: string, answer: HotAnswer): void {
    this.lru.set(key, answer);
  }

  get size(): { entries: number; bytes: number } {
    return { entries: this.lru.size, bytes: this.lru.calculatedSize };
  }
}
