// One HTTP server: OCSP requests go to the lean handler, operational routes and the rest to express.
import { createServer, IncomingMessage, Server, ServerOptions, ServerResponse } from 'node:http';
import type express from 'express';
import { OPERATIONAL_PATHS } from './app';
import type { OcspHandler } from './ocsp-handler';

export function createHttpServer(ocsp: OcspHandler, app: express.Express, options: ServerOptions = {}): Server {
  return createServer(options, (req: IncomingMessage, res: ServerResponse) => {
    const m = req.method;
    if (m === 'POST' || ((m === 'GET' || m === 'HEAD') && !OPERATIONAL_PATHS.has(pathOnly(req.url)))) ocsp(req, res);
    else app(req, res);
  });
}

function pathOnly(url: string | undefined): string {
  const u = url ?? '/';
  const q = u.indexOf('?');
  return q < 0 ? u : u.slice(0, q);
}
