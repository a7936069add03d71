// Decodes a successful OCSPResponse down to its BasicOCSPResponse (RFC 6960 section 4.2.1), strictly: one DER
// element, responseStatus successful, responseType id-pkix-ocsp-basic. For checking responses (check, bench).
import * as asn1js from 'asn1js';
import * as pkijs from 'pkijs';
import { OID } from './oids';
import { readSingle, TAG } from './tlv';

export function decodeBasicResponse(der: Buffer): pkijs.BasicOCSPResponse {
  const asn1 = asn1js.fromBER(der);
  if (asn1.offset === -1 || asn1.offset !== der.length) throw new Error('not one complete DER element');
  const response = new pkijs.OCSPResponse({ schema: asn1.result });
  const status = response.responseStatus.valueBlock.valueDec;
  if (status !== 0) throw new Error(`responseStatus ${status}`);
  if (response.responseBytes?.responseType !== OID.ocspBasic) throw new Error('no id-pkix-ocsp-basic responseBytes');
  return pkijs.BasicOCSPResponse.fromBER(response.responseBytes.response.valueBlock.valueHexView);
}

/** A BasicOCSPResponse split for checking many of them: its ResponseData decoded, the rest left as bytes. */
export interface SplitBasicResponse {
  tbsDer: Buffer;
  data: pkijs.ResponseData;
  signatureAlgorithm: string;
  signature: Buffer;
  /** How many certificates it carries. */
  certs: number;
}

/**
 * As decodeBasicResponse, strictly DER, but decodes only the ResponseData with pkijs: the certificates a response
 * carries are most of its decoding time (`ocsp-hsm check` reads every stored response).
 */
export function splitBasicResponse(der: Buffer): SplitBasicResponse {
  const [status, bytes, ...rest] = readSingle(der).children();
  if (status?.tag !== TAG.enumerated || rest.length > 0) throw new Error('not an OCSPResponse');
  if (status.contentLength !== 1 || status.octet(0) !== 0) throw new Error(`responseStatus ${status.octet(0)}`);
  if (bytes?.tag !== TAG.ctxConstructed(0)) throw new Error('no responseBytes');
  const [responseBytes] = bytes.children();
  const [type, octets] = responseBytes!.children();
  if (type?.tag !== TAG.oid || octets?.tag !== TAG.octetString) throw new Error('malformed responseBytes');
  if (decodeOid(type.der) !== OID.ocspBasic) throw new Error('no id-pkix-ocsp-basic responseBytes');
  const [tbs, algorithm, signature, certs] = readSingle(octets.contents).children();
  if (!tbs || algorithm?.tag !== TAG.sequence || signature?.tag !== TAG.bitString || signature.octet(0) !== 0) {
    throw new Error('malformed BasicOCSPResponse');
  }
  const [algorithmOid] = algorithm.children();
  if (algorithmOid?.tag !== TAG.oid) throw new Error('malformed signatureAlgorithm');
  return {
    tbsDer: tbs.der,
    data: pkijs.ResponseData.fromBER(tbs.der),
    signatureAlgorithm: decodeOid(algorithmOid.der),
    signature: signature.contents.subarray(1),
    certs: certs ? certs.children()[0]!.children().length : 0,
  };
}

function decodeOid(der: Buffer): string {
  const parsed = asn1js.fromBER(der);
  if (!(parsed.result instanceof asn1js.ObjectIdentifier)) throw new Error('not an OBJECT IDENTIFIER');
  return parsed.result.valueBlock.toString();
}
