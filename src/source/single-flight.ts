// Concurrent requests for the same certificates share one signature instead of each taking one from the HSM.
import type { RequestContext } from './source';
import type { OcspResponse, ResolvedRequest, Source } from './source';

export class SingleFlight implements Source {
  private readonly inflight = new Map<string, Promise<OcspResponse>>();

  constructor(private readonly next: Source) {}

  response(req: ResolvedRequest, ctx: RequestContext): Promise<OcspResponse> {
    // A nonce makes every response unique: nothing to share.
    if (req.nonce) return this.next.response(req, ctx);
    const key = flightKey(req);
    const pending = this.inflight.get(key);
    if (pending) return pending;
    const p = this.next.response(req, ctx).finally(() => this.inflight.delete(key));
    this.inflight.set(key, p);
    return p;
  }

  get pending(): number {
    return this.inflight.size;
  }
}

/** Same authority, same CertIDs (hash algorithm included, since the response echoes it), same order. */
function flightKey(req: ResolvedRequest): string {
  return req.authority.name + '|' + req.certIds.map((c) => `${c.hash}:${c.issuerNameHash.toString('hex')}:${c.issuerKeyHash.toString('hex')}:${c.serial}`).join('|');
}
