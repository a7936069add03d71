// Public keys from the attributes a token shows (CKA_EC_PARAMS + CKA_EC_POINT, CKA_MODULUS + CKA_PUBLIC_EXPONENT).
import { createPublicKey, KeyObject } from 'node:crypto';
import * as asn1js from 'asn1js';
import { toArrayBuffer } from '../ocsp/der';
import { OID } from '../ocsp/oids';

/**
 * CKA_EC_PARAMS is DER ECParameters and goes into the SubjectPublicKeyInfo as it is (RFC 5480 section 2.1.1);
 * CKA_EC_POINT is the point 04||X||Y wrapped in a DER OCTET STRING (PKCS#11 3.0 section 2.3.3; some old
 * modules give it unwrapped).
 */
export function ecPublicKey(ecParams: Buffer, ecPoint: Buffer): KeyObject {
  const parsed = asn1js.fromBER(toArrayBuffer(ecPoint));
  const wrapped = parsed.offset === ecPoint.length && parsed.result instanceof asn1js.OctetString;
  const point = wrapped ? Buffer.from((parsed.result as asn1js.OctetString).valueBlock.valueHexView) : ecPoint;
  const params = asn1js.fromBER(toArrayBuffer(ecParams));
  if (params.offset === -1) throw new Error('CKA_EC_PARAMS is not DER');
  const spki = new asn1js.Sequence({
    value: [
      new asn1js.Sequence({ value: [new asn1js.ObjectIdentifier({ value: OID.ecPublicKey }), params.result] }),
      new asn1js.BitString({ valueHex: toArrayBuffer(point) }),
    ],
  });
  return createPublicKey({ key: Buffer.from(spki.toBER()), format: 'der', type: 'spki' });
}

export function rsaPublicKey(modulus: Buffer, exponent: Buffer): KeyObject {
  return createPublicKey({ key: { kty: 'RSA', n: modulus.toString('base64url'), e: exponent.toString('base64url') }, format: 'jwk' });
}
