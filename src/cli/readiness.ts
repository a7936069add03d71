// Readiness of a process's store for /readyz: the store answers, and after an outage the change feed has been proved
// current since it came back, so a load balancer never sends traffic to a responder before the revocations recorded
// while it could not read the log are applied (README "When the database goes away").
import type { Clock } from '../clock';
import type { ChangeFollower } from '../source/change-follower';
import type { Store } from '../store/response-store';
import type { StoreOutage } from '../store/store-outage';

/** How long a readiness check waits for the change feed to catch up before it answers "not ready". */
const FEED_WAIT_MS = 500;

export interface StoreReadiness {
  store: Pick<Store, 'ping'>;
  outage: StoreOutage;
}

/** What keeps the store side from being ready, one line each (none: ready); `label` names the store in them. */
export async function storeProblems(s: StoreReadiness, follower: ChangeFollower, clock: Clock, label = 'store'): Promise<string[]> {
  const down = s.outage.problem();
  if (down) return [`${label}: ${down}; requests that need it get tryLater`];
  try {
    await s.store.ping();
  } catch (e) {
    return [`${label}: ${(e as Error).message}`];
  }
  const since = s.outage.upSinceMs;
  if (follower.currentSince(since)) return [];
  // The follower reads the log's head at once (on PostgreSQL its poll would within a quarter second anyway).
  let timer: { cancel(): void } | undefined;
  await Promise.race([
    follower.apply().catch(() => undefined),
    new Promise<void>((r) => (timer = clock.setTimer(r, FEED_WAIT_MS))),
  ]);
  timer?.cancel();
  if (follower.currentSince(since)) return [];
  return [`${label}: back since ${Math.round(clock.monotonicMs() - since)} ms, change feed not yet current (revocations recorded meanwhile may be unapplied)`];
}
