// DER framing cross-checked against asn1js and pkijs: lengths of every size class, strict reading, and
// random OCSP requests whose parse must agree with pkijs field by field.
import assert from 'node:assert/strict';
import { randomBytes, randomInt } from 'node:crypto';
import { describe, it } from 'node:test';
import * as asn1js from 'asn1js';
import * as pkijs from 'pkijs';
import { toArrayBuffer } from '../src/ocsp/der';
import { OID } from '../src/ocsp/oids';
import { parseOcspRequest } from '../src/ocsp/request';
import { serialFromIntegerBytes } from '../src/ocsp/serial';
import { children, readSingle, TAG, tlv } from '../src/ocsp/tlv';

describe('tlv framing', () => {
  it('encodes lengths exactly as asn1js does, from 0 to 70,000 octets', () => {
    for (const n of [0, 1, 127, 128, 200, 255, 256, 65_535, 65_536, 70_000]) {
      const content = randomBytes(n);
      const ours = tlv(TAG.octetString, content);
      const theirs = Buffer.from(new asn1js.OctetString({ valueHex: toArrayBuffer(content) }).toBER());
      assert.deepEqual(ours, theirs, `length ${n}`);
      assert.deepEqual(readSingle(ours).contents, content);
    }
  });

  it('frames nested structures that asn1js decodes back', () => {
    const inner = Buffer.from(new asn1js.Integer({ value: 300 }).toBER());
    const der = tlv(TAG.sequence, inner, tlv(TAG.ctxConstructed(0), inner), tlv(TAG.octetString, randomBytes(300)));
    const parsed = asn1js.fromBER(der);
    assert.equal(parsed.offset, der.length);
    assert.equal((parsed.result as asn1js.Sequence).valueBlock.value.length, 3);
    assert.deepEqual(children(readSingle(der)).map((e) => e.tag), [TAG.integer, 0xa0, TAG.octetString]);
  });

  it('refuses what DER forbids', () => {
    assert.throws(() => readSingle(Buffer.from('3080020100 0000'.replace(/ /g, ''), 'hex')), /indefinite length/);
    assert.throws(() => readSingle(Buffer.from('04810100', 'hex')), /non-minimal length/);
    assert.throws(() => readSingle(Buffer.from('0482000100', 'hex')), /non-minimal length/);
    assert.throws(() => readSingle(Buffer.from('0405aa', 'hex')), /truncated/);
    assert.throws(() => readSingle(Buffer.from('0401aabb', 'hex')), /trailing data/);
    assert.throws(() => readSingle(Buffer.from('1f2200', 'hex')), /multi-octet tag/);
    assert.throws(() => children(readSingle(Buffer.from('3003020101', 'hex').subarray(0, 4))), /truncated/);
  });
});

/** Random INTEGER contents without the redundant leading octets DER forbids (the parser refuses those). */
function minimalInteger(bytes: Buffer): Buffer {
  let i = 0;
  while (i < bytes.length - 1 && ((bytes[i] === 0 && !(bytes[i + 1]! & 0x80)) || (bytes[i] === 0xff && bytes[i + 1]! & 0x80))) i++;
  return bytes.subarray(i);
}

describe('parseOcspRequest agrees with pkijs on random requests', () => {
  it('reads 300 random requests (serial sizes, hashes, nonce sizes, several CertIDs) as pkijs does', () => {
    const hashes = [[OID.sha1, 20], [OID.sha256, 32], [OID.sha384, 48], [OID.sha512, 64]] as const;
    for (let round = 0; round < 300; round++) {
      const req = new pkijs.OCSPRequest();
      req.tbsRequest.requestList = Array.from({ length: randomInt(1, 6) }, () => {
        const [oid, len] = hashes[randomInt(hashes.length)]!;
        const serial = minimalInteger(randomBytes(randomInt(1, 21)));
        return new pkijs.Request({
          reqCert: new pkijs.CertID({
            hashAlgorithm: new pkijs.AlgorithmIdentifier({ algorithmId: oid, ...(randomInt(2) ? { algorithmParams: new asn1js.Null() } : {}) }),
            issuerNameHash: new asn1js.OctetString({ valueHex: toArrayBuffer(randomBytes(len)) }),
            issuerKeyHash: new asn1js.OctetString({ valueHex: toArrayBuffer(randomBytes(len)) }),
            serialNumber: new asn1js.Integer({ valueHex: toArrayBuffer(serial) }),
          }),
        });
      });
      const nonce = randomBytes(randomInt(1, 129));
      if (randomInt(2)) {
        req.tbsRequest.requestExtensions = [
          new pkijs.Extension({ extnID: OID.ocspNonce, extnValue: new asn1js.OctetString({ valueHex: toArrayBuffer(nonce) }).toBER() }),
        ];
      }
      const der = Buffer.from(req.toSchema(true).toBER());
      const ours = parseOcspRequest(der, { maxCertIds: 10 });
      const theirs = pkijs.OCSPRequest.fromBER(der);
      assert.equal(ours.certIds.length, theirs.tbsRequest.requestList.length);
      theirs.tbsRequest.requestList.forEach((r, i) => {
        const c = ours.certIds[i]!;
        assert.deepEqual(c.certIdDer, Buffer.from(r.reqCert.toSchema().toBER()));
        assert.deepEqual(c.issuerNameHash, Buffer.from(r.reqCert.issuerNameHash.valueBlock.valueHexView));
        assert.equal(c.serial, serialFromIntegerBytes(r.reqCert.serialNumber.valueBlock.valueHexView));
      });
      const ext = theirs.tbsRequest.requestExtensions?.[0];
      assert.deepEqual(ours.nonce, ext ? Buffer.from(ext.extnValue.valueBlock.valueHexView) : undefined);
    }
  });
});
