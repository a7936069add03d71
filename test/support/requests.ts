// Builds OCSPRequests with pkijs for edge cases real clients will not produce (bad nonces, extensions).
import * as asn1js from 'asn1js';
import * as pkijs from 'pkijs';
import { toArrayBuffer } from '../../src/ocsp/der';
import { OID } from '../../src/ocsp/oids';

export interface RequestSpec {
  serials?: number[];
  hashOid?: string;
  hashLen?: number;
  /** Nonce extnValue bytes as sent (use nonceValue() for a well-formed one). */
  nonceExtnValue?: Buffer;
  criticalExtension?: boolean;
}

export function nonceValue(nonce: Buffer): Buffer {
  return Buffer.from(new asn1js.OctetString({ valueHex: toArrayBuffer(nonce) }).toBER());
}

export function buildRequest(spec: RequestSpec = {}): Buffer {
  const len = spec.hashLen ?? 20;
  const requestList = (spec.serials ?? [1]).map(
    (serial) =>
      new pkijs.Request({
        reqCert: new pkijs.CertID({
          hashAlgorithm: new pkijs.AlgorithmIdentifier({ algorithmId: spec.hashOid ?? OID.sha1, algorithmParams: new asn1js.Null() }),
          issuerNameHash: new asn1js.OctetString({ valueHex: new Uint8Array(len).fill(1).buffer }),
          issuerKeyHash: new asn1js.OctetString({ valueHex: new Uint8Array(len).fill(2).buffer }),
          serialNumber: new asn1js.Integer({ value: serial }),
        }),
      }),
  );
  const req = new pkijs.OCSPRequest();
  req.tbsRequest.requestList = requestList;
  const exts: pkijs.Extension[] = [];
  if (spec.nonceExtnValue) {
    exts.push(new pkijs.Extension({ extnID: OID.ocspNonce, critical: false, extnValue: toArrayBuffer(spec.nonceExtnValue) }));
  }
  if (spec.criticalExtension) {
    exts.push(new pkijs.Extension({ extnID: '1.2.3.4.5', critical: true, extnValue: new asn1js.Null().toBER() }));
  }
  if (exts.length) req.tbsRequest.requestExtensions = exts;
  return Buffer.from(req.toSchema(true).toBER());
}
