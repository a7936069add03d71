// Parses DER OCSPRequests (RFC 6960 section 4.1.1) into what the sources need; rejects anything malformed.
import * as asn1js from 'asn1js';
import { MalformedRequestError } from './errors';
import { HashName, HASH_BY_OID, OID } from './oids';
import { serialFromIntegerBytes } from './serial';
import { children, DerError, Element, readSingle, TAG } from './tlv';

/** One certificate asked about. `certIdDer` is the CertID exactly as sent, echoed in the response. */
export interface CertIdRequest {
  certIdDer: Buffer;
  /** undefined when the client used a hash we do not support: no issuer can match it. */
  hash: HashName | undefined;
  issuerNameHash: Buffer;
  issuerKeyHash: Buffer;
  serial: string;
}

export interface OcspRequest {
  certIds: CertIdRequest[];
  /** DER of the Nonce OCTET STRING as the client sent it (the extnValue), echoed verbatim. */
  nonce?: Buffer;
}

export interface RequestLimits {
  maxCertIds: number;
}

// RFC 9654 section 2.1: nonces of 1..128 octets; 0 or more than 128 is malformedRequest.
const NONCE_MAX = 128;

/** OID contents octets, encoded once by asn1js, so requests are matched by bytes. */
const oidKey = (oid: string) => Buffer.from(new asn1js.ObjectIdentifier({ value: oid }).toBER()).subarray(2).toString('hex');
const HASH_BY_OID_BYTES = new Map([...HASH_BY_OID].map(([oid, name]) => [oidKey(oid), name]));
const NONCE_OID = oidKey(OID.ocspNonce);

export function parseOcspRequest(der: Uint8Array, limits: RequestLimits): OcspRequest {
  try {
    return parse(Buffer.isBuffer(der) ? der : Buffer.from(der), limits);
  } catch (e) {
    if (e instanceof DerError) throw new MalformedRequestError(`request is not valid DER: ${e.message}`);
    throw e;
  }
}

function parse(der: Buffer, limits: RequestLimits): OcspRequest {
  const [tbs, signature, ...rest] = sequence(readSingle(der), 'OCSPRequest');
  // optionalSignature [0] EXPLICIT may be ignored (RFC 9919 section 8.4); nothing may follow it.
  if (!tbs || rest.length > 0 || (signature && signature.tag !== TAG.ctxConstructed(0))) {
    throw new MalformedRequestError('request does not match the OCSPRequest syntax');
  }
  const fields = sequence(tbs, 'TBSRequest');
  let i = 0;
  if (fields[i]?.tag === TAG.ctxConstructed(0)) {
    const [version, ...more] = children(fields[i++]!);
    if (!version || more.length || version.tag !== TAG.integer || version.contentLength !== 1 || version.octet(0) !== 0) {
      throw new MalformedRequestError('unsupported request version');
    }
  }
  if (fields[i]?.tag === TAG.ctxConstructed(1)) i++; // requestorName: may be ignored
  const requests = sequence(fields[i++] ?? fail('requestList is missing'), 'requestList');
  let extensions: Element[] = [];
  if (fields[i]?.tag === TAG.ctxConstructed(2)) extensions = sequence(explicit(fields[i++]!, 'requestExtensions'), 'Extensions');
  if (i !== fields.length) throw new MalformedRequestError('unexpected fields in TBSRequest');
  if (requests.length === 0) throw new MalformedRequestError('requestList is empty');
  if (requests.length > limits.maxCertIds) {
    throw new MalformedRequestError(`too many CertIDs: ${requests.length} > ${limits.maxCertIds}`);
  }
  const certIds = requests.map(parseRequest);
  let nonce: Buffer | undefined;
  for (const ext of extensions.map(parseExtension)) {
    if (ext.oid === NONCE_OID) nonce = parseNonce(ext.value);
    else if (ext.critical) throw new MalformedRequestError(`unsupported critical extension ${dotted(ext.oid)}`);
  }
  return nonce ? { certIds, nonce } : { certIds };
}

function parseRequest(el: Element): CertIdRequest {
  const [certId, singleExtensions, ...rest] = sequence(el, 'Request');
  if (!certId || rest.length > 0 || (singleExtensions && singleExtensions.tag !== TAG.ctxConstructed(0))) {
    throw new MalformedRequestError('Request has unexpected fields');
  }
  if (singleExtensions) {
    for (const ext of sequence(explicit(singleExtensions, 'singleRequestExtensions'), 'Extensions').map(parseExtension)) {
      if (ext.critical) throw new MalformedRequestError(`unsupported critical singleRequestExtension ${dotted(ext.oid)}`);
    }
  }
  const [alg, nameHash, keyHash, serial, ...more] = sequence(certId, 'CertID');
  if (!alg || nameHash?.tag !== TAG.octetString || keyHash?.tag !== TAG.octetString || serial?.tag !== TAG.integer || more.length) {
    throw new MalformedRequestError('CertID does not match its syntax');
  }
  const [oid] = sequence(alg, 'hashAlgorithm');
  if (oid?.tag !== TAG.oid) throw new MalformedRequestError('CertID hashAlgorithm has no OID');
  if (serial.contentLength === 0 || serial.contentLength > 40) throw new MalformedRequestError('CertID serialNumber has an invalid length');
  return {
    certIdDer: certId.der,
    hash: HASH_BY_OID_BYTES.get(oid.contentsHex()),
    issuerNameHash: nameHash.contents,
    issuerKeyHash: keyHash.contents,
    serial: serialFromIntegerBytes(serial.contents),
  };
}

function parseExtension(el: Element): { oid: string; critical: boolean; value: Buffer } {
  const f = sequence(el, 'Extension');
  const [id, second, third] = f;
  const critical = f.length === 3 ? second : undefined;
  const value = f.length === 3 ? third : second;
  if (id?.tag !== TAG.oid || value?.tag !== TAG.octetString || f.length < 2 || f.length > 3 ||
    (critical && (critical.tag !== TAG.boolean || critical.contentLength !== 1))) {
    throw new MalformedRequestError('Extension does not match its syntax');
  }
  return { oid: id.contentsHex(), critical: critical ? critical.octet(0) !== 0 : false, value: value.contents };
}

function parseNonce(value: Buffer): Buffer {
  let inner: Element;
  try {
    inner = readSingle(value);
  } catch {
    throw new MalformedRequestError('nonce extnValue is not a DER OCTET STRING (RFC 9654 section 2.1)');
  }
  if (inner.tag !== TAG.octetString) throw new MalformedRequestError('nonce extnValue is not a DER OCTET STRING (RFC 9654 section 2.1)');
  const len = inner.contentLength;
  if (len < 1 || len > NONCE_MAX) {
    throw new MalformedRequestError(`nonce length ${len} outside 1..${NONCE_MAX} octets (RFC 9654 section 2.1)`);
  }
  return value;
}

function sequence(el: Element, what: string): Element[] {
  if (el.tag !== TAG.sequence) throw new MalformedRequestError(`${what} is not a SEQUENCE`);
  return children(el);
}

/** The single element inside an EXPLICIT context tag. */
function explicit(el: Element, what: string): Element {
  const inner = children(el);
  if (inner.length !== 1) throw new MalformedRequestError(`${what} must hold exactly one element`);
  return inner[0]!;
}

function fail(message: string): never {
  throw new MalformedRequestError(message);
}

/** Dotted form of an OID for messages (rare path: asn1js does the decoding). */
function dotted(contentsHex: string): string {
  const der = Buffer.concat([Buffer.from([TAG.oid, contentsHex.length / 2]), Buffer.from(contentsHex, 'hex')]);
  const parsed = asn1js.fromBER(der).result;
  return parsed instanceof asn1js.ObjectIdentifier ? parsed.valueBlock.toString() : contentsHex;
}
