// OCSPRequests framed by hand, field by field, for encodings no client library produces: the non-DER variant of
// each field (issue 16), next to the DER one it must not be confused with.
import { TAG, tlv } from '../../src/ocsp/tlv';

/** Bytes from hex written with spaces for readability. */
export const hex = (s: string): Buffer => Buffer.from(s.replace(/\s/g, ''), 'hex');

export const SHA1_OID = hex('06 05 2b0e03021a');
export const NULL = hex('05 00');
export const NONCE_OID = hex('06 09 2b0601050507300102');

export interface RawRequestSpec {
  /** The hashAlgorithm's OID element (SHA-1 unless given). */
  hashOid?: Buffer;
  /** What follows the OID inside hashAlgorithm: NULL unless given; an empty buffer leaves the parameters absent. */
  hashParams?: Buffer;
  issuerNameHash?: Buffer;
  issuerKeyHash?: Buffer;
  /** The whole serialNumber element (02 01 01 unless given). */
  serial?: Buffer;
  /** Whole elements placed as they are: version [0], requestorName [1], a Request's singleRequestExtensions [0], ... */
  version?: Buffer;
  requestorName?: Buffer;
  singleExtensions?: Buffer;
  requestExtensions?: Buffer;
  optionalSignature?: Buffer;
}

export function certIdDer(s: RawRequestSpec = {}): Buffer {
  return tlv(
    TAG.sequence,
    tlv(TAG.sequence, s.hashOid ?? SHA1_OID, s.hashParams ?? NULL),
    tlv(TAG.octetString, s.issuerNameHash ?? Buffer.alloc(20, 1)),
    tlv(TAG.octetString, s.issuerKeyHash ?? Buffer.alloc(20, 2)),
    s.serial ?? hex('02 01 01'),
  );
}

export function rawRequest(s: RawRequestSpec = {}): Buffer {
  const request = tlv(TAG.sequence, certIdDer(s), ...(s.singleExtensions ? [s.singleExtensions] : []));
  const tbs = tlv(TAG.sequence, ...[s.version, s.requestorName, tlv(TAG.sequence, request), s.requestExtensions].filter((b): b is Buffer => !!b));
  return tlv(TAG.sequence, tbs, ...(s.optionalSignature ? [s.optionalSignature] : []));
}

/** Extension ::= SEQUENCE { extnID, critical BOOLEAN DEFAULT FALSE, extnValue OCTET STRING }, `critical` as a whole element. */
export function extension(oid: Buffer, value: Buffer, critical?: Buffer): Buffer {
  return tlv(TAG.sequence, oid, ...(critical ? [critical] : []), tlv(TAG.octetString, value));
}

export function nonceExtension(nonce: Buffer, critical?: Buffer): Buffer {
  return extension(NONCE_OID, tlv(TAG.octetString, nonce), critical);
}

/** [n] EXPLICIT Extensions around the given Extension elements (n = 2 in TBSRequest, 0 in Request). */
export function extensions(n: number, ...exts: Buffer[]): Buffer {
  return tlv(TAG.ctxConstructed(n), tlv(TAG.sequence, ...exts));
}
