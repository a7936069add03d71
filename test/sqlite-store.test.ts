// The StatusStore contract on SQLite, plus what is specific to a file: persistence and migrations.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { FakeClock, systemClock } from '../src/clock';
import { SqliteStore } from '../src/store/sqlite/sqlite-store';
import { SQLITE_MIGRATIONS } from '../src/store/sqlite/migrations';
import { describeStore } from './support/describe-store';
import { describeLeaseStore } from './support/describe-lease-store';
import { beatOf } from './support/describe-responders';
import { tempDir } from './support/temp';

const tempFile = () => join(tempDir('sqlite'), 'sub', 'store.sqlite');

const files = new WeakMap<object, string>();
describeStore(
  'SQLite',
  async () => {
    const file = tempFile();
    const s = new SqliteStore(file, new FakeClock());
    files.set(s, file);
    return s;
  },
  async (s) => new SqliteStore(files.get(s)!, new FakeClock()),
);

describeLeaseStore(
  'SQLite',
  async (clock) => {
    const file = tempFile();
    const s = new SqliteStore(file, clock);
    files.set(s, file);
    return s;
  },
  async (s, clock) => new SqliteStore(files.get(s)!, clock),
);

describe('SqliteStore file', () => {
  it('creates its directory, persists across reopen, and migrates only once', async () => {
    const file = tempFile();
    const a = new SqliteStore(file, new FakeClock());
    await a.putCertificates([{ ca: 'c', serial: 'ab', status: 'good' }]);
    await a.close();
    const b = new SqliteStore(file, new FakeClock());
    assert.deepEqual(await b.getCertificate('c', 'ab'), { ca: 'c', serial: 'ab', status: 'good', version: 1 });
    await b.close();
    const db = new Database(file);
    assert.equal(db.pragma('user_version', { simple: true }), SQLITE_MIGRATIONS.length);
    db.close();
  });

  it('a status write waits for another process\'s write lock instead of failing, and the event loop runs meanwhile', async () => {
    const file = tempFile();
    const s = new SqliteStore(file, systemClock);
    await s.putCertificates([{ ca: 'c', serial: '1', status: 'good' }]);
    // Another process (a pre-signer batch, an import) holds SQLite's write lock.
    const other = new Database(file);
    other.exec('BEGIN IMMEDIATE');
    other.prepare("INSERT INTO status_changes (ca, serial, kind, at) VALUES ('c', 'x', 'issued', 0)").run();
    let settled = false;
    const revoked = s.revoke('c', '1', new Date('2026-03-01T00:00:00Z'), 'keyCompromise').finally(() => (settled = true));
    let turns = 0;
    const started = performance.now();
    while (performance.now() - started < 200) {
      await new Promise((r) => setImmediate(r));
      turns++;
    }
    assert.equal(settled, false, 'still waiting for the lock');
    assert.ok(turns > 50, `the event loop turned ${turns} times while the write waited`);
    other.exec('COMMIT');
    other.close();
    assert.equal((await revoked).outcome, 'updated');
    assert.equal((await s.getCertificate('c', '1'))!.reason, 'keyCompromise');
    await s.close();
  });

  it('a write that waited longer than store.writeTimeout fails naming it, and writes nothing', async () => {
    const file = tempFile();
    const s = new SqliteStore(file, systemClock, { timeoutMs: 50 });
    const other = new Database(file);
    other.exec('BEGIN IMMEDIATE');
    await assert.rejects(s.revoke('c', '2', new Date('2026-03-01T00:00:00Z'), 'keyCompromise'), (e: Error) => e.name === 'StoreBusyError' && /store\.writeTimeout/.test(e.message));
    other.exec('ROLLBACK');
    other.close();
    assert.equal(await s.getCertificate('c', '2'), undefined);
    await s.close();
  });

  it('stamps updated_at from the injected clock', async () => {
    const file = tempFile();
    const clock = new FakeClock('2026-03-04T05:06:07Z');
    const s = new SqliteStore(file, clock);
    await s.revoke('c', '1', new Date('2026-03-01T00:00:00Z'), 'superseded');
    await s.close();
    const db = new Database(file);
    const row = db.prepare('SELECT updated_at FROM certificates').get() as { updated_at: number };
    assert.equal(row.updated_at, clock.now().getTime());
    db.close();
  });

  it('ages heartbeat rows by its clock, prunes the old ones, and lists the lease table once there is one', async () => {
    const file = tempFile();
    const clock = new FakeClock('2026-03-04T05:06:07Z');
    const s = new SqliteStore(file, clock);
    await s.beat(beatOf('old'));
    clock.advance(4000);
    await s.beat(beatOf('new', { appliedSeq: 11 }));
    clock.advance(500);
    assert.deepEqual((await s.responders()).map((r) => [r.id, r.ageMs, r.heartbeatAt.toISOString()]), [
      ['new', 500, '2026-03-04T05:06:11.000Z'],
      ['old', 4500, '2026-03-04T05:06:07.000Z'],
    ]);
    assert.equal(await s.pruneResponders(1000), 1);
    assert.deepEqual((await s.responders()).map((r) => r.id), ['new']);
    // The lease keeper's table (its own migration): read when present, times in epoch milliseconds.
    const db = new Database(file);
    db.exec('CREATE TABLE IF NOT EXISTS leases (name TEXT PRIMARY KEY, holder TEXT, epoch INTEGER NOT NULL, acquired_at INTEGER NOT NULL, expires_at INTEGER NOT NULL)');
    const now = clock.now().getTime();
    db.prepare('INSERT INTO leases (name, holder, epoch, acquired_at, expires_at) VALUES (?, ?, ?, ?, ?)').run('presign', 'new', 3, now - 1000, now + 9000);
    db.close();
    assert.deepEqual(await s.listLeases(), [{ name: 'presign', holder: 'new', epoch: 3, expiresInMs: 9000 }]);
    await s.close();
  });
});
