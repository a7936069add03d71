// The CRL state on PostgreSQL: read the last CRLs, and apply a CRL (order check, status writes, state) in one transaction.
import type { Pool, PoolClient } from 'pg';
import { AppliedCrl, crlOrderProblem, LastCrls, StaleCrlError, urlsFromText, urlsToText } from '../crl-state';
import type { StatusWrite } from '../status-rules';
import type { ImportResult } from '../status-store';
import { iso } from './rows';
import { lockStatusWrites, putCertificatesIn } from './status-writes';

interface CrlRow {
  ca: string;
  kind: 'full' | 'delta';
  crl_number: string | null;
  base_crl_number: string | null;
  this_update: Date;
  next_update: Date | null;
  freshest_urls: string;
}

export async function lastCrls(db: Pool | PoolClient, ca: string): Promise<LastCrls> {
  const { rows } = await db.query<CrlRow>('SELECT * FROM crls WHERE ca = $1', [ca]);
  return Object.fromEntries(rows.map((r) => [r.kind, fromCrlRow(r)]));
}

/** Inside a transaction: the status write lock is taken first, so the order check and the writes see no other writer. */
export async function applyCrlIn(c: PoolClient, crl: AppliedCrl, records: StatusWrite[], now: Date): Promise<ImportResult> {
  await lockStatusWrites(c);
  const problem = crlOrderProblem(await lastCrls(c, crl.ca), crl);
  if (problem) throw new StaleCrlError(problem);
  const result = await putCertificatesIn(c, records, now);
  await c.query(
    `INSERT INTO crls (ca, kind, crl_number, base_crl_number, this_update, next_update, freshest_urls, applied_at)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
     ON CONFLICT (ca, kind) DO UPDATE SET crl_number = excluded.crl_number, base_crl_number = excluded.base_crl_number,
       this_update = excluded.this_update, next_update = excluded.next_update, freshest_urls = excluded.freshest_urls,
       applied_at = excluded.applied_at`,
    [crl.ca, crl.kind, crl.crlNumber?.toString() ?? null, crl.baseCrlNumber?.toString() ?? null, iso(crl.thisUpdate),
      iso(crl.nextUpdate), urlsToText(crl.freshestCrlUrls), iso(now)],
  );
  return result;
}

function fromCrlRow(row: CrlRow): AppliedCrl {
  return {
    ca: row.ca,
    kind: row.kind,
    ...(row.crl_number !== null ? { crlNumber: BigInt(row.crl_number) } : {}),
    ...(row.base_crl_number !== null ? { baseCrlNumber: BigInt(row.base_crl_number) } : {}),
    thisUpdate: row.this_update,
    ...(row.next_update !== null ? { nextUpdate: row.next_update } : {}),
    freshestCrlUrls: urlsFromText(row.freshest_urls),
  };
}
