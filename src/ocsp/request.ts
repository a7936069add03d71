// Parses DER OCSPRequests (RFC 6960 section 4.1.1) into what the sources need; refuses anything malformed or not
// DER (der-rules.ts), in the fields it reads and in those it ignores.
import * as asn1js from 'asn1js';
import { MalformedRequestError } from './errors';
import { HashName, HASH_BY_OID, OID } from './oids';
import { serialFromIntegerBytes } from './serial';
import { checkBoolean, checkDerTree, checkInteger, checkOid } from './der-rules';
import { children, DerError, Element, readSingle, TAG } from './tlv';

/** One certificate asked about. `certIdDer` is the CertID exactly as sent, proven DER, echoed in the response. */
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
    if (e instanceof DerError) throw new MalformedRequestError(`request is not valid DER: ${e.message}`, { cause: e });
    throw e;
  }
}

function parse(der: Buffer, limits: RequestLimits): OcspRequest {
  const [tbs, signature, ...rest] = sequence(readSingle(der), 'OCSPRequest');
  if (!tbs || rest.length > 0 || (signature && signature.tag !== TAG.ctxConstructed(0))) {
    throw new MalformedRequestError('request does not match the OCSPRequest syntax');
  }
  if (signature) checkSignature(signature);
  const fields = sequence(tbs, 'TBSRequest');
  let i = 0;
  if (fields[i]?.tag === TAG.ctxConstructed(0)) refuseVersion(fields[i++]!);
  if (fields[i]?.tag === TAG.ctxConstructed(1)) checkRequestorName(fields[i++]!);
  const requests = sequence(fields[i++] ?? fail('requestList is missing'), 'requestList');
  let extensions: Extension[] = [];
  if (fields[i]?.tag === TAG.ctxConstructed(2)) extensions = extensionList(fields[i++]!, 'requestExtensions');
  if (i !== fields.length) throw new MalformedRequestError('unexpected fields in TBSRequest');
  if (requests.length === 0) throw new MalformedRequestError('requestList is empty');
  if (requests.length > limits.maxCertIds) {
    throw new MalformedRequestError(`too many CertIDs: ${requests.length} > ${limits.maxCertIds}`);
  }
  const certIds = requests.map(parseRequest);
  let nonce: Buffer | undefined;
  for (const ext of extensions) {
    if (ext.oid === NONCE_OID) nonce = parseNonce(ext.value);
    else if (ext.critical) throw new MalformedRequestError(`unsupported critical extension ${dotted(ext.oid)}`);
  }
  return nonce ? { certIds, nonce } : { certIds };
}

/**
 * version [0] EXPLICIT Version DEFAULT v1: v1 is the only version (RFC 6960 section 4.1.1), and DER leaves a
 * value equal to its DEFAULT out (X.690 section 11.5), so a version present is refused whatever it holds.
 */
function refuseVersion(el: Element): never {
  const version = explicit(el, 'version');
  if (version.tag === TAG.integer) {
    checkInteger(version, 'version');
    if (version.contentLength === 1 && version.octet(0) === 0) throw new DerError('version: v1 written out although it is the DEFAULT (X.690 section 11.5)');
  }
  throw new MalformedRequestError('unsupported request version');
}

// Which GeneralName alternatives ([0]..[8], RFC 5280 section 4.2.1.6) are encoded in the constructed form.
const GENERAL_NAME_CONSTRUCTED = [true, false, false, true, true, true, false, false, false];

/** requestorName [1] EXPLICIT GeneralName: ignored (RFC 6960 section 4.1.2), but DER like the rest. */
function checkRequestorName(el: Element): void {
  const name = explicit(el, 'requestorName');
  const n = name.tag & 0x1f;
  if ((name.tag & 0xc0) !== 0x80 || n > 8 || (name.tag & 0x20) !== (GENERAL_NAME_CONSTRUCTED[n] ? 0x20 : 0)) {
    throw new MalformedRequestError('requestorName is not a GeneralName (RFC 5280 section 4.2.1.6)');
  }
  checkDerTree(name, 'requestorName');
}

/**
 * optionalSignature [0] EXPLICIT Signature: may be ignored (RFC 9919 section 8.4), but DER like the rest.
 * Signature ::= SEQUENCE { signatureAlgorithm, signature BIT STRING, certs [0] EXPLICIT SEQUENCE OF Certificate OPTIONAL }
 */
function checkSignature(el: Element): void {
  const signature = explicit(el, 'optionalSignature');
  const [alg, bits, certs, ...more] = signature.tag === TAG.sequence ? children(signature) : [];
  if (alg?.tag !== TAG.sequence || bits?.tag !== TAG.bitString || (certs && certs.tag !== TAG.ctxConstructed(0)) || more.length) {
    throw new MalformedRequestError('optionalSignature is not a Signature (RFC 6960 section 4.1.1)');
  }
  checkDerTree(signature, 'optionalSignature');
}

function parseRequest(el: Element): CertIdRequest {
  const [certId, singleExtensions, ...rest] = sequence(el, 'Request');
  if (!certId || rest.length > 0 || (singleExtensions && singleExtensions.tag !== TAG.ctxConstructed(0))) {
    throw new MalformedRequestError('Request has unexpected fields');
  }
  if (singleExtensions) {
    for (const ext of extensionList(singleExtensions, 'singleRequestExtensions')) {
      if (ext.critical) throw new MalformedRequestError(`unsupported critical singleRequestExtension ${dotted(ext.oid)}`);
    }
  }
  const [alg, nameHash, keyHash, serial, ...more] = sequence(certId, 'CertID');
  if (!alg || nameHash?.tag !== TAG.octetString || keyHash?.tag !== TAG.octetString || serial?.tag !== TAG.integer || more.length) {
    throw new MalformedRequestError('CertID does not match its syntax');
  }
  const hash = hashAlgorithm(alg);
  checkInteger(serial, 'CertID serialNumber');
  if (serial.contentLength > 40) throw new MalformedRequestError('CertID serialNumber has an invalid length');
  return {
    // Every part of the CertID is now proven DER (framing, tags, OID, parameters, INTEGER): echoed as sent.
    certIdDer: certId.der,
    hash,
    issuerNameHash: nameHash.contents,
    issuerKeyHash: keyHash.contents,
    serial: serialFromIntegerBytes(serial.contents),
  };
}

/**
 * The CertID's AlgorithmIdentifier: parameters absent or NULL, the two forms RFC 5754 section 2 allows for the
 * SHA-2 family and RFC 3279 section 2.1 for SHA-1. Anything else would be echoed into an answer that
 * pyca/cryptography refuses (issue 16). An unknown OID is kept as `undefined`: the issuer filter answers it.
 */
function hashAlgorithm(alg: Element): HashName | undefined {
  const [oid, params, ...more] = sequence(alg, 'CertID hashAlgorithm');
  if (oid?.tag !== TAG.oid) throw new MalformedRequestError('CertID hashAlgorithm has no OID');
  checkOid(oid, 'CertID hashAlgorithm');
  if (more.length || (params && (params.tag !== TAG.null || params.contentLength !== 0))) {
    throw new MalformedRequestError('CertID hashAlgorithm parameters must be absent or NULL (RFC 5754 section 2)');
  }
  return HASH_BY_OID_BYTES.get(oid.contentsHex());
}

interface Extension {
  oid: string;
  critical: boolean;
  value: Buffer;
}

/** [n] EXPLICIT Extensions: SIZE (1..MAX) (RFC 5280 section 4.1), each extension at most once (section 4.2). */
function extensionList(el: Element, what: string): Extension[] {
  const list = sequence(explicit(el, what), 'Extensions');
  if (list.length === 0) throw new MalformedRequestError(`${what} is empty (Extensions is SIZE (1..MAX))`);
  const exts = list.map((e) => parseExtension(e, what));
  if (exts.length > 1) {
    const seen = new Set<string>();
    for (const ext of exts) {
      if (seen.has(ext.oid)) throw new MalformedRequestError(`${what}: extension ${dotted(ext.oid)} appears twice (RFC 5280 section 4.2)`);
      seen.add(ext.oid);
    }
  }
  return exts;
}

/** Extension ::= SEQUENCE { extnID OID, critical BOOLEAN DEFAULT FALSE, extnValue OCTET STRING } */
function parseExtension(el: Element, what: string): Extension {
  const f = sequence(el, 'Extension');
  const [id, second, third] = f;
  const critical = f.length === 3 ? second : undefined;
  const value = f.length === 3 ? third : second;
  if (id?.tag !== TAG.oid || value?.tag !== TAG.octetString || f.length < 2 || f.length > 3 || (critical && critical.tag !== TAG.boolean)) {
    throw new MalformedRequestError('Extension does not match its syntax');
  }
  checkOid(id, `${what} extnID`);
  if (critical) {
    checkBoolean(critical, `${what} critical`);
    if (critical.octet(0) === 0) throw new DerError(`${what} critical: FALSE written out although it is the DEFAULT (X.690 section 11.5)`);
  }
  return { oid: id.contentsHex(), critical: !!critical, value: value.contents };
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
