// Memory cache size at scrape time: what it and the request memo hold, and the bytes counted against cache.maxSize.
import { Gauge, Registry } from 'prom-client';

export interface CacheSize {
  readonly size: { entries: number; bytes: number };
}

export function registerCacheMetrics(registry: Registry, cache: CacheSize, memo?: CacheSize): void {
  new Gauge({
    name: 'ocsp_cache_entries',
    help: 'Pre-produced responses held in the memory cache.',
    registers: [registry],
    collect() {
      this.set(cache.size.entries);
    },
  });
  new Gauge({
    name: 'ocsp_cache_bytes',
    help: 'Bytes the memory cache counts against cache.maxSize (each response DER plus its per-entry overhead).',
    registers: [registry],
    collect() {
      this.set(cache.size.bytes);
    },
  });
  if (!memo) return;
  new Gauge({
    name: 'ocsp_request_memo_entries',
    help: 'Requests whose cached answer is remembered by their exact bytes (a tenth of cache.maxSize).',
    registers: [registry],
    collect() {
      this.set(memo.size.entries);
    },
  });
  new Gauge({
    name: 'ocsp_request_memo_bytes',
    help: 'Bytes the request memo counts against its tenth of cache.maxSize.',
    registers: [registry],
    collect() {
      this.set(memo.size.bytes);
    },
  });
}
