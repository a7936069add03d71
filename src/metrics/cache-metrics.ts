// Memory cache size at scrape time: what it and the request memo hold, and the bytes counted against cache.maxSize.
import { Counter, Gauge, Registry } from 'prom-client';

export interface CacheSize {
  readonly size: { entries: number; bytes: number };
}

export interface CacheStats extends CacheSize {
  readonly stats: { hits: number; misses: number };
}

export function registerCacheMetrics(registry: Registry, cache: CacheStats, memo?: CacheSize): void {
  for (const [what, help] of [
    ['hits', 'Cacheable requests answered from the memory cache.'],
    ['misses', 'Cacheable requests the memory cache did not hold (answered from the store or signed).'],
  ] as const) {
    let reported = 0;
    new Counter({
      name: `ocsp_cache_${what}_total`,
      help,
      registers: [registry],
      collect() {
        // Counted in a plain number on the hot path; handed over at scrape time.
        const n = cache.stats[what];
        if (n > reported) this.inc(n - reported);
        reported = n;
      },
    });
  }
  sizeGauges(registry, 'ocsp_cache', cache, 'Pre-produced responses held in the memory cache.',
    'Bytes the memory cache counts against cache.maxSize (each response DER plus its per-entry overhead).');
  if (memo) {
    sizeGauges(registry, 'ocsp_request_memo', memo, 'Requests whose cached answer is remembered by their exact bytes.',
      'Bytes the request memo counts against its tenth of cache.maxSize.');
  }
}

function sizeGauges(registry: Registry, prefix: string, of: CacheSize, entriesHelp: string, bytesHelp: string): void {
  for (const [what, help] of [['entries', entriesHelp], ['bytes', bytesHelp]] as const) {
    new Gauge({
      name: `${prefix}_${what}`,
      help,
      registers: [registry],
      collect() {
        this.set(of.size[what]);
      },
    });
  }
}
