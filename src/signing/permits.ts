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

/**
 * Whether acquireAll() with `immediate` would be granted now (`client` undefined: its share not checked). No
 * limiters: true, though a serving process of several signs through the primary, which decides for itself.
 */
export function permitFreeNow(limiters: readonly SigningLimiter[], client: string | undefined): boolean {
  const queue = limiters[limiters.length - 1];
  if (!queue) return true;
  return limiters.length === 1 ? queue.freeNow(client) : queue.freeNow(client, limiters.slice(0, -1));
}
