// /metrics of a daemon of several processes: the primary's series as they are, each serving process's labelled
// worker="N", each family printed once, and promtool accepts the whole.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { describe, it } from 'node:test';
import { Counter } from 'prom-client';
import { FakeClock } from '../src/clock';
import { mergeMetrics } from '../src/metrics/cluster-metrics';
import { HttpMetrics } from '../src/metrics/http-metrics';
import { createRegistry } from '../src/metrics/registry';
import { servingShare } from '../src/cluster/protocol';
import { validateConfig } from '../src/config/load';

async function scrape() {
  const clock = new FakeClock();
  const primary = createRegistry();
  const signatures = new Counter({ name: 'ocsp_hsm_signatures_total', help: 'Signatures.', labelNames: ['token'], registers: [primary] });
  signatures.inc({ token: 'main' }, 7);
  const workers = [1, 2].map((worker) => {
    const registry = createRegistry();
    const http = new HttpMetrics(registry, clock);
    for (let i = 0; i < worker * 3; i++) http.answered('POST', 'successful', 0.002, 'cache');
    http.answered('GET', 'tryLater', 0.3);
    return { worker, registry };
  });
  const merged = mergeMetrics(
    await primary.getMetricsAsJSON(),
    await Promise.all(workers.map(async (w) => ({ worker: w.worker, metrics: await w.registry.getMetricsAsJSON() }))),
  );
  return merged.metrics();
}

describe('cluster metrics', () => {
  it('labels each serving process\'s series with its worker slot and keeps the primary\'s as they are', async () => {
    const text = await scrape();
    const lines = text.split('\n');
    assert.ok(lines.includes('ocsp_hsm_signatures_total{token="main"} 7'), 'the primary\'s series unlabelled');
    assert.ok(lines.includes('ocsp_requests_total{method="POST",status="successful",source="cache",worker="1"} 3'));
    assert.ok(lines.includes('ocsp_requests_total{method="POST",status="successful",source="cache",worker="2"} 6'));
    assert.ok(lines.includes('ocsp_request_duration_seconds_count{method="GET",status="tryLater",worker="2"} 1'));
    assert.ok(lines.includes('ocsp_request_duration_seconds_bucket{le="0.5",method="GET",status="tryLater",worker="1"} 1'));
    // Process metrics of all three processes, the serving ones labelled: the daemon's total is their sum.
    assert.equal(lines.filter((l) => l.startsWith('process_cpu_user_seconds_total')).length, 3);
    assert.ok(lines.some((l) => /^process_resident_memory_bytes\{worker="2"\} \d+/.test(l)));
    for (const family of ['ocsp_requests_total', 'ocsp_request_duration_seconds', 'process_cpu_user_seconds_total', 'nodejs_heap_size_total_bytes']) {
      assert.equal(lines.filter((l) => l.startsWith(`# TYPE ${family} `)).length, 1, `${family} is one family`);
    }
  });

  it('promtool check metrics accepts the merged output', async () => {
    const r = spawnSync('promtool', ['check', 'metrics'], { input: await scrape(), encoding: 'utf8', timeout: 30_000 });
    assert.equal(r.error, undefined, 'promtool runs (Debian package prometheus; npm test installs it)');
    assert.equal(r.status, 0, `${r.stdout}${r.stderr}`);
  });
});

describe('a serving process\'s share of the daemon-wide sizes', () => {
  const minimal = (extra: Record<string, unknown>) => ({
    tokens: [{ name: 'hsm', module: '/m.so', tokenLabel: 'ocsp', pin: { env: 'P' } }],
    cas: [{ name: 'ca1', certificate: 'ca.pem', signer: { token: 'hsm', key: { label: 'r' } } }],
    ...extra,
  });

  it('divides cache.maxSize, cache.maxEntries and store.poolSize among server.workers, never to nothing', () => {
    const c = validateConfig(minimal({ server: { workers: 3 }, cache: { maxSize: '90MiB', maxEntries: 1000 }, store: { url: 'postgres://h/db', poolSize: 10 } }), 't.yaml').config;
    const share = servingShare(c);
    assert.equal(share.cache.maxSize, 30 * 1024 * 1024);
    assert.equal(share.cache.maxEntries, 334);
    assert.equal(share.store.type === 'postgres' && share.store.poolSize, 4);
    const tiny = servingShare(validateConfig(minimal({ server: { workers: 8 }, cache: { maxSize: 4 }, store: { url: 'postgres://h/db', poolSize: 1 } }), 't.yaml').config);
    assert.equal(tiny.cache.maxSize, 1);
    assert.equal(tiny.store.type === 'postgres' && tiny.store.poolSize, 1);
    const off = servingShare(validateConfig(minimal({ server: { workers: 2 }, cache: { maxSize: 0 } }), 't.yaml').config);
    assert.equal(off.cache.maxSize, 0, 'a cache turned off stays off');
  });
});
