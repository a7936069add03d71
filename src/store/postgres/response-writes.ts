// Storing a batch of responses on PostgreSQL in one statement (the pre-signer's batches were 500 round trips).
import type { PoolClient } from 'pg';
import type { StoredResponse } from '../response-store';
import { iso } from './rows';

/**
 * Inserts each response unless a final one by the same signer exists for its certificate and hash; a retired
 * signer's responses for it go in the same statement. Every key (ca, serial, hash) must appear once: the statement
 * sees the table as it was before it, so two responses of one key would not see each other (putResponses stores
 * such a batch one response at a time). Returns how many were stored; the rest found a final response.
 */
export async function insertResponsesIn(c: PoolClient, responses: readonly StoredResponse[]): Promise<number> {
  const cols: unknown[][] = Array.from({ length: 12 }, () => []);
  for (const r of responses) {
    const v = [r.ca, r.serial, r.hash, iso(r.producedAt), iso(r.thisUpdate), iso(r.nextUpdate), r.final, r.certIdDer, r.der, r.profile ?? null, r.statusVersion, r.signer];
    for (let i = 0; i < v.length; i++) cols[i]!.push(v[i]);
  }
  const { rows } = await c.query<{ stored: number }>(
    `WITH input AS (
       SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::timestamptz[], $5::timestamptz[], $6::timestamptz[],
                            $7::boolean[], $8::bytea[], $9::bytea[], $10::text[], $11::bigint[], $12::text[])
         AS t(ca, serial, hash, produced_at, this_update, next_update, final, cert_id, der, profile, status_seq, signer)
     ), open AS (
       SELECT i.* FROM input i WHERE NOT EXISTS (SELECT 1 FROM responses r
         WHERE r.ca = i.ca AND r.serial = i.serial AND r.hash = i.hash AND r.final AND r.signer = i.signer)
     ), retired AS (
       DELETE FROM responses r USING open o WHERE r.ca = o.ca AND r.serial = o.serial AND r.hash = o.hash AND r.signer <> o.signer
     ), stored AS (
       INSERT INTO responses (ca, serial, hash, produced_at, this_update, next_update, final, cert_id, der, profile, status_seq, signer)
       SELECT ca, serial, hash, produced_at, this_update, next_update, final, cert_id, der, profile, status_seq, signer FROM open
       ON CONFLICT (ca, serial, hash, produced_at) DO UPDATE SET this_update = excluded.this_update,
         next_update = excluded.next_update, final = excluded.final, cert_id = excluded.cert_id, der = excluded.der,
         profile = excluded.profile, status_seq = excluded.status_seq, signer = excluded.signer
       RETURNING 1
     )
     SELECT count(*)::integer AS stored FROM stored`,
    cols,
  );
  return rows[0]!.stored;
}
