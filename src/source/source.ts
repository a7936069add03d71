// The Source interface: every step of the request path (filter, cache, store, live signer) implements it.
import type { CertIdRequest, OcspRequest } from '../ocsp/request';
import type { Authority } from './authority';

export interface OcspResponse {
  /** Complete DER OCSPResponse, ready for the wire. */
  der: Buffer;
  producedAt: Date;
  thisUpdate: Date;
  nextUpdate: Date;
}

/** A request whose CertIDs were all matched to one authority by the issuer filter. */
export interface ResolvedRequest extends OcspRequest {
  authority: Authority;
}

export interface Source<R = ResolvedRequest> {
  response(req: R): Promise<OcspResponse>;
}

export type { CertIdRequest };
