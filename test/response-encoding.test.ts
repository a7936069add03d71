// The successful OCSPResponse envelope, written in one buffer, byte for byte as the nested TLVs it stands for
// (tlv.ts is cross-checked against asn1js), across every length class, and as pkijs reads it back.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import { decodeBasicResponse } from '../src/ocsp/basic-response';
import { encodeCertId } from '../src/ocsp/cert-id';
import { encodeCerts, encodeResponderId, encodeResponseData, encodeSuccessfulResponse, SignedEnvelope } from '../src/ocsp/response';
import { TAG, tlv } from '../src/ocsp/tlv';

const BASIC_OID = Buffer.from('06092b0601050507300101', 'hex');
const SUCCESSFUL = Buffer.from('0a0100', 'hex');
const ECDSA_SHA256 = Buffer.from('300a06082a8648ce3d040302', 'hex');

/** RFC 6960 section 4.2.1, one TLV at a time. */
function nested(env: SignedEnvelope): Buffer {
  const basic = tlv(TAG.sequence, env.tbs, env.signatureAlgorithmDer, tlv(TAG.bitString, Buffer.from([0]), env.signature), ...(env.certsDer ? [env.certsDer] : []));
  return tlv(TAG.sequence, SUCCESSFUL, tlv(TAG.ctxConstructed(0), tlv(TAG.sequence, BASIC_OID, tlv(TAG.octetString, basic))));
}

describe('encodeSuccessfulResponse', () => {
  it('equals the nested TLVs for every length class of each part (short form, one, two and three length octets)', () => {
    // tbs and certs sizes chosen so that each enclosing TLV crosses 128, 256 and 65,536 octets somewhere.
    const sizes = [0, 20, 100, 120, 127, 128, 200, 240, 255, 256, 1_000, 65_400, 65_530, 65_536, 70_000];
    let checked = 0;
    for (const tbsLen of [2, 60, 110, 250, 65_500]) {
      for (const certsLen of sizes) {
        for (const sigLen of [64, 71, 256]) {
          const env: SignedEnvelope = {
            tbs: tlv(TAG.sequence, randomBytes(tbsLen)),
            signatureAlgorithmDer: ECDSA_SHA256,
            signature: randomBytes(sigLen),
            ...(certsLen > 0 ? { certsDer: encodeCerts([tlv(TAG.sequence, randomBytes(certsLen))]) } : {}),
          };
          assert.deepEqual(encodeSuccessfulResponse(env), nested(env), `tbs ${tbsLen}, certs ${certsLen}, signature ${sigLen}`);
          checked++;
        }
      }
    }
    assert.equal(checked, 5 * 15 * 3);
  });

  it('is read back by pkijs: ResponseData, algorithm, signature and certificates in place', () => {
    const now = new Date(Math.floor(Date.now() / 1000) * 1000);
    const tbs = encodeResponseData({
      responderIdDer: encodeResponderId({ byKey: randomBytes(20) }),
      producedAt: now,
      responses: [{ certIdDer: encodeCertId('sha1', randomBytes(20), randomBytes(20), '1001'), status: { kind: 'good' }, thisUpdate: now }],
    });
    const signature = randomBytes(72);
    const der = encodeSuccessfulResponse({ tbs, signatureAlgorithmDer: ECDSA_SHA256, signature, certsDer: encodeCerts([]) });
    const basic = decodeBasicResponse(der);
    assert.deepEqual(Buffer.from(basic.tbsResponseData.toSchema().toBER()), tbs);
    assert.equal(basic.signatureAlgorithm.algorithmId, '1.2.840.10045.4.3.2');
    assert.deepEqual(Buffer.from(basic.signature.valueBlock.valueHexView), signature);
    assert.equal(basic.certs?.length ?? 0, 0);
  });
});
