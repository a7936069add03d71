// Answers remembered by the exact bytes of their request: a GET's URL, a POST's body (DER starts with 0x30, a URL
// with "/", so the two never collide). A repeated request, the common case for a hot certificate, then skips
// decoding, parsing and lookup, which cost as much CPU as all of node:http's own work for it. Parsing is a pure
// function of the bytes, and a remembered answer is asked again each time it is used (HotAnswer.served()), so
// nothing stale or revoked is served from here.
import { LRUCache } from 'lru-cache';
import type { HotAnswer } from '../source/source';
import type { GetHeaders } from './caching';

// Heap per entry beside its key string (counted by its length): lru-cache's slots, the Remembered and HotAnswer
// objects and the string header, an estimate kept generous (the memo is a small share of the cache's budget);
// for a GET, also its kept headers (the object, its list and length string: 288 bytes measured with --expose-gc).
const ENTRY_OVERHEAD_BYTES = 200;
const GET_HEADERS_BYTES = 300;

/** What is remembered for one request's bytes. */
export class Remembered {
  /** The headers of the last 200 answer to this GET (strings only: no response is held here). */
  getHeaders: GetHeaders | undefined;

  constructor(readonly answer: HotAnswer) {}
}

export class RequestMemo {
  private readonly lru: LRUCache<string, Remembered>;

  constructor(maxBytes: number) {
    this.lru = new LRUCache<string, Remembered>({
      maxSize: maxBytes,
      // A GET's key is its URL ("/..."), a POST's its DER (0x30).
      sizeCalculation: (_r, key) => key.length + ENTRY_OVERHEAD_BYTES + (key.charCodeAt(0) === 0x2f ? GET_HEADERS_BYTES : 0),
    });
  }

  /** What is remembered for these request bytes; its answer says whether it may be served now. */
  get(key: string): Remembered | undefined {
    return this.lru.get(key);
  }

  /** Only for requests without a nonce: with one, no two requests share their bytes. */
  remember(key: string, answer: HotAnswer): Remembered {
    const r = new Remembered(answer);
    this.lru.set(key, r);
    return r;
  }

  get size(): { entries: number; bytes: number } {
    return { entries: this.lru.size, bytes: this.lru.calculatedSize };
  }
}
