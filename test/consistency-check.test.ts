// The consistency check over a SQLite store with responses signed by software keys: the same findings whatever the
// page size, RSA and byName responders, and each kind of tampering a stored response can suffer.
import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import { FakeClock } from '../src/clock';
import { checkConsistency, Finding } from '../src/check/consistency-check';
import type { Reference, ReferenceEntry } from '../src/check/reference';
import type { Binding } from '../src/check/response-check';
import { differingFields } from '../src/check/status-compare';
import type { HashName } from '../src/ocsp/oids';
import { makeAuthority } from '../src/source/authority';
import { ResponseProducer } from '../src/source/response-producer';
import type { Store } from '../src/store/response-store';
import type { CertificateRecord } from '../src/store/status-store';
import { SqliteStore } from '../src/store/sqlite/sqlite-store';
import { softwarePki, SoftwarePki } from './support/software-pki';

const ctx = { lane: 'presign' as const };
const REVOKED_AT = new Date('2026-03-01T10:00:00Z');

function indexReference(entries: ReferenceEntry[]): Reference {
  return { kind: 'index', file: 'index.txt', entries: [...entries].sort((a, b) => (a.serial < b.serial ? -1 : 1)), wouldList: () => 'yes' };
}

/** A store with `records`, and for each a sha1 and a sha256 response, the sha1 one twice (an older one kept). */
async function filledStore(
  pki: SoftwarePki,
  records: CertificateRecord[],
  responderId: 'byKey' | 'byName',
  extra: Partial<Parameters<typeof makeAuthority>[0]> = {},
): Promise<{ store: Store; binding: Binding }> {
  const clock = new FakeClock(new Date(Math.floor(Date.now() / 1000) * 1000));
  const store = new SqliteStore(':memory:', clock);
  await store.putCertificates(records);
  const authority = makeAuthority({
    name: 'unit', caCert: pki.ca, signerCert: pki.responder, signer: pki.responderSigner, responderId, validityMs: 3_600_000, ...extra,
  });
  const producer = new ResponseProducer(clock, store);
  for (const [hash, rounds] of [['sha1', 2], ['sha256', 1]] as [HashName, number][]) {
    for (let i = 0; i < rounds; i++) {
      const current = await Promise.all(records.map((r) => store.getCertificate(r.ca, r.serial)));
      await store.putResponses(await Promise.all(current.map((r) => producer.produce(authority, r!, hash, ctx))));
      clock.advance(1000);
    }
  }
  return { store, binding: { caCert: pki.ca, signerCert: pki.responder } };
}

async function run(store: Store, reference: Reference, binding: Binding, pageSize: number) {
  const findings: Finding[] = [];
  const result = await checkConsistency({ store, ca: 'unit', reference, binding, pageSize, report: (f) => findings.push(f) });
  return { result, lines: findings.map((f) => `${f.kind} ${f.serial} ${f.detail}`) };
}

describe('consistency check', () => {
  let ec: SoftwarePki;
  let rsa: SoftwarePki;
  const records: CertificateRecord[] = ['1001', '1002', '1003', '1a', '2b', 'ff'].map((serial, i) => (
    i % 2 ? { ca: 'unit', serial, status: 'revoked', revokedAt: REVOKED_AT, reason: 'keyCompromise' } : { ca: 'unit', serial, status: 'good' }
  ));

  before(async () => {
    [ec, rsa] = await Promise.all([softwarePki('ec-p256'), softwarePki('rsa-2048')]);
  });

  it('reports the same findings, in groups, whatever the page size', async () => {
    const { store, binding } = await filledStore(ec, records, 'byKey');
    const reference = indexReference([
      ...records.filter((r) => r.serial !== '1003').map(({ serial, status, revokedAt, reason }) => ({ serial, status, revokedAt, reason })),
      { serial: '0e', status: 'good' },
    ]);
    // The reference says superseded where the store says keyCompromise.
    reference.entries.find((e) => e.serial === '1a')!.reason = 'superseded';
    const tamper = (store as unknown as { db: import('better-sqlite3').Database }).db;
    const row = tamper.prepare(`SELECT der FROM responses WHERE serial = 'ff' AND hash = 'sha256'`).get() as { der: Buffer };
    // A byte inside the responder certificate the response carries: the signature still verifies.
    const bad = Buffer.from(row.der);
    bad[bad.indexOf(ec.responder.der) + ec.responder.der.length - 1] ^= 0xff; // the last byte of the CA's signature on it
    tamper.prepare(`UPDATE responses SET der = ? WHERE serial = 'ff' AND hash = 'sha256'`).run(bad);
    tamper.prepare(`UPDATE responses SET cert_id = x'3000' WHERE serial = '1002' AND hash = 'sha1'`).run();

    const expected = await run(store, reference, binding, 1000);
    assert.deepEqual(expected.lines.map((l) => l.split(' ').slice(0, 2).join(' ')), [
      'missing 0e', 'extra 1003', 'differing 1a', 'bad-response 1002', 'bad-response 1002', 'bad-response ff',
    ]);
    assert.match(expected.lines[2]!, /^differing 1a reason store: revoked 2026-03-01T10:00:00Z keyCompromise; reference: revoked 2026-03-01T10:00:00Z superseded$/);
    assert.match(expected.lines[3]!, /^bad-response 1002 sha1 \S+Z the row's CertID is not the response's$/);
    assert.match(expected.lines[5]!, /^bad-response ff sha256 \S+Z does not carry the signer certificate unchanged$/);
    assert.deepEqual(expected.result, {
      missing: 1, extra: 1, differing: 1, badResponses: 3, referenceEntries: 6, storeEntries: 6, responsesChecked: 18, expiredNotOnCrl: 0,
    });
    for (const pageSize of [1, 2, 3, 5]) assert.deepEqual(await run(store, reference, binding, pageSize), expected, `page size ${pageSize}`);
    await store.close();
  });

  it('verifies RSA responses with a byName responderID, and finds one signed by another key', async () => {
    const { store, binding } = await filledStore(rsa, records, 'byName');
    const reference = indexReference(records.map(({ serial, status, revokedAt, reason }) => ({ serial, status, revokedAt, reason })));
    assert.deepEqual((await run(store, reference, binding, 4)).lines, []);
    // The same responses checked against another signer: each fails its signature and responderID.
    const other = await run(store, reference, { caCert: rsa.ca, signerCert: rsa.ca }, 4);
    assert.equal(other.result.badResponses, 18);
    assert.match(other.lines[0]!, /^bad-response 1001 sha1 \S+Z signature does not verify with the signer certificate \(CN=Unit CA\); responderID does not name the signer; does not carry the signer certificate unchanged$/);
    // And against another CA: every CertID names another issuer.
    const foreign = await run(store, reference, { caCert: ec.ca, signerCert: rsa.responder }, 4);
    assert.ok(foreign.lines.every((l) => l.endsWith('CertID names another issuer')), foreign.lines.join('\n'));
    await store.close();
  });

  it('accepts cACompromise answers once the CA certificate is revoked, and responses without certificates', async () => {
    const caRevokedAt = new Date('2026-02-01T00:00:00Z');
    const { store, binding } = await filledStore(ec, records, 'byKey', { includeSignerCert: false, policy: { issuerRevokedAt: () => caRevokedAt } });
    const reference = indexReference(records.map(({ serial, status, revokedAt, reason }) => ({ serial, status, revokedAt, reason })));
    assert.deepEqual((await run(store, reference, { ...binding, issuerRevokedAt: caRevokedAt }, 4)).lines, []);
    const unaware = await run(store, reference, binding, 4);
    assert.equal(unaware.result.badResponses, 18, 'without the CA revocation every cACompromise answer is wrong');
    assert.match(unaware.lines[0]!, /^bad-response 1001 sha1 \S+Z says revoked 2026-02-01T00:00:00Z cACompromise, the store says good$/);
    await store.close();
  });

  it('compares revocation times in whole seconds and a missing reason as unspecified', () => {
    const at = (ms: number) => new Date(REVOKED_AT.getTime() + ms);
    assert.deepEqual(differingFields({ status: 'revoked', revokedAt: at(0) }, { status: 'revoked', revokedAt: at(999), reason: 'unspecified' }), []);
    assert.deepEqual(differingFields({ status: 'revoked', revokedAt: at(0) }, { status: 'revoked', revokedAt: at(1000), reason: 'superseded' }), ['revokedAt', 'reason']);
    assert.deepEqual(differingFields({ status: 'good' }, { status: 'revoked', revokedAt: at(0) }), ['status']);
  });
});
