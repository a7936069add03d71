// Nonces for strict clients (preProduction.nonce: whenIdle): GnuTLS ocsptool and BouncyCastle- or pyca-based
// checks refuse an answer without the nonce they sent, which a pre-produced response never carries. A request with a
// nonce whose answer would be pre-produced is signed live, nonce echoed, when the signing limiter has a permit free
// at once (never queued, behind live misses, within its client's share); otherwise it gets the pre-produced answer
// at once, as with `ignore` (RFC 9654 section 2.1 lets a responder leave the nonce out). Sits in front of the memory
// cache, so what it signs is neither cached nor stored.
import { permitFreeNow } from '../signing/permits';
import { answeredFromStore } from './stored-responses';
import type { HotAnswer, OcspResponse, RequestContext, ResolvedRequest, ServedResponse, Source } from './source';

export type NonceOutcome = 'signed' | 'preproduced';

export class NonceSigning implements Source {
  /** Requests with a nonce under `whenIdle`, by outcome (metrics: ocsp_nonce_requests_total). */
  readonly stats: Record<NonceOutcome, number> = { signed: 0, preproduced: 0 };
  /** Present when `next` answers hot (source.ts: Source.hot). */
  readonly hot?: (req: ResolvedRequest) => HotAnswer | undefined;

  constructor(
    /** The chain that answers pre-produced (memory cache -> store -> ...). */
    private readonly next: Source,
    /** Signs one response for this request, nonce included (live-signer.ts). */
    private readonly live: Source,
  ) {
    const nextHot = next.hot?.bind(next);
    if (nextHot) this.hot = (req) => this.hotAnswer(req, nextHot);
  }

  /**
   * With a permit free now (as far as this process can tell: the client's share is checked by response()), none:
   * response() signs. Otherwise the pre-produced answer, in the tick the request arrived when memory holds it.
   */
  private hotAnswer(req: ResolvedRequest, nextHot: (req: ResolvedRequest) => HotAnswer | undefined): HotAnswer | undefined {
    if (!signsWhenIdle(req)) return nextHot(req);
    if (permitFreeNow(req.authority.limiters, undefined)) return undefined;
    const inner = nextHot(req);
    if (!inner) return undefined;
    // Never remembered by the HTTP edge (a nonce makes the request's bytes unique): served() is asked once.
    return {
      ...(inner.source ? { source: inner.source } : {}),
      served: (): ServedResponse | undefined => {
        const s = inner.served();
        if (s) this.stats.preproduced++;
        return s;
      },
    };
  }

  response(req: ResolvedRequest, ctx: RequestContext): Promise<OcspResponse> {
    // Not an async function: most requests pass straight on, without a promise of their own.
    return signsWhenIdle(req) ? this.signedOrPreproduced(req, ctx) : this.next.response(req, ctx);
  }

  private async signedOrPreproduced(req: ResolvedRequest, ctx: RequestContext): Promise<OcspResponse> {
    let signed: OcspResponse;
    try {
      // A copy: ctx.client may be a getter (the HTTP edge works the address out lazily); the limiter reads it now.
      signed = await this.live.response(req, { lane: ctx.lane, client: ctx.client, deadlineMs: ctx.deadlineMs, immediate: true });
    } catch {
      // No permit free now (PermitNotFreeError), or the live attempt met a fault (token, store): the pre-produced
      // answer, which may well be in memory, serves a strict client better than an error.
      this.stats.preproduced++;
      return this.next.response(req, ctx);
    }
    this.stats.signed++;
    return signed;
  }
}

/** A request with a nonce for a CA with `nonce: whenIdle`, whose answer would otherwise be pre-produced. */
function signsWhenIdle(req: ResolvedRequest): boolean {
  return req.nonce !== undefined && req.authority.preProduction.nonce === 'whenIdle' && answeredFromStore(req);
}
