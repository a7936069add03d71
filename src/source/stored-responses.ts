// Serves pre-produced responses from the store (RFC 6960 section 2.5), producing and storing them on demand.
// Only single-certificate requests for CAs with pre-production on come here; the rest go straight on to `next`.
import type { Clock } from '../clock';
import type { HashName } from '../ocsp/oids';
import type { Logger } from 'pino';
import type { ServableResponse, Store } from '../store/response-store';
import type { ChangeSignal } from './applied-changes';
import type { Authority } from './authority';
import { signedBy } from '../ocsp/signed-by';
import { Flights } from './flights';
import { ResponseProducer } from './response-producer';
import { maxAgeFor } from './status-policy';
import { usableUntilMs } from './usable-until';
import { etagOf, type AnswerSource, type HotAnswer, type OcspResponse, type RequestContext, type ResolvedRequest, type ServedResponse, type Source } from './source';

export class StoredResponses implements Source {
  private readonly flights: Flights<OcspResponse>;
  /**
   * On a store that reads synchronously (SQLite), a stored response is served in the tick its request arrived.
   * Whatever it cannot serve (none stored, expired, another signer's) goes to response(), which reads again. Absent
   * on other stores, so that the steps before this one skip their hot work (a PostgreSQL store hit with the cache
   * off resolved its issuer twice).
   */
  readonly hot?: (req: ResolvedRequest) => HotAnswer | undefined;
  /** The store's read, taken once: the daemon's store is wrapped (metrics, outages), each a Proxy get per use. */
  private readonly getResponse: Store['getResponse'];

  constructor(
    private readonly store: Store,
    private readonly producer: ResponseProducer,
    private readonly next: Source,
    private readonly clock: Clock,
    private readonly log: Pick<Logger, 'warn'>,
    changes?: ChangeSignal,
  ) {
    this.flights = new Flights(changes);
    this.getResponse = store.getResponse.bind(store);
    if (store.getResponseNow) {
      const now = store.getResponseNow.bind(store);
      this.hot = (req) => (answeredFromStore(req) ? new StoreRead(now, req.authority, req.certIds[0]!.serial, req.certIds[0]!.hash!, clock) : undefined);
    }
  }

  response(req: ResolvedRequest, ctx: RequestContext): Promise<OcspResponse> {
    if (!answeredFromStore(req)) return this.next.response(req, ctx);
    return this.lookup(req, ctx);
  }

  /**
   * Every request reads the store itself (a store that batches answers those arriving together with one query):
   * a read that begins after a change committed sees it. Only what the store cannot serve shares work.
   */
  private async lookup(req: ResolvedRequest, ctx: RequestContext): Promise<OcspResponse> {
    const a = req.authority;
    const { serial, hash } = req.certIds[0]!;
    const stored = await this.getResponse(a.name, serial, hash!);
    if (stored && servable(stored, a, this.clock.now().getTime())) return fromStored(stored, a, 'store');
    // One production per certificate and hash at a time. A nonce is ignored: the pre-produced answer serves
    // everyone (seed: "OCSP Extensions"; preProduction.nonce whenIdle signs for it before, in nonce-signing.ts).
    const key = `${a.name}\0${serial}\0${hash}`;
    return this.flights.run(key, [{ ca: a.name, serial }], ctx, () => this.produce(req, ctx));
  }

  private async produce(req: ResolvedRequest, ctx: RequestContext): Promise<OcspResponse> {
    const a = req.authority;
    const { serial, hash } = req.certIds[0]!;
    const rec = await this.store.getCertificate(a.name, serial);
    // Unknown serials are answered live and never stored: anyone could fill the store with them.
    if (!rec) return this.next.response({ certIds: req.certIds, authority: a }, ctx);
    const fresh = await this.producer.produce(a, rec, hash!, ctx);
    if (a.preProduction.storeOnDemand) {
      // Stored only if the status it was made from is still the latest; nobody waits for it.
      this.producer.store([fresh]).catch((e: Error) => this.log.warn({ ca: a.name, serial, err: e.message }, 'could not store a response'));
    }
    return fromStored(fresh, a, 'live');
  }
}

/** Whether the request's answer is one the store keeps: a pre-produced response, whatever its nonce. */
export function answeredFromStore(req: ResolvedRequest): boolean {
  const a = req.authority;
  // Several certificates: too many permutations to be worth keeping (seed: "will not be persisted"). The CA itself
  // revoked (cACompromise rule): what is stored predates that; the live signer says revoked.
  return a.preProduction.enabled && req.certIds.length === 1 && req.certIds[0]!.hash !== undefined && !a.policy.issuerRevokedAt();
}

/** One read of the store each time it is asked: as current as the store. */
class StoreRead implements HotAnswer {
  readonly source = 'store';

  constructor(
    private readonly read: NonNullable<Store['getResponseNow']>,
    private readonly a: Authority,
    private readonly serial: string,
    private readonly hash: HashName,
    private readonly clock: Clock,
  ) {}

  served(): ServedResponse | undefined {
    const r = this.read(this.a.name, this.serial, this.hash);
    if (!r || !servable(r, this.a, this.clock.now().getTime())) return undefined;
    const der = r.der;
    let tag: string | undefined;
    const thisUpdateMs = r.thisUpdate.getTime();
    const nextUpdateMs = r.nextUpdate.getTime();
    return {
      der, thisUpdateMs, nextUpdateMs, usableUntilMs: usableUntilMs(this.a, thisUpdateMs, nextUpdateMs), maxAgeMs: maxAgeFor(this.a.policy, r.profile),
      etag: () => (tag ??= etagOf(der)),
    };
  }
}

/**
 * A stored response past its usable time (its nextUpdate, or BR 4.9.9's update time under compliance: cabf), or
 * signed by a signer this CA no longer uses (a rotation), is never served: the request gets a newer one or one
 * signed now.
 */
function servable(r: ServableResponse, a: Authority, nowMs: number): boolean {
  return usableUntilMs(a, r.thisUpdate.getTime(), r.nextUpdate.getTime()) > nowMs && bySigner(r, a);
}

/** Signed by the authority's signer: recorded so, or (stored before that was recorded) its signature says so. */
export function bySigner(r: ServableResponse, a: Authority): boolean {
  if (r.signer === a.signerId) return true;
  return r.signer === '' && signedBy(r.der, a.signerCert.x509.publicKey, a.signer.algorithm.hash);
}

export function fromStored(r: ServableResponse, a: Authority, source: AnswerSource): OcspResponse {
  const maxAgeMs = maxAgeFor(a.policy, r.profile);
  return {
    der: r.der, producedAt: r.producedAt, thisUpdate: r.thisUpdate, nextUpdate: r.nextUpdate, preProduced: true, httpCacheable: true, source,
    usableUntilMs: usableUntilMs(a, r.thisUpdate.getTime(), r.nextUpdate.getTime()),
    statusVersion: r.statusVersion,
    ...(maxAgeMs !== undefined ? { maxAgeMs } : {}),
  };
}
