// Builds the object graph from a validated config and starts serving; the only place that wires components.
import { createServer, Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Registry } from 'prom-client';
import type { LoadedConfig } from '../config/load';
import { createApp } from '../http/app';
import { CrlDownloadService, crlDownloadJob } from '../ingest/crl-download';
import { createOcspHandler } from '../http/ocsp-handler';
import { RequestMemo } from '../http/request-memo';
import { createHttpServer } from '../http/server';
import { trustedProxyList } from '../http/client-address';
import { registerCacheMetrics } from '../metrics/cache-metrics';
import { HsmMetrics } from '../metrics/hsm-metrics';
import { createRegistry } from '../metrics/registry';
import { HttpMetrics } from '../metrics/http-metrics';
import { PreSignerMetrics } from '../metrics/presign-metrics';
import { instrumentStore } from '../metrics/store-metrics';
import { cleanup } from '../presign/cleanup';
import { PreSigner } from '../presign/pre-signer';
import { every, Schedule } from '../presign/schedule';
import { Publisher } from '../publish/publisher';
import { PublishingListener, startPublishing } from '../publish/server';
import { Authority, AuthorityIndex } from '../source/authority';
import type { LoadedCertificate } from '../pki/certificate';
import { ChangeFollower } from '../source/change-follower';
import { IssuerFilter } from '../source/issuer-filter';
import { LiveSigner } from '../source/live-signer';
import { MemoryCache } from '../source/memory-cache';
import { ResponseProducer } from '../source/response-producer';
import { SingleFlight } from '../source/single-flight';
import type { Source } from '../source/source';
import { StoredResponses } from '../source/stored-responses';
import type { Store } from '../store/response-store';
import { crlDownloadCas } from './crl-download';
import { openSigning, Signing, SigningDeps, StartupError } from './signing';
import { openStore } from './store';

export { StartupError };

/** How often the stored responses' freshness figures are computed (two aggregate queries per CA). */
const HEALTH_CHECK_MS = 60_000;

export interface Daemon {
  port: number;
  registry: Registry;
  close(): Promise<void>;
}

export type DaemonDeps = SigningDeps;

export async function startDaemon(loaded: LoadedConfig, deps: DaemonDeps): Promise<Daemon> {
  const { config } = loaded;
  const { logger, clock } = deps;
  const registry = createRegistry();
  let store: Store | undefined;
  let signing: Signing | undefined;
  let follower: ChangeFollower | undefined;
  let publishing: PublishingListener | undefined;
  const schedules: Schedule[] = [];
  let metricsServer: Server | undefined;
  const closeAll = async () => {
    for (const s of schedules) s.stop();
    metricsServer?.close();
    metricsServer?.closeAllConnections();
    // No published event may arrive once the follower and the store are gone.
    await publishing?.close();
    follower?.close();
    signing?.close();
    await store?.close();
  };
  try {
    const openedStore = (store = instrumentStore(await openStore(loaded, clock, (m) => logger.warn(m)), registry, clock));
    signing = openSigning(loaded, deps, new HsmMetrics(registry));
    const { tokens, authorities } = signing;
    await signing.activate();
    // The chain, outermost first: filter -> memory cache -> store -> single-flight -> live signer.
    const producer = new ResponseProducer(clock);
    let chain: Source = new StoredResponses(openedStore, producer, new SingleFlight(new LiveSigner(openedStore, clock)), clock, logger);
    // cache.maxSize bounds both: a tenth remembers answers by request bytes (request-memo.ts), the rest holds responses.
    const memoBytes = Math.floor(config.cache.maxSize / 10);
    const cache = config.cache.maxSize > 0
      ? new MemoryCache(chain, clock, { ...(config.cache.maxEntries ? { maxEntries: config.cache.maxEntries } : {}), maxBytes: config.cache.maxSize - memoBytes })
      : undefined;
    const memo = cache && memoBytes > 0 ? new RequestMemo(memoBytes) : undefined;
    if (cache) {
      chain = cache;
      registerCacheMetrics(registry, cache, memo);
    }
    await signing.issuerRevocations.refresh(openedStore);
    // The first binding of a name is the CA's current key (openSigning's order): the one that pre-produces.
    const byName = new Map<string, (typeof authorities)[number]>();
    for (const a of authorities) if (!byName.has(a.name)) byName.set(a.name, a);
    follower = new ChangeFollower(openedStore, byName, producer, cache, logger, signing.issuerRevocations);
    await follower.start();
    cache?.follow(follower);
    if (config.publishing) {
      const f = follower;
      const publisher = new Publisher({
        store: openedStore,
        cas: caCertificatesByName(authorities),
        clock,
        afterWrite: () => f.apply(),
        warn: (fields, m) => logger.warn(fields, m),
      });
      publishing = await startPublishing(config.publishing, { publisher, path: loaded.path, requestTimeoutMs: config.server.requestTimeout, logger });
    }
    const source = new IssuerFilter(new AuthorityIndex(authorities), chain);
    const { preSigner: ps } = config;
    if (authorities.some((a) => a.preProduction.enabled)) {
      const preSigner = new PreSigner(openedStore, authorities, producer, clock, ps, logger, new PreSignerMetrics(registry, clock));
      if (ps.interval !== undefined) {
        schedules.push(
          every(clock, ps.interval, async () => {
            const r = await preSigner.run();
            if (r.total > 0) logger.info({ ...r }, 'pre-signer run done');
          }, (e) => logger.warn({ err: e.message }, 'pre-signer run failed')),
        );
      }
      // The freshness figures (responses due, earliest nextUpdate) for /metrics, also when only the CLI pre-signs.
      schedules.push(every(clock, HEALTH_CHECK_MS, () => preSigner.health(), (e) => logger.warn({ err: e.message }, 'stored response check failed'), 0));
    }
    if (config.cleanup.every !== undefined) {
      schedules.push(
        every(clock, config.cleanup.every, async () => logger.info(await cleanup(openedStore, clock), 'response cleanup done'), (e) =>
          logger.warn({ err: e.message }, 'response cleanup failed'),
        ),
      );
    }
    const crlCas = crlDownloadCas(loaded);
    if (crlCas.length > 0) {
      // This process's own writes are not seen by its SQLite change check: the follower is told.
      const onApplied = () => void follower?.apply().catch((e: Error) => logger.warn({ err: e.message }, 'could not read status changes'));
      const crls = new CrlDownloadService({ store: openedStore, cas: crlCas, clock, log: logger, onApplied });
      for (const ca of crlCas) {
        // First check right after startup: a CA known only from CRLs has nothing to answer with until then.
        schedules.push(every(clock, ca.crl.interval, crlDownloadJob(crls, [ca.name]), (e) => logger.warn({ ca: ca.name, err: e.message }, 'CRL download failed'), 0));
      }
    }
    const ocsp = createOcspHandler({
      source,
      clock,
      limits: { maxCertIds: config.server.maxCertIdsPerRequest },
      bodyLimit: config.server.bodyLimit,
      ...(config.server.pathPrefix ? { pathPrefix: config.server.pathPrefix } : {}),
      responseTimeoutMs: config.server.responseTimeout,
      trustedProxies: trustedProxyList(config.server.trustedProxies),
      httpMetrics: new HttpMetrics(registry, clock),
      logSampleRate: config.log.requestSampleRate,
      ...(memo ? { memo } : {}),
      logger,
    });
    const ready = async () => [...tokens.values()].every((t) => t.ready) && (await openedStore.ping().then(() => true, () => false));
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
    return {
      port,
      registry,
      close: async () => {
        await new Promise<void>((resolve) => server.close(() => resolve()));
        server.closeAllConnections();
        ocsp.close();
        await closeAll();
      },
    };
  } catch (e) {
    await closeAll();
    throw e;
  }
}

function listen(server: Server, host: string, port: number): Promise<Server> {
  return new Promise((resolve, reject) => {
    server.listen(port, host);
    server.once('listening', () => resolve(server));
    server.once('error', (e) => reject(new StartupError(`cannot listen on ${host}:${port}: ${(e as Error).message}`)));
  });
}

/** Each CA's certificates under all its keys (a renewed CA has several bindings of one name). */
function caCertificatesByName(authorities: readonly Authority[]): Map<string, LoadedCertificate[]> {
  const m = new Map<string, LoadedCertificate[]>();
  for (const a of authorities) m.set(a.name, [...(m.get(a.name) ?? []), a.caCert]);
  return m;
}
