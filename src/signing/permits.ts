// Takes the permits of several limiters (a key's own limits, then its token's) as one, at one instant.
import type { Permit, SignContext, SigningLimiter } from './signing-limiter';

const NOTHING: Permit = { release: () => undefined };

/**
 * The request waits in the last limiter's queue (the token's: its lanes, deadlines and fairness) holding nothing;
 * the others' limits are checked at the instant it would start, and every permit is taken then. So a key's permit
 * is never held while its request waits at the token, and neither ceiling is passed when signatures start.
 */
export function acquireAll(limiters: readonly SigningLimiter[], ctx: SignContext): Promise<Permit> {
  const queue = limiters[limiters.length - 1];
  if (!queue) return Promise.resolve(NOTHING);
  return limiters.length === 1 ? queue.acquire(ctx) : queue.acquire(ctx, limiters.slice(0, -1));
}
