// Unsigned OCSP error responses (RFC 6960 section 4.2.1), encoded once: errors never touch the signer.
import * as asn1js from 'asn1js';
import * as pkijs from 'pkijs';

export const OCSP_STATUS = {
  successful: 0,
  malformedRequest: 1,
  internalError: 2,
  tryLater: 3,
  sigRequired: 5,
  unauthorized: 6,
} as const;

export type ErrorStatusName = Exclude<keyof typeof OCSP_STATUS, 'successful'>;

function encode(status: number): Buffer {
  const r = new pkijs.OCSPResponse({ responseStatus: new asn1js.Enumerated({ value: status }) });
  return Buffer.from(r.toSchema().toBER());
}

export const ERROR_RESPONSES: Readonly<Record<ErrorStatusName, Buffer>> = {
  malformedRequest: encode(OCSP_STATUS.malformedRequest),
  internalError: encode(OCSP_STATUS.internalError),
  tryLater: encode(OCSP_STATUS.tryLater),
  sigRequired: encode(OCSP_STATUS.sigRequired),
  unauthorized: encode(OCSP_STATUS.unauthorized),
};
