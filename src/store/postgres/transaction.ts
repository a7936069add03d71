// Runs a function inside one PostgreSQL transaction on a pooled connection, retrying when PostgreSQL asks to.
import type { Pool, PoolClient } from 'pg';

// deadlock_detected (PostgreSQL aborts one of the two) and serialization_failure: the retry can succeed.
const RETRYABLE = new Set(['40P01', '40001']);
const ATTEMPTS = 5;

export interface TransactionOptions {
  /** Waits for a lock at most this long, then fails with lock_not_available (55P03). */
  lockTimeoutMs?: number;
  /**
   * Plans without sequential scans (SET LOCAL enable_seqscan = off): for statements that join to `responses` per
   * certificate, whose plan on stale statistics re-reads the whole table once per row (postgres-store.ts, indexedRead).
   */
  indexedPlans?: boolean;
}

/** Commits what `fn` did, or rolls all of it back and rethrows; `fn` may run again after a retryable failure. */
export async function transaction<T>(pool: Pool, fn: (c: PoolClient) => Promise<T>, o: TransactionOptions = {}): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    const c = await pool.connect();
    // A checked-out connection that dies emits 'error' (uncaught: the process would exit); the query fails anyway.
    const ignore = () => undefined;
    c.on('error', ignore);
    try {
      await c.query('BEGIN');
      if (o.lockTimeoutMs !== undefined) await c.query(`SET LOCAL lock_timeout = ${Math.max(1, Math.round(o.lockTimeoutMs))}`);
      if (o.indexedPlans) await c.query('SET LOCAL enable_seqscan = off');
      const result = await fn(c);
      await c.query('COMMIT');
      c.off('error', ignore);
      c.release();
      return result;
    } catch (e) {
      const rolledBack = await c.query('ROLLBACK').then(
        () => true,
        () => false,
      );
      c.off('error', ignore);
      // A connection in an unknown transaction state is closed rather than handed back to the pool.
      c.release(rolledBack ? undefined : (e as Error));
      if (attempt >= ATTEMPTS || !RETRYABLE.has((e as { code?: string }).code ?? '')) throw e;
      await new Promise((r) => setTimeout(r, 10 * attempt * Math.random()));
    }
  }
}
