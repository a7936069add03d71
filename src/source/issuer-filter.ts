// First step of the chain: matches every CertID to an authority we serve, or refuses the request.
import type { OcspRequest } from '../ocsp/request';
import { UnauthorizedError } from '../ocsp/errors';
import type { Authority, AuthorityIndex } from './authority';
import type { OcspResponse, RequestContext, ResolvedRequest, Source } from './source';

export class IssuerFilter implements Source<OcspRequest> {
  constructor(
    private readonly index: AuthorityIndex,
    private readonly next: Source<ResolvedRequest>,
  ) {}

  peek(req: OcspRequest): OcspResponse | undefined {
    if (!this.next.peek || req.certIds.length !== 1) return undefined;
    const c = req.certIds[0]!;
    const authority = this.index.find(c.hash, c.issuerNameHash, c.issuerKeyHash);
    return authority && this.next.peek(resolved(req, authority));
  }

  response(req: OcspRequest, ctx: RequestContext): Promise<OcspResponse> {
    let authority;
    for (const c of req.certIds) {
      const a = this.index.find(c.hash, c.issuerNameHash, c.issuerKeyHash);
      if (!a) {
        throw new UnauthorizedError(`no configured CA matches issuer hashes of serial ${c.serial} (${c.hash ?? 'unsupported hash'})`);
      }
      // One response has one signer: CertIDs of CAs with different signers cannot share it.
      if (authority && a.signer !== authority.signer) {
        throw new UnauthorizedError('request mixes CertIDs of CAs with different signers');
      }
      authority = a;
    }
    return this.next.response(resolved(req, authority!), ctx);
  }
}

// Spelled out rather than spread ({ ...req }): this runs on every request.
function resolved(req: OcspRequest, authority: Authority): ResolvedRequest {
  return req.nonce ? { certIds: req.certIds, nonce: req.nonce, authority } : { certIds: req.certIds, authority };
}
