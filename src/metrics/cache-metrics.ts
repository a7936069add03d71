// Memory cache size at scrape time: what it holds, and the bytes it counts against cache.maxSize.
import { Gauge, Registry } from 'prom-client';

export interface CacheSize {
  readonly size: { entries: number; bytes: number };
}

export function registerCacheMetrics(registry: Registry, cache: CacheSize): void {
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
}
