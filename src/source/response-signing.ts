// Builds and signs one BasicOCSPResponse for an authority: the shared last step of live and pre-produced answers.
import type { RequestContext } from './source';
import type { Authority } from './authority';
import { CertStatus, encodeResponseData, encodeSuccessfulResponse } from '../ocsp/response';
import type { CertificateRecord } from '../store/status-store';

export interface ResponseContent {
  producedAt: Date;
  /** undefined: no nextUpdate (validity 0). */
  nextUpdate: Date | undefined;
  items: { certIdDer: Buffer; status: CertStatus }[];
  nonce?: Buffer;
}

/** The caller holds the signing permit; this only encodes and signs (thisUpdate = producedAt). */
export async function signResponse(a: Authority, c: ResponseContent, ctx: RequestContext): Promise<Buffer> {
  const tbs = encodeResponseData({
    responderIdDer: a.responderIdDer,
    producedAt: c.producedAt,
    responses: c.items.map((i) => ({
      certIdDer: i.certIdDer,
      status: i.status,
      thisUpdate: c.producedAt,
      ...(c.nextUpdate ? { nextUpdate: c.nextUpdate } : {}),
    })),
    ...(c.nonce ? { nonce: c.nonce } : {}),
  });
  const signature = await a.signer.sign(tbs, ctx);
  return encodeSuccessfulResponse({
    tbs,
    signatureAlgorithmDer: a.signatureAlgorithmDer,
    signature,
    ...(a.certsDer ? { certsDer: a.certsDer } : {}),
  });
}

export function statusOf(rec: CertificateRecord | undefined): CertStatus {
  if (!rec) return { kind: 'unknown' };
  if (rec.status === 'good') return { kind: 'good' };
  return {
    kind: 'revoked',
    revokedAt: rec.revokedAt ?? new Date(0),
    ...(rec.reason ? { reason: rec.reason } : {}),
  };
}
