// PostgreSQL stopped for 10 s under load, then started, under two SoftHSM2 responders sharing it: one with
// store.maxStaleness 30s (the outage is inside it), one with the default 2s. Paced request streams from this process
// (127.0.0.1, bounded in time) record every answer: cached answers go on while within maxStaleness and become tryLater
// past it, requests that need the store get tryLater at once, nothing is ever internalError, each responder logs the
// outage once, is not ready while the database is away and ready again within seconds of its return, and a revocation
// made through the CLI right after the restart is never contradicted once the CLI returned plus maxStaleness.
// OCSP_HSM_OUTAGE_DUMP=FILE writes the timeline, every answer, the readiness checks and both logs there as JSON.
import assert from 'node:assert/strict';
import type { KeyObject } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { readCertificate } from '../src/pki/certificate';
import { Answer, CertStatus, OcspExchange, signatureVerifies } from './support/ocsp-exchange';
import { childEnv, createTestPki, metric, readyz, Responder, runCli, runCliAsync, startResponder, TestCa, TestPki, variantConfig } from './support/harness';
import { pgCount, PostgresCluster, postgresCluster } from './support/postgres';

const OUTAGE_MS = 10_000;
/** The default store.maxStaleness: the bound of the revocation guarantee on PostgreSQL. */
const DEFAULT_STALENESS_MS = 2_000;

interface Sample {
  stream: string;
  responder: string;
  sentAt: number;
  ms: number;
  ocspStatus?: number;
  /** The status of the first serial asked. */
  cert?: CertStatus;
  problem?: string;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** tryLater answers as the responder timed them (arrival to answer): all of them, and those within 1 s. */
async function tryLaterTimes(url: string): Promise<{ tryLater: number; tryLaterWithin1s: number }> {
  const text = await (await fetch(url + '/metrics', { signal: AbortSignal.timeout(5000) })).text();
  const sum = (re: RegExp) => text.split('\n').filter((l) => re.test(l)).reduce((n, l) => n + Number(l.slice(l.lastIndexOf(' ') + 1)), 0);
  return {
    tryLater: sum(/^ocsp_request_duration_seconds_count\{.*status="tryLater"/),
    tryLaterWithin1s: sum(/^ocsp_request_duration_seconds_bucket\{(?=.*status="tryLater")(?=.*le="1")/),
  };
}

describe('PostgreSQL stopped for 10 s under load, then started', () => {
  let pg: PostgresCluster;
  let url: string;
  let pki: TestPki;
  let ca1: TestCa;
  let ca2: TestCa;
  let long: Responder;
  let short: Responder;
  const samples: Sample[] = [];
  const readiness: { responder: string; at: number; status: number }[] = [];
  const times = { stopAt: 0, stoppedAt: 0, startAt: 0, startedAt: 0, ackAt: 0 };
  let revokeStatus: number | null = null;
  let listenersAfter = 0;
  let metricsAfter: Record<string, Record<string, number>> = {};
  const stoppedTimeline: string[] = [];

  before(async () => {
    pg = await postgresCluster();
    url = pg.url(await pg.createDatabase());
    pki = createTestPki([
      { name: 'outage1', caKey: 'ec-p256', responderKey: 'ec-p256' },
      { name: 'outage2', caKey: 'ec-p256', responderKey: 'ec-p256' },
    ]);
    [ca1, ca2] = pki.cas as [TestCa, TestCa];
    const config = (name: string, store: Record<string, unknown>) =>
      variantConfig(pki, name, (c) => {
        c.store = store;
        c.defaults = { ...c.defaults, validity: '1h', preProduction: { enabled: true, storeOnDemand: true, onRevocation: true } };
      });
    const longConfig = config('outage-long', { url, maxStaleness: '30s' });
    const shortConfig = config('outage-default', { url });
    for (const ca of [ca1, ca2]) {
      for (const args of [['import', 'certs', '--ca', ca.name, ca.good.file, ca.revoked.file], ['revoke', '--ca', ca.name, '--serial', ca.revoked.serial, '--reason', 'keyCompromise']]) {
        const r = runCli([...args, '--config', longConfig], childEnv(pki));
        assert.equal(r.status, 0, `${args.join(' ')}: ${r.stderr}`);
      }
    }
    [long, short] = await Promise.all([startResponder(pki, { config: longConfig }), startResponder(pki, { config: shortConfig })]);

    const exchanges = new Map([ca1, ca2].map((ca) => [ca.name, new OcspExchange(readCertificate(ca.caCertFile), 16)]));
    const keys = new Map<string, KeyObject>([ca1, ca2].map((ca) => [ca.name, readCertificate(ca.responderCertFile!).x509.publicKey]));
    const responders = [
      { name: 'long', r: long },
      { name: 'default', r: short },
    ];
    // Every answer is decoded; a successful one must verify with its CA's responder key.
    const ask = async (stream: string, responder: { name: string; r: Responder }, ca: TestCa, serials: string[], nonce: boolean) => {
      const t0 = performance.now();
      const a: Answer = await exchanges.get(ca.name)!.ask({ url: responder.r.url, serials, method: 'POST', nonce });
      const sample: Sample = { stream, responder: responder.name, sentAt: a.sentAt, ms: performance.now() - t0 };
      if (a.ocspStatus !== undefined) sample.ocspStatus = a.ocspStatus;
      const cert = a.statuses.get(serials[0]!);
      if (cert) sample.cert = cert;
      const wrong = serials.length > 1 && a.ocspStatus === 0 && a.statuses.get(serials[1]!) !== 'revoked' ? `${serials[1]} not revoked` : undefined;
      const problem = a.transportError ?? a.problem ?? wrong ?? (a.ocspStatus === 0 && !signatureVerifies(a.signed!, keys.get(ca.name)!) ? 'signature does not verify' : undefined);
      if (problem) sample.problem = problem;
      samples.push(sample);
    };
    // Caches filled with "good" for the two certificates the streams ask about without a nonce.
    for (const responder of responders) {
      for (const ca of [ca1, ca2]) {
        for (let i = 0; i < 2; i++) await ask('warm-up', responder, ca, [ca.good.serial], false);
      }
    }
    assert.deepEqual(samples.map((s) => `${s.ocspStatus} ${s.cert}`), Array(8).fill('0 good'));

    let running = true;
    const paced = async (everyMs: number, one: () => Promise<void>) => {
      while (running) {
        const t0 = performance.now();
        await one();
        const wait = everyMs - (performance.now() - t0);
        if (wait > 0) await sleep(wait);
      }
    };
    const streams: Promise<void>[] = [];
    // Paced, not as fast as possible: the machine is shared, and latencies are part of what is checked.
    for (const responder of responders) {
      // Cached: a certificate never revoked, and one revoked before it all.
      streams.push(paced(50, () => ask('cached', responder, ca1, [ca1.good.serial], false)));
      streams.push(paced(100, () => ask('revoked-before', responder, ca1, [ca1.revoked.serial], false)));
      // Not cached: two certificates and a nonce, signed live from the statuses in the store.
      streams.push(paced(50, () => ask('uncached', responder, ca1, [ca1.good.serial, ca1.revoked.serial], true)));
      // Cached "good" until it is revoked right after the restart.
      streams.push(paced(40, () => ask('revoked-after', responder, ca2, [ca2.good.serial], false)));
      streams.push(
        paced(100, async () => {
          readiness.push({ responder: responder.name, at: Date.now(), status: await readyz(responder.r.url) });
        }),
      );
    }
    try {
      await sleep(2_000);
      times.stopAt = Date.now();
      await pg.stop();
      times.stoppedAt = Date.now();
      await sleep(OUTAGE_MS - (times.stoppedAt - times.stopAt));
      times.startAt = Date.now();
      await pg.start();
      times.startedAt = Date.now();
      const rev = await runCliAsync(['revoke', '--ca', ca2.name, '--serial', ca2.good.serial, '--reason', 'keyCompromise', '--config', longConfig], childEnv(pki));
      times.ackAt = Date.now();
      revokeStatus = rev.status;
      if (rev.status !== 0) stoppedTimeline.push(`revoke: ${rev.stderr}`);
      await sleep(6_000);
    } finally {
      running = false;
      await Promise.all(streams);
      for (const e of exchanges.values()) e.close();
    }
    // The LISTEN connections came back by themselves (one per responder).
    listenersAfter = await pgCount(url, "SELECT count(*) AS n FROM pg_stat_activity WHERE application_name = 'ocsp-hsm' AND query LIKE 'LISTEN%'");
    for (const { name, r } of responders) {
      metricsAfter[name] = {};
      for (const m of ['ocsp_store_up', 'ocsp_store_outages_total', 'ocsp_store_refused_calls_total']) metricsAfter[name]![m] = await metric(r.url, m);
      Object.assign(metricsAfter[name]!, await tryLaterTimes(r.url));
    }
  });

  after(async () => {
    for (const r of [long, short]) if (r) assert.equal(await r.stop(), 0, r.output());
    const dump = process.env.OCSP_HSM_OUTAGE_DUMP;
    if (dump) writeFileSync(dump, JSON.stringify({ times, long: long.output(), default: short.output(), samples, readiness }));
  });

  const of = (stream: string, responder: string, from = -Infinity, to = Infinity) =>
    samples.filter((s) => s.stream === stream && s.responder === responder && s.sentAt >= from && s.sentAt < to);
  const describeSamples = (xs: Sample[]) => JSON.stringify(xs.slice(0, 5).map((s) => ({ ...s, sentAt: s.sentAt - times.stopAt })));

  it('the outage happened as planned: 10 s, the revocation acknowledged right after the restart', () => {
    assert.ok(times.startAt - times.stopAt >= OUTAGE_MS - 100, JSON.stringify(times));
    // Started the moment pg_ctl returned; how long the CLI takes to start and exit is the machine's business.
    assert.equal(revokeStatus, 0, stoppedTimeline.join('\n'));
  });

  it('no answer is internalError, none is malformed or fails to verify, no request is lost', () => {
    assert.ok(samples.length > 200, `${samples.length} answers`);
    const bad = samples.filter((s) => s.problem || s.ocspStatus === undefined || ![0, 3].includes(s.ocspStatus));
    assert.deepEqual(bad.length, 0, describeSamples(bad));
  });

  it('cached answers keep flowing through the outage when it is within maxStaleness (30s)', () => {
    const during = of('cached', 'long', times.stopAt, times.startedAt);
    assert.ok(during.length > 20, `${during.length} answers during the outage`);
    const notGood = of('cached', 'long').filter((s) => s.ocspStatus !== 0 || s.cert !== 'good');
    assert.equal(notGood.length, 0, describeSamples(notGood));
  });

  it('with the default maxStaleness, cached answers go on for it and then become tryLater, never internalError', () => {
    // Memory still answers after the database went away (the last proof of the feed came about a poll, 250 ms,
    // before the stop; how long after it each request is handled depends on this loaded machine's timers).
    const early = of('cached', 'default', times.stopAt + 100, times.stopAt + 1_500).filter((s) => s.ocspStatus === 0);
    assert.ok(early.length >= 1 && early.every((s) => s.cert === 'good'), `within maxStaleness: ${describeSamples(early)}`);
    const late = of('cached', 'default', times.stopAt + 3_000, times.startAt);
    assert.ok(late.length > 10, `${late.length} answers`);
    const notTryLater = late.filter((s) => s.ocspStatus !== 3);
    assert.equal(notTryLater.length, 0, describeSamples(notTryLater));
    const after = of('cached', 'default', times.startedAt + 3_000);
    assert.ok(after.length > 5 && after.every((s) => s.ocspStatus === 0 && s.cert === 'good'), 'from memory again after the restart');
  });

  it('requests that need the store get tryLater at once while it is away, and are answered again after it returns', () => {
    for (const responder of ['long', 'default']) {
      const during = of('uncached', responder, times.stoppedAt, times.startAt);
      assert.ok(during.length > 10, `${responder}: ${during.length} answers`);
      const answered = during.filter((s) => s.ocspStatus !== 3);
      assert.equal(answered.length, 0, `${responder}: ${describeSamples(answered)}`);
      // Timed by the responder (the client's figures include this loaded machine's scheduling): none waited for a
      // connection; and as this process saw them, none came anywhere near a connect (10 s) or response timeout (5 s).
      const m = metricsAfter[responder]!;
      assert.ok(m.tryLater! > 20, `${responder}: ${m.tryLater} tryLater answers counted`);
      assert.equal(m.tryLaterWithin1s, m.tryLater, `${responder}: tryLater answers that took more than 1 s in the responder`);
      const slowest = Math.max(...samples.filter((s) => s.responder === responder && s.stream !== 'warm-up').map((s) => s.ms));
      assert.ok(slowest < 2_500, `${responder}: slowest answer ${Math.round(slowest)} ms`);
      const after = of('uncached', responder, times.startedAt + 3_000);
      assert.ok(after.length > 5 && after.every((s) => s.ocspStatus === 0 && s.cert === 'good'), `${responder}: the pool reconnected by itself`);
    }
  });

  it('a revocation made before the outage is never contradicted', () => {
    for (const responder of ['long', 'default']) {
      const xs = of('revoked-before', responder);
      assert.ok(xs.length > 20, `${responder}: ${xs.length} answers`);
      const good = xs.filter((s) => s.ocspStatus === 0 && s.cert !== 'revoked');
      assert.equal(good.length, 0, describeSamples(good));
    }
  });

  it('a revocation made right after the restart is never contradicted once the CLI returned plus maxStaleness', () => {
    for (const responder of ['long', 'default']) {
      // The long responder's guarantee is 30 s; its poll of the change log applies the revocation as fast as the default's.
      const late = of('revoked-after', responder, times.ackAt + DEFAULT_STALENESS_MS);
      assert.ok(late.length >= 5, `${responder}: ${late.length} answers`);
      const good = late.filter((s) => s.cert === 'good');
      assert.equal(good.length, 0, `${responder}: "good" after the bound: ${describeSamples(good)}`);
      assert.ok(late.filter((s) => s.cert === 'revoked').length >= 5, `${responder}: answered revoked`);
    }
  });

  it('each responder is not ready while the database is away, and ready again within a few seconds of its return', () => {
    for (const responder of ['long', 'default']) {
      const samplesOf = readiness.filter((r) => r.responder === responder);
      assert.ok(samplesOf.filter((r) => r.at < times.stopAt).every((r) => r.status === 200), `${responder}: ready before`);
      // A check that timed out (status 0, a loaded machine) is a failed check to a load balancer too.
      const during = samplesOf.filter((r) => r.at > times.stoppedAt + 1_000 && r.at < times.startAt);
      assert.ok(during.length > 10 && during.every((r) => r.status !== 200), `${responder}: not ready during the outage: ${JSON.stringify(during.filter((r) => r.status === 200))}`);
      assert.ok(during.filter((r) => r.status === 503).length > during.length / 2, `${responder}: 503 during the outage`);
      const back = samplesOf.find((r) => r.at > times.startedAt && r.status === 200);
      assert.ok(back, `${responder}: ready again`);
      assert.ok(back.at - times.startedAt < 3_000, `${responder}: ready ${back.at - times.startedAt} ms after the restart`);
      const flapping = samplesOf.filter((r) => r.at > back.at && r.status !== 200);
      assert.equal(flapping.length, 0, `${responder}: not ready again after ${back.at - times.startedAt} ms`);
    }
  });

  it('the log says so once per outage, not once per request; the metrics show it; the LISTEN connections are back', () => {
    assert.equal(listenersAfter, 2);
    for (const [name, r] of [['long', long], ['default', short]] as const) {
      const lines = r.output().split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as { level: number; msg?: string; time: string });
      const window = lines.filter((l) => Date.parse(l.time) >= times.stopAt - 1_000);
      const loud = window.filter((l) => l.level >= 40);
      const text = loud.map((l) => JSON.stringify(l)).join('\n');
      assert.equal(window.filter((l) => (l.msg ?? '').startsWith('store unavailable')).length, 1, `${name}:\n${text}`);
      assert.equal(window.filter((l) => l.msg === 'store available again').length, 1, `${name}: ${r.output().slice(-3000)}`);
      assert.equal(lines.filter((l) => l.msg === 'failed to answer OCSP request').length, 0, `${name}:\n${text}`);
      assert.ok(loud.length <= 3, `${name}: ${loud.length} warnings and errors:\n${text}`);
      assert.deepEqual(
        { up: metricsAfter[name]!.ocsp_store_up, outages: metricsAfter[name]!.ocsp_store_outages_total },
        { up: 1, outages: 1 },
        name,
      );
      assert.ok(metricsAfter[name]!.ocsp_store_refused_calls_total! > 100, `${name}: ${metricsAfter[name]!.ocsp_store_refused_calls_total} refused`);
    }
  });
});
