// Request metrics at the HTTP edge: count by method, OCSP response status and the step that answered; latency
// by method and status; the age of the oldest response served since the last scrape.
import { Counter, Gauge, Registry } from 'prom-client';
import type { Clock } from '../clock';
import { HistogramSeries, ScrapeTimeHistogram } from './scrape-time-histogram';

export type OcspStatusLabel = 'successful' | 'malformedRequest' | 'internalError' | 'tryLater' | 'sigRequired' | 'unauthorized';
/** cache, store or live for successful answers; none for errors (no response was looked up or signed). */
export type SourceLabel = 'cache' | 'store' | 'live' | 'none';

type Labels = { method: string; status: OcspStatusLabel; source: SourceLabel };

const STATUSES: readonly OcspStatusLabel[] = ['successful', 'malformedRequest', 'internalError', 'tryLater', 'sigRequired', 'unauthorized'];
const SOURCES: readonly SourceLabel[] = ['cache', 'store', 'live', 'none'];
const STATUS_INDEX = Object.fromEntries(STATUSES.map((s, i) => [s, i])) as Record<OcspStatusLabel, number>;
const SOURCE_INDEX = Object.fromEntries(SOURCES.map((s, i) => [s, i])) as Record<SourceLabel, number>;

/** One (method, status, source): requests counted in plain numbers, handed to prom-client at scrape time. */
interface Child {
  labels: Labels;
  count: number;
  reported: number;
  time: HistogramSeries;
}

export class HttpMetrics {
  private readonly seconds: ScrapeTimeHistogram;
  // Children by method, then (status, source) as an array index: no label object hashed, no key string built and
  // no map searched per request (prom-client's labelled children hash their labels on every call, a measurable
  // share of a cached answer's CPU).
  private readonly children = new Map<string, (Child | undefined)[]>();
  private readonly getChildren: (Child | undefined)[] = [];
  private readonly postChildren: (Child | undefined)[] = [];
  /** thisUpdate of the oldest response served since the last scrape (Infinity: none served). */
  private oldestServedMs = Infinity;

  constructor(registry: Registry, clock: Clock) {
    const children = this.children;
    children.set('GET', this.getChildren).set('POST', this.postChildren);
    new Counter({
      name: 'ocsp_requests_total',
      help: 'OCSP requests answered, by HTTP method, OCSP response status and the step that answered (cache, store, live; none for errors).',
      labelNames: ['method', 'status', 'source'],
      registers: [registry],
      collect() {
        for (const byIndex of children.values()) {
          for (const c of byIndex) {
            if (!c) continue;
            if (c.count > c.reported) this.inc(c.labels, c.count - c.reported);
            c.reported = c.count;
          }
        }
      },
    });
    this.seconds = new ScrapeTimeHistogram(
      'ocsp_request_duration_seconds',
      'Time from receiving an OCSP request to sending its answer.',
      ['method', 'status'],
      [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
      registry,
    );
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
    const byIndex = method === 'POST' ? this.postChildren : method === 'GET' || method === 'HEAD' ? this.getChildren : this.others(method);
    const i = STATUS_INDEX[status] * SOURCES.length + SOURCE_INDEX[source];
    const c = byIndex[i] ?? this.newChild(byIndex, i, method === 'HEAD' ? 'GET' : method, status, source);
    c.count++;
    c.time.observe(seconds);
  }

  /** A successful answer went out whose thisUpdate was this (for the CA/B Forum freshness figures). */
  served(thisUpdateMs: number): void {
    if (thisUpdateMs < this.oldestServedMs) this.oldestServedMs = thisUpdateMs;
  }

  private others(method: string): (Child | undefined)[] {
    let byIndex = this.children.get(method);
    if (!byIndex) this.children.set(method, (byIndex = []));
    return byIndex;
  }

  private newChild(byIndex: (Child | undefined)[], i: number, method: string, status: OcspStatusLabel, source: SourceLabel): Child {
    const labels = { method, status, source };
    return (byIndex[i] = { labels, count: 0, reported: 0, time: this.seconds.newSeries({ method, status }) });
  }
}
