// What the primary and its serving processes say to each other over the IPC channel (besides signatures,
// remote-signer.ts), and the share of the config's daemon-wide sizes each serving process takes.
import type { Config } from '../config/schema';
import type { ResponderIdentity } from './responder-id';

/** Primary -> serving process. */
export const TO_WORKER = {
  /** Start serving this configuration; answered once listening (InitReply). */
  init: 'init',
  /** Build (not use) the serving part of a reloaded configuration; answered once built. */
  prepare: 'prepare',
  /** Answer from the configuration prepared for this generation (building it now if it was not). */
  commit: 'commit',
  /** Drop what was prepared for a generation: the reload was refused. */
  abort: 'abort',
  /** Apply every status change recorded so far before answering again; answered once applied. */
  apply: 'apply',
  /** This process's metrics, as prom-client JSON. */
  metrics: 'metricsJson',
  /** Finish the requests received and exit (a notice: the exit is the answer). */
  drain: 'drain',
} as const;

/** Serving process -> primary (and `sign`, remote-signer.ts). */
export const TO_PRIMARY = {
  /** The daemon's readiness problems (tokens, store, signer certificates), one line each. */
  ready: 'ready',
  /** The whole daemon's /metrics text (for /metrics on the OCSP port). */
  metrics: 'metricsText',
} as const;

/** A configuration as the primary loaded it, numbered: signatures name the generation their binding came from. */
export interface ServingConfig {
  generation: number;
  file: string;
  config: Config;
  /** The daemon (the primary): each serving process records its heartbeat as `id#slot` under it. */
  responder: ResponderIdentity;
}

export interface InitReply {
  port: number;
  generation: number;
}

/**
 * The share of what the config sizes for the whole daemon that one of `server.workers` serving processes takes:
 * the memory cache (cache.maxSize, cache.maxEntries), the PostgreSQL connections (store.poolSize) and the OCSP port's
 * connections (server.maxConnections, server.maxConnectionsPerClient: 0 stays 0, no bound).
 */
export function servingShare(config: Config): Config {
  const n = config.server.workers;
  const c = config.cache;
  const cache = c.maxSize > 0
    ? { ...c, maxSize: Math.max(1, Math.floor(c.maxSize / n)), ...(c.maxEntries ? { maxEntries: Math.max(1, Math.ceil(c.maxEntries / n)) } : {}) }
    : c;
  const store = config.store.type === 'postgres' ? { ...config.store, poolSize: Math.max(1, Math.ceil(config.store.poolSize / n)) } : config.store;
  // Connections are handed to the processes in turn: each one's share fills about when the daemon's bound does.
  const s = config.server;
  const server = { ...s, maxConnections: Math.ceil(s.maxConnections / n), maxConnectionsPerClient: Math.ceil(s.maxConnectionsPerClient / n) };
  return { ...config, cache, store, server };
}
