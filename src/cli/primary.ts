// The daemon as a primary and `server.workers` serving processes (node:cluster). The primary keeps the tokens, the
// signing limiters (so the HSM's ceiling, queue and fairness are global by construction), the pre-signer and the
// other schedules, the publishing API and the metrics listener; it signs for the serving processes
// (cluster/sign-service.ts), tells them of reloads and revocations, starts again one that dies, and stops them
// before it closes the tokens. Each serving process is cli/worker.ts. README "Architecture".
import type { Server } from 'node:http';
import { join } from 'node:path';
import type { Registry } from 'prom-client';
import type { LoadedConfig } from '../config/load';
import { loadConfig } from '../config/load';
import type { Config } from '../config/schema';
import type { MetricsText } from '../http/app';
import { registerCertificateMetrics } from '../metrics/certificate-metrics';
import { mergeMetrics, MetricsJson, WorkerMetrics } from '../metrics/cluster-metrics';
import { HsmMetrics } from '../metrics/hsm-metrics';
import { createDaemonMetrics } from '../metrics/daemon-metrics';
import { Publisher } from '../publish/publisher';
import { PublishingListener, startPublishing } from '../publish/server';
import type { Store } from '../store/response-store';
import { InitReply, ServingConfig, TO_PRIMARY, TO_WORKER } from '../cluster/protocol';
import { SIGN_OP } from '../cluster/remote-signer';
import { SignService } from '../cluster/sign-service';
import { PoolWorker, WorkerPool } from '../cluster/worker-pool';
import { LeaseKeeper } from '../cluster/lease-keeper';
import { newResponderIdentity } from '../cluster/responder-id';
import type { Daemon, DaemonDeps } from './daemon';
import { readinessProblems, SERVICES_LEASE, warnOfFixedSettings } from './daemon';
import { assertListenable } from './listen-check';
import { startMetricsListener } from './ocsp-listener';
import type { LoadedCertificate } from '../pki/certificate';
import { buildServing, caCertificatesByName, Serving, SharedParts } from './serving';
import { openSigning, rebind, ReloadError, Signing } from './signing';
import { openDaemonStore } from './store';
import { publishingWait, registerClusterMetrics } from './cluster';

/** How long a serving process may take to build a reloaded configuration (it reads certificates, starts following). */
const RELOAD_STEP_MS = 60_000;
/** How long the primary waits for a serving process's metrics at a scrape. */
const METRICS_WAIT_MS = 2_000;

export async function startPrimary(loaded: LoadedConfig, deps: DaemonDeps): Promise<Daemon> {
  const { config } = loaded;
  const { logger, clock } = deps;
  const { registry, hsmMetrics, preSignerMetrics, changeMetrics, indexMetrics, leaseMetrics, complianceMetrics } = createDaemonMetrics(clock);
  let store: Store | undefined;
  let signing: Signing | undefined;
  let lease: LeaseKeeper | undefined;
  let running: InForce | undefined;
  let publishing: PublishingListener | undefined;
  let metricsServer: Server | undefined;
  let pool: WorkerPool | undefined;
  const closeAll = async () => {
    await pool?.stop(config.server.shutdownTimeout);
    metricsServer?.close();
    metricsServer?.closeAllConnections();
    // No published event may arrive once the follower and the store are gone.
    await publishing?.close();
    await running?.services.close();
    // Released once the work under it has stored what it made: the next holder starts from there, at once.
    await lease?.close();
    await signing?.close();
    await store?.close();
  };
  try {
    await assertListenable(config);
    const guarded = await openDaemonStore(loaded, clock, logger, registry);
    const openedStore = (store = guarded.store);
    const openedSigning = (signing = openSigning(loaded, deps, hsmMetrics));
    await openedSigning.activate();
    // CRL downloads and index following write here: the serving processes are told at once, as for the API.
    // The primary competes for the lease; the serving processes never do (they only answer). One identity: the
    // lease holder and the serving processes' heartbeat rows (id#slot) are the same responder.
    const identity = newResponderIdentity(config.cluster.name);
    const keeper = (lease = new LeaseKeeper(openedStore, clock, { name: SERVICES_LEASE, holder: identity.id, leaseMs: config.cluster.lease }, logger, leaseMetrics));
    const shared = { store: openedStore, clock, logger, preSignerMetrics, changeMetrics, indexMetrics, complianceMetrics, lease: keeper, onOwnWrite: () => void pool?.broadcast(TO_WORKER.apply, null, applyWaitMs(config)) };
    const inForce: InForce = { serving: { generation: 1, file: loaded.file, config, responder: identity }, services: await buildServing(loaded, openedSigning, shared, 'services') };
    running = inForce;
    await keeper.start();
    registerCertificateMetrics(registry, () => inForce.services.authorities, clock);
    registerClusterMetrics(config, openedStore, clock, registry);

    const signService = new SignService(clock);
    signService.publish(inForce.serving.generation, openedSigning.authorities);
    const ready = () => readinessProblems(openedSigning, guarded, inForce.services, clock);
    const metrics = mergedMetrics(registry, () => pool!);
    const workerMetrics = new WorkerMetrics(registry, () => pool?.listening().length ?? 0, config.server.workers);
    const started = (pool = new WorkerPool({
      exec: join(__dirname, 'worker-main.js'),
      size: config.server.workers,
      clock,
      logger,
      handlers: { [SIGN_OP]: signService.sign, [TO_PRIMARY.ready]: ready, [TO_PRIMARY.metrics]: () => metrics.metrics() },
      initFor: () => inForce.serving,
      onListening: (w: PoolWorker, reply: InitReply) => {
        // Started while a reload went on: it serves the configuration in force now, like the others.
        const { serving } = inForce;
        if (reply.generation < serving.generation) void w.channel.request(TO_WORKER.commit, serving, RELOAD_STEP_MS).catch(() => undefined);
      },
      onRestart: (slot) => workerMetrics.restarted(slot),
    }));
    // A revocation is applied in every serving process before the write is acknowledged (bounded: one that does
    // not answer still follows the store by itself, within store.maxStaleness).
    const applyEverywhere = async () => {
      const [own, workers] = await Promise.allSettled([inForce.services.follower.apply(), started.broadcast(TO_WORKER.apply, null, applyWaitMs(config))]);
      if (workers.status === 'fulfilled') {
        for (const w of workers.value) if (!w.ok) logger.warn({ worker: w.slot, err: w.error?.message }, 'a serving process did not confirm applying a status change: it follows the store by itself');
      }
      if (own.status === 'rejected') throw own.reason;
    };
    // Updated in place by a reload: the publisher always checks against the CAs being served.
    const publisherCas = caCertificatesByName(inForce.services.authorities);
    if (config.publishing) {
      const publisher = new Publisher({ store: openedStore, cas: publisherCas, clock, afterWrite: applyEverywhere, warn: (fields, m) => logger.warn(fields, m), late: complianceMetrics });
      const wait = publishingWait(config, openedStore, clock, registry);
      publishing = await startPublishing(config.publishing, { publisher, wait, path: loaded.path, requestTimeoutMs: config.server.requestTimeout, headersTimeoutMs: config.server.headersTimeout, logger });
    }
    metricsServer = await startMetricsListener(loaded, ready, metrics, logger);
    const port = await started.start();
    logger.info({ host: config.server.host, port, pathPrefix: config.server.pathPrefix ?? '/', workers: config.server.workers }, 'listening');

    let reloading: Promise<void> | undefined;
    const reloadCtx: ReloadContext = { loaded, signing: openedSigning, shared, pool: started, signService, publisherCas, hsmMetrics, inForce };
    const reloadOnce = () => reloadAll(reloadCtx);
    return {
      port,
      registry,
      reload: () => (reloading ??= reloadOnce().finally(() => (reloading = undefined))),
      close: closeAll,
    };
  } catch (e) {
    await closeAll();
    throw e;
  }
}

/** What a reload swaps: the configuration the serving processes serve, and the primary's own part. */
interface InForce {
  serving: ServingConfig;
  services: Serving;
}

interface ReloadContext {
  loaded: LoadedConfig;
  signing: Signing;
  shared: SharedParts;
  pool: WorkerPool;
  signService: SignService;
  /** The publishing API's CAs, updated in place. */
  publisherCas: Map<string, LoadedCertificate[]>;
  hsmMetrics: HsmMetrics;
  inForce: InForce;
}

/**
 * SIGHUP: the primary proves the new keys, every serving process builds the new configuration, and only when all
 * have does anything switch; a refusal anywhere changes nothing anywhere.
 */
async function reloadAll(c: ReloadContext): Promise<void> {
  const { config } = c.loaded;
  const { logger, clock } = c.shared;
  const next = loadConfig(c.loaded.file);
  warnOfFixedSettings(config, next.config, logger);
  const bindings = await rebind(c.signing, next, clock, c.hsmMetrics);
  const nextServing: ServingConfig = { generation: c.inForce.serving.generation + 1, file: next.file, config: keepFixed(config, next.config), responder: c.inForce.serving.responder };
  let fresh: Serving | undefined;
  try {
    // A certificate file one serving process cannot read, say, is refused before anything is swapped. The primary's
    // part is built last, so its schedules (a CRL download at once) start only once nothing but the keys' commit
    // can refuse.
    const refused = (await c.pool.broadcast(TO_WORKER.prepare, nextServing, RELOAD_STEP_MS)).find((r) => !r.ok);
    if (refused) throw new ReloadError(`serving process ${refused.slot}: ${refused.error?.message}`);
    fresh = await buildServing(next, { ...c.signing, ...bindings }, c.shared, 'services');
    bindings.commit();
  } catch (e) {
    await c.pool.broadcast(TO_WORKER.abort, { generation: nextServing.generation }, RELOAD_STEP_MS);
    await fresh?.close();
    throw e;
  }
  c.signService.publish(nextServing.generation, fresh.authorities);
  const old = c.inForce.services;
  c.inForce.serving = nextServing;
  c.inForce.services = fresh;
  c.publisherCas.clear();
  for (const [name, certs] of caCertificatesByName(fresh.authorities)) c.publisherCas.set(name, certs);
  await old.close();
  for (const r of await c.pool.broadcast(TO_WORKER.commit, nextServing, RELOAD_STEP_MS)) {
    // It exits and is started again on the new configuration.
    if (!r.ok) logger.error({ worker: r.slot, err: r.error?.message }, 'a serving process could not switch to the reloaded configuration');
  }
  // Processes still on an older configuration are gone or being replaced.
  for (const g of c.signService.published) if (g < nextServing.generation - 1) c.signService.retire(g);
  logger.info({ cas: [...new Set(fresh.authorities.map((a) => a.name))] }, 'reloaded');
}

/** The primary's own series and every serving process's, labelled worker="N" (metrics/cluster-metrics.ts). */
function mergedMetrics(registry: Registry, pool: () => WorkerPool): MetricsText {
  return {
    contentType: registry.contentType,
    async metrics() {
      const [own, workers] = await Promise.all([registry.getMetricsAsJSON(), pool().broadcast<MetricsJson>(TO_WORKER.metrics, null, METRICS_WAIT_MS)]);
      // A process that did not answer in time is left out of this scrape rather than failing it.
      const answered = workers.flatMap((w) => (w.value ? [{ worker: w.slot, metrics: w.value }] : []));
      return mergeMetrics(own, answered).metrics();
    },
  };
}

/** What a reload does not change (warnOfFixedSettings) stays as the serving processes were started with it. */
function keepFixed(running: Config, next: Config): Config {
  return { ...next, server: running.server, store: running.store, dataDir: running.dataDir, cache: running.cache, log: running.log, metrics: running.metrics, publishing: running.publishing };
}

/** A revocation's acknowledgement waits at most this long for the serving processes to apply it. */
function applyWaitMs(config: Config): number {
  return config.store.type === 'postgres' ? config.store.maxStaleness : 2_000;
}
