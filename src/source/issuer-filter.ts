// First step of the chain: matches every CertID to an authority we serve, or refuses the request.
import type { OcspRequest } from '../ocsp/request';
import { UnauthorizedError } from '../ocsp/errors';
import type { Authority, AuthorityIndex } from './authority';
import type { HotAnswer, OcspResponse, RequestContext, ResolvedRequest, Source } from './source';

export class IssuerFilter implements Source<OcspRequest> {
  /** Present when `next` answers hot (source.ts: Source.hot): otherwise the issuer is looked up once, by response(). */
  readonly hot?: (req: OcspRequest) => HotAnswer | undefined;

  constructor(
    private readonly index: AuthorityIndex,
    private readonly next: Source<ResolvedRequest>,
  ) {
    const nextHot = next.hot?.bind(next);
    if (nextHot) {
      this.hot = (req) => {
        if (req.certIds.length !== 1) return undefined;
        const c = req.certIds[0]!;
        const authority = this.index.find(c.hash, c.issuerNameHash, c.issuerKeyHash);
        return authority && nextHot(resolved(req, authority));
      };
    }
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

// Spelled out rather than spread ({ ...req }): this runs on every request that is not remembered.
function resolved(req: OcspRequest, authority: Authority): ResolvedRequest {
  return req.nonce ? { certIds: req.certIds, nonce: req.nonce, authority } : { certIds: req.certIds, authority };
}
