// Request metrics at the HTTP edge: count and latency by method and OCSP response status.
import { Counter, Histogram, Registry } from 'prom-client';

export type OcspStatusLabel = 'successful' | 'malformedRequest' | 'internalError' | 'tryLater' | 'sigRequired' | 'unauthorized';

type Labels = { method: string; status: OcspStatusLabel };

/** One (method, status): requests counted in a plain number, handed to prom-client at scrape time. */
interface Child {
  labels: Labels;
  count: number;
  reported: number;
  time: { observe(v: number): void };
}

export class HttpMetrics {
  private readonly seconds: Histogram<'method' | 'status'>;
  // By method, then status: no label object hashed and no key string built per request (prom-client's
  // labelled children hash their labels on every call, a measurable share of a cached answer's CPU).
  private readonly children = new Map<string, Map<OcspStatusLabel, Child>>();

  constructor(registry: Registry) {
    const children = this.children;
    new Counter({
      name: 'ocsp_requests_total',
      help: 'OCSP requests answered, by HTTP method and OCSP response status.',
      labelNames: ['method', 'status'],
      registers: [registry],
      collect() {
        for (const byStatus of children.values()) {
          for (const c of byStatus.values()) {
            if (c.count > c.reported) this.inc(c.labels, c.count - c.reported);
            c.reported = c.count;
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
  }

  answered(method: string, status: OcspStatusLabel, seconds: number): void {
    const m = method === 'HEAD' ? 'GET' : method;
    let byStatus = this.children.get(m);
    if (!byStatus) this.children.set(m, (byStatus = new Map()));
    let c = byStatus.get(status);
    if (!c) {
      const labels = { method: m, status };
      byStatus.set(status, (c = { labels, count: 0, reported: 0, time: this.seconds.labels(labels) }));
    }
    c.count++;
    c.time.observe(seconds);
  }
}
