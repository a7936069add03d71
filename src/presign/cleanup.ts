// Response cleanup (EJBCA "Cleaning up Responses"): keeps only the latest-producedAt response per certificate
// and hash, and forgets status change records old enough that every follower has read them.
import type { Clock } from '../clock';
import type { Store } from '../store/response-store';

/** Change records are read within seconds; a week covers any responder that was down for a while. */
export const CHANGE_RETENTION_MS = 7 * 86_400_000;

export async function cleanup(store: Store, clock: Clock): Promise<{ responses: number; changes: number }> {
  const responses = await store.deleteSuperseded();
  const changes = await store.pruneChanges(new Date(clock.now().getTime() - CHANGE_RETENTION_MS));
  return { responses, changes };
}
