// A signing limiter from its config (token limits or a key's own), reporting refusals to the metrics.
import type { Clock } from '../clock';
import type { LimitsConfig } from '../config/schema';
import { SigningLimiter } from '../signing/signing-limiter';
import type { HsmMetrics } from '../metrics/hsm-metrics';

/**
 * Signatures handed to the token at once, per session, by default. A session signs one at a time, so the HSM
 * never has more operations than sessions; the rest wait at the token and the next free session takes them as
 * one batch. With one per session no batch ever forms and each signature costs a message each way
 * (bench live-signing: 3,268 answers/s at 4 per token, 4,345 at 16, 4,901 at 64, same minute).
 */
export const SIGNATURES_PER_SESSION = 8;

export function makeLimiter(
  name: string,
  l: Pick<LimitsConfig, 'rate'> & Partial<Omit<LimitsConfig, 'rate'>>,
  sessions: number,
  clock: Clock,
  metrics: HsmMetrics,
  reserveLiveSlot = true,
): SigningLimiter {
  return new SigningLimiter({
    name,
    ratePerSecond: l.rate,
    burst: l.burst ?? Math.max(1, Math.ceil(l.rate)),
    maxConcurrent: l.maxConcurrent ?? Math.min(1024, sessions * SIGNATURES_PER_SESSION),
    maxQueue: l.maxQueue ?? 256,
    queueTimeoutMs: l.queueTimeout ?? 250,
    clientShare: l.clientShare ?? 1,
    reserveLiveSlot,
    clock,
    onReject: (limiter, reason) => metrics.rejected(limiter, reason),
  });
}
