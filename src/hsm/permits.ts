// Takes a permit from each of several limiters (per key, then per token) as one permit.
import type { Permit, SignContext, SigningLimiter } from './signing-limiter';

export async function acquireAll(limiters: readonly SigningLimiter[], ctx: SignContext): Promise<Permit> {
  const permits: Permit[] = [];
  try {
    for (const l of limiters) permits.push(await l.acquire(ctx));
  } catch (e) {
    for (const p of permits) p.release();
    throw e;
  }
  return { release: () => permits.forEach((p) => p.release()) };
}
