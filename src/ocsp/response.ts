// Builds BasicOCSPResponse DER (RFC 6960 section 4.2.1): the to-be-signed part, then the signed envelope.
import * as asn1js from 'asn1js';
import * as pkijs from 'pkijs';
import { toArrayBuffer } from './der';
import { OID } from './oids';
import { REASONS, ReasonName } from './reasons';

export type CertStatus =
  | { kind: 'good' }
  | { kind: 'revoked'; revokedAt: Date; reason?: ReasonName }
  | { kind: 'unknown' };

export interface SingleResponseInput {
  certId: pkijs.CertID;
  status: CertStatus;
  thisUpdate: Date;
  nextUpdate: Date;
}

export type ResponderId = { byKey: Buffer } | { byName: pkijs.RelativeDistinguishedNames };

export interface ResponseDataInput {
  responderId: ResponderId;
  producedAt: Date;
  responses: SingleResponseInput[];
  /** Nonce extnValue to echo (RFC 9654). */
  nonce?: Buffer;
}

/** RFC 5280 section 4.1.2.5.2: GeneralizedTime carries whole seconds only. */
export function wholeSeconds(d: Date): Date {
  return new Date(Math.floor(d.getTime() / 1000) * 1000);
}

export function encodeResponseData(input: ResponseDataInput): Buffer {
  const data = new pkijs.ResponseData({
    responderID:
      'byKey' in input.responderId
        ? new asn1js.OctetString({ valueHex: input.responderId.byKey })
        : input.responderId.byName,
    producedAt: wholeSeconds(input.producedAt),
    responses: input.responses.map(singleResponse),
  });
  if (input.nonce) {
    data.responseExtensions = [
      new pkijs.Extension({ extnID: OID.ocspNonce, critical: false, extnValue: toArrayBuffer(input.nonce) }),
    ];
  }
  return Buffer.from(data.toSchema(true).toBER());
}

function singleResponse(r: SingleResponseInput): pkijs.SingleResponse {
  return new pkijs.SingleResponse({
    certID: r.certId,
    certStatus: encodeStatus(r.status),
    thisUpdate: wholeSeconds(r.thisUpdate),
    nextUpdate: wholeSeconds(r.nextUpdate),
  });
}

function encodeStatus(s: CertStatus): asn1js.BaseBlock {
  switch (s.kind) {
    case 'good':
      return new asn1js.Primitive({ idBlock: { tagClass: 3, tagNumber: 0 } });
    case 'unknown':
      return new asn1js.Primitive({ idBlock: { tagClass: 3, tagNumber: 2 } });
    case 'revoked': {
      const value: asn1js.BaseBlock[] = [new asn1js.GeneralizedTime({ valueDate: wholeSeconds(s.revokedAt) })];
      if (s.reason !== undefined) {
        value.push(
          new asn1js.Constructed({
            idBlock: { tagClass: 3, tagNumber: 0 },
            value: [new asn1js.Enumerated({ value: REASONS[s.reason] })],
          }),
        );
      }
      return new asn1js.Constructed({ idBlock: { tagClass: 3, tagNumber: 1 }, value });
    }
  }
}

export interface SignedEnvelope {
  tbs: Buffer;
  signatureAlgorithm: pkijs.AlgorithmIdentifier;
  signature: Buffer;
  certs: pkijs.Certificate[];
}

/** Wraps a signed ResponseData into a successful OCSPResponse (responseType id-pkix-ocsp-basic). */
export function encodeSuccessfulResponse(env: SignedEnvelope): Buffer {
  const basic = new pkijs.BasicOCSPResponse({
    tbsResponseData: new pkijs.ResponseData({ tbs: toArrayBuffer(env.tbs) }),
    signatureAlgorithm: env.signatureAlgorithm,
    signature: new asn1js.BitString({ valueHex: env.signature }),
  });
  if (env.certs.length > 0) basic.certs = env.certs;
  const response = new pkijs.OCSPResponse({
    responseStatus: new asn1js.Enumerated({ value: 0 }),
    responseBytes: new pkijs.ResponseBytes({
      responseType: OID.ocspBasic,
      response: new asn1js.OctetString({ valueHex: basic.toSchema().toBER() }),
    }),
  });
  return Buffer.from(response.toSchema().toBER());
}
