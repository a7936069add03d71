// /metrics after a known workload: every counter moves by exactly what was sent, the gauges say what the
// daemon holds, the metrics listener can be separate, and `promtool check metrics` accepts the output.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { after, before, describe, it } from 'node:test';
import { childEnv, createTestPki, opensslQuery, Responder, runCli, startResponder, TestPki, variantConfig, waitFor } from './support/harness';

/** Every sample of a scrape: `name{labels}` (labels as printed) -> value. */
function parse(text: string): Map<string, number> {
  const m = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const i = line.lastIndexOf(' ');
    m.set(line.slice(0, i), Number(line.slice(i + 1)));
  }
  return m;
}

describe('metrics after a known workload', () => {
  let pki: TestPki;
  let responder: Responder;
  let metricsUrl: string;
  const scrape = async () => parse(await (await fetch(metricsUrl + '/metrics', { signal: AbortSignal.timeout(5000) })).text());

  before(async () => {
    pki = createTestPki([
      { name: 'pre', caKey: 'ec-p256', responderKey: 'ec-p256' },
      { name: 'live', caKey: 'ec-p256', responderKey: 'ec-p256' },
    ]);
    const config = variantConfig(pki, 'metrics', (c) => {
      c.tokens[0].sessions = 3;
      c.defaults = { ...c.defaults, validity: '2h' };
      c.cas[0].preProduction = { enabled: true, hashes: ['sha1'] };
      c.cas[1].preProduction = { enabled: false };
      c.metrics = { host: '127.0.0.1', port: 0 };
    });
    // Stored responses for "pre" before the daemon starts: its first answers come from the store.
    const presign = runCli(['presign', '--config', config], childEnv(pki));
    assert.equal(presign.status, 0, presign.stderr);
    responder = await startResponder(pki, { config });
    const port = /"port":(\d+),"msg":"metrics listening"/.exec(responder.output());
    assert.ok(port, responder.output());
    metricsUrl = `http://127.0.0.1:${port[1]}`;
  });
  after(async () => {
    if (responder) assert.equal(await responder.stop(), 0, responder.output());
  });

  it('counts requests by method, status and source, cache hits and misses, signatures and store queries exactly', async () => {
    const before = await scrape();
    const delta = (after: Map<string, number>, sample: string) => (after.get(sample) ?? 0) - (before.get(sample) ?? 0);
    const pre = pki.cas[0]!;
    const live = pki.cas[1]!;
    // 1 from the store, then 3 from memory (openssl POSTs; no nonce, so they are cacheable).
    for (let i = 0; i < 4; i++) assert.match(opensslQuery(pre, responder.url, [pre.good.file], ['-no_nonce']), /: good/);
    // 2 signed live, one with two certificates.
    assert.match(opensslQuery(live, responder.url, [live.good.file]), /: good/);
    assert.match(opensslQuery(live, responder.url, [live.good.file, live.revoked.file]), /: revoked/);
    // 2 malformed (GET of garbage), 1 for an issuer we do not serve.
    for (let i = 0; i < 2; i++) await (await fetch(responder.url + '/not-base64!', { signal: AbortSignal.timeout(5000) })).arrayBuffer();
    const stranger = createTestPki([{ name: 'stranger', caKey: 'ec-p256' }]).cas[0]!;
    assert.match(opensslQuery(stranger, responder.url, [stranger.good.file]), /unauthorized/i);

    const after = await scrape();
    assert.equal(delta(after, 'ocsp_requests_total{method="POST",status="successful",source="store"}'), 1);
    assert.equal(delta(after, 'ocsp_requests_total{method="POST",status="successful",source="cache"}'), 3);
    assert.equal(delta(after, 'ocsp_requests_total{method="POST",status="successful",source="live"}'), 2);
    assert.equal(delta(after, 'ocsp_requests_total{method="GET",status="malformedRequest",source="none"}'), 2);
    assert.equal(delta(after, 'ocsp_requests_total{method="POST",status="unauthorized",source="none"}'), 1);
    assert.equal(delta(after, 'ocsp_request_duration_seconds_count{method="POST",status="successful"}'), 6);
    assert.equal(delta(after, 'ocsp_cache_hits_total'), 3);
    assert.equal(delta(after, 'ocsp_cache_misses_total'), 1);
    // Two live responses, one signature each; nothing signed for the cached and stored answers.
    const signatures = [...after.keys()].filter((k) => k.startsWith('ocsp_hsm_signatures_total{') && k.includes('outcome="ok"'));
    assert.equal(signatures.reduce((n, k) => n + delta(after, k), 0), 2, signatures.join(', '));
    assert.ok(signatures.some((k) => k.includes('key="live-responder"') && k.includes('mechanism="CKM_ECDSA"')), signatures.join(', '));
    assert.equal(delta(after, 'ocsp_store_query_duration_seconds_count{operation="getResponse"}'), 1, 'one store lookup: the first answer');
    assert.ok(delta(after, 'ocsp_store_query_duration_seconds_count{operation="getCertificate"}') >= 3, 'the live answers read three statuses');
    assert.ok((after.get('ocsp_served_response_oldest_age_seconds') ?? -1) >= 0);
  });

  it('gauges: token ready, sessions, limiter, cache size, stored responses due and time to the earliest nextUpdate', async () => {
    const m = await scrape();
    assert.equal(m.get('ocsp_hsm_token_ready{token="main"}'), 1);
    assert.equal((m.get('ocsp_hsm_sessions{token="main",state="idle"}') ?? 0) + (m.get('ocsp_hsm_sessions{token="main",state="in_use"}') ?? 0), 3);
    assert.equal(m.get('ocsp_hsm_limiter_max_concurrent{limiter="main"}'), 3 * 8, 'eight signatures per session by default');
    assert.equal(m.get('ocsp_hsm_limiter_in_flight{limiter="main"}'), 0);
    assert.ok((m.get('ocsp_cache_entries') ?? 0) >= 1);
    // Checked at startup: everything presigned, so nothing is due; the earliest nextUpdate is about 2h away.
    assert.ok(await waitFor(async () => (await scrape()).has('ocsp_stored_responses_due{ca="pre"}'), 10_000));
    const h = await scrape();
    assert.equal(h.get('ocsp_stored_responses_due{ca="pre"}'), 0);
    const untilNext = h.get('ocsp_stored_responses_earliest_next_update_seconds{ca="pre"}')!;
    assert.ok(untilNext > 7000 && untilNext <= 7200, `earliest nextUpdate in ${untilNext} s`);
    assert.ok((h.get('process_cpu_seconds_total') ?? 0) > 0, 'process default metrics');
  });

  it('the metrics listener is separate: /metrics is not on the OCSP port', async () => {
    const r = await fetch(responder.url + '/metrics', { signal: AbortSignal.timeout(5000) });
    await r.arrayBuffer();
    assert.notEqual(r.status, 200);
    assert.equal((await fetch(metricsUrl + '/readyz', { signal: AbortSignal.timeout(5000) })).status, 200);
  });

  it('promtool check metrics accepts the output', async () => {
    const text = await (await fetch(metricsUrl + '/metrics', { signal: AbortSignal.timeout(5000) })).text();
    const r = spawnSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8', timeout: 30_000 });
    assert.equal(r.error, undefined, 'promtool runs (Debian package prometheus; npm test installs it)');
    assert.equal(r.status, 0, `${r.stdout}${r.stderr}`);
  });
});
