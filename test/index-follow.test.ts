// The index follower on a real SQLite store in a temp dir and a fake clock: change detection (inode, size, mtime),
// all-or-nothing imports, failures kept, logged once and counted, retried once the file changes; its metrics;
// the cas[].index config.
import assert from 'node:assert/strict';
import { mkdirSync, renameSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { Registry } from 'prom-client';
import { FakeClock } from '../src/clock';
import { ConfigError, validateConfig } from '../src/config/load';
import { IndexFollower, PollOutcome } from '../src/ingest/index-follow';
import { IndexFileError, readIndexFile } from '../src/ingest/index-import';
import { IndexMetrics } from '../src/metrics/index-metrics';
import { every } from '../src/presign/schedule';
import { SqliteStore } from '../src/store/sqlite/sqlite-store';
import { tempDir } from './support/temp';

const line = (...f: string[]) => f.join('\t');
const good = (serial: string) => line('V', '271121073233Z', '', serial, 'unknown', `/CN=${serial}`);
const revoked = (serial: string, reason = 'keyCompromise') => line('R', '271121073233Z', `260101100000Z,${reason}`, serial, 'unknown', `/CN=${serial}`);
const text = (...lines: string[]) => lines.map((l) => l + '\n').join('');

describe('index follower', () => {
  let dir: string;
  let file: string;
  let dbFile: string;
  let clock: FakeClock;
  let store: SqliteStore;
  let warnings: { msg: string; fields: Record<string, unknown> }[];
  let infos: string[];
  let counted: string[];
  let applied: number;
  let follower: IndexFollower;

  beforeEach(() => {
    dir = tempDir('index-follow');
    file = join(dir, 'index.txt');
    dbFile = join(dir, 'store.sqlite');
    clock = new FakeClock();
    // No waiting for the write lock: a lock held by another connection fails the write at once.
    store = new SqliteStore(dbFile, clock, { timeoutMs: 0 });
    warnings = [];
    infos = [];
    counted = [];
    applied = 0;
    follower = new IndexFollower({
      store,
      ca: { name: 'ca1', file },
      clock,
      log: { info: (_o, msg) => void infos.push(msg), warn: (fields, msg) => void warnings.push({ msg, fields: fields as Record<string, unknown> }) },
      count: (ca, result) => void counted.push(`${ca}:${result}`),
      onApplied: () => void applied++,
    });
  });
  afterEach(async () => {
    await store.close();
  });

  const statusOf = async (serial: string) => (await store.getCertificate('ca1', serial))?.status ?? 'unknown';
  const status = (o: PollOutcome) => (o.status === 'failed' ? `failed ${o.reason}${o.repeated ? ' (repeated)' : ''}` : o.status);

  it('imports at the first check, then only when the file changed', async () => {
    writeFileSync(file, text(good('1001'), revoked('1002')));
    const first = await follower.poll();
    assert.deepEqual(first, { status: 'imported', entries: 2, result: { inserted: 2, updated: 0, unchanged: 0, keptRevoked: 0 } });
    assert.equal(await statusOf('1001'), 'good');
    assert.equal(await statusOf('1002'), 'revoked');
    assert.equal(applied, 1);
    assert.equal(status(await follower.poll()), 'unchanged');
    assert.equal(applied, 1, 'nothing imported, nothing to tell');

    writeFileSync(file, text(good('1001'), revoked('1002'), good('1003')));
    const second = await follower.poll();
    assert.deepEqual(second, { status: 'imported', entries: 3, result: { inserted: 1, updated: 0, unchanged: 2, keptRevoked: 0 } });
    assert.equal(await statusOf('1003'), 'good');
    assert.deepEqual(counted, ['ca1:ok', 'ca1:ok']);
    assert.deepEqual(infos, ['index.txt imported', 'index.txt imported']);
    assert.deepEqual(warnings, []);
  });

  it('sees a file replaced by rename (as `openssl ca` does) even with the same size and modification time', async () => {
    writeFileSync(file, text(good('1001'), revoked('1002', 'superseded')));
    const second = new Date(Math.floor(Date.now() / 1000) * 1000);
    utimesSync(file, second, second);
    await follower.poll();
    // Same length: one good and one revoked line, the other way round.
    const next = join(dir, 'index.txt.new');
    writeFileSync(next, text(revoked('1001', 'superseded'), good('1002')));
    utimesSync(next, second, second);
    const [a, b] = [statSync(file, { bigint: true }), statSync(next, { bigint: true })];
    assert.deepEqual([b.size, b.mtimeNs], [a.size, a.mtimeNs]);
    renameSync(file, join(dir, 'index.txt.old'));
    renameSync(next, file);
    assert.equal(status(await follower.poll()), 'imported');
    assert.equal(await statusOf('1001'), 'revoked');
  });

  it('sees a file rewritten in place with the same size (modification time)', async () => {
    writeFileSync(file, text(good('1001'), good('1002')));
    await follower.poll();
    writeFileSync(file, text(good('1001'), good('1003')));
    const t = statSync(file).mtime;
    utimesSync(file, t, new Date(t.getTime() + 5000));
    assert.equal(status(await follower.poll()), 'imported');
    assert.equal(await statusOf('1003'), 'good');
  });

  it('a truncated or garbled file writes nothing, keeps the statuses imported before, warns once and counts once', async () => {
    writeFileSync(file, text(good('1001'), good('1002')));
    await follower.poll();
    // Half-written: 2001 is complete but the last line is cut inside its serial field.
    const full = text(good('1001'), revoked('1002'), good('2001'), revoked('2002'));
    writeFileSync(file, full.slice(0, full.lastIndexOf('\t2002') + 3));
    const bad = await follower.poll();
    assert.equal(status(bad), 'failed invalid');
    assert.match((bad as { message: string }).message, /index\.txt:4: expected 6 tab-separated fields, found 4/);
    assert.equal(await statusOf('1002'), 'good', 'the revocation in the same file is not applied');
    assert.equal(await statusOf('2001'), 'unknown', 'nor the complete line before the cut');
    assert.equal(follower.state().failing, true);
    assert.equal(applied, 1);
    assert.equal(warnings.length, 1);
    assert.equal(warnings[0]!.msg, 'index.txt import failed: nothing changed');
    assert.equal(warnings[0]!.fields.reason, 'invalid');

    // The same file at the next checks: nothing read, logged or counted again.
    assert.equal(status(await follower.poll()), 'failed invalid (repeated)');
    assert.equal(status(await follower.poll()), 'failed invalid (repeated)');
    assert.equal(warnings.length, 1);
    assert.deepEqual(counted, ['ca1:ok', 'ca1:invalid']);

    // Another bad version with another error: counted and logged.
    writeFileSync(file, text(good('1001'), line('V', 'garbage', '', '1002', 'unknown', '/CN=x')));
    assert.equal(status(await follower.poll()), 'failed invalid');
    assert.equal(warnings.length, 2);
    assert.match(String(warnings[1]!.fields.err), /index\.txt:2: malformed time "garbage"/);

    // Written out: imported, no longer failing.
    writeFileSync(file, full);
    assert.equal(status(await follower.poll()), 'imported');
    assert.equal(await statusOf('1002'), 'revoked');
    assert.equal(await statusOf('2002'), 'revoked');
    assert.equal(follower.state().failing, false);
    assert.deepEqual(counted, ['ca1:ok', 'ca1:invalid', 'ca1:invalid', 'ca1:ok']);
  });

  it('a file gone for one check is a rename in progress; gone for two, a warning; the statuses stay; back, imported', async () => {
    writeFileSync(file, text(revoked('1001')));
    await follower.poll();
    renameSync(file, join(dir, 'index.txt.old'));
    assert.equal(status(await follower.poll()), 'changing');
    assert.equal(warnings.length, 0);
    assert.equal(follower.state().failing, false);
    assert.equal(status(await follower.poll()), 'failed missing');
    assert.equal(status(await follower.poll()), 'failed missing (repeated)');
    assert.equal(warnings.length, 1);
    assert.match(String(warnings[0]!.fields.err), /cannot read .*index\.txt: ENOENT/);
    assert.deepEqual(counted, ['ca1:ok', 'ca1:missing']);
    assert.equal(follower.state().failing, true);
    assert.equal(await statusOf('1001'), 'revoked');

    renameSync(join(dir, 'index.txt.old'), file);
    assert.equal(status(await follower.poll()), 'imported');
    assert.equal(follower.state().failing, false);
  });

  it('a path that cannot be read is a failure, retried once it changes', async () => {
    // A directory where the file should be: stat works, reading does not (as a file without permission, also for root).
    mkdirSync(file);
    assert.equal(status(await follower.poll()), 'failed unreadable');
    assert.match(String(warnings[0]!.fields.err), /cannot read .*index\.txt: EISDIR/);
    assert.equal(status(await follower.poll()), 'failed unreadable (repeated)');
    assert.equal(warnings.length, 1);
    rmSync(file, { recursive: true });
    writeFileSync(file, text(good('1001')));
    assert.equal(status(await follower.poll()), 'imported');
    assert.deepEqual(counted, ['ca1:unreadable', 'ca1:ok']);
  });

  it('a revocation is final: a V line after R keeps the certificate revoked and is counted', async () => {
    writeFileSync(file, text(revoked('1001', 'superseded')));
    await follower.poll();
    writeFileSync(file, text(good('1001')));
    const o = await follower.poll();
    assert.deepEqual(o, { status: 'imported', entries: 1, result: { inserted: 0, updated: 0, unchanged: 1, keptRevoked: 1 } });
    const rec = await store.getCertificate('ca1', '1001');
    assert.equal(rec?.status, 'revoked');
    assert.equal(rec?.reason, 'superseded');
    assert.equal(follower.state().keptRevoked, 1);
    assert.equal(warnings.length, 1);
    assert.match(warnings[0]!.msg, /kept final revocations as stored/);
    assert.equal(warnings[0]!.fields.keptRevoked, 1);
  });

  it('a store failure writes nothing and is retried at the next check, though the file did not change', async () => {
    writeFileSync(file, text(good('1001')));
    const other = new Database(dbFile);
    try {
      other.prepare('BEGIN IMMEDIATE').run();
      const o = await follower.poll();
      assert.equal(status(o), 'failed store_error');
      assert.match((o as { message: string }).message, /cannot write to the store: the SQLite store stayed locked/);
      assert.equal(status(await follower.poll()), 'failed store_error (repeated)');
      assert.equal(warnings.length, 1, 'logged once');
      assert.deepEqual(counted, ['ca1:store_error', 'ca1:store_error'], 'each attempt counted');
      other.prepare('ROLLBACK').run();
    } finally {
      other.close();
    }
    assert.equal(status(await follower.poll()), 'imported');
    assert.equal(await statusOf('1001'), 'good');
  });

  it('on the daemon schedule: imported at startup, a change answered within one interval', async () => {
    writeFileSync(file, text(good('1001')));
    const schedule = every(clock, 10_000, () => follower.poll(), (e) => assert.fail(e), 0);
    try {
      clock.advance(0);
      await follower.settled();
      assert.equal(await statusOf('1001'), 'good');
      writeFileSync(file, text(revoked('1001')));
      clock.advance(9_999);
      await follower.settled();
      assert.equal(await statusOf('1001'), 'good', 'not before the interval');
      clock.advance(1);
      await follower.settled();
      assert.equal(await statusOf('1001'), 'revoked');
      assert.equal(follower.state().lastImportAt?.getTime(), clock.now().getTime());
    } finally {
      schedule.stop();
    }
  });

  it('exports attempts by result, the last import time, failing and kept revocations per CA', async () => {
    const registry = new Registry();
    const metrics = new IndexMetrics(registry);
    const m = new IndexFollower({ store, ca: { name: 'ca1', file }, clock, log: { info: () => undefined, warn: () => undefined }, count: (ca, r) => metrics.count(ca, r) });
    metrics.states = () => [m.state()];
    const sample = async (name: string) => {
      const found = (await registry.getMetricsAsJSON()).find((x) => x.name === name)!;
      return Object.fromEntries(found.values.map((v) => [Object.values(v.labels).join(','), v.value]));
    };
    assert.deepEqual(await sample('ocsp_index_import_failing'), { ca1: 0 });
    assert.deepEqual(await sample('ocsp_index_last_import_timestamp_seconds'), {}, 'absent before the first import');
    writeFileSync(file, text(revoked('1001')));
    await m.poll();
    writeFileSync(file, text(good('1001'), good('1002')));
    await m.poll();
    writeFileSync(file, 'not an index\n');
    await m.poll();
    assert.deepEqual(await sample('ocsp_index_imports_total'), { 'ca1,ok': 2, 'ca1,invalid': 1 });
    assert.deepEqual(await sample('ocsp_index_import_failing'), { ca1: 1 });
    assert.deepEqual(await sample('ocsp_index_last_import_timestamp_seconds'), { ca1: clock.now().getTime() / 1000 });
    assert.deepEqual(await sample('ocsp_index_kept_revoked_entries'), { ca1: 1 });
    metrics.states = () => [];
    assert.deepEqual(await sample('ocsp_index_import_failing'), {}, 'a CA no longer followed (reload) disappears');
  });
});

describe('readIndexFile (shared by `import index` and the follower)', () => {
  it('names the file and the cause when it cannot be read', () => {
    assert.throws(
      () => readIndexFile('/nonexistent/index.txt', 'ca1'),
      (e: unknown) => e instanceof IndexFileError && e.reason === 'missing' && e.message === 'cannot read /nonexistent/index.txt: ENOENT',
    );
    const dir = tempDir('index-dir');
    assert.throws(() => readIndexFile(dir, 'ca1'), (e: unknown) => e instanceof IndexFileError && e.reason === 'unreadable' && /EISDIR/.test(e.message));
  });
});

describe('cas[].index config', () => {
  const minimal = (index: unknown) => ({
    tokens: [{ name: 'hsm', module: '/usr/lib/softhsm/libsofthsm2.so', tokenLabel: 'ocsp', pin: { env: 'OCSP_PIN' } }],
    cas: [{ name: 'ca1', certificate: 'ca.pem', signer: { token: 'hsm', key: { label: 'resp' } }, index }],
  });

  it('takes a path (checked every 10s) or { file, interval }; relative paths resolve against the config file', () => {
    const loaded = validateConfig(minimal('ca/index.txt'), '/etc/ocsp-hsm/config.yaml');
    assert.deepEqual(loaded.config.cas[0]!.index, { file: 'ca/index.txt', interval: 10_000 });
    assert.equal(loaded.path(loaded.config.cas[0]!.index!.file), '/etc/ocsp-hsm/ca/index.txt');
    assert.deepEqual(validateConfig(minimal({ file: '/var/lib/ca/index.txt', interval: '1s' }), 't.yaml').config.cas[0]!.index, {
      file: '/var/lib/ca/index.txt',
      interval: 1000,
    });
    assert.equal(validateConfig(minimal(undefined), 't.yaml').config.cas[0]!.index, undefined);
  });

  for (const [name, index, pattern] of [
    ['a number', 5, /cas\[0\]\.index: a path to index\.txt, or \{ file: PATH, interval: 10s \}/],
    ['an empty path', '', /cas\[0\]\.index\.file: /],
    ['a bad interval', { file: 'index.txt', interval: 'often' }, /cas\[0\]\.index\.interval: invalid duration "often"/],
    ['an unknown key', { file: 'index.txt', every: '1s' }, /cas\[0\]\.index: Unrecognized key\(s\) in object: 'every'/],
  ] as const) {
    it(`refuses ${name}, naming the field`, () => {
      assert.throws(() => validateConfig(minimal(index), 't.yaml'), (e: unknown) => e instanceof ConfigError && pattern.test(e.message));
    });
  }
});
