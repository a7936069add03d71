// The CA/B Forum profile's metrics on a fake clock: stored responses past their BR 4.9.9 update time, and certificates
// recorded (answered unknown until then) more than 15 minutes after they were published, through the publishing API
// and a followed index.txt. Each moves exactly as the clock passes its deadline, and only for CAs under cabf. On real
// SQLite and PostgreSQL stores, in this process: a daemon's clock cannot be faked from outside it.
import assert from 'node:assert/strict';
import { utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import type { Registry } from 'prom-client';
import { FakeClock } from '../src/clock';
import { IndexFollower } from '../src/ingest/index-follow';
import { ComplianceMetrics } from '../src/metrics/compliance-metrics';
import { PreSignerMetrics } from '../src/metrics/presign-metrics';
import { createRegistry } from '../src/metrics/registry';
import { PreSigner } from '../src/presign/pre-signer';
import { Publisher } from '../src/publish/publisher';
import { makeAuthority } from '../src/source/authority';
import { ResponseProducer } from '../src/source/response-producer';
import { SqliteStore } from '../src/store/sqlite/sqlite-store';
import { PostgresStore } from '../src/store/postgres/postgres-store';
import type { Store } from '../src/store/response-store';
import { quiet } from '../test/support/serving-chain';
import { softwarePki, SoftwarePki } from '../test/support/software-pki';
import { tempDir } from '../test/support/temp';
import { postgresCluster } from './support/postgres';

const H = 3_600_000;
const MIN = 60_000;
// Whole seconds, after the test PKI's certificates begin.
const T0 = Math.floor(Date.now() / 1000) * 1000 + MIN;

async function value(registry: Registry, name: string, labels: Record<string, string>): Promise<number | undefined> {
  const m = await registry.getSingleMetric(name)!.get();
  return m.values.find((v) => Object.entries(labels).every(([k, l]) => v.labels[k] === l))?.value;
}

/** The store each metric is counted in (ocsp_stored_responses_past_update_time is a query of its own on each). */
const BACKENDS: [string, (clock: FakeClock) => Promise<Store>][] = [
  ['SQLite', async (clock) => new SqliteStore(':memory:', clock)],
  ['PostgreSQL', async (clock) => {
    const pg = await postgresCluster();
    return PostgresStore.open({ url: pg.url(await pg.createDatabase()), poolSize: 4, clock });
  }],
];

for (const [backend, openStore] of BACKENDS) describe(`CA/B Forum profile metrics, ${backend}`, () => {
  let pki: SoftwarePki;
  before(async () => {
    pki = await softwarePki('ec-p256', [0x1001n, 0x1002n]);
  });

  it('ocsp_stored_responses_past_update_time counts served responses once 8 hours before nextUpdate has passed', async () => {
    const clock = new FakeClock(new Date(T0));
    const store = await openStore(clock);
    const registry = createRegistry();
    const metrics = new PreSignerMetrics(registry, clock);
    const preProduction = { enabled: true, storeOnDemand: true, onIssuance: false, onRevocation: true, hashes: ['sha1', 'sha256'] as const, finalResponsesBeforeMs: undefined };
    const authorities = (['cabf', 'none'] as const).map((compliance) => makeAuthority({
      name: compliance, caCert: pki.ca, signerCert: pki.responder, signer: pki.responderSigner, responderId: 'byKey', validityMs: 24 * H,
      preProduction: { ...preProduction, hashes: ['sha1', 'sha256'] }, compliance,
    }));
    await store.putCertificates(['cabf', 'none'].flatMap((ca) => ['1001', '1002'].map((serial) => ({ ca, serial, status: 'good' as const }))));
    const ps = new PreSigner(store, authorities, new ResponseProducer(clock, store), clock, { refreshAfter: 0.5, concurrency: 2, batchSize: 10 }, quiet, metrics);
    assert.equal((await ps.run()).stored, 8);
    const past = async () => {
      await ps.health();
      return value(registry, 'ocsp_stored_responses_past_update_time', { ca: 'cabf' });
    };
    clock.advance(16 * H);
    assert.equal(await past(), 0, 'due at thisUpdate + 16h, not yet past');
    clock.advance(1000);
    assert.equal(await past(), 4, 'two certificates, two hashes');
    assert.equal(await value(registry, 'ocsp_stored_responses_past_update_time', { ca: 'none' }), undefined, 'a CA without cabf has no series');
    // The pre-signer refreshes them (past refreshAfter): nothing is past any more.
    assert.equal((await ps.run({ cas: ['cabf'] })).stored, 4);
    assert.equal(await past(), 0);
    await store.close();
  });

  it('ocsp_certificates_unknown_past_deadline_total counts publishing API issuances recorded more than 15 minutes after publishedAt', async () => {
    const clock = new FakeClock(new Date(T0));
    const store = await openStore(clock);
    const registry = createRegistry();
    const metrics = new ComplianceMetrics(registry);
    metrics.cabfCas = new Set(['cabf']);
    const publisher = new Publisher({
      store, cas: new Map([['cabf', [pki.ca]], ['none', [pki.ca]]]), clock, afterWrite: async () => undefined, warn: () => undefined, late: metrics,
    });
    const late = () => value(registry, 'ocsp_certificates_unknown_past_deadline_total', { ca: 'cabf', via: 'publishing' });
    const publishedAt = new Date(T0).toISOString();
    clock.advance(15 * MIN);
    await publisher.issued('cabf', publisher.parseIssuance({ serial: 'a1', publishedAt }));
    assert.equal(await late(), undefined, '15 minutes after publication: in time');
    clock.advance(1000);
    await publisher.issued('cabf', publisher.parseIssuance({ serial: 'a2', publishedAt }));
    assert.equal(await late(), 1);
    // The same event again changes nothing (the certificate was already answered); nor do events without publishedAt.
    await publisher.issued('cabf', publisher.parseIssuance({ serial: 'a2', publishedAt }));
    await publisher.issued('cabf', publisher.parseIssuance({ serial: 'a3' }));
    await publisher.issued('none', publisher.parseIssuance({ serial: 'a4', publishedAt }));
    assert.equal(await late(), 1);
    assert.equal(await value(registry, 'ocsp_certificates_unknown_past_deadline_total', { ca: 'none' }), undefined);
    assert.throws(() => publisher.parseIssuance({ serial: 'a5', publishedAt: new Date(clock.now().getTime() + 2 * MIN).toISOString() }), (e: Error & { field?: string }) => e.field === 'publishedAt' && /in the future/.test(e.message));
    await store.close();
  });

  it('counts certificates a followed index.txt brings in more than 15 minutes after the file was written', async () => {
    const clock = new FakeClock(new Date(T0));
    const store = await openStore(clock);
    const registry = createRegistry();
    const metrics = new ComplianceMetrics(registry);
    metrics.cabfCas = new Set(['cabf']);
    const file = join(tempDir('cabf-index'), 'index.txt');
    const good = (serial: string) => ['V', '271121073233Z', '', serial, 'unknown', `/CN=${serial}`].join('\t') + '\n';
    const write = (text: string, writtenAt: number) => {
      writeFileSync(file, text);
      utimesSync(file, writtenAt / 1000, writtenAt / 1000);
    };
    const follower = new IndexFollower({ store, ca: { name: 'cabf', file }, clock, log: quiet, late: metrics });
    const late = () => value(registry, 'ocsp_certificates_unknown_past_deadline_total', { ca: 'cabf', via: 'index' });
    write(good('b1'), T0);
    clock.advance(15 * MIN);
    assert.equal((await follower.poll()).status, 'imported');
    assert.equal(await late(), undefined);
    // Written at T0 + 1 min, imported 15 minutes and a second later (a follower that could not read it meanwhile).
    write(good('b1') + good('b2') + good('b3'), T0 + MIN);
    clock.advance(MIN + 1000);
    assert.equal((await follower.poll()).status, 'imported');
    assert.equal(await late(), 2, 'b2 and b3 were new; b1 was answered before');
    await store.close();
  });
});
