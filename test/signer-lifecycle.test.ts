// A signer's lifetime on a fake clock, with a controllable signer: a signer certificate that expires stops every
// answer of its CA (hot, remembered, stored, live, pre-signed) with tryLater and is logged once; after a rotation
// (a reload's new chain on the same store) nothing signed by the retired signer is served, also when the old
// serving's pre-signer stores a batch after the reload, and responses stored before signers were recorded are
// served only if they verify with the current signer.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { verify } from 'node:crypto';
import { FakeClock } from '../src/clock';
import { decodeBasicResponse } from '../src/ocsp/basic-response';
import { TryLaterError } from '../src/ocsp/errors';
import { parseOcspRequest } from '../src/ocsp/request';
import { issueCertificate } from '../src/pki/issue';
import { PreSigner } from '../src/presign/pre-signer';
import { Authority, AuthorityIndex, makeAuthority } from '../src/source/authority';
import { IssuerFilter } from '../src/source/issuer-filter';
import { SignerValidity, SignerValidityGate } from '../src/source/signer-validity';
import { SqliteStore } from '../src/store/sqlite/sqlite-store';
import { GateSigner } from './support/gate-signer';
import { softwareSigner, KeyObjectSigner } from './support/key-signer';
import { opensslRequest } from './support/openssl';
import { buildChain, quiet, TestChain } from './support/serving-chain';
import { softwarePki, SoftwarePki } from './support/software-pki';
import { tempDir } from './support/temp';

const HOUR = 3_600_000;
const ctx = { lane: 'live' as const };
const PRE = { enabled: true, storeOnDemand: true, onIssuance: false, onRevocation: false, hashes: ['sha1' as const], finalResponsesBeforeMs: undefined };

function signedBy(der: Buffer, signer: KeyObjectSigner): boolean {
  const basic = decodeBasicResponse(der);
  return verify('sha256', Buffer.from(basic.tbsResponseData.tbsView), { key: signer.publicKey, dsaEncoding: 'der' }, Buffer.from(basic.signature.valueBlock.valueHexView));
}

/** The daemon's serving chain (cli/serving.ts): issuer filter -> signer validity gate -> cache -> store -> live. */
type Log = { info(o: object, m: string): void; error(o: object, m: string): void };
const silent: Log = { info: () => undefined, error: () => undefined };

function serving(store: SqliteStore, a: Authority, clock: FakeClock, log: Log = silent) {
  const t: TestChain = buildChain(store, a, clock);
  const validity = new SignerValidity([a], clock, log);
  const source = new IssuerFilter(new AuthorityIndex([a]), new SignerValidityGate(t.cache!, validity));
  return { t, validity, source };
}

describe('a signer over its lifetime', () => {
  let pki: SoftwarePki;
  let clock: FakeClock;
  let store: SqliteStore;
  const request = (leaf: number) => parseOcspRequest(opensslRequest(pki.files.ca, [pki.files.leaves[leaf]!], { nonce: false }), { maxCertIds: 10 });

  /** A responder certificate for `signer`, valid from an hour ago for `ms`. */
  const responderFor = (signer: KeyObjectSigner, ms: number) =>
    issueCertificate({
      subjectCN: 'Unit Responder', publicKey: signer.publicKey, serial: BigInt(Math.floor(Math.random() * 1e9)), notBefore: new Date(clock.now().getTime() - HOUR),
      notAfter: new Date(clock.now().getTime() + ms), issuer: pki.ca, signer: pki.caSigner, kind: 'ocsp-responder',
    });
  const authority = async (signer: KeyObjectSigner | GateSigner, cert: Awaited<ReturnType<typeof responderFor>>) =>
    makeAuthority({ name: 'unit', caCert: pki.ca, signerCert: cert, signer, responderId: 'byKey', validityMs: HOUR, preProduction: PRE });

  beforeEach(async () => {
    pki ??= await softwarePki();
    clock = new FakeClock(new Date(Math.floor(Date.now() / 1000) * 1000));
    store = new SqliteStore(join(tempDir('lifecycle'), 'ocsp-hsm.sqlite'), clock);
    await store.putCertificates(['1001', '1002', '1003'].map((serial) => ({ ca: 'unit', serial, status: 'good' as const })));
  });
  afterEach(() => store.close());

  it('an expiring signer certificate: answered until notAfter, then tryLater everywhere, logged once each way', async () => {
    const cert = await responderFor(pki.responderSigner, 60_000);
    const a = await authority(pki.responderSigner, cert);
    const errors: string[] = [];
    const s = serving(store, a, clock, { info: () => undefined, error: (_o: object, m: string) => void errors.push(m) });
    await s.t.follower.start();
    try {
      const first = await s.source.response(request(0), ctx);
      assert.ok(signedBy(first.der, pki.responderSigner));
      const hot = s.source.hot!(request(0));
      assert.ok(hot?.served(), 'cached and hot');
      assert.deepEqual(s.validity.problems(), []);

      clock.advance(61_000);
      assert.equal(hot!.served(), undefined, 'a remembered hot answer stops too');
      assert.equal(s.source.hot!(request(0)), undefined);
      for (let i = 0; i < 20; i++) await assert.rejects(s.source.response(request(i % 3), ctx), TryLaterError);
      assert.equal(errors.length, 1, 'logged once, not per request');
      assert.match(s.validity.problems()[0]!, /^CA "unit": signer certificate expired at .*; its requests get tryLater$/);
      const signedBefore = pki.responderSigner.signCount;
      await assert.rejects(s.t.producer.produce(a, (await store.getCertificate('unit', '1002'))!, 'sha1', ctx), TryLaterError);
      const run = await new PreSigner(store, [a], s.t.producer, clock, { refreshAfter: 0.5, concurrency: 2, batchSize: 10 }, quiet).run();
      assert.equal(run.total, 0, 'the pre-signer skips it');
      await assert.rejects(new PreSigner(store, [a], s.t.producer, clock, { refreshAfter: 0.5, concurrency: 2, batchSize: 10 }, quiet).run({ cas: ['unit'] }), /signer certificate expired/);
      assert.equal(pki.responderSigner.signCount, signedBefore, 'nothing signed after notAfter');
    } finally {
      s.t.follower.close();
    }
  });

  it('a signer certificate not yet valid is not used either', async () => {
    const cert = await issueCertificate({
      subjectCN: 'Future', publicKey: pki.responderSigner.publicKey, serial: 77n, notBefore: new Date(clock.now().getTime() + HOUR),
      notAfter: new Date(clock.now().getTime() + 2 * HOUR), issuer: pki.ca, signer: pki.caSigner, kind: 'ocsp-responder',
    });
    const s = serving(store, await authority(pki.responderSigner, cert), clock);
    await s.t.follower.start();
    try {
      await assert.rejects(s.source.response(request(0), ctx), /not valid before/);
      clock.advance(HOUR + 1000);
      assert.ok((await s.source.response(request(0), ctx)).der.length > 0, 'answered once it is valid');
    } finally {
      s.t.follower.close();
    }
  });

  it('a rotation: the retired signer\'s stored responses are not served, and a late batch of the old pre-signer changes nothing', async () => {
    const oldSigner = new GateSigner(pki.responderSigner);
    const oldA = await authority(oldSigner, pki.responder);
    const old = serving(store, oldA, clock);
    await old.t.follower.start();
    const oldRun = new PreSigner(store, [oldA], old.t.producer, clock, { refreshAfter: 0.5, concurrency: 3, batchSize: 10 }, quiet);
    assert.equal((await oldRun.run()).stored, 3);
    assert.ok(signedBy((await old.source.response(request(0), ctx)).der, pki.responderSigner));

    // The next run of the old serving is signing when the reload swaps in the new signer.
    clock.advance(HOUR); // everything is due again
    oldSigner.hold();
    const late = oldRun.run();
    await oldSigner.until(3);
    const newSigner = softwareSigner('ec-p256');
    const newA = await authority(newSigner, await responderFor(newSigner, 30 * 24 * HOUR));
    const fresh = serving(store, newA, clock);
    await fresh.t.follower.start();
    try {
      const answered = await fresh.source.response(request(0), ctx);
      assert.ok(signedBy(answered.der, newSigner), 'the first answer after the reload is the new signer\'s');
      oldSigner.release(); // the old run stores its batch after the reload
      await late;
      await old.t.follower.close();
      for (const leaf of [0, 1, 2]) {
        const r = await fresh.source.response(request(leaf), ctx);
        assert.ok(signedBy(r.der, newSigner), `leaf ${leaf}: never the retired signer's`);
        assert.ok(signedBy(fresh.source.hot!(request(leaf))!.served()!.der, newSigner));
      }
      const newRun = await new PreSigner(store, [newA], fresh.t.producer, clock, { refreshAfter: 0.5, concurrency: 3, batchSize: 10 }, quiet).run();
      assert.equal(newRun.failed, 0);
      for (const serial of ['1001', '1002', '1003']) {
        const r = (await store.getResponse('unit', serial, 'sha1'))!;
        assert.equal(r.signer, newA.signerId);
        assert.ok(signedBy(r.der, newSigner));
      }
      assert.deepEqual([...new Set((await store.listResponses('unit', undefined, 100)).map((r) => r.signer))], [newA.signerId], 'only the new signer\'s are left');
    } finally {
      fresh.t.follower.close();
    }
  });

  it('responses stored before signers were recorded: served only if they verify with the current signer', async () => {
    const a = await authority(pki.responderSigner, pki.responder);
    const s = serving(store, a, clock);
    await s.t.follower.start();
    const made = await s.t.producer.produce(a, (await store.getCertificate('unit', '1001'))!, 'sha1', ctx);
    s.t.follower.close();
    await store.putResponses([{ ...made, signer: '' }]);
    const signed = pki.responderSigner.signCount;
    const same = serving(store, a, clock);
    await same.t.follower.start();
    try {
      assert.deepEqual((await same.source.response(request(0), ctx)).der, made.der, 'verified with the current signer: served');
      assert.equal(pki.responderSigner.signCount, signed, 'nothing signed');
    } finally {
      same.t.follower.close();
    }
    const other = softwareSigner('ec-p256');
    const rotated = serving(store, await authority(other, await responderFor(other, 24 * HOUR)), clock);
    await rotated.t.follower.start();
    try {
      const r = await rotated.source.response(request(0), ctx);
      assert.notDeepEqual(r.der, made.der);
      assert.ok(signedBy(r.der, other), 'another signer\'s legacy response is not served');
    } finally {
      rotated.t.follower.close();
    }
  });
});
