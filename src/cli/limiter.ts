// A signing limiter from its config (token limits or a key's own), reporting refusals to the metrics.
import type { Clock } from '../clock';
import type { LimitsConfig } from '../config/schema';
import { SigningLimiter } from '../signing/signing-limiter';
import type { HsmMetrics } from '../metrics/hsm-metrics';

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
    maxConcurrent: l.maxConcurrent ?? sessions,
    maxQueue: l.maxQueue ?? 256,
    queueTimeoutMs: l.queueTimeout ?? 250,
    clientShare: l.clientShare ?? 1,
    reserveLiveSlot,
    clock,
    onReject: (limiter, reason) => metrics.rejected(limiter, reason),
  });
}
