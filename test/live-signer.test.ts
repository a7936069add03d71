// The source chain on software keys: issuer filter + live signer, checked field by field and by openssl.
import assert from 'node:assert/strict';
import { createHash, verify } from 'node:crypto';
import { before, describe, it } from 'node:test';
import * as pkijs from 'pkijs';
import { FakeClock } from '../src/clock';
import { UnauthorizedError } from '../src/ocsp/errors';
import { OID } from '../src/ocsp/oids';
import { parseOcspRequest } from '../src/ocsp/request';
import { subjectPublicKeyBits } from '../src/pki/certificate';
import { AuthorityIndex, makeAuthority } from '../src/source/authority';
import { IssuerFilter } from '../src/source/issuer-filter';
import { LiveSigner } from '../src/source/live-signer';
import { SqliteStore } from '../src/store/sqlite/sqlite-store';
import { makeOpensslPki, openssl, opensslRequest, writeTemp } from './support/openssl';
import { softwarePki, SoftwarePki } from './support/software-pki';

const limits = { maxCertIds: 10 };
const ctx = { lane: 'live' as const };

describe('IssuerFilter + LiveSigner', () => {
  let pki: SoftwarePki;
  let clock: FakeClock;
  let chain: IssuerFilter;
  let store: SqliteStore;

  before(async () => {
    pki = await softwarePki();
    clock = new FakeClock(new Date(Date.now() + 1234)); // deliberately not on a whole second
    store = new SqliteStore(':memory:', clock);
    await store.putCertificates([{ ca: 'unit', serial: '1001', status: 'good' }]);
    await store.revoke('unit', '1002', new Date('2026-01-02T03:04:05.678Z'), 'keyCompromise');
    const authority = makeAuthority({
      name: 'unit', caCert: pki.ca, signerCert: pki.responder, signer: pki.responderSigner, responderId: 'byKey', validityMs: 3_600_000,
    });
    chain = new IssuerFilter(new AuthorityIndex([authority]), new LiveSigner(store, clock));
  });

  it('answers good, revoked with reason, and unknown in one signed response', async () => {
    const der = opensslRequest(pki.files.ca, pki.files.leaves, { nonce: true });
    const req = parseOcspRequest(der, limits);
    const res = await chain.response(req, ctx);
    const ocsp = pkijs.OCSPResponse.fromBER(res.der);
    assert.equal(ocsp.responseStatus.valueBlock.valueDec, 0);
    const basic = pkijs.BasicOCSPResponse.fromBER(ocsp.responseBytes!.response.valueBlock.valueHexView);
    const data = basic.tbsResponseData;

    const produced = data.producedAt;
    assert.equal(produced.getTime() % 1000, 0, 'whole seconds');
    assert.equal(produced.getTime(), Math.floor(clock.now().getTime() / 1000) * 1000);
    assert.deepEqual(res.producedAt, produced);

    const byKey = data.responderID as unknown as { valueBlock: { valueHexView: Uint8Array } };
    assert.deepEqual(Buffer.from(byKey.valueBlock.valueHexView), createHash('sha1').update(subjectPublicKeyBits(pki.responder)).digest());

    const kinds = data.responses.map((r) => r.certStatus.idBlock.tagNumber);
    assert.deepEqual(kinds, [0, 1, 2], 'good, revoked, unknown');
    for (const r of data.responses) {
      assert.equal(r.thisUpdate.getTime(), produced.getTime());
      assert.equal(r.nextUpdate!.getTime(), produced.getTime() + 3_600_000);
    }
    const ext = data.responseExtensions!.find((e) => e.extnID === OID.ocspNonce)!;
    assert.deepEqual(Buffer.from(ext.extnValue.valueBlock.valueHexView), req.nonce);
    assert.equal(basic.certs!.length, 1, 'the delegated responder certificate is included');
    assert.equal(
      verify('sha256', Buffer.from(data.tbsView), pki.responder.x509.publicKey, Buffer.from(basic.signature.valueBlock.valueHexView)),
      true,
    );
  });

  it('produces responses openssl verifies, with the revocation time and reason', async () => {
    const req = parseOcspRequest(opensslRequest(pki.files.ca, [pki.files.leaves[1]!], { sha256: true }), limits);
    const resp = writeTemp('resp.der', (await chain.response(req, ctx)).der);
    const out = openssl(['ocsp', '-respin', resp, '-sha256', '-issuer', pki.files.ca, '-cert', pki.files.leaves[1]!, '-CAfile', pki.files.ca]);
    assert.match(out, /Response verify OK/);
    assert.match(out, /: revoked/);
    assert.match(out, /Reason: keyCompromise/);
    assert.match(out, /Revocation Time: Jan {2}2 03:04:05 2026 GMT/);
  });

  it('refuses issuers it does not serve', async () => {
    const other = makeOpensslPki('Other CA');
    const req = parseOcspRequest(opensslRequest(other.caCert, [other.leafCert]), limits);
    await assert.rejects(async () => chain.response(req, ctx), UnauthorizedError);
  });

  it('refuses a request that mixes CAs with different signers', async () => {
    const second = await softwarePki();
    const a = makeAuthority({ name: 'a', caCert: pki.ca, signerCert: pki.responder, signer: pki.responderSigner, responderId: 'byKey', validityMs: 1000 });
    const b = makeAuthority({ name: 'b', caCert: second.ca, signerCert: second.responder, signer: second.responderSigner, responderId: 'byKey', validityMs: 1000 });
    const mixed = new IssuerFilter(new AuthorityIndex([a, b]), new LiveSigner(store, clock));
    const derA = parseOcspRequest(opensslRequest(pki.files.ca, [pki.files.leaves[0]!]), limits);
    const derB = parseOcspRequest(opensslRequest(second.files.ca, [second.files.leaves[0]!]), limits);
    await assert.rejects(async () => mixed.response({ certIds: [...derA.certIds, ...derB.certIds] }, ctx), /different signers/);
    assert.equal((await mixed.response(derB, ctx)).der.length > 0, true, 'each CA alone is answered');
  });

  // EJBCA: a root signing itself is included anyway (includeSignerCert on); with includeSignerCert off, nothing.
  for (const includeSignerCert of [true, false]) {
    it(`uses byName when the root CA signs itself; includeSignerCert ${includeSignerCert}: ${includeSignerCert ? 'the root' : 'no certificate'} in the response`, async () => {
      const authority = makeAuthority({ name: 'unit', caCert: pki.ca, signerCert: pki.ca, signer: pki.caSigner, responderId: 'byName', validityMs: 60_000, includeSignerCert });
      const direct = new IssuerFilter(new AuthorityIndex([authority]), new LiveSigner(store, clock));
      const res = await direct.response(parseOcspRequest(opensslRequest(pki.files.ca, [pki.files.leaves[0]!]), limits), ctx);
      const basic = pkijs.BasicOCSPResponse.fromBER(pkijs.OCSPResponse.fromBER(res.der).responseBytes!.response.valueBlock.valueHexView);
      assert.ok(basic.tbsResponseData.responderID instanceof pkijs.RelativeDistinguishedNames);
      if (includeSignerCert) assert.deepEqual(basic.certs?.map((c) => Buffer.from(c.toSchema().toBER())), [pki.ca.der]);
      else assert.equal(basic.certs, undefined);
      const out = openssl(['ocsp', '-respin', writeTemp('r.der', res.der), '-issuer', pki.files.ca, '-cert', pki.files.leaves[0]!, '-CAfile', pki.files.ca]);
      assert.match(out, /Response verify OK/);
      assert.match(out, /: good/);
    });
  }
});
