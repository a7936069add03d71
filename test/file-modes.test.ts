// Files and directories ocsp-hsm creates get their documented modes whatever the umask (here 000).
import assert from 'node:assert/strict';
import { chmodSync, existsSync, mkdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { systemClock } from '../src/clock';
import { createFileWithMode, makePrivateDir, PRIVATE_FILE, PUBLIC_FILE, writeFileWithMode } from '../src/file-modes';
import { SqliteStore } from '../src/store/sqlite/sqlite-store';
import { tempDir } from './support/temp';

const mode = (p: string) => statSync(p).mode & 0o777;

describe('file modes under umask 000', () => {
  let previous: number;
  before(() => (previous = process.umask(0)));
  after(() => process.umask(previous));

  it('written files get their mode, also when the file was there with another', () => {
    const dir = tempDir('modes');
    writeFileWithMode(join(dir, 'a.pin'), '1234\n', PRIVATE_FILE);
    writeFileWithMode(join(dir, 'a.pem'), 'cert', PUBLIC_FILE);
    writeFileSync(join(dir, 'old.yaml'), 'x', { mode: 0o666 });
    chmodSync(join(dir, 'old.yaml'), 0o666);
    writeFileWithMode(join(dir, 'old.yaml'), 'server: {}\n', PRIVATE_FILE);
    assert.deepEqual([mode(join(dir, 'a.pin')), mode(join(dir, 'a.pem')), mode(join(dir, 'old.yaml'))], [0o600, 0o644, 0o600]);
    createFileWithMode(join(dir, 'new.db'), PRIVATE_FILE);
    createFileWithMode(join(dir, 'a.pem'), PRIVATE_FILE); // there already: left alone
    assert.deepEqual([mode(join(dir, 'new.db')), mode(join(dir, 'a.pem'))], [0o600, 0o644]);
  });

  it('directories made are 0700; the ones that were there keep their mode', () => {
    const dir = tempDir('modes');
    mkdirSync(join(dir, 'existing'), { mode: 0o755 });
    chmodSync(join(dir, 'existing'), 0o755);
    makePrivateDir(join(dir, 'existing/a/b/c'));
    assert.deepEqual(['existing', 'existing/a', 'existing/a/b', 'existing/a/b/c'].map((d) => mode(join(dir, d))), [0o755, 0o700, 0o700, 0o700]);
    makePrivateDir(join(dir, 'existing/a')); // nothing made, nothing changed
    assert.equal(mode(join(dir, 'existing/a')), 0o700);
  });

  it('the SQLite store: its directory 0700, the database and its -wal and -shm 0600', async () => {
    const file = join(tempDir('modes'), 'data/sub/ocsp-hsm.sqlite');
    const store = new SqliteStore(file, systemClock);
    try {
      await store.putCertificates([{ ca: 'ca', serial: '01', status: 'good', notAfter: new Date(systemClock.now().getTime() + 86_400_000) }]);
      for (const suffix of ['-wal', '-shm']) assert.ok(existsSync(file + suffix), suffix);
      assert.deepEqual([file, file + '-wal', file + '-shm'].map(mode), [0o600, 0o600, 0o600]);
      assert.deepEqual([join(file, '..'), join(file, '../..')].map(mode), [0o700, 0o700]);
    } finally {
      await store.close();
    }
  });
});
