// Last step of the chain: takes a signing permit, looks up each certificate's status and signs a fresh
// response through the HSM. The permit comes first so refused requests cost no lookup and no encoding.
import type { Clock } from '../clock';
import { acquireAll } from '../hsm/permits';
import { CertStatus, encodeResponseData, encodeSuccessfulResponse, wholeSeconds } from '../ocsp/response';
import type { CertificateRecord, StatusStore } from '../store/status-store';
import type { OcspResponse, RequestContext, ResolvedRequest, Source } from './source';

export class LiveSigner implements Source {
  constructor(
    private readonly statuses: StatusStore,
    private readonly clock: Clock,
  ) {}

  async response(req: ResolvedRequest, ctx: RequestContext): Promise<OcspResponse> {
    const a = req.authority;
    const permit = await acquireAll(a.limiters, ctx);
    try {
      const records = await Promise.all(req.certIds.map((c) => this.statuses.getCertificate(a.name, c.serial)));
      const now = wholeSeconds(this.clock.now());
      const nextUpdate = new Date(now.getTime() + a.validityMs);
      const tbs = encodeResponseData({
        responderIdDer: a.responderIdDer,
        producedAt: now,
        responses: req.certIds.map((c, i) => ({ certIdDer: c.certIdDer, status: statusOf(records[i]), thisUpdate: now, nextUpdate })),
        ...(req.nonce ? { nonce: req.nonce } : {}),
      });
      const signature = await a.signer.sign(tbs, ctx);
      const der = encodeSuccessfulResponse({
        tbs,
        signatureAlgorithmDer: a.signatureAlgorithmDer,
        signature,
        ...(a.certsDer ? { certsDer: a.certsDer } : {}),
      });
      return { der, producedAt: now, thisUpdate: now, nextUpdate };
    } finally {
      permit.release();
    }
  }
}

function statusOf(rec: CertificateRecord | undefined): CertStatus {
  if (!rec) return { kind: 'unknown' };
  if (rec.status === 'good') return { kind: 'good' };
  return {
    kind: 'revoked',
    revokedAt: rec.revokedAt ?? new Date(0),
    ...(rec.reason ? { reason: rec.reason } : {}),
  };
}
