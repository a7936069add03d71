// Parses DER OCSPRequests (RFC 6960 section 4.1) into what the sources need; rejects anything malformed.
import * as pkijs from 'pkijs';
import * as asn1js from 'asn1js';
import { decodeDer, toBuffer } from './der';
import { MalformedRequestError } from './errors';
import { HASH_BY_OID, HashName, OID } from './oids';
import { serialFromIntegerBytes } from './serial';

/** One certificate asked about. `certId` is kept as parsed so the response echoes it exactly. */
export interface CertIdRequest {
  certId: pkijs.CertID;
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

export function parseOcspRequest(der: Uint8Array, limits: RequestLimits): OcspRequest {
  const asn1 = decodeDer(der);
  if (!asn1) throw new MalformedRequestError('request is not a single DER element');
  let req: pkijs.OCSPRequest;
  try {
    req = new pkijs.OCSPRequest({ schema: asn1 });
  } catch (e) {
    throw new MalformedRequestError('request does not match the OCSPRequest syntax', { cause: e });
  }
  const tbs = req.tbsRequest;
  if (tbs.version !== undefined && tbs.version !== 0) {
    throw new MalformedRequestError(`unsupported request version ${tbs.version}`);
  }
  if (tbs.requestList.length === 0) throw new MalformedRequestError('requestList is empty');
  if (tbs.requestList.length > limits.maxCertIds) {
    throw new MalformedRequestError(`too many CertIDs: ${tbs.requestList.length} > ${limits.maxCertIds}`);
  }
  const certIds = tbs.requestList.map((r) => {
    rejectCriticalExtensions(r.singleRequestExtensions);
    return toCertIdRequest(r.reqCert);
  });
  let nonce: Buffer | undefined;
  for (const ext of tbs.requestExtensions ?? []) {
    if (ext.extnID === OID.ocspNonce) nonce = parseNonce(ext);
    else if (ext.critical) throw new MalformedRequestError(`unsupported critical extension ${ext.extnID}`);
  }
  return nonce ? { certIds, nonce } : { certIds };
}

function toCertIdRequest(certId: pkijs.CertID): CertIdRequest {
  const serialBytes = certId.serialNumber.valueBlock.valueHexView;
  if (serialBytes.length === 0 || serialBytes.length > 40) {
    throw new MalformedRequestError('CertID serialNumber has an invalid length');
  }
  return {
    certId,
    hash: HASH_BY_OID.get(certId.hashAlgorithm.algorithmId),
    issuerNameHash: toBuffer(certId.issuerNameHash.valueBlock.valueHexView),
    issuerKeyHash: toBuffer(certId.issuerKeyHash.valueBlock.valueHexView),
    serial: serialFromIntegerBytes(serialBytes),
  };
}

function parseNonce(ext: pkijs.Extension): Buffer {
  const value = toBuffer(ext.extnValue.valueBlock.valueHexView);
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

function rejectCriticalExtensions(exts: pkijs.Extension[] | undefined): void {
  for (const ext of exts ?? []) {
    if (ext.critical) throw new MalformedRequestError(`unsupported critical singleRequestExtension ${ext.extnID}`);
  }
}
