// `ocsp-hsm check` for a CA under compliance: cabf: stored responses outside the BR 4.9.9 validity interval, past
// their required update time (the latest only, while the certificate has not expired), or with a reasonCode in
// singleExtensions (BR 7.3.2) are bad responses; without cabf none of this is looked at.
import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import * as asn1js from 'asn1js';
import { FakeClock } from '../src/clock';
import { checkConsistency, Finding } from '../src/check/consistency-check';
import type { Reference } from '../src/check/reference';
import { encodeCertId } from '../src/ocsp/cert-id';
import { encode } from '../src/ocsp/der';
import { makeAuthority } from '../src/source/authority';
import { ResponseProducer } from '../src/source/response-producer';
import { signResponse } from '../src/source/response-signing';
import { SqliteStore } from '../src/store/sqlite/sqlite-store';
import { softwarePki, SoftwarePki } from './support/software-pki';

const ctx = { lane: 'presign' as const };
const H = 3_600_000;
// Whole seconds, after the test PKI's certificates begin.
const T0 = new Date(Math.floor(Date.now() / 1000) * 1000 + 60_000);
const iso = (ms: number) => new Date(ms).toISOString().replace('.000', '');

const reference = (serials: string[]): Reference => ({ kind: 'index', file: 'index.txt', entries: serials.map((serial) => ({ serial, status: 'good' as const })), wouldList: () => 'yes' });

describe('check under compliance: cabf', () => {
  let pki: SoftwarePki;
  before(async () => {
    pki = await softwarePki('ec-p256');
  });

  async function storeWith(validityMs: number) {
    const clock = new FakeClock(T0);
    const store = new SqliteStore(':memory:', clock);
    await store.putCertificates([
      { ca: 'unit', serial: '1001', status: 'good', notAfter: new Date(T0.getTime() + 90 * 24 * H) },
      // Expires before its response's update deadline: nothing more is owed for it.
      { ca: 'unit', serial: '1002', status: 'good', notAfter: new Date(T0.getTime() + 10 * H) },
    ]);
    const a = makeAuthority({ name: 'unit', caCert: pki.ca, signerCert: pki.responder, signer: pki.responderSigner, responderId: 'byKey', validityMs });
    const producer = new ResponseProducer(clock, store);
    for (let round = 0; round < 2; round++) {
      const recs = await Promise.all(['1001', '1002'].map((s) => store.getCertificate('unit', s)));
      await store.putResponses(await Promise.all(recs.map((r) => producer.produce(a, r!, 'sha256', ctx))));
      clock.advance(1000);
    }
    return { store, a, clock };
  }

  async function bad(store: SqliteStore, cabfAt: Date | undefined): Promise<string[]> {
    const findings: Finding[] = [];
    await checkConsistency({
      store, ca: 'unit', reference: reference(['1001', '1002']), binding: { caCert: pki.ca, signerCert: pki.responder },
      ...(cabfAt ? { cabfAt } : {}), report: (f) => findings.push(f),
    });
    return findings.map((f) => `${f.kind} ${f.serial} ${f.detail}`);
  }

  it('reports the latest response once its required update time has passed, as the clock passes it', async () => {
    const { store } = await storeWith(24 * H);
    // The latest responses were produced at T0 + 1 s: due 16 hours later (8 hours before nextUpdate).
    assert.deepEqual(await bad(store, new Date(T0.getTime() + 16 * H + 1000)), []);
    const late = await bad(store, new Date(T0.getTime() + 16 * H + 2000));
    assert.deepEqual(late, [`bad-response 1001 sha256 ${iso(T0.getTime() + 1000)} past its required update time ${iso(T0.getTime() + 16 * H + 1000)} (BR 4.9.9)`]);
    assert.deepEqual(await bad(store, undefined), [], 'without cabf, nothing');
    await store.close();
  });

  it('reports every response whose validity interval is outside 8 hours to 10 days', async () => {
    const { store } = await storeWith(7 * H);
    const lines = await bad(store, T0);
    assert.equal(lines.length, 4, lines.join('\n'));
    for (const l of lines) assert.match(l, /a validity interval of 7h1s, under the 8 hours BR 4\.9\.9 requires$/);
    assert.deepEqual(await bad(store, undefined), []);
    await store.close();
  });

  it('reports a reasonCode in singleExtensions', async () => {
    const { store, a, clock } = await storeWith(24 * H);
    const rec = (await store.getCertificate('unit', '1001'))!;
    const ids = a.issuerHashes.get('sha256')!;
    const certIdDer = encodeCertId('sha256', ids.nameHash, ids.keyHash, '1001');
    const reasonCode = encode(new asn1js.Sequence({ value: [
      new asn1js.ObjectIdentifier({ value: '2.5.29.21' }),
      new asn1js.OctetString({ valueHex: encode(new asn1js.Enumerated({ value: 4 })) }),
    ] }));
    const now = clock.now();
    const nextUpdate = new Date(now.getTime() + 24 * H);
    const der = await signResponse(a, { producedAt: now, items: [{ certIdDer, status: { kind: 'good' }, nextUpdate, extensions: [reasonCode] }] }, ctx);
    await store.putResponses([{ ca: 'unit', serial: '1001', hash: 'sha256', certIdDer, der, producedAt: now, thisUpdate: now, nextUpdate, final: false, statusVersion: rec.version ?? 0, signer: a.signerId }]);
    assert.deepEqual(await bad(store, now), [
      `bad-response 1001 sha256 ${iso(now.getTime())} reasonCode in singleExtensions, which BR 7.3.2 forbids (the reason belongs in revokedInfo)`,
    ]);
    await store.close();
  });
});
