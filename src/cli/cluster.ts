// A responder's part in the cluster view (README "Consistent revocation across responders"): the heartbeat of each
// process that answers OCSP requests, the publishing API's wait for every live responder, and the metrics of both.
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import type { Clock } from '../clock';
import { Heartbeat, HeartbeatFollower, HeartbeatIdentity, livenessWindowMs } from '../cluster/heartbeat';
import type { Config } from '../config/schema';
import { HeartbeatMetrics, PublishWaitMetrics, registerClusterView } from '../metrics/responder-metrics';
import type { PublishingWait } from '../publish/app';
import { ResponderWait } from '../publish/responder-wait';
import type { Store } from '../store/response-store';

/** How long a change follower may go unproved before it stops answering from memory (SQLite: never reached). */
export function stalenessBoundMs(config: Config): number {
  return config.store.type === 'postgres' ? config.store.maxStaleness : 2_000;
}

/** A responder whose heartbeat is older than this is gone (cluster/heartbeat.ts). */
export function livenessMs(config: Config): number {
  return livenessWindowMs(config.cluster.heartbeat, stalenessBoundMs(config));
}

/** What the change follower of each serving part is given by the heartbeat (serving.ts). */
export interface FollowerHooks {
  held?: () => boolean;
  advanced: () => void;
}

export interface HeartbeatDeps {
  store: Store;
  clock: Clock;
  logger: Logger;
  config: Config;
  registry: Registry;
  identity: HeartbeatIdentity;
  /** The follower in force (a reload swaps it). */
  follower: () => HeartbeatFollower;
  /** This process's readiness problems (what /readyz answers). */
  ready: () => Promise<string[]>;
}

/** The heartbeat (started by the caller once the serving part exists, before listening) and the follower's hooks. */
export function responderHeartbeat(d: HeartbeatDeps): { heartbeat: Heartbeat; hooks: FollowerHooks } {
  const metrics = new HeartbeatMetrics(d.registry);
  const heartbeat = new Heartbeat({
    store: d.store,
    clock: d.clock,
    identity: d.identity,
    everyMs: d.config.cluster.heartbeat,
    livenessMs: livenessMs(d.config),
    follower: d.follower,
    ready: async () => (await d.ready()).length === 0,
    log: d.logger,
    wrote: (ok) => metrics.wrote(ok),
  });
  metrics.state = { appliedSeq: () => d.follower().seq, sinceLastMs: () => heartbeat.sinceLastMs(), held: () => heartbeat.held() };
  return {
    heartbeat,
    // SQLite's feed sees every commit at the next event-loop turn: its memory is never behind, held or not.
    hooks: { ...(d.store.exact ? {} : { held: () => heartbeat.held() }), advanced: () => heartbeat.applied() },
  };
}

/** The responders the store lists, live and stale, and the furthest behind, on the daemon's registry (one process or the primary). */
export function registerClusterMetrics(config: Config, store: Store, clock: Clock, registry: Registry): void {
  registerClusterView(registry, clock, async () => ({ rows: await store.responders(), head: await store.lastChange() }), livenessMs(config));
}

/** `?wait=all` for the publishing API, with its metrics. */
export function publishingWait(config: Config, store: Store, clock: Clock, registry: Registry): PublishingWait {
  const metrics = new PublishWaitMetrics(registry);
  return {
    mode: config.cluster.wait,
    responders: new ResponderWait({ store, clock, livenessMs: livenessMs(config), timeoutMs: config.cluster.waitTimeout }),
    waited: (o) => metrics.waited(o),
  };
}
