// Builds BasicOCSPResponse DER (RFC 6960 section 4.2.1) with asn1js, from parts encoded once where possible.
import * as asn1js from 'asn1js';
import { encode, toArrayBuffer } from './der';
import { OID } from './oids';
import { lengthSize, tlv, TAG, writeHeader } from './tlv';
import { REASONS, ReasonName } from './reasons';

export type CertStatus =
  | { kind: 'good' }
  | { kind: 'revoked'; revokedAt: Date; reason?: ReasonName }
  | { kind: 'unknown' };

export interface SingleResponseInput {
  /** The request's CertID, echoed byte for byte (same hash algorithm, same encoding). */
  certIdDer: Buffer;
  status: CertStatus;
  thisUpdate: Date;
  /** Omitted when the responder always has newer information (RFC 6960 section 4.2.2.1; validity 0). */
  nextUpdate?: Date;
  /** Encoded Extensions for singleExtensions (e.g. archive cutoff, RFC 6960 section 4.4.4). */
  extensions?: Buffer[];
}

export interface ResponseDataInput {
  /** Encoded ResponderID: see encodeResponderId. */
  responderIdDer: Buffer;
  producedAt: Date;
  responses: SingleResponseInput[];
  /** Nonce extnValue to echo (RFC 9654). */
  nonce?: Buffer;
  /** Further encoded Extensions for responseExtensions (e.g. extended revoked definition, section 4.4.8). */
  extensions?: Buffer[];
}

/** RFC 5280 section 4.1.2.5.2: GeneralizedTime carries whole seconds only. */
export function wholeSeconds(d: Date): Date {
  return new Date(Math.floor(d.getTime() / 1000) * 1000);
}

/** ResponderID ::= CHOICE { byName [1] Name, byKey [2] KeyHash } (RFC 6960 section 4.2.1). */
export function encodeResponderId(id: { byKey: Buffer } | { byNameDer: Buffer }): Buffer {
  return 'byKey' in id
    ? tlv(TAG.ctxConstructed(2), encode(new asn1js.OctetString({ valueHex: toArrayBuffer(id.byKey) })))
    : tlv(TAG.ctxConstructed(1), id.byNameDer);
}

/** certs [0] EXPLICIT SEQUENCE OF Certificate, encoded once per signer. */
export function encodeCerts(ders: Buffer[]): Buffer {
  return tlv(TAG.ctxConstructed(0), tlv(TAG.sequence, ...ders));
}

// Constant parts, encoded once by asn1js; the request path only frames them (see tlv.ts for why).
const NONCE_OID_DER = encode(new asn1js.ObjectIdentifier({ value: OID.ocspNonce }));
const BASIC_OID_DER = encode(new asn1js.ObjectIdentifier({ value: OID.ocspBasic }));
const SUCCESSFUL_DER = encode(new asn1js.Enumerated({ value: 0 }));
const GOOD_DER = encode(new asn1js.Primitive({ idBlock: { tagClass: 3, tagNumber: 0 } }));
const UNKNOWN_DER = encode(new asn1js.Primitive({ idBlock: { tagClass: 3, tagNumber: 2 } }));
const REASON_DER = new Map(
  Object.entries(REASONS).map(([name, code]) => [
    name,
    encode(new asn1js.Constructed({ idBlock: { tagClass: 3, tagNumber: 0 }, value: [new asn1js.Enumerated({ value: code })] })),
  ]),
);

export function encodeResponseData(input: ResponseDataInput): Buffer {
  const parts = [input.responderIdDer, time(input.producedAt), tlv(TAG.sequence, ...input.responses.map(singleResponse))];
  const exts = [...(input.nonce ? [extension(NONCE_OID_DER, input.nonce)] : []), ...(input.extensions ?? [])];
  if (exts.length > 0) parts.push(tlv(TAG.ctxConstructed(1), tlv(TAG.sequence, ...exts)));
  return tlv(TAG.sequence, ...parts);
}

function singleResponse(r: SingleResponseInput): Buffer {
  const next = r.nextUpdate ? [tlv(TAG.ctxConstructed(0), time(r.nextUpdate))] : [];
  const exts = r.extensions?.length ? [tlv(TAG.ctxConstructed(1), tlv(TAG.sequence, ...r.extensions))] : [];
  return tlv(TAG.sequence, r.certIdDer, encodeStatus(r.status), time(r.thisUpdate), ...next, ...exts);
}

/** Extension ::= SEQUENCE { extnID, critical DEFAULT FALSE (omitted), extnValue OCTET STRING } */
function extension(oidDer: Buffer, valueDer: Buffer): Buffer {
  return tlv(TAG.sequence, oidDer, tlv(TAG.octetString, valueDer));
}

const ARCHIVE_CUTOFF_OID_DER = encode(new asn1js.ObjectIdentifier({ value: OID.ocspArchiveCutoff }));
const EXTENDED_REVOKE_OID_DER = encode(new asn1js.ObjectIdentifier({ value: OID.ocspExtendedRevoke }));
const NULL_DER = encode(new asn1js.Null());

/** RFC 6960 section 4.4.4: ArchiveCutoff ::= GeneralizedTime, a singleExtension. */
export function archiveCutoffExtension(cutoff: Date): Buffer {
  return extension(ARCHIVE_CUTOFF_OID_DER, time(cutoff));
}

/** RFC 6960 section 4.4.8: id-pkix-ocsp-extended-revoke, value NULL, in responseExtensions. */
export const EXTENDED_REVOKE_EXTENSION = extension(EXTENDED_REVOKE_OID_DER, NULL_DER);

function encodeStatus(s: CertStatus): Buffer {
  switch (s.kind) {
    case 'good':
      return GOOD_DER;
    case 'unknown':
      return UNKNOWN_DER;
    case 'revoked':
      return tlv(TAG.ctxConstructed(1), time(s.revokedAt), ...(s.reason !== undefined ? [REASON_DER.get(s.reason)!] : []));
  }
}

// A busy responder writes the same few timestamps thousands of times a second: asn1js encodes each once.
const timeCache = new Map<number, Buffer>();
function time(d: Date): Buffer {
  const ms = wholeSeconds(d).getTime();
  let der = timeCache.get(ms);
  if (!der) {
    if (timeCache.size > 64) timeCache.clear();
    der = encode(new asn1js.GeneralizedTime({ valueDate: new Date(ms) }));
    timeCache.set(ms, der);
  }
  return der;
}

export interface SignedEnvelope {
  tbs: Buffer;
  signatureAlgorithmDer: Buffer;
  signature: Buffer;
  /** Encoded `certs` field (encodeCerts), or undefined to include none. */
  certsDer?: Buffer;
}

/**
 * Wraps a signed ResponseData into a successful OCSPResponse (responseType id-pkix-ocsp-basic):
 *   SEQUENCE { ENUMERATED 0, [0] { SEQUENCE { OID, OCTET STRING { SEQUENCE { tbs, alg, BIT STRING, certs } } } } }
 * written into one buffer: nesting TLVs one by one copied the response five times.
 */
export function encodeSuccessfulResponse(env: SignedEnvelope): Buffer {
  const certs = env.certsDer ?? EMPTY;
  const bitsLen = 1 + env.signature.length;
  const basicLen = env.tbs.length + env.signatureAlgorithmDer.length + tlvSize(bitsLen) + certs.length;
  const octetsLen = tlvSize(basicLen);
  const bytesLen = BASIC_OID_DER.length + tlvSize(octetsLen);
  const explicitLen = tlvSize(bytesLen);
  const outerLen = SUCCESSFUL_DER.length + tlvSize(explicitLen);
  const out = Buffer.allocUnsafe(tlvSize(outerLen));
  let off = writeHeader(out, 0, TAG.sequence, outerLen);
  off += SUCCESSFUL_DER.copy(out, off);
  off = writeHeader(out, off, TAG.ctxConstructed(0), explicitLen);
  off = writeHeader(out, off, TAG.sequence, bytesLen);
  off += BASIC_OID_DER.copy(out, off);
  off = writeHeader(out, off, TAG.octetString, octetsLen);
  off = writeHeader(out, off, TAG.sequence, basicLen);
  off += env.tbs.copy(out, off);
  off += env.signatureAlgorithmDer.copy(out, off);
  off = writeHeader(out, off, TAG.bitString, bitsLen);
  out[off++] = 0; // no unused bits
  off += env.signature.copy(out, off);
  certs.copy(out, off);
  return out;
}

const EMPTY = Buffer.alloc(0);

/** Size of a whole TLV whose value is `len` octets (single-octet tag). */
function tlvSize(len: number): number {
  return 1 + lengthSize(len) + len;
}
