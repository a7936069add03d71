// StatusStore on an embedded SQLite file (better-sqlite3): the default, zero-administration store.
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';
import type { Clock } from '../../clock';
import type { ReasonName } from '../../ocsp/reasons';
import type { CertificateRecord, ImportResult, StatusStore } from '../status-store';
import { SQLITE_MIGRATIONS } from './migrations';

interface Row {
  ca: string;
  serial: string;
  status: 'good' | 'revoked';
  revoked_at: number | null;
  reason: string | null;
  not_after: number | null;
  profile: string | null;
}

export class SqliteStatusStore implements StatusStore {
  private readonly db: Database.Database;
  private readonly selectOne: Database.Statement<[string, string], Row>;
  private readonly upsert: Database.Statement;

  constructor(
    file: string,
    private readonly clock: Clock,
  ) {
    if (file !== ':memory:') mkdirSync(dirname(file), { recursive: true });
    this.db = new Database(file);
    this.db.pragma('journal_mode = WAL');
    this.db.pragma('synchronous = NORMAL');
    this.db.pragma('busy_timeout = 5000');
    migrate(this.db);
    this.selectOne = this.db.prepare('SELECT * FROM certificates WHERE ca = ? AND serial = ?');
    this.upsert = this.db.prepare(
      `INSERT INTO certificates (ca, serial, status, revoked_at, reason, not_after, profile, updated_at)
       VALUES (@ca, @serial, @status, @revoked_at, @reason, @not_after, @profile, @updated_at)
       ON CONFLICT (ca, serial) DO UPDATE SET status = excluded.status, revoked_at = excluded.revoked_at,
         reason = excluded.reason, not_after = excluded.not_after, profile = excluded.profile,
         updated_at = excluded.updated_at`,
    );
  }

  async getCertificate(ca: string, serial: string): Promise<CertificateRecord | undefined> {
    const row = this.selectOne.get(ca, serial);
    return row && fromRow(row);
  }

  async putCertificates(records: CertificateRecord[]): Promise<ImportResult> {
    const result: ImportResult = { inserted: 0, updated: 0, unchanged: 0, keptRevoked: 0 };
    const now = this.clock.now().getTime();
    this.db.transaction(() => {
      for (const rec of records) {
        const existing = this.selectOne.get(rec.ca, rec.serial);
        const merged = existing ? merge(fromRow(existing), rec, result) : (result.inserted++, rec);
        if (existing && sameRecord(fromRow(existing), merged)) {
          result.unchanged++;
          continue;
        }
        if (existing) result.updated++;
        this.upsert.run({ ...toRow(merged), updated_at: now });
      }
    })();
    return result;
  }

  async revoke(ca: string, serial: string, revokedAt: Date, reason: ReasonName): Promise<{ created: boolean }> {
    const existing = this.selectOne.get(ca, serial);
    const base: CertificateRecord = existing ? fromRow(existing) : { ca, serial, status: 'good' };
    this.upsert.run({
      ...toRow({ ...base, status: 'revoked', revokedAt, reason }),
      updated_at: this.clock.now().getTime(),
    });
    return { created: !existing };
  }

  async ping(): Promise<void> {
    this.db.prepare('SELECT 1').get();
  }

  async close(): Promise<void> {
    if (this.db.open) this.db.close();
  }
}

function migrate(db: Database.Database): void {
  const current = db.pragma('user_version', { simple: true }) as number;
  for (let v = current; v < SQLITE_MIGRATIONS.length; v++) {
    db.transaction(() => {
      db.exec(SQLITE_MIGRATIONS[v]!);
      db.pragma(`user_version = ${v + 1}`);
    })();
  }
}

// Revocation is final, except certificateHold which a later "good" releases (RFC 5280 removeFromCRL).
function merge(old: CertificateRecord, incoming: CertificateRecord, result: ImportResult): CertificateRecord {
  if (old.status === 'revoked' && incoming.status === 'good' && old.reason !== 'certificateHold') {
    result.keptRevoked++;
    return { ...old, notAfter: incoming.notAfter ?? old.notAfter, profile: incoming.profile ?? old.profile };
  }
  return { ...incoming, notAfter: incoming.notAfter ?? old.notAfter, profile: incoming.profile ?? old.profile };
}

function sameRecord(a: CertificateRecord, b: CertificateRecord): boolean {
  return JSON.stringify(toRow(a)) === JSON.stringify(toRow(b));
}

function toRow(r: CertificateRecord): Omit<Row, never> {
  return {
    ca: r.ca,
    serial: r.serial,
    status: r.status,
    revoked_at: r.status === 'revoked' ? (r.revokedAt?.getTime() ?? null) : null,
    reason: r.status === 'revoked' ? (r.reason ?? null) : null,
    not_after: r.notAfter?.getTime() ?? null,
    profile: r.profile ?? null,
  };
}

function fromRow(row: Row): CertificateRecord {
  const rec: CertificateRecord = { ca: row.ca, serial: row.serial, status: row.status };
  if (row.revoked_at !== null) rec.revokedAt = new Date(row.revoked_at);
  if (row.reason !== null) rec.reason = row.reason as ReasonName;
  if (row.not_after !== null) rec.notAfter = new Date(row.not_after);
  if (row.profile !== null) rec.profile = row.profile;
  return rec;
}
