// HTTP caching of OCSP answers to GET (RFC 9919 section 6.2, which replaced RFC 5019 section 6): the headers
// that let CDNs and proxies keep an answer until (at most) its usable time (nextUpdate, or BR 4.9.9's update time
// under compliance: cabf: source/usable-until.ts), and conditional requests (304).
import type { IncomingMessage } from 'node:http';
import { etagOf, type OcspResponse, type ServedResponse } from '../source/source';

/** Unknown statuses and answers carrying a nonce: caches must ask again (EJBCA's fixed choice). */
export const NO_CACHE = 'no-cache, must-revalidate';

/** Cache-Control, Last-Modified (thisUpdate), Expires (usableUntilMs: nextUpdate without cabf) and ETag, for writeHead at nowMs. */
export function cacheHeaders(r: ServedResponse, nowMs: number): string[] {
  return [
    'Cache-Control', cacheControl(r, Math.floor(nowMs / 1000)),
    'Last-Modified', httpDate(r.thisUpdateMs),
    'Expires', httpDate(r.usableUntilMs),
    'ETag', r.etag(),
  ];
}

/**
 * Cache-Control during the second `second` (of the Unix epoch). max-age is counted from the second's last
 * millisecond, so that no answer sent during it lets a cache keep the response beyond its usable time.
 */
function cacheControl(r: ServedResponse, second: number): string {
  const untilUnusable = r.usableUntilMs - (second * 1000 + 999);
  // maxAge, but never beyond nextUpdate (or the update time under cabf): a cache must not serve a response past it.
  const maxAge = Math.max(0, Math.floor(Math.min(r.maxAgeMs ?? untilUnusable, untilUnusable) / 1000));
  let s = cacheControls.get(maxAge);
  if (s === undefined) {
    if (cacheControls.size > 1024) cacheControls.clear();
    s = `max-age=${maxAge}, public, no-transform, must-revalidate`;
    cacheControls.set(maxAge, s);
  }
  return s;
}

const CACHE_CONTROL = 5;

/**
 * The headers of 200 answers to GET of one response, kept between requests for the same bytes (in the request
 * memo): made once per response, with only max-age redone when the second changes. Holds strings, never the
 * response; a different response (another ETag, or maxAge after a reload) gets new ones.
 */
export class GetHeaders {
  private constructor(
    private readonly etag: string,
    private readonly maxAgeMs: number | undefined,
    private readonly usableUntilMs: number,
    private second: number,
    /** For writeHead: Content-Type, Content-Length, then cacheHeaders() (max-age at CACHE_CONTROL). */
    readonly list: string[],
  ) {}

  /** The headers for r at nowMs: `kept` brought up to date when they were made for r, else new ones. */
  static of(contentType: string, r: ServedResponse, nowMs: number, kept?: GetHeaders): GetHeaders {
    const second = Math.floor(nowMs / 1000);
    const etag = r.etag();
    if (kept !== undefined && kept.etag === etag && kept.maxAgeMs === r.maxAgeMs && kept.usableUntilMs === r.usableUntilMs) {
      if (kept.second !== second) {
        kept.second = second;
        kept.list[CACHE_CONTROL] = cacheControl(r, second);
      }
      return kept;
    }
    return new GetHeaders(etag, r.maxAgeMs, r.usableUntilMs, second, ['Content-Type', contentType, 'Content-Length', String(r.der.length), ...cacheHeaders(r, nowMs)]);
  }
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

/** A freshly signed (or stored) response, with nextUpdate and usableUntilMs, as the caching headers need it. */
export function servedFrom(r: OcspResponse): ServedResponse {
  let tag: string | undefined;
  return {
    der: r.der,
    thisUpdateMs: r.thisUpdate.getTime(),
    nextUpdateMs: r.nextUpdate!.getTime(),
    usableUntilMs: r.usableUntilMs!,
    maxAgeMs: r.maxAgeMs,
    etag: () => (tag ??= etagOf(r.der)),
  };
}

// A busy responder formats the same few instants and max-ages all the time (thisUpdate and nextUpdate of hot
// answers, pre-produced in batches).
const dates = new Map<number, string>();
const cacheControls = new Map<number, string>();
function httpDate(ms: number): string {
  let s = dates.get(ms);
  if (s === undefined) {
    if (dates.size > 1024) dates.clear();
    s = new Date(ms).toUTCString();
    dates.set(ms, s);
  }
  return s;
}
