// Encodes CertIDs (RFC 6960 section 4.1.1) for responses the responder produces before anyone asks.
import * as asn1js from 'asn1js';
import { encode } from './der';
import { HashName, OID } from './oids';
import { TAG, tlv } from './tlv';

// AlgorithmIdentifier with NULL parameters, as OpenSSL, GnuTLS and NSS send it.
const HASH_ALGORITHM_DER = new Map<HashName, Buffer>(
  (['sha1', 'sha256', 'sha384', 'sha512'] as const).map((h) => [
    h,
    encode(new asn1js.Sequence({ value: [new asn1js.ObjectIdentifier({ value: OID[h] }), new asn1js.Null()] })),
  ]),
);

/** Content octets of a DER INTEGER for a canonical hex serial (see serial.ts): minimal, two's complement. */
export function serialIntegerBytes(serial: string): Buffer {
  if (serial.startsWith('-')) throw new RangeError(`negative serial ${serial} cannot be pre-produced`);
  const hex = serial.length % 2 ? '0' + serial : serial;
  const bytes = Buffer.from(hex, 'hex');
  return bytes[0]! & 0x80 ? Buffer.concat([Buffer.from([0]), bytes]) : bytes;
}

export function encodeCertId(hash: HashName, issuerNameHash: Buffer, issuerKeyHash: Buffer, serial: string): Buffer {
  return tlv(
    TAG.sequence,
    HASH_ALGORITHM_DER.get(hash)!,
    tlv(TAG.octetString, issuerNameHash),
    tlv(TAG.octetString, issuerKeyHash),
    tlv(TAG.integer, serialIntegerBytes(serial)),
  );
}
