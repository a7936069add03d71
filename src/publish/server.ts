// The publishing API's own listener: plain HTTP with a bearer token, or HTTPS that admits only clients with a
// certificate from the configured CA bundle (mutual TLS). Its files are read once, at startup.
import { readFileSync } from 'node:fs';
import { createServer as createHttpServer, Server } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { createSecureContext } from 'node:tls';
import type { Logger } from 'pino';
import type { PublishingConfig } from '../config/schema';
import { listenerOptions } from '../http/listener-timeouts';
import { createPublishingApp, PublishingWait } from './app';
import { bearerAuth, clientCertificateAuth, PublishingStartupError, readBearerToken } from './auth';
import type { Publisher } from './publisher';

export interface PublishingDeps {
  publisher: Publisher;
  /** `?wait=all` and cluster.wait (without it, waiting is refused). */
  wait?: PublishingWait;
  /** Resolves a path from the config file (relative to its directory). */
  path: (p: string) => string;
  /** server.requestTimeout and server.headersTimeout (unset: the request timeout), as on the OCSP port. */
  requestTimeoutMs: number;
  headersTimeoutMs?: number | undefined;
  logger: Logger;
}

export interface PublishingListener {
  port: number;
  close(): Promise<void>;
}

export async function startPublishing(cfg: PublishingConfig, deps: PublishingDeps): Promise<PublishingListener> {
  const { logger } = deps;
  const refused = (reason: string) => logger.info({ reason }, 'publishing request refused: not authenticated');
  let server: Server;
  const timeouts = listenerOptions({ requestTimeoutMs: deps.requestTimeoutMs, headersTimeoutMs: deps.headersTimeoutMs });
  if ('tokenFile' in cfg.auth) {
    const token = readBearerToken(deps.path(cfg.auth.tokenFile), 'publishing.auth.tokenFile', (m) => logger.warn(m));
    server = createHttpServer(timeouts, createPublishingApp({ publisher: deps.publisher, authenticate: bearerAuth(token, refused), bodyLimit: cfg.bodyLimit, logger, ...(deps.wait ? { wait: deps.wait } : {}) }));
  } else {
    const tls = publishingTls(cfg.auth.mtls, deps.path);
    const app = createPublishingApp({ publisher: deps.publisher, authenticate: clientCertificateAuth(refused), bodyLimit: cfg.bodyLimit, logger, ...(deps.wait ? { wait: deps.wait } : {}) });
    server = createHttpsServer({ ...timeouts, ...tls, requestCert: true, rejectUnauthorized: true, minVersion: 'TLSv1.2' }, app);
    // Refused handshakes (no certificate, one from another CA) are the clients' business: noted, not raised.
    server.on('tlsClientError', (e) => logger.info({ reason: e.message }, 'publishing TLS handshake refused'));
  }
  await listen(server, cfg.host, cfg.port);
  const port = (server.address() as AddressInfo).port;
  logger.info({ host: cfg.host, port, auth: 'tokenFile' in cfg.auth ? 'bearer token' : 'mutual TLS' }, 'publishing API listening');
  return {
    port,
    close: async () => {
      await new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections();
    },
  };
}

/**
 * The listener's CA bundle, certificate and key from publishing.auth.mtls, refused (naming the field) when a file
 * cannot be read or TLS cannot use them together. Also run by `config check`.
 */
export function publishingTls(mtls: { ca: string; cert: string; key: string }, path: (p: string) => string): { ca: Buffer; cert: Buffer; key: Buffer } {
  const file = (key: 'ca' | 'cert' | 'key') => readTlsFile(path(mtls[key]), `publishing.auth.mtls.${key}`);
  const tls = { ca: file('ca'), cert: file('cert'), key: file('key') };
  try {
    createSecureContext(tls);
  } catch (e) {
    throw new PublishingStartupError(`publishing.auth.mtls: cannot set up TLS with these files: ${(e as Error).message}`);
  }
  return tls;
}

function readTlsFile(file: string, field: string): Buffer {
  try {
    return readFileSync(file);
  } catch (e) {
    throw new PublishingStartupError(`${field}: cannot read ${file}: ${(e as NodeJS.ErrnoException).code ?? e}`);
  }
}

function listen(server: Server, host: string, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', (e) => reject(new PublishingStartupError(`publishing: cannot listen on ${host}:${port}: ${e.message}`)));
    server.listen(port, host, () => resolve());
  });
}
