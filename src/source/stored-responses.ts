// Serves pre-produced responses from the store (RFC 6960 section 2.5), producing and storing them on demand.
// Only single-certificate requests for CAs with pre-production on come here; the rest go straight on to `next`.
import type { Clock } from '../clock';
import type { Logger } from 'pino';
import type { Store, StoredResponse } from '../store/response-store';
import type { ChangeSignal } from './applied-changes';
import type { Authority } from './authority';
import { signedBy } from '../ocsp/signed-by';
import { Flights } from './flights';
import { ResponseProducer } from './response-producer';
import { maxAgeFor } from './status-policy';
import type { AnswerSource, OcspResponse, RequestContext, ResolvedRequest, Source } from './source';

export class StoredResponses implements Source {
  private readonly flights: Flights<OcspResponse>;

  constructor(
    private readonly store: Store,
    private readonly producer: ResponseProducer,
    private readonly next: Source,
    private readonly clock: Clock,
    private readonly log: Pick<Logger, 'warn'>,
    changes?: ChangeSignal,
  ) {
    this.flights = new Flights(changes);
  }

  response(req: ResolvedRequest, ctx: RequestContext): Promise<OcspResponse> {
    const a = req.authority;
    const certId = req.certIds[0]!;
    // Several certificates: too many permutations to be worth keeping (seed: "will not be persisted").
    if (!a.preProduction.enabled || req.certIds.length !== 1 || !certId.hash) return this.next.response(req, ctx);
    // The CA itself is revoked (cACompromise rule): what is stored predates that; the live signer says revoked.
    if (a.policy.issuerRevokedAt()) return this.next.response(req, ctx);
    // A nonce is ignored: the pre-produced answer serves everyone (seed: "OCSP Extensions").
    const key = `${a.name}\0${certId.serial}\0${certId.hash}`;
    return this.flights.run(key, [{ ca: a.name, serial: certId.serial }], ctx, () => this.lookupOrProduce(req, ctx));
  }

  private async lookupOrProduce(req: ResolvedRequest, ctx: RequestContext): Promise<OcspResponse> {
    const a = req.authority;
    const { serial, hash } = req.certIds[0]!;
    const stored = await this.store.getResponse(a.name, serial, hash!);
    // A stored response past its nextUpdate, or signed by a signer this CA no longer uses (a rotation), is never
    // served: sign a new one and answer with that.
    if (stored && stored.nextUpdate > this.clock.now() && bySigner(stored, a)) return fromStored(stored, a, 'store');
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

/** Signed by the authority's signer: recorded so, or (stored before that was recorded) its signature says so. */
export function bySigner(r: StoredResponse, a: Authority): boolean {
  if (r.signer === a.signerId) return true;
  return r.signer === '' && signedBy(r.der, a.signerCert.x509.publicKey, a.signer.algorithm.hash);
}

export function fromStored(r: StoredResponse, a: Authority, source: AnswerSource): OcspResponse {
  const maxAgeMs = maxAgeFor(a.policy, r.profile);
  return {
    der: r.der, producedAt: r.producedAt, thisUpdate: r.thisUpdate, nextUpdate: r.nextUpdate, preProduced: true, httpCacheable: true, source,
    statusVersion: r.statusVersion,
    ...(maxAgeMs !== undefined ? { maxAgeMs } : {}),
  };
}
