// Store query latency: every asynchronous Store method timed by operation (ocsp_store_query_duration_seconds),
// by wrapping the store once where the daemon builds it; the store itself knows nothing of metrics.
import type { Registry } from 'prom-client';
import type { Clock } from '../clock';
import { ScrapeTimeHistogram } from './scrape-time-histogram';

/** Called per event-loop turn or per request without waiting (a few µs), or not queries at all: not timed. */
const NOT_QUERIES = new Set<PropertyKey>(['mayHaveChanged', 'getResponseNow', 'watch', 'constructor']);

export function instrumentStore<T extends object>(store: T, registry: Registry, clock: Clock): T {
  // Observed per lookup on the request path (a store hit on PostgreSQL): counted at scrape time, as request durations are.
  const seconds = new ScrapeTimeHistogram(
    'ocsp_store_query_duration_seconds',
    'Time the store took per operation (SQLite or PostgreSQL).',
    ['operation'],
    [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 5],
    registry,
  );
  const wrapped = new Map<PropertyKey, unknown>();
  return new Proxy(store, {
    get(target, prop, receiver) {
      const value = Reflect.get(target, prop, receiver) as unknown;
      if (typeof value !== 'function' || typeof prop !== 'string') return value;
      let fn = wrapped.get(prop);
      if (!fn && NOT_QUERIES.has(prop)) {
        // Bound to the store itself: called with the proxy as `this`, every field it reads would go through here.
        fn = (value as (...args: unknown[]) => unknown).bind(target);
        wrapped.set(prop, fn);
      }
      if (!fn) {
        const timer = seconds.newSeries({ operation: prop });
        const method = value as (...args: unknown[]) => unknown;
        fn = (...args: unknown[]) => {
          const started = clock.monotonicMs();
          const result = method.apply(target, args);
          if (result instanceof Promise) {
            const done = () => timer.observe((clock.monotonicMs() - started) / 1000);
            result.then(done, done);
          }
          return result;
        };
        wrapped.set(prop, fn);
      }
      return fn;
    },
  });
}
