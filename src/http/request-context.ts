// The context a request carries down the source chain when it is answered asynchronously: its lane, its deadline,
// and who sent it (worked out only if the signing limiter asks).
//
// A class, not an object literal with a getter: V8 builds such a literal as a slow (dictionary) object whose
// accessor pair lives in the old generation, and through its closure the whole request (req, res, buffers) then
// survived every scavenge until the next mark-compact. That was most of the gap between PostgreSQL store hits
// and the floor server (README, Benchmarks, "The request context"; test/request-context.test.ts).
import type { IncomingMessage } from 'node:http';
import type { BlockList } from 'node:net';
import type { RequestContext } from '../source/source';
import { clientAddress } from './client-address';

export class LiveRequestContext implements RequestContext {
  readonly lane = 'live' as const;

  constructor(
    private readonly req: IncomingMessage,
    private readonly trustedProxies: BlockList,
    readonly deadlineMs: number,
  ) {}

  /** The source address, or behind trusted proxies the first untrusted X-Forwarded-For hop. */
  get client(): string {
    const f = this.req.headers['x-forwarded-for'];
    return clientAddress(this.req.socket.remoteAddress, Array.isArray(f) ? f[0] : f, this.trustedProxies);
  }
}
