// Which certificates the pre-signer has to sign for (due), on PostgreSQL: the count the health check and each run
// start with, and the pages a run signs.
import type { Pool, QueryResult, QueryResultRow } from 'pg';
import type { DueQuery } from '../response-store';
import * as rows from './rows';
import { transaction } from './transaction';

// As in SqliteStore: a certificate is due unless its latest usable response by the signer is fresh enough, or final.
// The fresh response is looked up per certificate by the primary key's prefix (a LATERAL subquery with LIMIT is never
// turned into a join), so the work is one index probe per certificate whatever the statistics say. As NOT EXISTS
// the plan was the planner's choice: on a `responses` table planned as nearly empty (a pre-signer that has just
// started) the health check's count scanned it once per certificate, re-reading every row stored while it ran, and
// in the PostgreSQL revocation race ran for minutes and held its connection past the responder's stop.
const DUE_FROM = `certificates c LEFT JOIN LATERAL (
    SELECT 1 AS fresh FROM responses r WHERE r.ca = c.ca AND r.serial = c.serial AND r.hash = $3 AND r.signer = $6
      AND (r.final OR (NOT $4::boolean AND r.this_update > $5 AND r.this_update + $7::float8 * (r.next_update - r.this_update) > $8)) LIMIT 1
  ) f ON true`;
const DUE_WHERE = `c.ca = $1 AND ($2::timestamptz IS NULL OR c.not_after IS NULL OR c.not_after >= $2) AND f.fresh IS NULL`;

/** The statements, for tests that look at their plans ($1-$8: dueParams; the page adds $9 after, $10 limit). */
export const DUE_SQL = {
  count: `SELECT count(*) AS n FROM ${DUE_FROM} WHERE ${DUE_WHERE}`,
  page: `SELECT c.* FROM ${DUE_FROM} WHERE ${DUE_WHERE} AND c.serial > $9 ORDER BY c.serial LIMIT $10`,
};

export function dueParams(q: Omit<DueQuery, 'after' | 'limit'>): unknown[] {
  return [q.ca, rows.iso(q.notExpiredAt), q.hash, q.needFinal, rows.iso(q.refreshBefore), q.signer, q.refreshAfter, rows.iso(q.refreshAt)];
}

export async function countDue(pool: Pool, q: Omit<DueQuery, 'after' | 'limit'>): Promise<number> {
  const { rows: found } = await indexedRead<{ n: string }>(pool, DUE_SQL.count, dueParams(q));
  return Number(found[0]!.n);
}

export async function certificatesDue(pool: Pool, q: DueQuery): Promise<rows.CertificateRow[]> {
  return (await indexedRead<rows.CertificateRow>(pool, DUE_SQL.page, [...dueParams(q), q.after, q.limit])).rows;
}

/**
 * A statement over `responses` per certificate (or per response) planned without sequential scans: a sequential
 * scan inside a loop re-reads the whole table, rows stored since the statement began included, once per row.
 */
export async function indexedRead<R extends QueryResultRow>(pool: Pool, text: string, values: unknown[]): Promise<QueryResult<R>> {
  return transaction(pool, (c) => c.query<R>(text, values), { indexedPlans: true });
}
