// Connection-level store failures: the database is gone (refused, reset, shut down, unreachable), as opposed to a
// query that failed. Only these start an outage (store-outage.ts); every other error passes through unchanged.
import { TryLaterError } from '../ocsp/errors';

/** The store cannot be reached now: transient, so the request path answers tryLater (RFC 6960 section 2.3). */
export class StoreUnavailableError extends TryLaterError {
  override name = 'StoreUnavailableError';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

/**
 * Two kinds of connection-level failure: the store as a whole cannot be reached (`store`: an outage at once), or one
 * connection broke (`connection`: a server shutting down breaks them all, but so does pg_terminate_backend or a
 * proxy closing one; whether the store is down is then for a probe to say).
 */
export type ConnectionFailure = 'store' | 'connection';

/** Socket-level failures to reach the server at all (node:net, DNS). */
const UNREACHABLE_CODES = new Set(['ECONNREFUSED', 'ETIMEDOUT', 'EHOSTUNREACH', 'EHOSTDOWN', 'ENETUNREACH', 'ENETDOWN', 'ENOTFOUND', 'EAI_AGAIN']);
/** Socket-level failures of one connection. */
const BROKEN_CODES = new Set(['ECONNRESET', 'ECONNABORTED', 'EPIPE']);

/**
 * PostgreSQL SQLSTATEs. The server will not serve a connection now: crash_shutdown (57P02), cannot_connect_now
 * (57P03: starting up or shutting down), too_many_connections (53300). One connection was ended: admin_shutdown
 * (57P01: a stop, or pg_terminate_backend) and class 08 (connection exception, matched by its prefix).
 */
const POSTGRES_UNAVAILABLE = new Set(['57P02', '57P03', '53300']);
const POSTGRES_CONNECTION = new Set(['57P01']);

/**
 * node-postgres's own connection errors carry no code, only these messages (pg 8 lib/client.js, pg-pool): the one
 * place messages are matched. Connect and pool-wait timeouts mean the store cannot be had; the others, that one
 * client's connection ended or broke.
 */
const POSTGRES_CLIENT_MESSAGES = new Map<string, ConnectionFailure>([
  ['Connection terminated due to connection timeout', 'store'],
  ['timeout expired', 'store'],
  ['timeout exceeded when trying to connect', 'store'],
  ['Connection terminated unexpectedly', 'connection'],
  ['Connection terminated', 'connection'],
  ['Query read timeout', 'connection'],
  ['Client has encountered a connection error and is not queryable', 'connection'],
  ['Client was closed and is not queryable', 'connection'],
]);

/**
 * SQLite (better-sqlite3 codes, extended codes included): the file is damaged, is not a database, cannot be opened, or
 * the disk fails under it. SQLITE_BUSY past the write timeout is contention between writers, not an outage.
 */
const SQLITE_PREFIXES = ['SQLITE_CORRUPT', 'SQLITE_NOTADB', 'SQLITE_CANTOPEN', 'SQLITE_IOERR'];

/** Which kind of connection-level failure `e` (or what caused it) is; undefined when one operation failed for its own reasons. */
export function connectionFailure(e: unknown, depth = 0): ConnectionFailure | undefined {
  if (e instanceof StoreUnavailableError) return 'store';
  if (!(e instanceof Error) || depth > 4) return undefined;
  const code = (e as { code?: unknown }).code;
  if (typeof code === 'string') {
    if (UNREACHABLE_CODES.has(code) || POSTGRES_UNAVAILABLE.has(code) || SQLITE_PREFIXES.some((p) => code.startsWith(p))) return 'store';
    if (BROKEN_CODES.has(code) || POSTGRES_CONNECTION.has(code) || /^08[0-9A-Z]{3}$/.test(code)) return 'connection';
  }
  const known = POSTGRES_CLIENT_MESSAGES.get(e.message);
  if (known) return known;
  // A name with several addresses (localhost: ::1 and 127.0.0.1) fails with every attempt in an AggregateError.
  if (e instanceof AggregateError && e.errors.length > 0) {
    const kinds = e.errors.map((x: unknown) => connectionFailure(x, depth + 1));
    if (kinds.every((k) => k !== undefined)) return kinds.includes('store') ? 'store' : 'connection';
    return undefined;
  }
  return e.cause !== undefined ? connectionFailure(e.cause, depth + 1) : undefined;
}

/** True when `e` (or what caused it) says the store or a connection to it failed, rather than one operation. */
export function isConnectionFailure(e: unknown): boolean {
  return connectionFailure(e) !== undefined;
}
