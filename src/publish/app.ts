// The publishing API's express app: authenticate, parse JSON, record issuance and revocation events, answer with
// what was stored; every refusal is a JSON error naming the field.
import express, { NextFunction, Request, RequestHandler, Response } from 'express';
import type { Logger } from 'pino';
import { TryLaterError } from '../ocsp/errors';
import type { CertificateRecord } from '../store/status-store';
import { errorBody, PublishError } from './errors';
import { serialParam } from './events';
import type { Publisher, Recorded } from './publisher';
import type { WaitOutcome } from './responder-wait';

/** `?wait=`: `all` answers a write once every live responder applied it (or at cluster.waitTimeout). */
export type WaitMode = 'none' | 'all';

export interface PublishingWait {
  /** cluster.wait: the mode of a request without `?wait=`. */
  mode: WaitMode;
  responders: { untilApplied(seq: number): Promise<WaitOutcome> };
  /** Told how each wait ended (metrics). */
  waited?: (o: WaitOutcome) => void;
}

export interface PublishingAppOptions {
  publisher: Publisher;
  authenticate: RequestHandler;
  bodyLimit: number;
  logger: Pick<Logger, 'info' | 'debug' | 'error' | 'warn'>;
  /** Without it, `?wait=all` is refused (400). */
  wait?: PublishingWait;
}

const CERTIFICATES = '/v1/cas/:ca/certificates';
const REVOCATIONS = '/v1/cas/:ca/revocations';
const ONE_CERTIFICATE = '/v1/cas/:ca/certificates/:serial';

export function createPublishingApp(o: PublishingAppOptions): express.Express {
  const { publisher, logger } = o;
  const app = express();
  app.disable('x-powered-by');
  app.disable('etag');
  app.set('query parser', false);
  // Before the body is read: an unauthenticated client gets nothing parsed, let alone stored.
  app.use(o.authenticate);
  app.use(express.json({ limit: o.bodyLimit }));

  // 200 once recorded (and, waiting, applied everywhere); 202 when recorded but not applied by every responder in time.
  const answer = async (event: string, res: Response, r: Recorded, wait: WaitMode) => {
    const w = wait === 'all' ? await o.wait!.responders.untilApplied(r.version) : undefined;
    if (w) o.wait!.waited?.(w);
    logger.info({ event, ca: r.record.ca, serial: r.record.serial, outcome: r.outcome, ...(w ? { seq: w.seq, applied: w.applied, waitedMs: w.waitedMs } : {}) }, 'published event recorded');
    if (w && !w.applied) {
      logger.warn({ seq: w.seq, notApplied: w.notApplied.map((l) => l.id), err: w.error }, 'a published change was not applied by every responder within cluster.waitTimeout');
    }
    res.status(w && !w.applied ? 202 : 200).json({ outcome: r.outcome, certificate: recordJson(r.record), ...(w ? { wait: w } : {}) });
  };
  app.post(CERTIFICATES, async (req, res) => {
    const wait = waitMode(req, o.wait);
    const ca = publisher.ca(String(req.params.ca));
    await answer('issuance', res, await publisher.issued(ca, publisher.parseIssuance(jsonBody(req))), wait);
  });
  app.post(REVOCATIONS, async (req, res) => {
    const wait = waitMode(req, o.wait);
    const ca = publisher.ca(String(req.params.ca));
    await answer('revocation', res, await publisher.revoked(ca, publisher.parseRevocation(jsonBody(req))), wait);
  });
  app.get(ONE_CERTIFICATE, async (req, res) => {
    const ca = publisher.ca(String(req.params.ca));
    res.status(200).json({ certificate: recordJson(await publisher.get(ca, serialParam(String(req.params.serial)))) });
  });
  for (const [path, allow] of [[CERTIFICATES, 'POST'], [REVOCATIONS, 'POST'], [ONE_CERTIFICATE, 'GET']] as const) {
    app.all(path, (req, res) => {
      res.set('Allow', allow).status(405).json({ error: `method ${req.method} not allowed; use ${allow}` });
    });
  }
  app.use((req, res) => {
    res.status(404).json({ error: `no such endpoint: ${req.method} ${req.path}` });
  });
  app.use((err: unknown, req: Request, res: Response, _next: NextFunction) => {
    const e = asPublishError(err, o.bodyLimit);
    if (e) {
      logger.debug({ method: req.method, path: req.path, status: e.status, field: e.field, err: e.message }, 'publishing request refused');
      res.status(e.status).json(errorBody(e));
      return;
    }
    if (err instanceof TryLaterError) {
      // The store is down (logged once per outage by its guard): the client retries, as an OCSP client would.
      logger.debug({ method: req.method, path: req.path, err: err.message }, 'publishing request refused: store unavailable');
      res.status(503).set('Retry-After', '1').json({ error: `${err.message}; retry later (a write cut off by the outage may have been stored: a later read shows it)` });
      return;
    }
    logger.error({ err }, 'publishing request failed');
    res.status(500).json({ error: 'internal error; nothing was stored unless a later read shows it' });
  });
  return app;
}

/** `?wait=all|none`, else the configured default; checked before anything is written. */
function waitMode(req: Request, wait: PublishingWait | undefined): WaitMode {
  const given = new URL(req.originalUrl, 'http://localhost').searchParams.getAll('wait');
  if (given.length > 1 || (given.length === 1 && given[0] !== 'all' && given[0] !== 'none')) {
    throw new PublishError(400, 'wait', 'wait must be "all" or "none", once');
  }
  const mode = (given[0] as WaitMode | undefined) ?? wait?.mode ?? 'none';
  if (mode === 'all' && !wait) throw new PublishError(400, 'wait', 'this publishing API cannot wait for the responders');
  return mode;
}

function jsonBody(req: Request): unknown {
  if (!req.is('application/json')) throw new PublishError(415, '(body)', 'send the event as Content-Type: application/json');
  return req.body;
}

/** Refusals of our own, and those of the body parser (too large, malformed JSON, bad charset). */
function asPublishError(err: unknown, limit: number): PublishError | undefined {
  if (err instanceof PublishError) return err;
  const e = err as { type?: unknown; status?: unknown; message?: unknown };
  if (e?.type === 'entity.too.large') return new PublishError(413, '(body)', `body larger than ${limit} bytes (publishing.bodyLimit)`);
  if (e?.type === 'entity.parse.failed') return new PublishError(400, '(body)', `malformed JSON: ${String(e.message)}`);
  if (typeof e?.status === 'number' && e.status >= 400 && e.status < 500) return new PublishError(e.status, '(body)', String(e.message));
  return undefined;
}

/** A stored record as JSON: dates in ISO 8601, absent fields left out. */
export function recordJson(r: CertificateRecord): Record<string, string> {
  const out: Record<string, string> = { ca: r.ca, serial: r.serial, status: r.status };
  if (r.revokedAt) out.revokedAt = r.revokedAt.toISOString();
  if (r.reason) out.reason = r.reason;
  if (r.notAfter) out.notAfter = r.notAfter.toISOString();
  if (r.profile) out.profile = r.profile;
  return out;
}
