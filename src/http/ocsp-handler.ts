// OCSP over HTTP (RFC 6960 appendix A, RFC 9919 section 6) on plain node:http: the hot path. Express costs
// ~55 µs per request on the 2-core CI machine, more than the rest of an answer from memory, so it serves only
// the operational routes (see server.ts).
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { BlockList } from 'node:net';
import type { Logger } from 'pino';
import type { Clock } from '../clock';
import type { HttpMetrics, OcspStatusLabel, SourceLabel } from '../metrics/http-metrics';
import { parseOcspRequest, OcspRequest, RequestLimits } from '../ocsp/request';
import type { ErrorStatusName } from '../ocsp/status-responses';
import type { ServedResponse, Source } from '../source/source';
import { cacheHeaders, GetHeaders, NO_CACHE, notModified, servedFrom } from './caching';
import { decodeGetPath } from './get-path';
import { InflightRequests } from './inflight';
import type { Remembered, RequestMemo } from './request-memo';
import { errorResponse, retryAfterFor, statusForError } from './ocsp-status';
import { LiveRequestContext } from './request-context';

export interface OcspHandlerOptions {
  source: Source<OcspRequest>;
  clock: Clock;
  trustedProxies: BlockList;
  limits: RequestLimits;
  bodyLimit: number;
  pathPrefix?: string;
  /** A response not ready by then is answered tryLater: a client never waits without bound. */
  responseTimeoutMs: number;
  httpMetrics?: HttpMetrics;
  /** Hot answers by request bytes (with the memory cache only: it is what the remembered answers ask). */
  memo?: RequestMemo;
  /** Share of requests logged, one line each (log.requestSampleRate); 0: none. */
  logSampleRate?: number;
  logger: Logger;
}

const OCSP_RESPONSE = 'application/ocsp-response';
const OCSP_REQUEST = 'application/ocsp-request';

export type OcspHandler = ((req: IncomingMessage, res: ServerResponse) => void) & {
  close(): void;
  /** Answers from now on with another source chain and memo (a reload); requests under way finish with the old. */
  setRoute(source: Source<OcspRequest>, memo: RequestMemo | undefined): void;
};

export function createOcspHandler(opts: OcspHandlerOptions): OcspHandler {
  const o = { ...opts };
  const postPaths = new Set(['/', ...(o.pathPrefix ? [o.pathPrefix, o.pathPrefix + '/'] : [])]);
  const inflight = new InflightRequests(o.clock, o.responseTimeoutMs, (res, started, method) => {
    send(res, 200, 'tryLater');
    record(method, 'tryLater', started);
  });
  const sampleRate = o.logSampleRate ?? 0;
  const record = (method: string, status: OcspStatusLabel, started: number, source: SourceLabel = 'none', req?: IncomingMessage) => {
    const seconds = (o.clock.monotonicMs() - started) / 1000;
    o.httpMetrics?.answered(method, status, seconds, source);
    // One line per request, for a sample of them (log.requestSampleRate): a busy responder would drown its log.
    if (sampleRate > 0 && Math.random() < sampleRate) {
      o.logger.info({ method, status, source, ms: Math.round(seconds * 10_000) / 10, client: req?.socket.remoteAddress, url: req?.url }, 'ocsp request');
    }
  };

  /**
   * A successful answer; to GET (and HEAD) with the caching headers of RFC 9919 section 6.2, or a 304. `memo`: what
   * is remembered for this request's bytes, where its GET headers are kept from one request to the next.
   */
  const sendHit = (r: ServedResponse, req: IncomingMessage, res: ServerResponse, started: number, source: SourceLabel = 'cache', memo?: Remembered) => {
    const method = req.method!;
    if (method === 'POST') {
      res.writeHead(200, postHeaders(r.der.length));
      res.end(r.der);
    } else if (notModified(req, r)) {
      res.writeHead(304, cacheHeaders(r, o.clock.now().getTime()));
      res.end();
    } else {
      const headers = GetHeaders.of(OCSP_RESPONSE, r, o.clock.now().getTime(), memo?.getHeaders);
      if (memo) memo.getHeaders = headers;
      res.writeHead(200, headers.list);
      res.end(r.der);
    }
    o.httpMetrics?.served(r.thisUpdateMs);
    record(method, 'successful', started, source, req);
  };

  /** `memoKey`: the request's bytes as a string, to remember its answer by. */
  const answer = (der: Buffer, memoKey: string | undefined, req: IncomingMessage, res: ServerResponse, started: number) => {
    let request: OcspRequest;
    try {
      request = parseOcspRequest(der, o.limits);
    } catch (e) {
      return refuse(e, req.method!, res, started);
    }
    // A hot answer is written in the tick its request arrived: no promise, no in-flight entry.
    let hot, hit;
    try {
      hot = o.source.hot?.(request);
      hit = hot?.served();
    } catch {
      hit = undefined; // the asynchronous path meets the same fault and answers it properly
    }
    if (hit) {
      const memo = memoKey !== undefined && !request.nonce ? o.memo?.remember(memoKey, hot!) : undefined;
      return sendHit(hit, req, res, started, hot!.source ?? 'cache', memo);
    }
    void answerLater(request, req, res, started);
  };

  /** The remembered answer to exactly these request bytes, if it may be served now. */
  const servedNow = (m: Remembered): ServedResponse | undefined => {
    try {
      return m.answer.served();
    } catch {
      return undefined; // as above
    }
  };

  const refuse = (e: unknown, method: string, res: ServerResponse, started: number) => {
    const status = statusForError(e);
    if (status === 'internalError') o.logger.error({ err: e }, 'failed to answer OCSP request');
    else if (o.logger.isLevelEnabled('debug')) o.logger.debug({ reason: (e as Error).message, status }, 'OCSP request refused');
    send(res, 200, status, undefined, retryAfterFor(e));
    record(method, status, started);
  };

  const answerLater = async (request: OcspRequest, req: IncomingMessage, res: ServerResponse, started: number) => {
    const method = req.method!;
    const token = inflight.add(res, started, method);
    try {
      const ctx = new LiveRequestContext(req, o.trustedProxies, started + o.responseTimeoutMs);
      const response = await o.source.response(request, ctx);
      if (!inflight.remove(token)) return; // answered tryLater at the deadline already
      const source = response.source ?? 'live';
      if (method !== 'POST' && response.httpCacheable && response.nextUpdate && response.usableUntilMs !== undefined) return sendHit(servedFrom(response), req, res, started, source);
      res.writeHead(200, method === 'POST' ? postHeaders(response.der.length) : ['Content-Type', OCSP_RESPONSE, 'Content-Length', String(response.der.length), 'Cache-Control', NO_CACHE]);
      res.end(response.der);
      o.httpMetrics?.served(response.thisUpdate.getTime());
      record(method, 'successful', started, source, req);
    } catch (e) {
      if (inflight.remove(token)) refuse(e, method, res, started);
    }
  };

  const handler = (req: IncomingMessage, res: ServerResponse) => {
    const started = o.clock.monotonicMs();
    if (req.method === 'POST') {
      if (!postPaths.has(pathOf(req.url ?? '/'))) return send(res, 404, 'malformedRequest');
      const type = rawHeader(req, 'Content-Type', 'content-type');
      if (type !== OCSP_REQUEST && !/^application\/ocsp-request\s*(;|$)/i.test(type ?? '')) {
        return send(res, 415, 'malformedRequest', 'Content-Type must be application/ocsp-request');
      }
      readBody(req, o.bodyLimit, (err, body) => {
        if (err) return send(res, err.httpStatus, 'malformedRequest', err.message);
        const key = o.memo && body!.toString('latin1');
        const m = key ? o.memo!.get(key) : undefined;
        const hit = m && servedNow(m);
        if (hit) sendHit(hit, req, res, started, m.answer.source ?? 'cache');
        else answer(body!, key || undefined, req, res, started);
      });
      return;
    }
    const url = req.url ?? '/';
    const m = o.memo?.get(url);
    const hit = m && servedNow(m);
    if (hit) return sendHit(hit, req, res, started, m.answer.source ?? 'cache', m);
    // GET or HEAD: {prefix}/{url-encoded base64 DER}; the prefix is optional.
    const path = pathOf(url);
    const rest = o.pathPrefix && (path === o.pathPrefix || path.startsWith(o.pathPrefix + '/')) ? path.slice(o.pathPrefix.length) : path;
    let der: Buffer;
    try {
      der = decodeGetPath(rest);
    } catch (e) {
      send(res, 200, statusForError(e));
      record(req.method!, 'malformedRequest', started);
      return;
    }
    answer(der, o.memo && url, req, res, started);
  };
  return Object.assign(handler, {
    close: () => inflight.close(),
    setRoute: (source: Source<OcspRequest>, memo: RequestMemo | undefined) => {
      o.source = source;
      o.memo = memo;
    },
  });
}

// POST answers carry no caching headers, so theirs depend on the length alone: a few lists, made once each.
const postHeaderLists = new Map<number, readonly string[]>();
function postHeaders(length: number): string[] {
  let h = postHeaderLists.get(length);
  if (h === undefined) {
    if (postHeaderLists.size > 1024) postHeaderLists.clear();
    h = ['Content-Type', OCSP_RESPONSE, 'Content-Length', String(length)];
    postHeaderLists.set(length, h);
  }
  return h as string[];
}

/**
 * The first value of a header that occurs once (Content-Type, Content-Length), from rawHeaders: the first use of
 * req.headers builds an object of every header; skipping it took cached POST answers from 0.55 to 0.75 of the
 * bare server's rate side by side (README, Benchmarks). `name` is compared as sent first (no lower-cased copy).
 */
function rawHeader(req: IncomingMessage, name: string, lowerName: string): string | undefined {
  const raw = req.rawHeaders;
  for (let i = 0; i < raw.length; i += 2) {
    const n = raw[i]!;
    if (n.length === lowerName.length && (n === name || n.toLowerCase() === lowerName)) return raw[i + 1];
  }
  return undefined;
}

/** The path still percent-encoded (GET decoding needs the raw form), without a query string. */
function pathOf(url: string): string {
  const q = url.indexOf('?');
  return q < 0 ? url : url.slice(0, q);
}

/**
 * OCSP errors go in a 200 so clients read the OCSP status; transport problems also set an HTTP error code. tryLater
 * says when to come back (RFC 9110 section 10.2.3): `retryAfterSeconds`, the refusal's estimate, else 1.
 */
export function send(res: ServerResponse, httpStatus: number, status: ErrorStatusName, reason?: string, retryAfterSeconds = 1): void {
  if (res.headersSent) return;
  const body = errorResponse(status);
  const headers: Record<string, string | number> = { 'Content-Type': OCSP_RESPONSE, 'Content-Length': body.length };
  if (reason) headers['X-OCSP-Error'] = reason;
  if (status === 'tryLater') headers['Retry-After'] = retryAfterSeconds;
  if (httpStatus === 405) headers.Allow = 'GET, HEAD, POST';
  res.writeHead(httpStatus, headers);
  res.end(body);
}

class BodyError extends Error {
  constructor(
    readonly httpStatus: number,
    message: string,
  ) {
    super(message);
  }
}

/**
 * Reads a POST body up to `limit` bytes, then calls `done` once; a declared or actual size above the limit is
 * refused without reading on. Callbacks, not a promise: this runs for every POST.
 */
function readBody(req: IncomingMessage, limit: number, done: (err: BodyError | undefined, body?: Buffer) => void): void {
  if (Number(rawHeader(req, 'Content-Length', 'content-length') ?? 0) > limit) {
    req.resume();
    return done(new BodyError(413, 'request body too large'));
  }
  let first: Buffer | undefined;
  let more: Buffer[] | undefined;
  let size = 0;
  let settled = false;
  const onData = (c: Buffer) => {
    size += c.length;
    if (size > limit) {
      settled = true;
      req.removeListener('data', onData);
      req.resume();
      done(new BodyError(413, 'request body too large'));
    } else if (!first) first = c;
    else (more ??= [first]).push(c);
  };
  req.on('data', onData);
  req.on('end', () => {
    if (settled) return;
    settled = true;
    done(undefined, more ? Buffer.concat(more, size) : (first ?? Buffer.alloc(0)));
  });
  req.on('error', () => {
    if (settled) return;
    settled = true;
    done(new BodyError(400, 'request body could not be read'));
  });
}
