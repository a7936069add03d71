// PostgreSQL schema migrations, applied in order at startup under an advisory lock; schema_version lists those applied.
import type { PoolClient } from 'pg';

/**
 * Advisory lock keys, two-int form: (LOCK_CLASS, n). The class is "ocsp" in ASCII, so our keys stay clear of
 * other applications sharing the database.
 */
export const LOCK_CLASS = 0x6f637370;
export const SCHEMA_LOCK = 0;
export const STATUS_WRITE_LOCK = 1;
/** Per (ca, serial, hash) response locks use this class and a hash of the key as the second int. */
export const RESPONSE_LOCK_CLASS = LOCK_CLASS + 1;

// Same tables as SQLite. Serials and CA names compare bytewise (COLLATE "C"), as in SQLite, whatever the
// database's locale: certificatesDue pages by serial text order. Times are timestamptz (microseconds: ms exact).
export const POSTGRES_MIGRATIONS: readonly string[] = [
  `CREATE TABLE certificates (
     ca          text COLLATE "C" NOT NULL,
     serial      text COLLATE "C" NOT NULL,
     status      text NOT NULL CHECK (status IN ('good', 'revoked')),
     revoked_at  timestamptz,
     reason      text,
     not_after   timestamptz,
     profile     text,
     updated_at  timestamptz NOT NULL,
     PRIMARY KEY (ca, serial)
   )`,
  // Pre-produced responses: several per certificate and hash until cleanup keeps only the latest producedAt.
  `CREATE TABLE responses (
     ca           text COLLATE "C" NOT NULL,
     serial       text COLLATE "C" NOT NULL,
     hash         text NOT NULL,
     produced_at  timestamptz NOT NULL,
     this_update  timestamptz NOT NULL,
     next_update  timestamptz NOT NULL,
     final        boolean NOT NULL DEFAULT false,
     cert_id      bytea NOT NULL,
     der          bytea NOT NULL,
     PRIMARY KEY (ca, serial, hash, produced_at)
   );
   CREATE TABLE status_changes (
     seq     bigserial PRIMARY KEY,
     ca      text COLLATE "C" NOT NULL,
     serial  text COLLATE "C" NOT NULL,
     kind    text NOT NULL CHECK (kind IN ('issued', 'revoked', 'updated')),
     at      timestamptz NOT NULL
   );`,
  // The last full and delta CRL applied per CA (crl-state.ts); CRL numbers as decimal text (up to 160 bits).
  `CREATE TABLE crls (
     ca               text COLLATE "C" NOT NULL,
     kind             text NOT NULL CHECK (kind IN ('full', 'delta')),
     crl_number       text,
     base_crl_number  text,
     this_update      timestamptz NOT NULL,
     next_update      timestamptz,
     freshest_urls    text NOT NULL DEFAULT '',
     applied_at       timestamptz NOT NULL,
     PRIMARY KEY (ca, kind)
   )`,
  // The certificate profile a response was produced under: its HTTP maxAge may differ (RFC 9919 section 6.2).
  `ALTER TABLE responses ADD COLUMN profile text`,
  // Versions for the compare-and-set of stored responses (as in SQLite): the seq of the certificate's latest status
  // change, and the one a response was made from; 0 for what was written before.
  `ALTER TABLE certificates ADD COLUMN status_seq bigint NOT NULL DEFAULT 0;
   ALTER TABLE responses ADD COLUMN status_seq bigint NOT NULL DEFAULT 0;`,
  // Who signed each response (hex SHA-256 of the signer certificate): a rotated signer's responses are re-signed.
  `ALTER TABLE responses ADD COLUMN signer text NOT NULL DEFAULT ''`,
  // Leases (lease-store.ts): the work done once per cluster runs on the responder holding one.
  `CREATE TABLE leases (
     name         text COLLATE "C" PRIMARY KEY,
     holder       text NOT NULL,
     epoch        bigint NOT NULL,
     acquired_at  timestamptz NOT NULL,
     expires_at   timestamptz NOT NULL
   )`,
  // One heartbeat row per responder process: the change it has applied (responder-store.ts, issue 15).
  `CREATE TABLE responders (
     id            text COLLATE "C" PRIMARY KEY,
     host          text NOT NULL,
     pid           integer NOT NULL,
     worker        integer NOT NULL,
     started_at    timestamptz NOT NULL,
     heartbeat_at  timestamptz NOT NULL,
     applied_seq   bigint NOT NULL,
     ready         boolean NOT NULL
   )`,
];

/**
 * Applies the missing migrations in one transaction. The advisory lock makes responders that start together
 * take turns: the first migrates, the others then find nothing left to do.
 */
export async function migrate(client: PoolClient): Promise<void> {
  await client.query('BEGIN');
  try {
    await client.query('SELECT pg_advisory_xact_lock($1, $2)', [LOCK_CLASS, SCHEMA_LOCK]);
    await client.query(
      'CREATE TABLE IF NOT EXISTS schema_version (version integer PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())',
    );
    const { rows } = await client.query<{ v: number }>('SELECT coalesce(max(version), 0)::integer AS v FROM schema_version');
    for (let v = rows[0]!.v; v < POSTGRES_MIGRATIONS.length; v++) {
      await client.query(POSTGRES_MIGRATIONS[v]!);
      await client.query('INSERT INTO schema_version (version) VALUES ($1)', [v + 1]);
    }
    await client.query('COMMIT');
  } catch (e) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw e;
  }
}
