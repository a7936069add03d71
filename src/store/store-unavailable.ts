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

/** Socket-level failures to reach or keep a connection (node:net, DNS). */
const SOCKET_CODES = new Set([
  'ECONNREFUSED', 'ECONNRESET', 'ECONNABORTED', 'EPIPE', 'ETIMEDOUT', 'EHOSTUNREACH', 'EHOSTDOWN', 'ENETUNREACH', 'ENETDOWN',
  'ENOTFOUND', 'EAI_AGAIN',
]);

/**
 * PostgreSQL SQLSTATEs that mean the server will not serve this connection now: admin_shutdown (57P01, a stop or
 * pg_terminate_backend), crash_shutdown (57P02), cannot_connect_now (57P03: starting up or shutting down) and
 * too_many_connections (53300, no connection to be had); class 08 (connection exception) is matched by its prefix.
 */
const POSTGRES_CODES = new Set(['57P01', '57P02', '57P03', '53300']);

/**
 * node-postgres's own connection errors carry no code, only these messages (pg 8 lib/client.js, pg-pool): a socket
 * that ended, a connect or pool wait that timed out, a client that already broke. The one place messages are matched.
 */
const POSTGRES_CLIENT_MESSAGES = new Set([
  'Connection terminated unexpectedly',
  'Connection terminated',
  'Connection terminated due to connection timeout',
  'timeout expired',
  'timeout exceeded when trying to connect',
  'Query read timeout',
  'Client has encountered a connection error and is not queryable',
  'Client was closed and is not queryable',
]);

/**
 * SQLite (better-sqlite3 codes, extended codes included): the file is damaged, is not a database, cannot be opened, or
 * the disk fails under it. SQLITE_BUSY past the write timeout is contention between writers, not an outage.
 */
const SQLITE_PREFIXES = ['SQLITE_CORRUPT', 'SQLITE_NOTADB', 'SQLITE_CANTOPEN', 'SQLITE_IOERR'];

/** True when `e` (or what caused it) says the store cannot be reached, rather than that one operation failed. */
export function isConnectionFailure(e: unknown, depth = 0): boolean {
  if (e instanceof StoreUnavailableError) return true;
  if (!(e instanceof Error) || depth > 4) return false;
  const code = (e as { code?: unknown }).code;
  if (typeof code === 'string') {
    if (SOCKET_CODES.has(code) || POSTGRES_CODES.has(code) || /^08[0-9A-Z]{3}$/.test(code)) return true;
    if (SQLITE_PREFIXES.some((p) => code.startsWith(p))) return true;
  }
  if (POSTGRES_CLIENT_MESSAGES.has(e.message)) return true;
  // A name with several addresses (localhost: ::1 and 127.0.0.1) fails with every attempt in an AggregateError.
  if (e instanceof AggregateError && e.errors.length > 0 && e.errors.every((x) => isConnectionFailure(x, depth + 1))) return true;
  return e.cause !== undefined && isConnectionFailure(e.cause, depth + 1);
}
