// The express app for the operational routes: health, readiness, metrics, and OCSP-shaped errors for
// anything else. OCSP itself is served by ocsp-handler.ts; server.ts dispatches between the two.
import express, { NextFunction, Request, Response } from 'express';
import type { Logger } from 'pino';
import { send } from './ocsp-handler';

/** What /metrics serves: a prom-client Registry, or the merged figures of several processes. */
export interface MetricsText {
  readonly contentType: string;
  metrics(): Promise<string>;
}

export interface AppOptions {
  /**
   * Readiness for load balancers: every token has a working session, the store answers and every signer may be
   * used. Resolves to what stands in the way, one line each (false or a non-empty list: not ready).
   */
  ready: () => Promise<boolean | readonly string[]>;
  metrics?: MetricsText;
  logger: Logger;
}

export const OPERATIONAL_PATHS = new Set(['/healthz', '/readyz', '/metrics']);

export function createApp(o: AppOptions): express.Express {
  const app = express();
  app.disable('x-powered-by');
  app.disable('etag');
  app.set('query parser', false);

  app.get('/healthz', (_req, res) => {
    res.type('text/plain').send('ok\n');
  });
  app.get('/readyz', (_req, res) => {
    o.ready().then(
      (r) => {
        const problems = typeof r === 'boolean' ? (r ? [] : ['']) : r;
        if (problems.length === 0) return void res.type('text/plain').send('ready\n');
        res.status(503).type('text/plain').send(['not ready', ...problems.filter((p) => p)].join('\n') + '\n');
      },
      () => res.status(503).type('text/plain').send('not ready\n'),
    );
  });
  if (o.metrics) {
    const registry = o.metrics;
    app.get('/metrics', (_req, res) => {
      registry.metrics().then(
        (text) => res.type(registry.contentType).send(text),
        (e: Error) => res.status(503).type('text/plain').send(`metrics unavailable: ${e.message}\n`),
      );
    });
  }
  // Everything else that reaches express is a method OCSP does not use.
  app.use((req, res) => send(res, 405, 'malformedRequest', `method ${req.method} not allowed`));
  app.use((err: unknown, _req: Request, res: Response, _next: NextFunction) => {
    o.logger.error({ err }, 'unexpected HTTP error');
    send(res, 500, 'internalError');
  });
  return app;
}
