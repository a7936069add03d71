// HTTP caching of OCSP answers to GET (RFC 9919 section 6.2, which replaced RFC 5019 section 6): the headers
// that let CDNs and proxies keep an answer until (at most) its nextUpdate, and conditional requests (304).
import { createHash } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { OcspResponse, ServedResponse } from '../source/source';

/** Unknown statuses and answers carrying a nonce: caches must ask again (EJBCA's fixed choice). */
export const NO_CACHE = 'no-cache, must-revalidate';

/** Cache-Control, Last-Modified (thisUpdate), Expires (nextUpdate) and ETag, for writeHead at nowMs. */
export function cacheHeaders(r: ServedResponse, nowMs: number): string[] {
  const untilNextUpdate = r.nextUpdateMs - nowMs;
  // maxAge, but never beyond nextUpdate: a cache must not serve a response past it.
  const maxAge = Math.max(0, Math.floor(Math.min(r.maxAgeMs ?? untilNextUpdate, untilNextUpdate) / 1000));
  return [
    'Cache-Control', `max-age=${maxAge}, public, no-transform, must-revalidate`,
    'Last-Modified', httpDate(r.thisUpdateMs),
    'Expires', httpDate(r.nextUpdateMs),
    'ETag', r.etag(),
  ];
}

/**
 * The client's copy is still this answer (RFC 9110 section 13.2.2): If-None-Match names its ETag, or, without
 * If-None-Match, If-Modified-Since is not before its thisUpdate.
 */
export function notModified(req: IncomingMessage, r: ServedResponse): boolean {
  let ifNoneMatch: string | undefined;
  let ifModifiedSince: string | undefined;
  const raw = req.rawHeaders;
  for (let i = 0; i < raw.length; i += 2) {
    const n = raw[i]!;
    if (n.length === 13 && n.toLowerCase() === 'if-none-match') ifNoneMatch = raw[i + 1];
    else if (n.length === 17 && n.toLowerCase() === 'if-modified-since') ifModifiedSince = raw[i + 1];
  }
  if (ifNoneMatch !== undefined) {
    const etag = r.etag();
    return ifNoneMatch.split(',').some((t) => {
      const tag = t.trim();
      return tag === '*' || tag === etag || tag === `W/${etag}`;
    });
  }
  if (ifModifiedSince === undefined) return false;
  const since = Date.parse(ifModifiedSince);
  return !Number.isNaN(since) && r.thisUpdateMs <= since;
}

/** A freshly signed (or stored) response as the caching headers need it. */
export function servedFrom(r: OcspResponse): ServedResponse {
  let tag: string | undefined;
  return {
    der: r.der,
    thisUpdateMs: r.thisUpdate.getTime(),
    nextUpdateMs: r.nextUpdate!.getTime(),
    maxAgeMs: r.maxAgeMs,
    etag: () => (tag ??= `"${createHash('sha256').update(r.der).digest('hex')}"`),
  };
}

// A busy responder formats the same few instants all the time (thisUpdate and nextUpdate of hot answers).
const dates = new Map<number, string>();
function httpDate(ms: number): string {
  let s = dates.get(ms);
  if (s === undefined) {
    if (dates.size > 1024) dates.clear();
    s = new Date(ms).toUTCString();
    dates.set(ms, s);
  }
  return s;
}
