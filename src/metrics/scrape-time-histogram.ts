// A Prometheus histogram whose observations are plain additions: bucket counts live in numbers of the caller's
// and are handed to the registry at scrape time. prom-client's own observe() builds a label object and a label
// string per call, a measurable share of an answer from memory (README, Benchmarks).
import type { Metric, Registry } from 'prom-client';

/** One labelled series: observe() is all a request pays. */
export class HistogramSeries {
  /** Observations per bucket (not cumulative); the last slot counts those above every bound (+Inf). */
  readonly counts: Float64Array;
  sum = 0;

  constructor(
    readonly labels: Readonly<Record<string, string>>,
    private readonly bounds: readonly number[],
  ) {
    this.counts = new Float64Array(bounds.length + 1);
  }

  observe(value: number): void {
    const b = this.bounds;
    let i = 0;
    while (i < b.length && value > b[i]!) i++;
    this.counts[i]!++;
    this.sum += value;
  }
}

interface Value {
  labels: Record<string, string | number>;
  value: number;
  metricName: string;
  /** As prom-client's: none kept (null on buckets, undefined on _sum and _count). */
  exemplar: null | undefined;
}

/**
 * Exposition as prom-client's Histogram writes it (buckets with `le` first, then _sum and _count), for the text
 * format and for getMetricsAsJSON (cluster aggregation sums the series). Series with equal labels are added
 * together: callers may keep finer series (per source, say) than the histogram's labels.
 */
export class ScrapeTimeHistogram {
  readonly type = 'histogram';
  readonly aggregator = 'sum';
  private readonly all: HistogramSeries[] = [];

  constructor(
    readonly name: string,
    readonly help: string,
    readonly labelNames: readonly string[],
    private readonly bounds: readonly number[],
    registry: Registry,
  ) {
    registry.registerMetric(this as unknown as Metric);
  }

  /** A new series for these label values (kept for the registry's life: create each once). */
  newSeries(labels: Record<string, string>): HistogramSeries {
    const s = new HistogramSeries(labels, this.bounds);
    this.all.push(s);
    return s;
  }

  async get(): Promise<{ name: string; help: string; type: string; aggregator: string; values: Value[] }> {
    return { name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values: this.values() };
  }

  /** registry.resetMetrics() */
  reset(): void {
    for (const s of this.all) {
      s.counts.fill(0);
      s.sum = 0;
    }
  }

  private values(): Value[] {
    const merged = new Map<string, { labels: Record<string, string>; counts: number[]; sum: number }>();
    for (const s of this.all) {
      const key = this.labelNames.map((n) => s.labels[n]).join('\0');
      let m = merged.get(key);
      if (!m) merged.set(key, (m = { labels: s.labels, counts: new Array<number>(this.bounds.length + 1).fill(0), sum: 0 }));
      for (let i = 0; i < s.counts.length; i++) m.counts[i]! += s.counts[i]!;
      m.sum += s.sum;
    }
    const values: Value[] = [];
    for (const { labels, counts, sum } of merged.values()) {
      const own: Record<string, string> = {};
      for (const n of this.labelNames) own[n] = labels[n]!;
      let cumulative = 0;
      this.bounds.forEach((le, i) => {
        cumulative += counts[i]!;
        values.push({ labels: { le, ...own }, value: cumulative, metricName: `${this.name}_bucket`, exemplar: null });
      });
      const count = cumulative + counts[this.bounds.length]!;
      values.push({ labels: { le: '+Inf', ...own }, value: count, metricName: `${this.name}_bucket`, exemplar: null });
      values.push({ labels: { ...own }, value: sum, metricName: `${this.name}_sum`, exemplar: undefined });
      values.push({ labels: { ...own }, value: count, metricName: `${this.name}_count`, exemplar: undefined });
    }
    return values;
  }
}
