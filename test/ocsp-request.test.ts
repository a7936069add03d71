// OCSPRequest parsing: requests from the real openssl client, and every malformed shape we must refuse.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { before, describe, it } from 'node:test';
import { MalformedRequestError } from '../src/ocsp/errors';
import { OID } from '../src/ocsp/oids';
import { parseOcspRequest } from '../src/ocsp/request';
import { readCertificate, issuerHashes } from '../src/pki/certificate';
import { makeOpensslPki, opensslRequest, OpensslPki } from './support/openssl';
import { buildRequest, nonceValue } from './support/requests';

const limits = { maxCertIds: 5 };
const malformed = (der: Buffer, pattern?: RegExp) =>
  assert.throws(() => parseOcspRequest(der, limits), (e: unknown) => {
    assert.ok(e instanceof MalformedRequestError, `expected MalformedRequestError, got ${e}`);
    if (pattern) assert.match((e as Error).message, pattern);
    return true;
  });

describe('parseOcspRequest with openssl-built requests', () => {
  let pki: OpensslPki;
  before(() => {
    pki = makeOpensslPki();
  });

  it('reads a SHA-1 CertID whose hashes match the issuer, with the serial as canonical hex', () => {
    const req = parseOcspRequest(opensslRequest(pki.caCert, [pki.leafCert]), limits);
    assert.equal(req.certIds.length, 1);
    const c = req.certIds[0]!;
    const expected = issuerHashes(readCertificate(pki.caCert), 'sha1');
    assert.equal(c.hash, 'sha1');
    assert.deepEqual(c.issuerNameHash, expected.nameHash);
    assert.deepEqual(c.issuerKeyHash, expected.keyHash);
    assert.equal(c.serial, pki.leafSerialHex);
    assert.equal(req.nonce, undefined);
  });

  it('reads SHA-256 CertIDs and a 16-byte nonce', () => {
    const req = parseOcspRequest(opensslRequest(pki.caCert, [pki.leafCert], { sha256: true, nonce: true }), limits);
    assert.equal(req.certIds[0]!.hash, 'sha256');
    assert.deepEqual(req.certIds[0]!.issuerKeyHash, issuerHashes(readCertificate(pki.caCert), 'sha256').keyHash);
    assert.equal(req.nonce?.length, 18, 'OCTET STRING header + 16 nonce bytes');
  });

  it('reads several CertIDs in order', () => {
    const req = parseOcspRequest(opensslRequest(pki.caCert, [pki.leafCert, pki.caCert, pki.leafCert]), limits);
    assert.deepEqual(req.certIds.map((c) => c.serial), [pki.leafSerialHex, readCertificate(pki.caCert).x509.serialNumber.toLowerCase().replace(/^0+/, ''), pki.leafSerialHex]);
  });

  it('refuses truncated and padded versions of a valid request', () => {
    const der = opensslRequest(pki.caCert, [pki.leafCert]);
    for (const cut of [1, 5, der.length - 1]) malformed(der.subarray(0, cut));
    malformed(Buffer.concat([der, Buffer.from([0])]), /not valid DER: trailing data/);
  });
});

describe('parseOcspRequest refuses malformed input', () => {
  it('refuses empty input, garbage and non-OCSP DER', () => {
    malformed(Buffer.alloc(0));
    malformed(Buffer.from('hello world'));
    malformed(randomBytes(200));
    malformed(Buffer.from('3003020101', 'hex'), /TBSRequest is not a SEQUENCE/);
  });

  it('refuses indefinite-length (BER, not DER) encodings', () => {
    const der = buildRequest();
    // Re-wrap the outer SEQUENCE with an indefinite length: 30 80 <content> 00 00.
    const headerLen = der[1]! & 0x80 ? 2 + (der[1]! & 0x7f) : 2;
    const ber = Buffer.concat([Buffer.from([0x30, 0x80]), der.subarray(headerLen), Buffer.from([0, 0])]);
    malformed(ber, /not valid DER: indefinite length/);
  });

  it('accepts nonces of 1 and 128 octets, refuses 0 and 129 (RFC 9654 section 2.1)', () => {
    for (const n of [1, 32, 128]) {
      const value = nonceValue(randomBytes(n));
      const req = parseOcspRequest(buildRequest({ nonceExtnValue: value }), limits);
      assert.deepEqual(req.nonce, value, 'the extnValue is kept verbatim for the echo');
    }
    malformed(buildRequest({ nonceExtnValue: nonceValue(Buffer.alloc(0)) }), /nonce length 0/);
    malformed(buildRequest({ nonceExtnValue: nonceValue(randomBytes(129)) }), /nonce length 129/);
  });

  it('accepts nonce bytes that happen to look like BER (regression: 2c 80 ... is opaque data)', () => {
    for (const hex of ['2c803480da6a5e74ce3e30a3a65f29c8', '3a8065a3840626d7d534252d4c42c8da', '30800000', '0480']) {
      const value = nonceValue(Buffer.from(hex, 'hex'));
      assert.deepEqual(parseOcspRequest(buildRequest({ nonceExtnValue: value }), limits).nonce, value, hex);
    }
  });

  it('refuses a nonce whose extnValue is not an OCTET STRING', () => {
    malformed(buildRequest({ nonceExtnValue: randomBytes(16) }), /not a DER OCTET STRING/);
  });

  it('refuses more CertIDs than the limit and an empty request list', () => {
    assert.equal(parseOcspRequest(buildRequest({ serials: [1, 2, 3, 4, 5] }), limits).certIds.length, 5);
    malformed(buildRequest({ serials: [1, 2, 3, 4, 5, 6] }), /too many CertIDs/);
    malformed(buildRequest({ serials: [] }));
  });

  it('refuses unknown critical extensions but keeps unsupported hashes for the issuer filter', () => {
    malformed(buildRequest({ criticalExtension: true }), /critical extension/);
    const md5 = parseOcspRequest(buildRequest({ hashOid: '1.2.840.113549.2.5', hashLen: 16 }), limits);
    assert.equal(md5.certIds[0]!.hash, undefined);
    const sha512 = parseOcspRequest(buildRequest({ hashOid: OID.sha512, hashLen: 64 }), limits);
    assert.equal(sha512.certIds[0]!.hash, 'sha512');
  });
});
