// The express app: OCSP over HTTP POST and GET (RFC 6960 appendix A), health, and OCSP-shaped errors.
import type { BlockList } from 'node:net';
import express, { NextFunction, Request, Response } from 'express';
import type { Registry } from 'prom-client';
import type { Clock } from '../clock';
import { clientAddress } from './client-address';
import type { HttpMetrics } from '../metrics/http-metrics';
import type { Logger } from 'pino';
import { parseOcspRequest, OcspRequest, RequestLimits } from '../ocsp/request';
import type { Source } from '../source/source';
import { decodeGetPath } from './get-path';
import { errorResponse, statusForError } from './ocsp-status';
import type { ErrorStatusName } from '../ocsp/status-responses';
import { TryLaterError } from '../ocsp/errors';

export interface AppOptions {
  source: Source<OcspRequest>;
  clock: Clock;
  /** Proxies whose X-Forwarded-For names the client (see client-address.ts). */
  trustedProxies: BlockList;
  /** Readiness for load balancers: every token has a working session and the store answers. */
  ready: () => Promise<boolean>;
  metrics?: Registry;
  httpMetrics?: HttpMetrics;
  limits: RequestLimits;
  bodyLimit: number;
  pathPrefix?: string;
  /** A response not ready by then is answered tryLater: a client never waits without bound. */
  responseTimeoutMs: number;
  logger: Logger;
}

const OCSP_RESPONSE = 'application/ocsp-response';

export function createApp(o: AppOptions): express.Express {
  const app = express();
  app.disable('x-powered-by');
  app.disable('etag');
  app.set('query parser', false);

  const postPaths = new Set(['/', ...(o.pathPrefix ? [o.pathPrefix, o.pathPrefix + '/'] : [])]);

  app.get('/healthz', (_req, res) => {
    res.type('text/plain').send('ok\n');
  });
  app.get('/readyz', (_req, res) => {
    o.ready().then(
      (ready) => res.status(ready ? 200 : 503).type('text/plain').send(ready ? 'ready\n' : 'not ready\n'),
      () => res.status(503).type('text/plain').send('not ready\n'),
    );
  });
  if (o.metrics) {
    const registry = o.metrics;
    app.get('/metrics', (_req, res) => {
      registry.metrics().then((text) => res.type(registry.contentType).send(text));
    });
  }

  app.use((req, res, next) => {
    if (req.method === 'POST') {
      if (!postPaths.has(req.path)) return sendError(res, 404, 'malformedRequest');
      if (!req.is('application/ocsp-request')) {
        return sendError(res, 415, 'malformedRequest', 'Content-Type must be application/ocsp-request');
      }
      return readBody(req, o.bodyLimit).then(
        (body) => answer(o, body, req, res),
        (err: BodyError) => sendError(res, err.httpStatus, 'malformedRequest', err.message),
      );
    }
    if (req.method === 'GET' || req.method === 'HEAD') {
      let path = req.path;
      if (o.pathPrefix && (path === o.pathPrefix || path.startsWith(o.pathPrefix + '/'))) {
        path = path.slice(o.pathPrefix.length);
      }
      let der: Buffer;
      try {
        der = decodeGetPath(path);
      } catch (e) {
        return sendError(res, 200, statusForError(e));
      }
      return answer(o, der, req, res);
    }
    res.setHeader('Allow', 'GET, HEAD, POST');
    sendError(res, 405, 'malformedRequest', `method ${req.method} not allowed`);
  });

  app.use((err: unknown, _req: Request, res: Response, _next: NextFunction) => {
    o.logger.error({ err }, 'unexpected HTTP error');
    sendError(res, 500, 'internalError');
  });
  return app;
}

async function answer(o: AppOptions, der: Buffer, req: Request, res: Response): Promise<void> {
  const started = o.clock.monotonicMs();
  const done = (status: Parameters<HttpMetrics['answered']>[1]) =>
    o.httpMetrics?.answered(req.method, status, (o.clock.monotonicMs() - started) / 1000);
  try {
    const request = parseOcspRequest(der, o.limits);
    const ctx = {
      lane: 'live' as const,
      client: clientAddress(req.socket.remoteAddress, req.get('x-forwarded-for'), o.trustedProxies),
      deadlineMs: o.clock.monotonicMs() + o.responseTimeoutMs,
    };
    const response = await withDeadline(o.source.response(request, ctx), o.responseTimeoutMs);
    res.status(200).type(OCSP_RESPONSE).send(response.der);
    done('successful');
  } catch (e) {
    const status = statusForError(e);
    done(status);
    if (status === 'internalError') o.logger.error({ err: e }, 'failed to answer OCSP request');
    else o.logger.debug({ reason: (e as Error).message, status }, 'OCSP request refused');
    sendError(res, 200, status);
  }
}

// OCSP errors go in a 200 so clients read the OCSP status; transport problems also set an HTTP error code.
function sendError(res: Response, httpStatus: number, status: ErrorStatusName, reason?: string): void {
  if (res.headersSent) return;
  if (reason) res.setHeader('X-OCSP-Error', reason);
  res.status(httpStatus).type(OCSP_RESPONSE).send(errorResponse(status));
}

class BodyError extends Error {
  constructor(
    readonly httpStatus: number,
    message: string,
  ) {
    super(message);
  }
}

/** Reads a POST body up to `limit` bytes; a declared or actual size above it is refused without reading on. */
function readBody(req: Request, limit: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    if (Number(req.headers['content-length'] ?? 0) > limit) return reject(new BodyError(413, 'request body too large'));
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > limit) {
        req.removeAllListeners('data');
        req.resume();
        reject(new BodyError(413, 'request body too large'));
      } else chunks.push(c);
    });
    req.on('end', () => resolve(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size)));
    req.on('error', () => reject(new BodyError(400, 'request body could not be read')));
  });
}

function withDeadline<T>(work: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new TryLaterError(`no response within ${ms} ms`)), ms);
  });
  return Promise.race([work, deadline]).finally(() => clearTimeout(timer));
}
