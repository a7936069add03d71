// Until when a response may be served, from memory, the request memo, the store or an HTTP cache: the one decision
// each step that keeps or serves a response reads (memory-cache.ts, stored-responses.ts, http/caching.ts).
import { requiredUpdateMs } from '../compliance/cabf-timing';
import type { Authority } from './authority';

/**
 * RFC 6960 section 4.2.2.1 and RFC 9919 section 6.2 let a response be served until its nextUpdate. Under
 * `compliance: cabf`, BR 4.9.9 wants an updated response by its required update time (8 hours before nextUpdate and
 * within 4 days of thisUpdate, or half an interval under 16 hours): from then on the response is treated as
 * expired, and the request gets what a miss gets (a newer stored response, else one signed now).
 */
export function usableUntilMs(a: Pick<Authority, 'compliance'>, thisUpdateMs: number, nextUpdateMs: number): number {
  return a.compliance === 'cabf' ? requiredUpdateMs(thisUpdateMs, nextUpdateMs) : nextUpdateMs;
}
