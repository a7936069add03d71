// The CA/Browser Forum TLS Baseline Requirements' OCSP timing (section 4.9.9): the validity interval's bounds, when a
// response must have been replaced by an updated one, and how soon a published certificate must be answered.

const HOUR_MS = 3_600_000;
const DAY_MS = 86_400_000;

/** "greater than or equal to eight hours" */
export const MIN_INTERVAL_MS = 8 * HOUR_MS;
/** "less than or equal to ten days" */
export const MAX_INTERVAL_MS = 10 * DAY_MS;
/** Below this the update is due at half the interval; from it, 8 hours before nextUpdate and within 4 days. */
export const SHORT_INTERVAL_BELOW_MS = 16 * HOUR_MS;
const UPDATE_BEFORE_NEXT_UPDATE_MS = 8 * HOUR_MS;
const UPDATE_WITHIN_MS = 4 * DAY_MS;
/** An answer other than "unknown" "no more than 15 minutes after the Certificate or Precertificate is first published". */
export const ANSWER_WITHIN_MS = 15 * 60_000;

/**
 * "the difference in time between the thisUpdate and nextUpdate field, inclusive": GeneralizedTime counts whole
 * seconds, so the interval is one second longer than nextUpdate − thisUpdate (a `validity: 10d` is 10 days and 1 s).
 */
export function validityIntervalMs(thisUpdateMs: number, nextUpdateMs: number): number {
  return nextUpdateMs - thisUpdateMs + 1000;
}

/**
 * The latest time an updated response must be provided: for an interval under 16 hours, one half of the interval
 * before nextUpdate; otherwise 8 hours before nextUpdate and no later than 4 days after thisUpdate.
 */
export function requiredUpdateMs(thisUpdateMs: number, nextUpdateMs: number): number {
  const interval = validityIntervalMs(thisUpdateMs, nextUpdateMs);
  if (interval < SHORT_INTERVAL_BELOW_MS) return nextUpdateMs - interval / 2;
  return Math.min(nextUpdateMs - UPDATE_BEFORE_NEXT_UPDATE_MS, thisUpdateMs + UPDATE_WITHIN_MS);
}

/** requiredUpdateMs for responses signed with a validity (nextUpdate − thisUpdate) of validityMs, from thisUpdate. */
export function updateDeadlineAfterMs(validityMs: number): number {
  return requiredUpdateMs(0, validityMs);
}

/** Why a response with this interval breaks 4.9.9, or undefined. */
export function intervalProblem(intervalMs: number): string | undefined {
  if (intervalMs < MIN_INTERVAL_MS) return `a validity interval of ${formatMs(intervalMs)}, under the 8 hours BR 4.9.9 requires`;
  if (intervalMs > MAX_INTERVAL_MS) return `a validity interval of ${formatMs(intervalMs)}, over the 10 days BR 4.9.9 allows`;
  return undefined;
}

/** 1d16h, 8h, 10d0h0m1s: exact, for messages about limits a second matters to. */
export function formatMs(ms: number): string {
  const parts: string[] = [];
  let rest = Math.round(ms / 1000);
  for (const [unit, s] of [['d', 86_400], ['h', 3600], ['m', 60], ['s', 1]] as const) {
    const n = Math.floor(rest / s);
    rest -= n * s;
    if (n > 0) parts.push(`${n}${unit}`);
  }
  return parts.length > 0 ? parts.join('') : '0s';
}
