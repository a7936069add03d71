// Builds the object graph from a validated config and starts serving; the only place that wires components.
// What a reload (SIGHUP) rebuilds is the serving part (serving.ts): bindings, cache, follower, schedules.
import { createServer, Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Registry } from 'prom-client';
import type { LoadedConfig } from '../config/load';
import { loadConfig } from '../config/load';
import { createApp } from '../http/app';
import { createOcspHandler } from '../http/ocsp-handler';
import { createHttpServer } from '../http/server';
import { trustedProxyList } from '../http/client-address';
import { registerCacheMetrics } from '../metrics/cache-metrics';
import { registerCertificateMetrics } from '../metrics/certificate-metrics';
import { HsmMetrics } from '../metrics/hsm-metrics';
import { createRegistry } from '../metrics/registry';
import { HttpMetrics } from '../metrics/http-metrics';
import { ChangeMetrics } from '../metrics/change-metrics';
import { IndexMetrics } from '../metrics/index-metrics';
import { PreSignerMetrics } from '../metrics/presign-metrics';
import { instrumentStore } from '../metrics/store-metrics';
import { Publisher } from '../publish/publisher';
import { PublishingListener, startPublishing } from '../publish/server';
import type { Store } from '../store/response-store';
import { buildServing, caCertificatesByName, Serving } from './serving';
import { openSigning, rebind, Signing, SigningDeps, StartupError } from './signing';
import type { Clock } from '../clock';
import { openStore } from './store';
import { assertListenable } from './listen-check';

export { StartupError };

export interface Daemon {
  port: number;
  registry: Registry;
  /** Re-reads the config file and swaps in its CA bindings and settings; the running ones stay on failure. */
  reload(): Promise<void>;
  /** Graceful: stops accepting, lets requests in flight finish (at most server.shutdownTimeout), then closes. */
  close(): Promise<void>;
}

export type DaemonDeps = SigningDeps;

export async function startDaemon(loaded: LoadedConfig, deps: DaemonDeps): Promise<Daemon> {
  const { config } = loaded;
  const { logger, clock } = deps;
  const registry = createRegistry();
  const hsmMetrics = new HsmMetrics(registry);
  const preSignerMetrics = new PreSignerMetrics(registry, clock);
  const changeMetrics = new ChangeMetrics(registry);
  const indexMetrics = new IndexMetrics(registry);
  let store: Store | undefined;
  let signing: Signing | undefined;
  let serving: Serving | undefined;
  let publishing: PublishingListener | undefined;
  let metricsServer: Server | undefined;
  const closeAll = async () => {
    metricsServer?.close();
    metricsServer?.closeAllConnections();
    // No published event may arrive once the follower and the store are gone.
    await publishing?.close();
    await serving?.close();
    await signing?.close();
    await store?.close();
  };
  try {
    await assertListenable(config);
    const openedStore = (store = instrumentStore(await openStore(loaded, clock, (m) => logger.warn(m)), registry, clock));
    const openedSigning = (signing = openSigning(loaded, deps, hsmMetrics));
    await openedSigning.activate();
    const shared = { store: openedStore, clock, logger, preSignerMetrics, changeMetrics, indexMetrics };
    serving = await buildServing(loaded, openedSigning, shared);
    let current = serving;
    // The cache and the memo are rebuilt by a reload: the gauges ask whichever is current.
    if (config.cache.maxSize > 0) {
      registerCacheMetrics(
        registry,
        { get size() { return current.cache?.size ?? { entries: 0, bytes: 0 }; }, get stats() { return current.cache?.stats ?? { hits: 0, misses: 0 }; } },
        { get size() { return current.memo?.size ?? { entries: 0, bytes: 0 }; } },
      );
    }
    registerCertificateMetrics(registry, () => current.authorities, clock);
    // Updated in place by a reload: the publisher always checks against the CAs being served.
    const publisherCas = caCertificatesByName(current.authorities);
    if (config.publishing) {
      const publisher = new Publisher({
        store: openedStore,
        cas: publisherCas,
        clock,
        afterWrite: () => current.follower.apply(),
        warn: (fields, m) => logger.warn(fields, m),
      });
      publishing = await startPublishing(config.publishing, { publisher, path: loaded.path, requestTimeoutMs: config.server.requestTimeout, logger });
    }
    const ocsp = createOcspHandler({
      source: current.source,
      clock,
      limits: { maxCertIds: config.server.maxCertIdsPerRequest },
      bodyLimit: config.server.bodyLimit,
      ...(config.server.pathPrefix ? { pathPrefix: config.server.pathPrefix } : {}),
      responseTimeoutMs: config.server.responseTimeout,
      trustedProxies: trustedProxyList(config.server.trustedProxies),
      httpMetrics: new HttpMetrics(registry, clock),
      logSampleRate: config.log.requestSampleRate,
      ...(current.memo ? { memo: current.memo } : {}),
      logger,
    });
    const { tokens } = openedSigning;
    const ready = async (): Promise<string[]> => [
      ...[...tokens.values()].filter((t) => !t.ready).map((t) => `token "${t.name}": no working session`),
      ...(await openedStore.ping().then(() => [], (e: Error) => [`store: ${e.message}`])),
      ...current.validity.problems(),
    ];
    // With a metrics listener of its own, /metrics is served there only.
    const app = createApp({ ready, ...(config.metrics ? {} : { metrics: registry }), logger });
    if (config.metrics) {
      metricsServer = await listen(createServer(createApp({ ready, metrics: registry, logger })), config.metrics.host, config.metrics.port);
      logger.info({ host: config.metrics.host, port: (metricsServer.address() as AddressInfo).port }, 'metrics listening');
    }
    const server = await listen(createHttpServer(ocsp, app), config.server.host, config.server.port);
    server.requestTimeout = config.server.requestTimeout;
    server.headersTimeout = config.server.requestTimeout;
    const port = (server.address() as AddressInfo).port;
    logger.info({ host: config.server.host, port, pathPrefix: config.server.pathPrefix ?? '/' }, 'listening');

    let reloading: Promise<void> | undefined;
    const reloadOnce = async () => {
      const next = loadConfig(loaded.file);
      const fixed = (c: typeof config) => JSON.stringify([c.server, c.store, c.dataDir, c.publishing, c.metrics, c.cache, c.log]);
      if (fixed(next.config) !== fixed(config)) {
        logger.warn('reload: server, store, dataDir, publishing, metrics, cache and log settings apply only after a restart');
      }
      const bindings = await rebind(openedSigning, next, clock, hsmMetrics);
      const fresh = await buildServing(next, { ...openedSigning, ...bindings }, shared);
      try {
        bindings.commit();
      } catch (e) {
        await fresh.close();
        throw e;
      }
      const old = current;
      serving = current = fresh;
      ocsp.setRoute(fresh.source, fresh.memo);
      publisherCas.clear();
      for (const [name, certs] of caCertificatesByName(fresh.authorities)) publisherCas.set(name, certs);
      await old.close();
      logger.info({ cas: [...new Set(fresh.authorities.map((a) => a.name))] }, 'reloaded');
    };
    return {
      port,
      registry,
      reload: () => (reloading ??= reloadOnce().finally(() => (reloading = undefined))),
      close: async () => {
        await drain(server, clock, config.server.shutdownTimeout, () => logger.warn({ timeoutMs: config.server.shutdownTimeout }, 'requests still in flight at the shutdown timeout: closing their connections'));
        ocsp.close();
        await closeAll();
      },
    };
  } catch (e) {
    await closeAll();
    throw e;
  }
}

/**
 * Stops accepting connections and closes idle keep-alive ones as they become idle, so that every request
 * already received gets its answer; after `timeoutMs` the remaining connections are closed.
 */
async function drain(server: Server, clock: Clock, timeoutMs: number, onTimeout: () => void): Promise<void> {
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

function listen(server: Server, host: string, port: number): Promise<Server> {
  return new Promise((resolve, reject) => {
    server.listen(port, host);
    server.once('listening', () => resolve(server));
    server.once('error', (e) => reject(new StartupError(`cannot listen on ${host}:${port}: ${(e as Error).message}`)));
  });
}
