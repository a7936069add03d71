// Builds and signs one BasicOCSPResponse for an authority: the shared last step of live and pre-produced answers.
import type { RequestContext } from './source';
import type { Authority } from './authority';
import { CertStatus, encodeResponseData, encodeSuccessfulResponse, EXTENDED_REVOKE_EXTENSION } from '../ocsp/response';
import type { CertificateRecord } from '../store/status-store';
import { answerFor, singleExtensionsFor, StatusPolicy, validityFor } from './status-policy';

export interface ResponseItem {
  certIdDer: Buffer;
  status: CertStatus;
  /** undefined: no nextUpdate (validity 0). */
  nextUpdate: Date | undefined;
  extensions?: Buffer[];
  /** Needs the extended revoked definition in responseExtensions (RFC 6960 section 4.4.8). */
  nonIssuedRevoked?: boolean;
}

export interface ResponseContent {
  producedAt: Date;
  items: ResponseItem[];
  nonce?: Buffer;
}

/** One SingleResponse for a certificate (or a serial never issued) under the authority's policies. */
export function itemFor(p: StatusPolicy, certIdDer: Buffer, rec: CertificateRecord | undefined, producedAt: Date, nextUpdate?: Date): ResponseItem {
  const { status, nonIssuedRevoked } = answerFor(p, rec);
  const validityMs = validityFor(p, rec);
  const extensions = singleExtensionsFor(p, producedAt);
  return {
    certIdDer,
    status,
    nextUpdate: nextUpdate ?? (validityMs > 0 ? new Date(producedAt.getTime() + validityMs) : undefined),
    ...(extensions ? { extensions } : {}),
    ...(nonIssuedRevoked ? { nonIssuedRevoked } : {}),
  };
}

/** The earliest nextUpdate of the items: how long the whole response may be kept; undefined if one has none. */
export function earliestNextUpdate(items: readonly ResponseItem[]): Date | undefined {
  let min: Date | undefined;
  for (const i of items) {
    if (!i.nextUpdate) return undefined;
    if (!min || i.nextUpdate < min) min = i.nextUpdate;
  }
  return min;
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
      ...(i.nextUpdate ? { nextUpdate: i.nextUpdate } : {}),
      ...(i.extensions ? { extensions: i.extensions } : {}),
    })),
    ...(c.nonce ? { nonce: c.nonce } : {}),
    ...(c.items.some((i) => i.nonIssuedRevoked) ? { extensions: [EXTENDED_REVOKE_EXTENSION] } : {}),
  });
  const signature = await a.signer.sign(tbs, ctx);
  return encodeSuccessfulResponse({
    tbs,
    signatureAlgorithmDer: a.signatureAlgorithmDer,
    signature,
    ...(a.certsDer ? { certsDer: a.certsDer } : {}),
  });
}
