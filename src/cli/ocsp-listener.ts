// The OCSP port's server, as one process or each serving process of several builds it: the OCSP handler (the hot
// path), the express app of the operational routes, their metrics; and how a listener starts and drains.
import { createServer, Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import type { Clock } from '../clock';
import type { LoadedConfig } from '../config/load';
import { createApp, MetricsText } from '../http/app';
import { trustedProxyList } from '../http/client-address';
import { ConnectionLimits } from '../http/connection-limits';
import { listenerOptions, ListenerTimeouts } from '../http/listener-timeouts';
import { createOcspHandler, OcspHandler } from '../http/ocsp-handler';
import { createHttpServer } from '../http/server';
import { registerCacheMetrics } from '../metrics/cache-metrics';
import { ConnectionMetrics } from '../metrics/connection-metrics';
import { HttpMetrics } from '../metrics/http-metrics';
import { registerNonceMetrics } from '../metrics/nonce-metrics';
import type { Serving } from './serving';
import { StartupError } from './startup-error';

export interface OcspListenerParts {
  registry: Registry;
  clock: Clock;
  logger: Logger;
  /** Readiness problems, one line each (none: ready). */
  ready: () => Promise<string[]>;
  /** /metrics on the OCSP port; undefined: it is served elsewhere (metrics.port). */
  metrics: MetricsText | undefined;
}

/** The OCSP server answering from `current()` (a reload swaps it through the handler's setRoute). */
export function ocspServer(loaded: LoadedConfig, current: () => Serving, p: OcspListenerParts): { server: Server; ocsp: OcspHandler } {
  const { config } = loaded;
  // The cache and the memo are rebuilt by a reload: the gauges ask whichever is current.
  if (config.cache.maxSize > 0) {
    registerCacheMetrics(
      p.registry,
      { get size() { return current().cache?.size ?? { entries: 0, bytes: 0 }; }, get stats() { return current().cache?.stats ?? { hits: 0, misses: 0 }; } },
      { get size() { return current().memo?.size ?? { entries: 0, bytes: 0 }; } },
    );
  }
  registerNonceMetrics(p.registry, { get stats() { return current().nonces.stats; } });
  const serving = current();
  const trustedProxies = trustedProxyList(config.server.trustedProxies);
  const ocsp = createOcspHandler({
    source: serving.source,
    clock: p.clock,
    limits: { maxCertIds: config.server.maxCertIdsPerRequest },
    bodyLimit: config.server.bodyLimit,
    ...(config.server.pathPrefix ? { pathPrefix: config.server.pathPrefix } : {}),
    responseTimeoutMs: config.server.responseTimeout,
    trustedProxies,
    httpMetrics: new HttpMetrics(p.registry, p.clock),
    logSampleRate: config.log.requestSampleRate,
    ...(serving.memo ? { memo: serving.memo } : {}),
    logger: p.logger,
  });
  const app = createApp({ ready: p.ready, ...(p.metrics ? { metrics: p.metrics } : {}), logger: p.logger });
  const server = createHttpServer(ocsp, app, listenerOptions(timeoutsOf(config.server)));
  const limits: ConnectionLimits = new ConnectionLimits(
    { maxConnections: config.server.maxConnections, maxPerClient: config.server.maxConnectionsPerClient, exempt: trustedProxies },
    new ConnectionMetrics(p.registry, () => limits.size),
  );
  limits.attach(server);
  return { server, ocsp };
}

/** The operational routes alone, on metrics.host:metrics.port. */
export async function startMetricsListener(loaded: LoadedConfig, ready: () => Promise<string[]>, metrics: MetricsText, logger: Logger): Promise<Server | undefined> {
  const m = loaded.config.metrics;
  if (!m) return undefined;
  const server = await listen(createServer(listenerOptions(timeoutsOf(loaded.config.server)), createApp({ ready, metrics, logger })), m.host, m.port);
  logger.info({ host: m.host, port: (server.address() as AddressInfo).port }, 'metrics listening');
  return server;
}

/** server.requestTimeout and server.headersTimeout, which every listener of the daemon keeps. */
export function timeoutsOf(s: LoadedConfig['config']['server']): ListenerTimeouts {
  return { requestTimeoutMs: s.requestTimeout, headersTimeoutMs: s.headersTimeout };
}

export function listen(server: Server, host: string, port: number): Promise<Server> {
  return new Promise((resolve, reject) => {
    server.listen(port, host);
    server.once('listening', () => resolve(server));
    server.once('error', (e) => reject(new StartupError(`cannot listen on ${host}:${port}: ${(e as Error).message}`)));
  });
}

/**
 * Stops accepting connections and closes idle keep-alive ones as they become idle, so that every request
 * already received gets its answer; after `timeoutMs` the remaining connections are closed.
 */
export async function drain(server: Server, clock: Clock, timeoutMs: number, onTimeout: () => void): Promise<void> {
  let done = false;
  const closed = new Promise<void>((resolve) => server.close(() => resolve())).then(() => (done = true));
  // A keep-alive connection turns idle once its answer is written: close it then, not at the timeout.
  const sweep = () => {
    if (done) return;
    server.closeIdleConnections();
    sweepTimer = clock.setTimer(sweep, 25);
  };
  let sweepTimer = clock.setTimer(sweep, 0);
  let timeout: { cancel(): void } | undefined;
  const timedOut = new Promise<boolean>((resolve) => (timeout = clock.setTimer(() => resolve(true), timeoutMs)));
  try {
    if (await Promise.race([closed.then(() => false), timedOut])) {
      onTimeout();
      server.closeAllConnections();
      await closed;
    }
  } finally {
    done = true;
    sweepTimer.cancel();
    timeout?.cancel();
  }
}
