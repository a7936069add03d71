// Request metrics at the HTTP edge: count by method, OCSP response status and the step that answered; latency
// by method and status; the age of the oldest response served since the last scrape.
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { Clock } from '../clock';

export type OcspStatusLabel = 'successful' | 'malformedRequest' | 'internalError' | 'tryLater' | 'sigRequired' | 'unauthorized';
/** cache, store or live for successful answers; none for errors (no response was looked up or signed). */
export type SourceLabel = 'cache' | 'store' | 'live' | 'none';

type Labels = { method: string; status: OcspStatusLabel; source: SourceLabel };

/** One (method, status, source): requests counted in a plain number, handed to prom-client at scrape time. */
interface Child {
  labels: Labels;
  count: number;
  reported: number;
  time: { observe(v: number): void };
}

export class HttpMetrics {
  private readonly seconds: Histogram<'method' | 'status'>;
  // Nested maps by method, status, source: no label object hashed and no key string built per request
  // (prom-client's labelled children hash their labels on every call, a measurable share of a cached answer's CPU).
  private readonly children = new Map<string, Map<OcspStatusLabel, Map<SourceLabel, Child>>>();
  /** thisUpdate of the oldest response served since the last scrape (Infinity: none served). */
  private oldestServedMs = Infinity;

  constructor(registry: Registry, clock: Clock) {
    const children = this.children;
    new Counter({
      name: 'ocsp_requests_total',
      help: 'OCSP requests answered, by HTTP method, OCSP response status and the step that answered (cache, store, live; none for errors).',
      labelNames: ['method', 'status', 'source'],
      registers: [registry],
      collect() {
        for (const byStatus of children.values()) {
          for (const bySource of byStatus.values()) {
            for (const c of bySource.values()) {
              if (c.count > c.reported) this.inc(c.labels, c.count - c.reported);
              c.reported = c.count;
            }
          }
        }
      },
    });
    this.seconds = new Histogram({
      name: 'ocsp_request_duration_seconds',
      help: 'Time from receiving an OCSP request to sending its answer.',
      labelNames: ['method', 'status'],
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
      registers: [registry],
    });
    const self = this;
    new Gauge({
      name: 'ocsp_served_response_oldest_age_seconds',
      help: 'Age (now minus thisUpdate) of the oldest response served since the previous scrape; 0 when none was.',
      registers: [registry],
      collect() {
        const oldest = self.oldestServedMs;
        self.oldestServedMs = Infinity;
        this.set(Number.isFinite(oldest) ? Math.max(0, (clock.now().getTime() - oldest) / 1000) : 0);
      },
    });
  }

  answered(method: string, status: OcspStatusLabel, seconds: number, source: SourceLabel = 'none'): void {
    const m = method === 'HEAD' ? 'GET' : method;
    let byStatus = this.children.get(m);
    if (!byStatus) this.children.set(m, (byStatus = new Map()));
    let bySource = byStatus.get(status);
    if (!bySource) byStatus.set(status, (bySource = new Map()));
    let c = bySource.get(source);
    if (!c) {
      const labels = { method: m, status, source };
      bySource.set(source, (c = { labels, count: 0, reported: 0, time: this.seconds.labels({ method: m, status }) }));
    }
    c.count++;
    c.time.observe(seconds);
  }

  /** A successful answer went out whose thisUpdate was this (for the CA/B Forum freshness figures). */
  served(thisUpdateMs: number): void {
    if (thisUpdateMs < this.oldestServedMs) this.oldestServedMs = thisUpdateMs;
  }
}
