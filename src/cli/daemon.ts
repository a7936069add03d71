// Builds the object graph from a validated config and starts serving; the only place that wires components.
// What a reload (SIGHUP) rebuilds is the serving part (serving.ts): bindings, cache, follower, schedules.
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import type { LoadedConfig } from '../config/load';
import { loadConfig } from '../config/load';
import type { Config } from '../config/schema';
import { registerCertificateMetrics } from '../metrics/certificate-metrics';
import { createDaemonMetrics } from '../metrics/daemon-metrics';
import { Publisher } from '../publish/publisher';
import { PublishingListener, startPublishing } from '../publish/server';
import type { Clock } from '../clock';
import type { Store } from '../store/response-store';
import { storeProblems, StoreReadiness } from './readiness';
import { LeaseKeeper } from '../cluster/lease-keeper';
import { newResponderIdentity } from '../cluster/responder-id';
import { buildServing, caCertificatesByName, Serving } from './serving';
import { openSigning, rebind, Signing, SigningDeps, StartupError } from './signing';
import { openDaemonStore } from './store';
import { publishingWait, registerClusterMetrics, responderHeartbeat } from './cluster';
import type { Heartbeat } from '../cluster/heartbeat';
import { assertListenable } from './listen-check';
import { drain, listen, ocspServer, startMetricsListener } from './ocsp-listener';

export { StartupError };

/** The lease the scheduled work and production upon change run under (README "Running a cluster"). */
export const SERVICES_LEASE = 'services';

/** A shutdown step taking longer than this is logged by name. */
const SLOW_STEP_MS = 5_000;

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
  const { registry, hsmMetrics, preSignerMetrics, changeMetrics, indexMetrics, leaseMetrics, complianceMetrics } = createDaemonMetrics(clock);
  let store: Store | undefined;
  let signing: Signing | undefined;
  let serving: Serving | undefined;
  let lease: LeaseKeeper | undefined;
  let publishing: PublishingListener | undefined;
  let metricsServer: Server | undefined;
  let heartbeat: Heartbeat | undefined;
  // A step of the shutdown that does not end is named in the log (a stop that hangs must say where).
  const step = <T>(name: string, p: Promise<T> | undefined): Promise<T | undefined> => {
    if (!p) return Promise.resolve(undefined);
    const t = setTimeout(() => logger.warn({ step: name, afterMs: SLOW_STEP_MS }, 'shutdown step still running'), SLOW_STEP_MS);
    t.unref();
    return p.finally(() => clearTimeout(t));
  };
  const closeAll = async () => {
    // Answers nothing any more (or never did): its row goes, and no publisher waits for it.
    await step('heartbeat', heartbeat?.stop());
    metricsServer?.close();
    metricsServer?.closeAllConnections();
    // No published event may arrive once the follower and the store are gone.
    await step('publishing API', publishing?.close());
    await step('serving (schedules, pre-signer, change follower)', serving?.close());
    // Released once the work under it has stored what it made: the next holder starts from there, at once.
    await step('lease', lease?.close());
    await step('tokens', signing?.close());
    await step('store', store?.close());
  };
  try {
    await assertListenable(config);
    const guarded = await openDaemonStore(loaded, clock, logger, registry);
    const openedStore = (store = guarded.store);
    const openedSigning = (signing = openSigning(loaded, deps, hsmMetrics));
    await openedSigning.activate();
    // One identity for this responder: the lease holder and the heartbeat row are the same responder.
    const identity = newResponderIdentity(config.cluster.name);
    const keeper = (lease = new LeaseKeeper(openedStore, clock, { name: SERVICES_LEASE, holder: identity.id, leaseMs: config.cluster.lease }, logger, leaseMetrics));
    let current: Serving | undefined;
    const beat = responderHeartbeat({
      store: openedStore,
      clock,
      logger,
      config,
      registry,
      identity: { ...identity, worker: 0 },
      follower: () => current!.follower,
      ready: () => readinessProblems(openedSigning, guarded, current!, clock),
    });
    const shared = { store: openedStore, clock, logger, preSignerMetrics, changeMetrics, indexMetrics, complianceMetrics, lease: keeper, heartbeat: beat.hooks };
    serving = current = await buildServing(loaded, openedSigning, shared);
    // The first claim before listening: a single responder (or the first of a cluster) starts its work right away.
    await keeper.start();
    registerCertificateMetrics(registry, () => current!.authorities, clock);
    registerClusterMetrics(config, openedStore, clock, registry);
    // Updated in place by a reload: the publisher always checks against the CAs being served.
    const publisherCas = caCertificatesByName(current.authorities);
    if (config.publishing) {
      const publisher = new Publisher({
        store: openedStore,
        cas: publisherCas,
        clock,
        afterWrite: () => current!.follower.apply(),
        warn: (fields, m) => logger.warn(fields, m),
        late: complianceMetrics,
      });
      const wait = publishingWait(config, openedStore, clock, registry);
      publishing = await startPublishing(config.publishing, { publisher, wait, path: loaded.path, requestTimeoutMs: config.server.requestTimeout, headersTimeoutMs: config.server.headersTimeout, logger });
    }
    const ready = () => readinessProblems(openedSigning, guarded, current!, clock);
    // Recorded before the port answers: a responder without a row is not waited for.
    await (heartbeat = beat.heartbeat).start();
    // With a metrics listener of its own, /metrics is served there only.
    metricsServer = await startMetricsListener(loaded, ready, registry, logger);
    const { server: ocspServerInstance, ocsp } = ocspServer(loaded, () => current!, { registry, clock, logger, ready, metrics: config.metrics ? undefined : registry });
    const server = await listen(ocspServerInstance, config.server.host, config.server.port);
    const port = (server.address() as AddressInfo).port;
    logger.info({ host: config.server.host, port, pathPrefix: config.server.pathPrefix ?? '/' }, 'listening');

    let reloading: Promise<void> | undefined;
    const reloadOnce = async () => {
      const next = loadConfig(loaded.file);
      warnOfFixedSettings(config, next.config, logger);
      const bindings = await rebind(openedSigning, next, clock, hsmMetrics);
      const fresh = await buildServing(next, { ...openedSigning, ...bindings }, shared);
      try {
        bindings.commit();
      } catch (e) {
        await fresh.close();
        throw e;
      }
      const old = current!;
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
 * Readiness: every token has a working session, the store answers (and after an outage the change feed is current
 * again), every signer certificate may be used.
 */
export async function readinessProblems(signing: Pick<Signing, 'tokens'>, store: StoreReadiness, current: Pick<Serving, 'validity' | 'follower'>, clock: Clock): Promise<string[]> {
  return [
    ...[...signing.tokens.values()].filter((t) => !t.ready).map((t) => `token "${t.name}": no working session`),
    ...(await storeProblems(store, current.follower, clock)),
    ...current.validity.problems(),
  ];
}

/** What a reload cannot change is kept, and said so. */
export function warnOfFixedSettings(running: Config, next: Config, logger: Logger): void {
  const fixed = (c: Config) => JSON.stringify([c.server, c.store, c.dataDir, c.publishing, c.metrics, c.cache, c.log]);
  if (fixed(next) !== fixed(running)) {
    logger.warn('reload: server, store, dataDir, publishing, metrics, cache and log settings apply only after a restart');
  }
}
