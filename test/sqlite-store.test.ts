// The StatusStore contract on SQLite, plus what is specific to a file: persistence and migrations.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { FakeClock } from '../src/clock';
import { SqliteStatusStore } from '../src/store/sqlite/sqlite-status-store';
import { SQLITE_MIGRATIONS } from '../src/store/sqlite/migrations';
import { describeStatusStore } from './support/describe-status-store';
import { tempDir } from './support/temp';

const tempFile = () => join(tempDir('sqlite'), 'sub', 'store.sqlite');

describeStatusStore('SQLite', async () => new SqliteStatusStore(tempFile(), new FakeClock()));

describe('SqliteStatusStore file', () => {
  it('creates its directory, persists across reopen, and migrates only once', async () => {
    const file = tempFile();
    const a = new SqliteStatusStore(file, new FakeClock());
    await a.putCertificates([{ ca: 'c', serial: 'ab', status: 'good' }]);
    await a.close();
    const b = new SqliteStatusStore(file, new FakeClock());
    assert.deepEqual(await b.getCertificate('c', 'ab'), { ca: 'c', serial: 'ab', status: 'good' });
    await b.close();
    const db = new Database(file);
    assert.equal(db.pragma('user_version', { simple: true }), SQLITE_MIGRATIONS.length);
    db.close();
  });

  it('stamps updated_at from the injected clock', async () => {
    const file = tempFile();
    const clock = new FakeClock('2026-03-04T05:06:07Z');
    const s = new SqliteStatusStore(file, clock);
    await s.revoke('c', '1', new Date('2026-03-01T00:00:00Z'), 'superseded');
    await s.close();
    const db = new Database(file);
    const row = db.prepare('SELECT updated_at FROM certificates').get() as { updated_at: number };
    assert.equal(row.updated_at, clock.now().getTime());
    db.close();
  });
});
