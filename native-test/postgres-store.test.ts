// The Store contract on a real throwaway PostgreSQL cluster, plus what is PostgreSQL's own: concurrent migrations,
// connection errors without the password, NOTIFY to other connections, listener reconnection, bytewise serial order.
import assert from 'node:assert/strict';
import { inspect } from 'node:util';
import { after, describe, it } from 'node:test';
import { Client, Pool } from 'pg';
import { FakeClock } from '../src/clock';
import { validateConfig } from '../src/config/load';
import { openStore } from '../src/cli/store';
import { POSTGRES_MIGRATIONS } from '../src/store/postgres/migrations';
import { DUE_SQL, dueParams, indexedRead } from '../src/store/postgres/due';
import { PostgresStore } from '../src/store/postgres/postgres-store';
import type { Store } from '../src/store/response-store';
import { describeStore, response, stamp } from '../test/support/describe-store';
import { describeLeaseStore } from '../test/support/describe-lease-store';
import { beatOf } from '../test/support/describe-responders';
import { waitFor } from './support/harness';
import { freePort, postgresCluster } from './support/postgres';

const urls = new WeakMap<Store, string>();
const opened: Store[] = [];
const open = async (url: string, clock = new FakeClock(), warn?: (m: string) => void): Promise<PostgresStore> => {
  const s = await PostgresStore.open({ url, poolSize: 4, clock, ...(warn ? { warn } : {}) });
  urls.set(s, url);
  opened.push(s);
  return s;
};
// Stores a failed test left open would keep this process alive (pooled connections): close them all (closing twice is fine).
after(() => Promise.all(opened.map((s) => s.close())));
const freshUrl = async () => {
  const pg = await postgresCluster();
  return pg.url(await pg.createDatabase());
};

/** Runs `fn` with a plain connection to the database, for looking behind the store's back. */
async function withClient<T>(url: string, fn: (c: Client) => Promise<T>): Promise<T> {
  const c = new Client({ connectionString: url, connectionTimeoutMillis: 10_000, query_timeout: 30_000 });
  await c.connect();
  try {
    return await fn(c);
  } finally {
    await c.end();
  }
}

describeStore(
  'PostgreSQL',
  async () => open(await freshUrl()),
  async (s) => open(urls.get(s)!),
);

describeLeaseStore(
  'PostgreSQL',
  async (clock) => open(await freshUrl(), clock),
  async (s, clock) => open(urls.get(s)!, clock),
);

describe('PostgresStore', () => {
  it('migrates a new database once when several responders start together, and again finds nothing to do', async () => {
    const url = await freshUrl();
    const together = await Promise.all([open(url), open(url), open(url), open(url)]);
    await open(url);
    const versions = await withClient(url, async (c) => (await c.query<{ version: number }>('SELECT version FROM schema_version ORDER BY version')).rows);
    assert.deepEqual(versions.map((r) => r.version), POSTGRES_MIGRATIONS.map((_, i) => i + 1));
    await together[0]!.putCertificates([{ ca: 'c', serial: '1', status: 'good' }]);
    assert.deepEqual(await together[3]!.getCertificate('c', '1'), { ca: 'c', serial: '1', status: 'good', version: 1 });
  });

  it('names store.url, without its password, when the server is unreachable or the database missing', async () => {
    const pg = await postgresCluster();
    const closedPort = await freePort();
    const cases = [
      { url: `postgres://postgres:s3cret-pw@127.0.0.1:${closedPort}/x`, cause: /ECONNREFUSED/ },
      { url: `postgresql://postgres:s3cret-pw@127.0.0.1:${pg.port}/no_such_db`, cause: /database "no_such_db" does not exist/ },
      { url: `postgres://postgres@127.0.0.1:${pg.port}/no_such_db?password=s3cret-pw`, cause: /does not exist/ },
    ];
    for (const { url, cause } of cases) {
      const loaded = validateConfig(minimalConfig({ type: 'postgres', url }), '/tmp/ocsp-hsm-test.yaml');
      const started = Date.now();
      const err = await openStore(loaded, new FakeClock()).then(
        () => assert.fail('opened a store on a bad URL'),
        (e: Error) => e,
      );
      assert.ok(Date.now() - started < 15_000, 'failed within the connect timeout');
      assert.match(err.message, /^store\.url \(postgres(ql)?:\/\/postgres(:\*\*\*)?@127\.0\.0\.1:\d+\/\w+(\?password=\*\*\*)?\): /);
      assert.match(err.message, cause);
      for (const text of [err.message, String(err.stack), inspect(err, { depth: 5 })]) assert.ok(!text.includes('s3cret-pw'), text);
    }
  });

  it('accepts store.url alone as PostgreSQL and rejects other schemes naming the field', () => {
    const { config } = validateConfig(minimalConfig({ url: 'postgres://u@h/db' }), 'x.yaml');
    assert.deepEqual(config.store, { type: 'postgres', url: 'postgres://u@h/db', poolSize: 10, writeTimeout: 30_000, maxStaleness: 2_000 });
    assert.throws(() => validateConfig(minimalConfig({ type: 'postgres', url: 'mysql://u:pw@h/db' }), 'x.yaml'), (e: Error) => {
      assert.match(e.message, /store\.url: a postgres:\/\/ or postgresql:\/\/ URL/);
      assert.ok(!e.message.includes('pw@'));
      return true;
    });
  });

  it('calls a watcher on another connection when a status write commits, and again after its connection is cut', async () => {
    const url = await freshUrl();
    const warnings: string[] = [];
    const writer = await open(url);
    // Trust authentication ignores the password; it is here to prove the warnings never carry it.
    const reader = await open(url.replace('//postgres@', '//postgres:s3cret-pw@'), new FakeClock(), (m) => warnings.push(m));
    let calls = 0;
    const stop = reader.watch(() => calls++);
    // The first call says "listening now": writes before it may have gone unannounced.
    assert.ok(await waitFor(() => calls > 0, 10_000), 'listening within 10 s');
    calls = 0;
    await writer.revoke('ca1', '77', new Date('2026-05-01T00:00:00.123Z'), 'keyCompromise');
    assert.ok(await waitFor(() => calls > 0, 5000), 'notified of the revocation within 5 s');
    assert.equal(reader.mayHaveChanged(), false, 'PostgreSQL pushes instead');

    const killed = await withClient(url, async (c) =>
      (await c.query(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() AND query ILIKE 'LISTEN%'`)).rowCount,
    );
    assert.equal(killed, 1, 'one listening connection');
    calls = 0;
    assert.ok(await waitFor(() => calls > 0 && warnings.length > 0, 10_000), 'reconnected (and said so) within 10 s');
    calls = 0;
    await writer.putCertificates([{ ca: 'ca1', serial: '78', status: 'good' }]);
    assert.ok(await waitFor(() => calls > 0, 5000), 'notified again after reconnecting');
    assert.ok(warnings.every((w) => !w.includes('s3cret')));
    stop();
  });

  it('round-trips times to the millisecond and stamps updated_at from the injected clock', async () => {
    const url = await freshUrl();
    const clock = new FakeClock('2026-03-04T05:06:07.089Z');
    const s = await open(url, clock);
    const revokedAt = new Date('2026-05-01T12:00:00.123Z');
    await s.revoke('c', '1', revokedAt, 'superseded');
    assert.deepEqual((await s.getCertificate('c', '1'))!.revokedAt, revokedAt);
    const [final] = await stamp(s, [response('1', 'sha256', 0, { producedAt: new Date('2026-06-01T00:00:00.999Z'), nextUpdate: new Date('9999-12-31T23:59:59.999Z'), final: true })]);
    await s.putResponses([final!]);
    assert.deepEqual(await s.getResponse('ca1', '1', 'sha256'), final);
    const updatedAt = await withClient(url, async (c) => (await c.query<{ updated_at: Date }>('SELECT updated_at FROM certificates')).rows[0]!.updated_at);
    assert.equal(updatedAt.getTime(), clock.now().getTime());
  });

  it('answers lookups made together with one query; one made after a write committed sees it, queries for the same key in flight or not', async () => {
    const s = await open(await freshUrl());
    const serials = Array.from({ length: 40 }, (_, i) => (0x700 + i).toString(16));
    await s.putCertificates(serials.map((serial) => ({ ca: 'ca1', serial, status: 'good' as const })));
    await s.putResponses(await stamp(s, serials.map((serial) => response(serial, 'sha1', 0))));
    const before = s.lookupStats;
    const found = await Promise.all(serials.map((serial) => s.getResponse('ca1', serial, 'sha1')));
    assert.deepEqual(found.map((r) => r?.serial), serials);
    assert.deepEqual(s.lookupStats, { queries: before.queries + 1, keys: before.keys + 40 }, 'one query for the forty');
    // Lookups of the serial being revoked are kept in flight without pause; once revoke() has returned, the next
    // lookup must not get the response the revocation deleted, whatever query for the same key was in flight.
    let k = 0;
    let stop = false;
    const pounding = Promise.all(Array.from({ length: 16 }, async () => {
      while (!stop) await s.getResponse('ca1', serials[k]!, 'sha1');
    }));
    try {
      for (; k < serials.length; k++) {
        await s.revoke('ca1', serials[k]!, new Date('2026-05-01T00:00:00Z'), 'keyCompromise');
        assert.equal(await s.getResponse('ca1', serials[k]!, 'sha1'), undefined, `serial ${serials[k]}: a response the revocation deleted`);
        assert.equal((await s.getCertificate('ca1', serials[k]!))?.status, 'revoked');
      }
    } finally {
      stop = true;
      await pounding;
    }
  });

  it('pages serials in bytewise order although the database collation is ICU en-US', async () => {
    const url = await freshUrl();
    const s = await open(url);
    const serials = ['b', 'a1', 'a-1', 'A2', '_x', 'B0'];
    await s.putCertificates(serials.map((serial) => ({ ca: 'ca1', serial, status: 'good' as const })));
    const bytewise = [...serials].sort();
    const localeOrder = await withClient(url, async (c) => (await c.query<{ s: string[] }>('SELECT array_agg(x ORDER BY x) AS s FROM unnest($1::text[]) x', [serials])).rows[0]!.s);
    assert.notDeepEqual(localeOrder, bytewise, 'the database collation is not bytewise, so this test means something');
    const q = { ca: 'ca1', hash: 'sha1' as const, refreshBefore: new Date(0), refreshAfter: 0, refreshAt: new Date(0), needFinal: false, signer: 'S1' };
    assert.deepEqual((await s.certificatesDue({ ...q, after: '', limit: 100 })).map((c) => c.serial), bytewise);
    assert.deepEqual((await s.certificatesDue({ ...q, after: 'B0', limit: 2 })).map((c) => c.serial), bytewise.slice(2, 4));
  });

  it('an import in file order and a response batch in serial order never deadlock: both lock rows in serial order', async () => {
    const url = await freshUrl();
    const s = await open(url);
    // Serials between "300" and "900" bytewise, more than one chunk (1,000) of them.
    const fillers = Array.from({ length: 1_500 }, (_, i) => `4${String(i).padStart(4, '0')}`);
    await s.putCertificates(['300', '900', ...fillers].map((serial) => ({ ca: 'ca1', serial, status: 'good' as const })));
    // A response batch (putResponses) has locked 300 FOR SHARE and will ask for 900 next.
    const batch = new Client({ connectionString: url });
    await batch.connect();
    await batch.query('BEGIN');
    // This side finds a deadlock first (and is aborted, failing the test); the import would retry and hide it.
    await batch.query("SET LOCAL deadlock_timeout = '10ms'");
    await batch.query("SELECT 1 FROM certificates WHERE ca = 'ca1' AND serial = '300' FOR SHARE");
    // An import in file order: 900 in its first chunk, 300 in its second.
    const at = new Date('2026-05-01T00:00:00Z');
    const writes = ['900', ...fillers, '300'].map((serial) => ({ ca: 'ca1', serial, status: 'revoked' as const, revokedAt: at, reason: 'superseded' as const }));
    const imported = s.putCertificates(writes);
    await new Promise((r) => setTimeout(r, 300)); // the import is now waiting for 300
    // In file order the import would hold 900 here: this would wait for it, and PostgreSQL would abort one side.
    await batch.query("SELECT 1 FROM certificates WHERE ca = 'ca1' AND serial = '900' FOR SHARE");
    await batch.query('COMMIT');
    await batch.end();
    assert.equal((await imported).updated, writes.length);
    assert.equal((await s.getCertificate('ca1', '300'))!.status, 'revoked');
    await s.close();
  });

  it('keeps revocation final and the change log in commit order under concurrent writers on two connections', async () => {
    const url = await freshUrl();
    const [a, b] = [await open(url), await open(url)];
    const serials = Array.from({ length: 40 }, (_, i) => `s${i}`);
    const at = new Date('2026-05-01T00:00:00Z');
    await Promise.all(
      serials.flatMap((serial, i) => [
        (i % 2 ? a : b).revoke('ca1', serial, at, 'keyCompromise'),
        (i % 2 ? b : a).putCertificates([{ ca: 'ca1', serial, status: 'good' }, { ca: 'ca1', serial: serials[(i + 7) % 40]!, status: 'good' }]),
      ]),
    );
    for (const serial of serials) assert.equal((await a.getCertificate('ca1', serial))!.status, 'revoked', serial);
    const changes = await b.changesSince(0, 1000);
    assert.ok(changes.every((c, i) => i === 0 || c.seq > changes[i - 1]!.seq));
    assert.deepEqual(new Set(changes.filter((c) => c.kind === 'revoked').map((c) => c.serial)), new Set(serials));
  });

  it('stores responses from two connections as if one after the other: never a final one and a newer one beside it', async () => {
    const url = await freshUrl();
    const [a, b] = [await open(url), await open(url)];
    const final = (serial: string) => response(serial, 'sha1', 0, { final: true, nextUpdate: new Date('9999-12-31T23:59:59Z') });
    for (let i = 0; i < 20; i++) {
      // Each batch puts a final response for one certificate and a newer one for the other: in any serial order
      // the second batch finds one final response and skips its newer response there.
      const [x, y] = [`x${i}`, `y${i}`];
      const [batch1, batch2] = [await stamp(a, [final(x), response(y, 'sha1', 30)]), await stamp(a, [final(y), response(x, 'sha1', 30)])];
      const [r1, r2] = await Promise.all([a.putResponses(batch1), b.putResponses(batch2)]);
      assert.equal(r1.skippedFinal + r2.skippedFinal, 1, `round ${i}: ${JSON.stringify([r1, r2])}`);
    }
  });

  it('survives its connection being cut mid-import: the import fails whole, the process lives, the store goes on', async () => {
    const url = await freshUrl();
    const s = await open(url);
    const records = Array.from({ length: 50_000 }, (_, i) => ({ ca: 'ca1', serial: i.toString(16), status: 'good' as const }));
    const admin = new Client({ connectionString: url, connectionTimeoutMillis: 10_000, query_timeout: 30_000 });
    await admin.connect();
    try {
      let settled = false;
      const outcome = s.putCertificates(records).then(
        () => 'committed',
        (e: Error) => e,
      ).finally(() => (settled = true));
      let cut = false;
      await waitFor(async () => {
        if (settled) return true;
        const r = await admin.query(
          `SELECT pg_terminate_backend(pid) FROM pg_stat_activity
           WHERE datname = current_database() AND pid <> pg_backend_pid() AND xact_start IS NOT NULL`,
        );
        cut = (r.rowCount ?? 0) > 0;
        return cut;
      }, 20_000, 2);
      assert.ok(cut, 'cut the importing connection while it worked');
      assert.ok((await outcome) instanceof Error, 'the import failed');
    } finally {
      await admin.end();
    }
    assert.equal(await s.getCertificate('ca1', '0'), undefined, 'nothing of it was written');
    await s.ping();
    assert.deepEqual(await s.putCertificates(records.slice(0, 2)), { inserted: 2, updated: 0, unchanged: 0, keptRevoked: 0 });
  });

  it('of eight responders claiming a lease nobody held, on eight connections at once, exactly one gets it', async () => {
    const url = await freshUrl();
    const clock = new FakeClock();
    const stores = await Promise.all(Array.from({ length: 8 }, () => open(url, clock)));
    const got = await Promise.all(stores.map((s, i) => s.acquireLease({ name: 'services', holder: `R${i}`, ttlMs: 10_000 })));
    const holders = new Set(got.map((l) => `${l.holder}/${l.epoch}`));
    assert.equal(holders.size, 1, `every claimant sees the one holder: ${[...holders].join(', ')}`);
    assert.equal(got[0]!.epoch, 1);
  });

  it('a takeover waits for a batch the old holder is storing under its fence, and then sees it; the holder\'s renewal does not wait', async () => {
    const url = await freshUrl();
    const clock = new FakeClock();
    const [a, b] = [await open(url, clock), await open(url, clock)];
    const held = await a.acquireLease({ name: 'services', holder: 'A', ttlMs: 10_000 });
    const [r] = await stamp(a, [response('w1', 'sha1', 0)]);
    // The holder's batch transaction, stopped between its fence check (the row FOR KEY SHARE, as putResponses takes
    // it) and its commit.
    await withClient(url, async (c) => {
      await c.query('BEGIN');
      const { rows } = await c.query<{ epoch: string }>("SELECT epoch FROM leases WHERE name = 'services' FOR KEY SHARE");
      assert.equal(Number(rows[0]!.epoch), held.epoch);
      clock.advance(3_000);
      const renewed = await a.acquireLease({ name: 'services', holder: 'A', ttlMs: 10_000, heldEpoch: held.epoch });
      assert.equal(renewed.epoch, held.epoch, 'renewed meanwhile');
      assert.equal((await b.acquireLease({ name: 'services', holder: 'B', ttlMs: 10_000 })).holder, 'A', 'a standby is told at once');
      clock.advance(10_000);
      let settled = false;
      const taking = b.acquireLease({ name: 'services', holder: 'B', ttlMs: 10_000 }).finally(() => (settled = true));
      await new Promise((res) => setTimeout(res, 300));
      assert.equal(settled, false, 'the takeover waits for the batch to commit');
      await c.query(
        `INSERT INTO responses (ca, serial, hash, produced_at, this_update, next_update, final, cert_id, der, status_seq, signer)
         VALUES ('ca1', 'w1', 'sha1', now(), now(), now(), false, '\\x00', '\\x00', $1, 'S1')`,
        [r!.statusVersion],
      );
      await c.query('COMMIT');
      assert.deepEqual({ holder: (await taking).holder, epoch: (await taking).epoch }, { holder: 'B', epoch: held.epoch + 1 });
    });
    assert.ok(await b.getResponse('ca1', 'w1', 'sha1'), 'the new holder reads what the old one stored');
    // From now on the old holder's fence stops its batches.
    assert.deepEqual(await a.putResponses([r!], { name: 'services', holder: 'A', epoch: held.epoch }), { stored: 0, skippedFinal: 0, stale: 1 });
  });

  it('ages heartbeat rows by the server\'s clock, prunes the old ones, and lists the lease table once there is one', async () => {
    const url = await freshUrl();
    // A fake clock far from the server's: the rows' ages come from the server alone.
    const s = await open(url, new FakeClock('2001-01-01T00:00:00Z'));
    await s.beat(beatOf('old'));
    await new Promise((r) => setTimeout(r, 300));
    await s.beat(beatOf('new'));
    const rows = await s.responders();
    assert.deepEqual(rows.map((r) => r.id), ['new', 'old']);
    assert.ok(rows[0]!.ageMs >= 0 && rows[0]!.ageMs < 250, `new: ${rows[0]!.ageMs}`);
    assert.ok(rows[1]!.ageMs >= 290 && rows[1]!.ageMs < 5000, `old: ${rows[1]!.ageMs}`);
    assert.ok(Math.abs(rows[1]!.heartbeatAt.getTime() - Date.now()) < 60_000, 'stamped by the server, not the fake clock');
    assert.equal(await s.pruneResponders(200), 1);
    assert.deepEqual((await s.responders()).map((r) => r.id), ['new']);
    // The lease keeper's table (its own migration): read when present.
    await withClient(url, (c) =>
      c.query(`CREATE TABLE IF NOT EXISTS leases (name text PRIMARY KEY, holder text, epoch bigint NOT NULL, acquired_at timestamptz NOT NULL, expires_at timestamptz NOT NULL);
               INSERT INTO leases (name, holder, epoch, acquired_at, expires_at) VALUES ('presign', 'new', 3, now(), now() + interval '9 seconds')`),
    );
    const [lease] = await s.listLeases();
    assert.deepEqual({ ...lease, expiresInMs: undefined }, { name: 'presign', holder: 'new', epoch: 3, expiresInMs: undefined });
    assert.ok(lease!.expiresInMs > 8000 && lease!.expiresInMs <= 9000, String(lease!.expiresInMs));
  });

  it('a due count planned while responses was empty does not re-read the rows stored while it runs (index probes, whatever the plan)', async () => {
    // Planned on a nearly empty `responses` (in the revocation race: the health check's count as the pre-signer began
    // storing), the count read `responses` sequentially inside a nested loop, once per certificate, rows stored
    // after it started included: it ran for minutes on a core of its own and held its connection past the
    // responder's stop. Here the same: the count starts on an empty table while another connection stores 150,000.
    const url = await freshUrl();
    const s = await open(url);
    const certificates = 50_000;
    await withClient(url, async (c) => {
      await c.query(`INSERT INTO certificates (ca, serial, status, not_after, updated_at)
        SELECT 'ca1', lpad(to_hex(i), 8, '0'), 'good', now() + interval '1 year', now() FROM generate_series(1, $1::int) i`, [certificates]);
      await c.query('ANALYZE');
    });
    const q = { ca: 'ca1', hash: 'sha1' as const, refreshBefore: new Date(Date.now() - 3_600_000), refreshAfter: 0, refreshAt: new Date(Date.now() - 3_600_000), needFinal: false, signer: 'new', notExpiredAt: new Date() };
    // A ceiling far above what index probes need (well under a second here) and far below the stale plan (minutes).
    const within = <T>(what: string, p: Promise<T>): Promise<T> =>
      Promise.race([p, new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`${what} took over 20 s`)), 20_000).unref())]);
    const counting = within('countDue', s.countDue(q));
    await withClient(url, async (c) => {
      // Three responses per certificate, none by the signer asked about: every certificate stays due.
      for (let k = 0; k < 3; k++) {
        for (let from = 1; from <= certificates; from += 5_000) {
          await c.query(`INSERT INTO responses (ca, serial, hash, produced_at, this_update, next_update, cert_id, der, status_seq, signer)
            SELECT 'ca1', lpad(to_hex(i), 8, '0'), 'sha1', now() - ($3::int || ' minutes')::interval, now(), now() + interval '1 hour', '\\x00', '\\x00', 0, 'old'
            FROM generate_series($1::int, $2::int) i`, [from, from + 4_999, k + 1]);
        }
      }
    });
    assert.equal(await counting, certificates);
    assert.equal(await within('countDue', s.countDue(q)), certificates);
    assert.equal((await within('certificatesDue', s.certificatesDue({ ...q, after: '', limit: 1000 }))).length, 1000);
    assert.ok((await within('earliestNextUpdate', s.earliestNextUpdate('ca1'))) instanceof Date);
    assert.equal(await within('deleteSuperseded', s.deleteSuperseded()), 2 * certificates);
  });

  it('plans the due count and page as one index probe of responses per certificate, whatever the statistics say', async () => {
    const url = await freshUrl();
    await open(url); // migrated
    const pool = new Pool({ connectionString: url, max: 1 });
    try {
      const q = { ca: 'ca1', hash: 'sha1' as const, refreshBefore: new Date(), refreshAfter: 0, refreshAt: new Date(), needFinal: false, signer: 'k1', notExpiredAt: new Date() };
      const insert = (table: string, n: number) =>
        table === 'certificates'
          ? pool.query(`INSERT INTO certificates (ca, serial, status, updated_at) SELECT 'ca1', lpad(to_hex(i), 8, '0'), 'good', now() FROM generate_series(1, $1::int) i`, [n])
          : pool.query(`INSERT INTO responses (ca, serial, hash, produced_at, this_update, next_update, cert_id, der, status_seq, signer)
              SELECT 'ca1', lpad(to_hex(i), 8, '0'), 'sha1', now(), now(), now() + interval '1 hour', '\\x00', '\\x00', 0, 'k0' FROM generate_series(1, $1::int) i`, [n]);
      // The states a plan can be made in: nothing analyzed, responses analyzed empty, both full and analyzed.
      const states: [string, () => Promise<unknown>][] = [
        ['certificates only, nothing analyzed', () => insert('certificates', 20_000)],
        ['responses analyzed while empty', () => pool.query('ANALYZE')],
        ['responses grown since, not analyzed', () => insert('responses', 20_000)],
        ['both analyzed full', () => pool.query('ANALYZE')],
      ];
      for (const [state, step] of states) {
        await step();
        for (const [name, sql, values] of [['count', DUE_SQL.count, dueParams(q)], ['page', DUE_SQL.page, [...dueParams(q), '', 1000]]] as const) {
          const plan = (await indexedRead<{ 'QUERY PLAN': string }>(pool, `EXPLAIN ${sql}`, [...values])).rows.map((r) => r['QUERY PLAN']);
          const scans = plan.map((line, i) => ({ line, cond: plan[i + 1] ?? '' })).filter((x) => / on responses /.test(x.line));
          assert.ok(scans.length > 0, `${name}, ${state}: responses is read\n${plan.join('\n')}`);
          for (const x of scans) {
            assert.match(x.line, /Index (Only )?Scan/, `${name}, ${state}: responses read by an index\n${plan.join('\n')}`);
            assert.match(x.cond, /Index Cond: .*serial = c\.serial/, `${name}, ${state}: probed per certificate\n${plan.join('\n')}`);
          }
        }
      }
    } finally {
      await pool.end();
    }
  });

  it('closes twice without complaint', async () => {
    const s = await open(await freshUrl());
    s.watch(() => undefined);
    await s.close();
    await s.close();
  });
});

function minimalConfig(store: Record<string, unknown>) {
  return {
    store,
    tokens: [{ name: 'hsm', module: '/usr/lib/softhsm/libsofthsm2.so', tokenLabel: 'ocsp', pin: { env: 'OCSP_PIN' } }],
    cas: [{ name: 'ca1', certificate: 'ca.pem', signer: { token: 'hsm', key: { label: 'resp' } } }],
  };
}
