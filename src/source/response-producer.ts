// Produces pre-produced responses: one certificate, one CertID hash, no nonce, signed under a permit of the
// lane the caller names (live for a request waiting on it, presign for the pre-signer and change handling).
import type { Clock } from '../clock';
import { acquireAll } from '../signing/permits';
import { encodeCertId } from '../ocsp/cert-id';
import type { HashName } from '../ocsp/oids';
import { wholeSeconds } from '../ocsp/response';
import type { LeaseFence } from '../store/lease-store';
import type { PutResponsesResult, ResponseStore, StoredResponse } from '../store/response-store';
import type { CertificateRecord } from '../store/status-store';
import type { Authority } from './authority';
import { TryLaterError } from '../ocsp/errors';
import { itemFor, signResponse } from './response-signing';
import { describeBinding, signerProblem } from './signer-validity';
import type { RequestContext } from './source';

/** nextUpdate of a final response (ETSI EN 319 411-2 CSS-6.3.10-09, EJBCA "final OCSP responses"). */
export const FINAL_NEXT_UPDATE = new Date('9999-12-31T23:59:59Z');

/**
 * The one way responses are made to be kept (store on demand, the pre-signer, production upon issuance and
 * revocation, final responses): each carries the version of the certificate record it was made from, and is stored
 * only while that is still the certificate's latest (the store's compare-and-set).
 */
export class ResponseProducer {
  constructor(
    private readonly clock: Clock,
    private readonly responses: Pick<ResponseStore, 'putResponses'>,
  ) {}

  /**
   * Stores what produce() made, each only if its certificate's status has not changed since it was read, and with a
   * fence (work done under the lease) only while that hold is the lease's.
   */
  store(responses: StoredResponse[], fence?: LeaseFence): Promise<PutResponsesResult> {
    return fence ? this.responses.putResponses(responses, fence) : this.responses.putResponses(responses);
  }

  async produce(a: Authority, rec: CertificateRecord, hash: HashName, ctx: RequestContext, final = false): Promise<StoredResponse> {
    const unusable = signerProblem(a, this.clock.now().getTime());
    if (unusable) throw new TryLaterError(`${describeBinding(a)}: ${unusable}`);
    const ids = a.issuerHashes.get(hash)!;
    const certIdDer = encodeCertId(hash, ids.nameHash, ids.keyHash, rec.serial);
    const permit = await acquireAll(a.limiters, ctx);
    try {
      const now = wholeSeconds(this.clock.now());
      const item = itemFor(a.policy, certIdDer, rec, now, final ? FINAL_NEXT_UPDATE : undefined);
      // Pre-production needs a validity (config rule), so every item here has a nextUpdate.
      const nextUpdate = item.nextUpdate!;
      const der = await signResponse(a, { producedAt: now, items: [item] }, ctx);
      return {
        ca: a.name, serial: rec.serial, hash, certIdDer, der, producedAt: now, thisUpdate: now, nextUpdate, final, statusVersion: rec.version ?? 0, signer: a.signerId,
        ...(rec.profile !== undefined ? { profile: rec.profile } : {}),
      };
    } finally {
      permit.release();
    }
  }

  /** In the final window: the CA certificate expires within finalResponsesBefore. */
  inFinalWindow(a: Authority): boolean {
    const before = a.preProduction.finalResponsesBeforeMs;
    return before !== undefined && a.caNotAfter.getTime() - this.clock.now().getTime() <= before;
  }
}
