// The Source interface: every step of the request path (filter, cache, store, live signer) implements it.
import { hash } from 'node:crypto';
import type { OcspRequest } from '../ocsp/request';
import type { SignContext } from '../signing/signing-limiter';
import type { Authority } from './authority';

export interface OcspResponse {
  /** Complete DER OCSPResponse, ready for the wire. */
  der: Buffer;
  producedAt: Date;
  thisUpdate: Date;
  /** Absent when the CA's validity is 0 (no nextUpdate in the response). */
  nextUpdate?: Date;
  /** A pre-produced response (no nonce, one certificate): the memory cache may keep it until usableUntilMs. */
  preProduced?: boolean;
  /**
   * With nextUpdate: until when memory, the store and HTTP caches may serve it (usable-until.ts: nextUpdate, or BR
   * 4.9.9's update time under compliance: cabf). Absent: neither kept in memory nor cacheable over HTTP.
   */
  usableUntilMs?: number;
  /**
   * HTTP caches may keep it (RFC 9919 section 6.2): every status known, no nonce, a nextUpdate. Pre-produced
   * responses always may; an unknown status is answered "no-cache, must-revalidate" (EJBCA).
   */
  httpCacheable?: boolean;
  /** How long HTTP caches may keep it at most (the certificate profile's or the CA's maxAge); undefined: until nextUpdate. */
  maxAgeMs?: number;
  /** Which step answered (metrics): the memory cache, the store, or a signature made for this request. */
  source?: AnswerSource;
  /** For a pre-produced response: the version of the certificate record it was made from (CertificateRecord.version). */
  statusVersion?: number;
}

export type AnswerSource = 'cache' | 'store' | 'live';

/** The ETag of a response (ServedResponse.etag): its quoted SHA-256 hex, hashed one-shot (no Hash object per answer). */
export function etagOf(der: Buffer): string {
  return `"${hash('sha256', der, 'hex')}"`;
}

/** A response held in memory, with what its HTTP caching headers need. */
export interface ServedResponse {
  der: Buffer;
  thisUpdateMs: number;
  nextUpdateMs: number;
  /** Served, and kept by HTTP caches (max-age, Expires), only before this (usable-until.ts). */
  usableUntilMs: number;
  maxAgeMs: number | undefined;
  /** The quoted SHA-256 hex of der (the ETag), computed once. */
  etag(): string;
}

/** A request whose CertIDs were all matched to one authority by the issuer filter. */
export interface ResolvedRequest extends OcspRequest {
  authority: Authority;
}

/** Who is waiting and until when: the signing limiter's fairness and deadlines come from here. */
export type RequestContext = SignContext;

/**
 * An answer held in memory that can be asked for again: `served()` is undefined once it may no longer be served (a
 * status change waits to be applied, it expired, or it was evicted). The HTTP edge remembers these per request
 * bytes, so a repeated request skips parsing and lookup.
 */
export interface HotAnswer {
  served(): ServedResponse | undefined;
  /** Where its answers come from (metrics); undefined: the memory cache. */
  readonly source?: AnswerSource;
}

export interface Source<R = ResolvedRequest> {
  response(req: R, ctx: RequestContext): Promise<OcspResponse>;
  /**
   * The request's answer if this source can give it without waiting, from memory or from a store that reads
   * synchronously (undefined: ask response()); its `served()` says, synchronously, whether it has one now. Lets the
   * HTTP edge answer a hot request in the tick it arrived, without promises (half its CPU cost).
   */
  hot?(req: R): HotAnswer | undefined;
}
