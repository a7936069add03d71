// Opens the configured store: SQLite under dataDir (default) or PostgreSQL (store.url); the daemon's timed and guarded
// against outages.
import { isAbsolute, join } from 'node:path';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import type { Clock } from '../clock';
import type { LoadedConfig } from '../config/load';
import { instrumentStore } from '../metrics/store-metrics';
import { StoreOutageMetrics } from '../metrics/store-outage-metrics';
import { redactUrl, scrubPassword } from '../store/postgres/connection-url';
import { PostgresStore } from '../store/postgres/postgres-store';
import type { Store } from '../store/response-store';
import { SqliteStore } from '../store/sqlite/sqlite-store';
import { guardStore } from '../store/guarded-store';
import type { StoreOutage } from '../store/store-outage';

/**
 * For PostgreSQL, resolves once connected and migrated; `warn` hears of connection trouble the store recovers
 * from by itself. A database that cannot be opened is an error naming store.url, its password redacted.
 */
export async function openStore(loaded: LoadedConfig, clock: Clock, warn?: (message: string) => void): Promise<Store> {
  const cfg = loaded.config.store;
  if (cfg.type === 'postgres') {
    try {
      return await PostgresStore.open({ url: cfg.url, poolSize: cfg.poolSize, clock, writeTimeoutMs: cfg.writeTimeout, ...(warn ? { warn } : {}) });
    } catch (e) {
      // No `cause`: the message says it all and a driver error object is not ours to vouch for.
      throw new Error(postgresOpenProblem(cfg.url, e));
    }
  }
  return new SqliteStore(sqliteFile(loaded, cfg.path), clock, { timeoutMs: cfg.writeTimeout });
}

export interface DaemonStore {
  store: Store;
  outage: StoreOutage;
}

/**
 * The store of a daemon process (one process, the primary, or a serving process): timed per operation
 * (ocsp_store_query_duration_seconds) and guarded against outages (store-outage.ts), whose metrics it registers. The
 * store's own warnings (connections lost, the change listener reconnecting) go through the guard, so an outage is
 * one log line, not one per connection.
 */
export async function openDaemonStore(loaded: LoadedConfig, clock: Clock, logger: Logger, registry: Registry): Promise<DaemonStore> {
  let outage: StoreOutage | undefined;
  const opened = await openStore(loaded, clock, (m) => (outage ? outage.warning(m) : logger.warn(m)));
  const cfg = loaded.config.store;
  const metrics = new StoreOutageMetrics(registry);
  const guarded = guardStore(instrumentStore(opened, registry, clock), {
    clock,
    log: logger,
    observer: metrics,
    ...(cfg.type === 'postgres' ? { scrub: (m: string) => scrubPassword(cfg.url, m) } : {}),
  });
  outage = guarded.outage;
  metrics.up = () => guarded.outage.up;
  return guarded;
}

/** The SQLite store's file: store.path, relative to dataDir (itself relative to the config file). */
export function sqliteFile(loaded: LoadedConfig, path: string): string {
  return isAbsolute(path) ? path : join(loaded.path(loaded.config.dataDir), path);
}

/** Why a PostgreSQL store could not be opened, naming store.url with its password redacted. */
export function postgresOpenProblem(url: string, e: unknown): string {
  return `store.url (${redactUrl(url)}): cannot open the PostgreSQL store: ${scrubPassword(url, describeError(e))}`;
}

// A refused connection to a name with several addresses is an AggregateError whose own message is empty.
function describeError(e: unknown): string {
  if (e instanceof AggregateError && !e.message) return e.errors.map(describeError).join('; ');
  if (e instanceof Error) return e.message || (e as NodeJS.ErrnoException).code || e.name;
  return String(e);
}
