// Decodes a successful OCSPResponse down to its BasicOCSPResponse (RFC 6960 section 4.2.1), strictly: one DER
// element, responseStatus successful, responseType id-pkix-ocsp-basic. For checking responses (check, bench).
import * as asn1js from 'asn1js';
import * as pkijs from 'pkijs';
import { OID } from './oids';

export function decodeBasicResponse(der: Buffer): pkijs.BasicOCSPResponse {
  const asn1 = asn1js.fromBER(der);
  if (asn1.offset === -1 || asn1.offset !== der.length) throw new Error('not one complete DER element');
  const response = new pkijs.OCSPResponse({ schema: asn1.result });
  const status = response.responseStatus.valueBlock.valueDec;
  if (status !== 0) throw new Error(`responseStatus ${status}`);
  if (response.responseBytes?.responseType !== OID.ocspBasic) throw new Error('no id-pkix-ocsp-basic responseBytes');
  return pkijs.BasicOCSPResponse.fromBER(response.responseBytes.response.valueBlock.valueHexView);
}
