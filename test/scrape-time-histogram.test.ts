// The scrape-time histogram against prom-client's own Histogram fed the same observations: the same exposition
// text and JSON; and HttpMetrics' counts and durations per (method, status, source).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Histogram, Registry } from 'prom-client';
import { FakeClock } from '../src/clock';
import { HttpMetrics } from '../src/metrics/http-metrics';
import { ScrapeTimeHistogram } from '../src/metrics/scrape-time-histogram';

const BOUNDS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5];
const NAME = 'ocsp_request_duration_seconds';
const HELP = 'Time from receiving an OCSP request to sending its answer.';

// Values on, just below and just above bucket bounds, and beyond the last one.
const OBSERVED: [string, string, number][] = [
  ['GET', 'successful', 0.0004], ['GET', 'successful', 0.001], ['GET', 'successful', 0.0010001], ['POST', 'successful', 0.02],
  ['POST', 'tryLater', 0.25], ['POST', 'tryLater', 7], ['GET', 'malformedRequest', 0], ['POST', 'successful', 4.9999],
  ['GET', 'successful', 0.1], ['POST', 'tryLater', 0.2500001],
];

describe('ScrapeTimeHistogram', () => {
  it("writes what prom-client's Histogram writes for the same observations, as text and as JSON", async () => {
    const ours = new Registry();
    const theirs = new Registry();
    const h = new ScrapeTimeHistogram(NAME, HELP, ['method', 'status'], BOUNDS, ours);
    const reference = new Histogram({ name: NAME, help: HELP, labelNames: ['method', 'status'], buckets: BOUNDS, registers: [theirs] });
    // Two series with the same histogram labels (a finer split kept by the caller) are added together.
    const series = new Map<string, ReturnType<ScrapeTimeHistogram['newSeries']>[]>();
    let n = 0;
    for (const [method, status, v] of OBSERVED) {
      const key = `${method} ${status}`;
      if (!series.has(key)) series.set(key, [h.newSeries({ method, status }), h.newSeries({ method, status })]);
      series.get(key)![n++ % 2]!.observe(v);
      reference.labels({ method, status }).observe(v);
    }
    assert.equal(await ours.metrics(), await theirs.metrics());
    assert.deepEqual(await ours.getMetricsAsJSON(), await theirs.getMetricsAsJSON());
    assert.match(await ours.metrics(), /ocsp_request_duration_seconds_bucket\{le="0.25",method="POST",status="tryLater"\} 1\n/);
    assert.match(await ours.metrics(), /ocsp_request_duration_seconds_count\{method="POST",status="tryLater"\} 3\n/);

    ours.resetMetrics();
    theirs.resetMetrics();
    series.get('GET successful')![0]!.observe(0.003);
    reference.labels({ method: 'GET', status: 'successful' }).observe(0.003);
    // prom-client forgets its series on reset; ours keeps them at zero.
    const text = await ours.metrics();
    assert.match(text, /ocsp_request_duration_seconds_count\{method="GET",status="successful"\} 1\n/);
    assert.match(text, /ocsp_request_duration_seconds_count\{method="POST",status="tryLater"\} 0\n/);
    assert.match(await theirs.metrics(), /ocsp_request_duration_seconds_bucket\{le="0.005",method="GET",status="successful"\} 1\n/);
    assert.match(text, /ocsp_request_duration_seconds_bucket\{le="0.005",method="GET",status="successful"\} 1\n/);
  });
});

describe('HttpMetrics', () => {
  it('counts requests per method, status and source, and durations per method and status (HEAD as GET)', async () => {
    const registry = new Registry();
    const m = new HttpMetrics(registry, new FakeClock());
    for (let i = 0; i < 5; i++) m.answered('GET', 'successful', 0.0002, 'cache');
    m.answered('HEAD', 'successful', 0.003, 'cache');
    m.answered('GET', 'successful', 0.2, 'live');
    m.answered('POST', 'successful', 0.0002, 'cache');
    m.answered('POST', 'tryLater', 1.5);
    m.answered('PUT', 'malformedRequest', 0.0001);
    const text = await registry.metrics();
    const value = (series: string) => {
      const line = text.split('\n').find((l) => l.startsWith(series + ' '));
      assert.ok(line, `${series} in:\n${text}`);
      return Number(line.slice(series.length + 1));
    };
    assert.equal(value('ocsp_requests_total{method="GET",status="successful",source="cache"}'), 6);
    assert.equal(value('ocsp_requests_total{method="GET",status="successful",source="live"}'), 1);
    assert.equal(value('ocsp_requests_total{method="POST",status="successful",source="cache"}'), 1);
    assert.equal(value('ocsp_requests_total{method="POST",status="tryLater",source="none"}'), 1);
    assert.equal(value('ocsp_requests_total{method="PUT",status="malformedRequest",source="none"}'), 1);
    assert.equal(value('ocsp_request_duration_seconds_count{method="GET",status="successful"}'), 7);
    assert.equal(value('ocsp_request_duration_seconds_bucket{le="0.001",method="GET",status="successful"}'), 5);
    assert.equal(value('ocsp_request_duration_seconds_bucket{le="0.005",method="GET",status="successful"}'), 6);
    assert.equal(value('ocsp_request_duration_seconds_bucket{le="0.25",method="GET",status="successful"}'), 7);
    assert.ok(Math.abs(value('ocsp_request_duration_seconds_sum{method="GET",status="successful"}') - 0.204) < 1e-12);
    assert.equal(value('ocsp_request_duration_seconds_bucket{le="1",method="POST",status="tryLater"}'), 0);
    assert.equal(value('ocsp_request_duration_seconds_bucket{le="2.5",method="POST",status="tryLater"}'), 1);
    // Counted once: a second scrape reports the same totals.
    m.answered('GET', 'successful', 0.0002, 'cache');
    assert.match(await registry.metrics(), /ocsp_requests_total\{method="GET",status="successful",source="cache"\} 7\n/);
  });
});
