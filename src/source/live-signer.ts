// Last step of the chain: takes a signing permit, looks up each certificate's status and signs a fresh
// response through the HSM. The permit comes first so refused requests cost no lookup and no encoding.
import type { Clock } from '../clock';
import { acquireAll } from '../signing/permits';
import { wholeSeconds } from '../ocsp/response';
import type { StatusStore } from '../store/status-store';
import { earliestNextUpdate, itemFor, signResponse } from './response-signing';
import { maxAgeFor } from './status-policy';
import { usableUntilMs } from './usable-until';
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
      const items = req.certIds.map((c, i) => itemFor(a.policy, c.certIdDer, records[i], now));
      const nextUpdate = earliestNextUpdate(items);
      const der = await signResponse(a, { producedAt: now, items, ...(req.nonce ? { nonce: req.nonce } : {}) }, ctx);
      // Several certificates: the shortest maxAge of their profiles.
      const maxAges = records.map((r) => maxAgeFor(a.policy, r?.profile)).filter((m): m is number => m !== undefined);
      return {
        der, producedAt: now, thisUpdate: now, source: 'live',
        ...(nextUpdate ? { nextUpdate, usableUntilMs: usableUntilMs(a, now.getTime(), nextUpdate.getTime()) } : {}),
        httpCacheable: !req.nonce && nextUpdate !== undefined && items.every((i) => i.status.kind !== 'unknown'),
        ...(maxAges.length > 0 ? { maxAgeMs: Math.min(...maxAges) } : {}),
      };
    } finally {
      permit.release();
    }
  }
}
