// The Source interface: every step of the request path (filter, cache, store, live signer) implements it.
import type { OcspRequest } from '../ocsp/request';
import type { SignContext } from '../hsm/signing-limiter';
import type { Authority } from './authority';

export interface OcspResponse {
  /** Complete DER OCSPResponse, ready for the wire. */
  der: Buffer;
  producedAt: Date;
  thisUpdate: Date;
  /** Absent when the CA's validity is 0 (no nextUpdate in the response). */
  nextUpdate?: Date;
  /** A pre-produced response (no nonce, one certificate): the memory cache may keep it until nextUpdate. */
  preProduced?: boolean;
}

/** A request whose CertIDs were all matched to one authority by the issuer filter. */
export interface ResolvedRequest extends OcspRequest {
  authority: Authority;
}

/** Who is waiting and until when: the signing limiter's fairness and deadlines come from here. */
export type RequestContext = SignContext;

export interface Source<R = ResolvedRequest> {
  response(req: R, ctx: RequestContext): Promise<OcspResponse>;
  /**
   * The answer if this source already holds it in memory, synchronously; undefined means "ask response()".
   * Lets the HTTP edge answer a hot request in the tick it arrived, without promises (half its CPU cost).
   */
  peek?(req: R): OcspResponse | undefined;
}
