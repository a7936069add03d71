// Status writes inside a transaction: merge with what is stored (status-rules), upsert, drop stale responses, log.
import type { PoolClient } from 'pg';
import type { ChangeKind } from '../response-store';
import type { ReasonName } from '../../ocsp/reasons';
import { count, emptyResult, mergeRecord, revocation, StatusWrite } from '../status-rules';
import type { CertificateRecord, ImportResult, RevokeResult } from '../status-store';
import { LOCK_CLASS, STATUS_WRITE_LOCK } from './migrations';
import * as rows from './rows';

export const CHANGE_CHANNEL = 'ocsp_hsm_changes';

interface RowWrite {
  record: CertificateRecord;
  change: ChangeKind;
  statusChanged: boolean;
}

// Existing rows are looked up, and writes sent, this many records at a time.
const CHUNK = 1000;

/**
 * Status writers take turns (one advisory lock held to commit), as SQLite's single writer does. Besides keeping
 * merges race-free, this makes status_changes commit in seq order: a reader that saw seq n never later finds
 * an n-1 committed behind its back.
 */
export async function lockStatusWrites(c: PoolClient): Promise<void> {
  await c.query('SELECT pg_advisory_xact_lock($1, $2)', [LOCK_CLASS, STATUS_WRITE_LOCK]);
}

export async function putCertificatesIn(c: PoolClient, records: StatusWrite[], now: Date): Promise<ImportResult> {
  await lockStatusWrites(c);
  const result = emptyResult();
  // Rows are locked chunk by chunk in (ca, serial) order, the order putResponses locks them in (FOR SHARE): in input
  // order (an index.txt, a CRL) a chunk could hold a row a response batch needs while waiting for one it holds, a
  // deadlock. The sort is stable: writes for the same certificate keep their order.
  const sorted = [...records].sort((x, y) => compareBytes(key(x), key(y)));
  for (let i = 0; i < sorted.length; i += CHUNK) {
    const chunk = sorted.slice(i, i + CHUNK);
    const existing = await lockExisting(c, chunk);
    const writes: RowWrite[] = [];
    for (const rec of chunk) {
      const m = mergeRecord(existing.get(key(rec)), rec);
      count(result, m);
      if (!m.record) continue;
      // A later record of the same batch for the same certificate merges with this one, as stored.
      existing.set(key(rec), rows.asStored(m.record));
      writes.push({ record: m.record, change: m.change, statusChanged: m.statusChanged });
    }
    await write(c, writes, now);
  }
  return result;
}

export async function revokeIn(c: PoolClient, ca: string, serial: string, revokedAt: Date, reason: ReasonName, now: Date): Promise<RevokeResult> {
  await lockStatusWrites(c);
  const old = (await lockExisting(c, [{ ca, serial }])).get(key({ ca, serial }));
  const m = mergeRecord(old, revocation(ca, serial, revokedAt, reason));
  if (m.record) await write(c, [{ record: m.record, change: m.change, statusChanged: m.statusChanged }], now);
  const stored = (await lockExisting(c, [{ ca, serial }])).get(key({ ca, serial }));
  return { created: m.outcome === 'inserted', outcome: m.outcome, record: stored };
}

// Row locks too: they hold off anything else that updates certificates (an operator's manual UPDATE, say).
async function lockExisting(c: PoolClient, records: { ca: string; serial: string }[]): Promise<Map<string, CertificateRecord>> {
  const { rows: found } = await c.query<rows.CertificateRow>(
    `SELECT c.* FROM certificates c JOIN unnest($1::text[], $2::text[]) AS k(ca, serial) ON c.ca = k.ca AND c.serial = k.serial
     ORDER BY c.ca, c.serial FOR UPDATE OF c`,
    columns(records.map((r) => [r.ca, r.serial]), 2),
  );
  return new Map(found.map((row) => [key(row), rows.fromCertificateRow(row)]));
}

// One status_changes row per write, in order; the latest record per certificate is upserted with the seq of its
// last change as its version; responses go where the status changed.
async function write(c: PoolClient, writes: RowWrite[], now: Date): Promise<void> {
  if (writes.length === 0) return;
  const at = rows.iso(now);
  const { rows: seqs } = await c.query<{ ca: string; serial: string; seq: string }>(
    `INSERT INTO status_changes (ca, serial, kind, at)
     SELECT ca, serial, kind, $4::timestamptz FROM unnest($1::text[], $2::text[], $3::text[]) WITH ORDINALITY AS u(ca, serial, kind, n)
     ORDER BY n
     RETURNING ca, serial, seq`,
    [...columns(writes.map((w) => [w.record.ca, w.record.serial, w.change]), 3), at],
  );
  const version = new Map<string, number>();
  for (const r of seqs) version.set(key(r), Math.max(version.get(key(r)) ?? 0, Number(r.seq)));
  const latest = new Map(writes.map((w) => [key(w.record), [...rows.certificateParams(w.record), version.get(key(w.record))!]]));
  await c.query(
    `INSERT INTO certificates (ca, serial, status, revoked_at, reason, not_after, profile, status_seq, updated_at)
     SELECT u.*, $9::timestamptz
       FROM unnest($1::text[], $2::text[], $3::text[], $4::timestamptz[], $5::text[], $6::timestamptz[], $7::text[], $8::bigint[]) AS u
     ON CONFLICT (ca, serial) DO UPDATE SET status = excluded.status, revoked_at = excluded.revoked_at,
       reason = excluded.reason, not_after = excluded.not_after, profile = excluded.profile, status_seq = excluded.status_seq,
       updated_at = excluded.updated_at`,
    [...columns([...latest.values()], 8), at],
  );
  const changed = writes.filter((w) => w.statusChanged).map((w) => [w.record.ca, w.record.serial]);
  if (changed.length > 0) {
    await c.query(
      'DELETE FROM responses r USING unnest($1::text[], $2::text[]) AS k(ca, serial) WHERE r.ca = k.ca AND r.serial = k.serial',
      columns(changed, 2),
    );
  }
  // Delivered at commit to every connection LISTENing: the other responders' caches.
  await c.query('SELECT pg_notify($1, $2)', [CHANGE_CHANNEL, '']);
}

/** Bytewise, as COLLATE "C" orders ca and serial. */
function compareBytes(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a), Buffer.from(b));
}

function key(r: { ca: string; serial: string }): string {
  return `${r.ca}\0${r.serial}`;
}

/** Rows to column arrays, as unnest() takes them. */
function columns(table: unknown[][], width: number): unknown[][] {
  return Array.from({ length: width }, (_, i) => table.map((row) => row[i]));
}
