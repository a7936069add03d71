// Request metrics at the HTTP edge: count and latency by method and OCSP response status.
import { Counter, Histogram, Registry } from 'prom-client';

export type OcspStatusLabel = 'successful' | 'malformedRequest' | 'internalError' | 'tryLater' | 'sigRequired' | 'unauthorized';

export class HttpMetrics {
  private readonly requests: Counter<'method' | 'status'>;
  private readonly seconds: Histogram<'method' | 'status'>;

  constructor(registry: Registry) {
    this.requests = new Counter({
      name: 'ocsp_requests_total',
      help: 'OCSP requests answered, by HTTP method and OCSP response status.',
      labelNames: ['method', 'status'],
      registers: [registry],
    });
    this.seconds = new Histogram({
      name: 'ocsp_request_duration_seconds',
      help: 'Time from receiving an OCSP request to sending its answer.',
      labelNames: ['method', 'status'],
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
      registers: [registry],
    });
  }

  // Label children looked up once per (method, status): prom-client hashes a label object on every call.
  private readonly children = new Map<string, { count: { inc(): void }; time: { observe(v: number): void } }>();

  answered(method: string, status: OcspStatusLabel, seconds: number): void {
    const m = method === 'HEAD' ? 'GET' : method;
    const key = `${m} ${status}`;
    let c = this.children.get(key);
    if (!c) {
      c = { count: this.requests.labels({ method: m, status }), time: this.seconds.labels({ method: m, status }) };
      this.children.set(key, c);
    }
    c.count.inc();
    c.time.observe(seconds);
  }
}
