// Parses DER OCSPRequests (RFC 6960 section 4.1.1) into what the sources need; rejects anything malformed.
// Walks the asn1js tree by hand instead of pkijs schema matching, which costs ten times more per request.
import * as asn1js from 'asn1js';
import { decodeDer, toBuffer } from './der';
import { MalformedRequestError } from './errors';
import { HASH_BY_OID, HashName, OID } from './oids';
import { serialFromIntegerBytes } from './serial';

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

type Block = asn1js.BaseBlock;

export function parseOcspRequest(der: Uint8Array, limits: RequestLimits): OcspRequest {
  const root = decodeDer(der);
  if (!root) throw new MalformedRequestError('request is not a single DER element');
  const [tbs, signature, ...rest] = children(sequence(root, 'OCSPRequest'));
  if (!tbs || rest.length > 0 || (signature && !isContext(signature, 0))) {
    throw new MalformedRequestError('request does not match the OCSPRequest syntax');
  }
  const fields = children(sequence(tbs, 'TBSRequest'));
  let i = 0;
  if (fields[i] && isContext(fields[i]!, 0)) {
    const version = only(fields[i++]!, 'version');
    if (!(version instanceof asn1js.Integer) || version.valueBlock.valueDec !== 0) {
      throw new MalformedRequestError('unsupported request version');
    }
  }
  if (fields[i] && isContext(fields[i]!, 1)) i++; // requestorName: may be ignored (RFC 9919 section 8.4)
  const list = fields[i++];
  if (!list) throw new MalformedRequestError('request does not match the OCSPRequest syntax');
  const requests = children(sequence(list, 'requestList'));
  let extensions: Block[] = [];
  if (fields[i] && isContext(fields[i]!, 2)) extensions = children(sequence(only(fields[i++]!, 'requestExtensions'), 'Extensions'));
  if (i !== fields.length) throw new MalformedRequestError('unexpected fields in TBSRequest');
  if (requests.length === 0) throw new MalformedRequestError('requestList is empty');
  if (requests.length > limits.maxCertIds) {
    throw new MalformedRequestError(`too many CertIDs: ${requests.length} > ${limits.maxCertIds}`);
  }
  const certIds = requests.map(parseRequest);
  let nonce: Buffer | undefined;
  for (const ext of extensions.map(parseExtension)) {
    if (ext.id === OID.ocspNonce) nonce = parseNonce(ext.value);
    else if (ext.critical) throw new MalformedRequestError(`unsupported critical extension ${ext.id}`);
  }
  return nonce ? { certIds, nonce } : { certIds };
}

function parseRequest(b: Block): CertIdRequest {
  const [certId, singleExtensions, ...rest] = children(sequence(b, 'Request'));
  if (!certId || rest.length > 0) throw new MalformedRequestError('Request has unexpected fields');
  if (singleExtensions) {
    if (!isContext(singleExtensions, 0)) throw new MalformedRequestError('Request has unexpected fields');
    for (const ext of children(sequence(only(singleExtensions, 'singleRequestExtensions'), 'Extensions')).map(parseExtension)) {
      if (ext.critical) throw new MalformedRequestError(`unsupported critical singleRequestExtension ${ext.id}`);
    }
  }
  const [alg, nameHash, keyHash, serial, ...more] = children(sequence(certId, 'CertID'));
  if (!(nameHash instanceof asn1js.OctetString) || !(keyHash instanceof asn1js.OctetString) || !(serial instanceof asn1js.Integer) || more.length > 0) {
    throw new MalformedRequestError('CertID does not match its syntax');
  }
  const [oid] = children(sequence(alg!, 'hashAlgorithm'));
  if (!(oid instanceof asn1js.ObjectIdentifier)) throw new MalformedRequestError('CertID hashAlgorithm has no OID');
  const serialBytes = serial.valueBlock.valueHexView;
  if (serialBytes.length === 0 || serialBytes.length > 40) throw new MalformedRequestError('CertID serialNumber has an invalid length');
  return {
    certIdDer: toBuffer(certId.valueBeforeDecodeView),
    hash: HASH_BY_OID.get(oid.valueBlock.toString()),
    issuerNameHash: toBuffer(nameHash.valueBlock.valueHexView),
    issuerKeyHash: toBuffer(keyHash.valueBlock.valueHexView),
    serial: serialFromIntegerBytes(serialBytes),
  };
}

function parseExtension(b: Block): { id: string; critical: boolean; value: Buffer } {
  const f = children(sequence(b, 'Extension'));
  const id = f[0];
  const critical = f.length === 3 ? f[1] : undefined;
  const value = f[f.length - 1];
  if (!(id instanceof asn1js.ObjectIdentifier) || !(value instanceof asn1js.OctetString) || f.length < 2 || f.length > 3 ||
    (critical !== undefined && !(critical instanceof asn1js.Boolean))) {
    throw new MalformedRequestError('Extension does not match its syntax');
  }
  return { id: id.valueBlock.toString(), critical: critical?.valueBlock.value ?? false, value: toBuffer(value.valueBlock.valueHexView) };
}

function parseNonce(value: Buffer): Buffer {
  const inner = decodeDer(value);
  if (!(inner instanceof asn1js.OctetString) || inner.idBlock.isConstructed) {
    throw new MalformedRequestError('nonce extnValue is not a DER OCTET STRING (RFC 9654 section 2.1)');
  }
  const len = inner.valueBlock.valueHexView.byteLength;
  if (len < 1 || len > NONCE_MAX) {
    throw new MalformedRequestError(`nonce length ${len} outside 1..${NONCE_MAX} octets (RFC 9654 section 2.1)`);
  }
  return value;
}

function sequence(b: Block, what: string): asn1js.Sequence {
  if (!(b instanceof asn1js.Sequence)) throw new MalformedRequestError(`${what} is not a SEQUENCE`);
  return b;
}

function children(b: asn1js.Sequence | asn1js.Constructed): Block[] {
  return b.valueBlock.value as Block[];
}

function isContext(b: Block, n: number): boolean {
  return b.idBlock.tagClass === 3 && b.idBlock.tagNumber === n && b.idBlock.isConstructed;
}

/** The single element inside an EXPLICIT context tag. */
function only(b: Block, what: string): Block {
  const inner = (b as asn1js.Constructed).valueBlock.value;
  if (inner.length !== 1) throw new MalformedRequestError(`${what} must hold exactly one element`);
  return inner[0] as Block;
}
