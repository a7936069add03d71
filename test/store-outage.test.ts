// The store's outage guard: which failures are outages (real errors from node-postgres, node:net and SQLite), and on a
// fake clock with a store whose calls can be made to fail or hang: refusals at once while down, one probe at a time,
// one log line when an outage starts and one when it ends, the metrics.
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { createServer, Server } from 'node:net';
import { join } from 'node:path';
import { after, beforeEach, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { Client, DatabaseError, Pool } from 'pg';
import { Registry } from 'prom-client';
import { FakeClock } from '../src/clock';
import { TryLaterError } from '../src/ocsp/errors';
import { StoreOutageMetrics } from '../src/metrics/store-outage-metrics';
import type { Store } from '../src/store/response-store';
import { guardStore } from '../src/store/guarded-store';
import type { StoreOutage } from '../src/store/store-outage';
import { connectionFailure, isConnectionFailure, StoreUnavailableError } from '../src/store/store-unavailable';
import { tempDir } from './support/temp';

const listen = (s: Server) => new Promise<number>((r) => s.listen(0, '127.0.0.1', () => r((s.address() as { port: number }).port)));
const failure = (p: Promise<unknown>) => p.then(() => assert.fail('expected a failure'), (e: unknown) => e);
const turn = () => new Promise<void>((r) => setImmediate(r));

function pgError(code: string, message = 'from the server'): DatabaseError {
  const e = new DatabaseError(message, message.length, 'error');
  e.code = code;
  return e;
}

describe('isConnectionFailure', () => {
  const servers: Server[] = [];
  after(() => servers.forEach((s) => s.close()));

  it('node-postgres errors when the server is gone: refused, connection cut, connect and pool timeouts', async () => {
    const closed = createServer();
    const closedPort = await listen(closed);
    await new Promise((r) => closed.close(r));
    const cutter = createServer((s) => s.destroy());
    const silent = createServer((s) => s.on('error', () => undefined));
    servers.push(cutter, silent);
    const [cutPort, silentPort] = [await listen(cutter), await listen(silent)];
    const refused = await failure(new Client({ host: '127.0.0.1', port: closedPort }).connect());
    const refusedByName = await failure(new Client({ host: 'localhost', port: closedPort }).connect());
    const cutClient = new Client({ host: '127.0.0.1', port: cutPort });
    cutClient.on('error', () => undefined);
    const cut = await failure(cutClient.connect());
    const pool = new Pool({ host: '127.0.0.1', port: silentPort, max: 1, connectionTimeoutMillis: 100 });
    pool.on('error', () => undefined);
    const [connectTimeout, poolTimeout] = await Promise.all([failure(pool.connect()), failure(pool.connect())]);
    await pool.end().catch(() => undefined);
    const seen = [refused, refusedByName, cut, connectTimeout, poolTimeout].map((e) => (e as Error).message);
    assert.match(seen[0]!, /ECONNREFUSED/);
    assert.equal(seen[2], 'Connection terminated unexpectedly');
    assert.equal(seen[3], 'Connection terminated due to connection timeout');
    assert.equal(seen[4], 'timeout exceeded when trying to connect');
    // Cannot reach the server, or cannot get a connection: the store is down. One connection cut: a probe decides.
    assert.deepEqual([refused, refusedByName, cut, connectTimeout, poolTimeout].map((e) => connectionFailure(e)), ['store', 'store', 'connection', 'store', 'store']);
  });

  it('PostgreSQL SQLSTATEs of a server shutting down, starting up, out of connections, and class 08', () => {
    for (const code of ['57P02', '57P03', '53300']) assert.equal(connectionFailure(pgError(code)), 'store', code);
    // admin_shutdown ends every connection at a stop, but pg_terminate_backend ends just one.
    for (const code of ['57P01', '08000', '08006', '08P01']) assert.equal(connectionFailure(pgError(code)), 'connection', code);
    // A constraint, a lock wait past store.writeTimeout, a syntax error, a serialization failure: one query failed.
    for (const code of ['23505', '55P03', '42601', '40001', '57014']) assert.equal(isConnectionFailure(pgError(code)), false, code);
  });

  it('a cause or every error of an AggregateError counts; anything else does not', () => {
    const refused = Object.assign(new Error('connect ECONNREFUSED ::1:5432'), { code: 'ECONNREFUSED' });
    assert.ok(isConnectionFailure(new Error('wrapped', { cause: refused })));
    assert.ok(isConnectionFailure(new AggregateError([refused, Object.assign(new Error('x'), { code: 'ENETUNREACH' })], '')));
    assert.equal(isConnectionFailure(new AggregateError([refused, new Error('bad query')], '')), false);
    assert.ok(isConnectionFailure(new StoreUnavailableError('down')));
    for (const e of [new Error('boom'), new TypeError('x is undefined'), 'ECONNREFUSED', undefined, { code: 'ECONNREFUSED' }]) {
      assert.equal(isConnectionFailure(e), false, String(e));
    }
  });

  it('SQLite: a file that is not a database is; SQLITE_BUSY (another writer) and a bad statement are not', () => {
    const dir = tempDir('outage-sqlite');
    const garbage = join(dir, 'garbage.sqlite');
    writeFileSync(garbage, Buffer.alloc(8192, 0x5a));
    const notADb = (() => {
      const db = new Database(garbage);
      try {
        db.prepare('SELECT count(*) FROM sqlite_master').get();
      } catch (e) {
        return e;
      } finally {
        db.close();
      }
    })();
    assert.equal((notADb as { code?: string }).code, 'SQLITE_NOTADB');
    assert.ok(isConnectionFailure(notADb));

    const file = join(dir, 'busy.sqlite');
    const a = new Database(file);
    a.exec('CREATE TABLE t (x)');
    const b = new Database(file);
    b.pragma('busy_timeout = 0');
    a.exec('BEGIN IMMEDIATE');
    let busy: unknown;
    try {
      b.exec('BEGIN IMMEDIATE');
    } catch (e) {
      busy = e;
    }
    let syntax: unknown;
    try {
      b.prepare('SELEKT 1');
    } catch (e) {
      syntax = e;
    }
    a.exec('ROLLBACK');
    a.close();
    b.close();
    assert.equal((busy as { code?: string }).code, 'SQLITE_BUSY');
    assert.equal(isConnectionFailure(busy), false);
    assert.equal(isConnectionFailure(syntax), false);
  });

  it('StoreUnavailableError is a TryLaterError (the OCSP edge answers tryLater)', () => {
    const e = new StoreUnavailableError('store unavailable: x', { cause: new Error('y') });
    assert.ok(e instanceof TryLaterError);
    assert.equal(e.name, 'StoreUnavailableError');
  });
});

/** A store whose calls succeed, fail as a stopped server fails them, or hang until released; calls are counted. */
function fakeStore() {
  const refusedError = () => Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5432'), { code: 'ECONNREFUSED' });
  const state = { down: false, calls: 0, probes: 0, hang: undefined as Promise<void> | undefined, probeErrors: [] as Error[], versionError: undefined as Error | undefined };
  // The next call waits for the hang; whether it fails is decided when it is released.
  const answer = async <T>(value: T): Promise<T> => {
    const hang = state.hang;
    state.hang = undefined;
    if (hang) await hang;
    if (state.down) throw refusedError();
    return value;
  };
  const store = {
    exact: false,
    getCertificate: (ca: string, serial: string) => {
      state.calls++;
      return answer({ ca, serial, status: 'good' as const, version: 1 });
    },
    revoke: () => {
      state.calls++;
      return Promise.reject(pgError('23505', 'duplicate key value violates unique constraint'));
    },
    lastChange: () => {
      state.probes++;
      const e = state.probeErrors.shift();
      return e ? Promise.reject(e) : answer(7);
    },
    ping: () => {
      state.calls++;
      return answer(undefined);
    },
    mayHaveChanged: (): boolean => {
      if (state.versionError) throw state.versionError;
      return false;
    },
    getResponseNow: () => {
      state.calls++;
      if (state.versionError) throw state.versionError;
      return { der: Buffer.from('stored') };
    },
    watch: () => () => undefined,
    close: async () => undefined,
  };
  return {
    store: store as unknown as Store,
    state,
    /** The next call (or probe) hangs until the returned function is called. */
    hang(): () => void {
      let release!: () => void;
      state.hang = new Promise<void>((r) => (release = r));
      return () => release();
    },
  };
}

function capturingLog() {
  const lines: { level: string; obj: Record<string, unknown> | string; msg?: string }[] = [];
  const at = (level: string) => (obj: Record<string, unknown> | string, msg?: string) => void lines.push({ level, obj, ...(msg !== undefined ? { msg } : {}) });
  return { lines, log: { error: at('error'), warn: at('warn'), info: at('info'), debug: at('debug') }, above: (levels: string[]) => lines.filter((l) => levels.includes(l.level)) };
}

describe('the outage guard', () => {
  let clock: FakeClock;
  let fake: ReturnType<typeof fakeStore>;
  let logs: ReturnType<typeof capturingLog>;
  let registry: Registry;
  let store: Store;
  let outage: StoreOutage;
  const get = () => store.getCertificate('ca', '01');
  const sample = async (name: string) => (await registry.getSingleMetric(name)!.get()).values[0]?.value;
  /** Lets settled promises run their callbacks (the fake store answers in microtasks). */
  const settle = async () => {
    for (let i = 0; i < 5; i++) await turn();
  };

  beforeEach(() => {
    clock = new FakeClock();
    fake = fakeStore();
    logs = capturingLog();
    registry = new Registry();
    const metrics = new StoreOutageMetrics(registry);
    ({ store, outage } = guardStore(fake.store, { clock, log: logs.log, observer: metrics, probeEveryMs: 250, settleMs: 1000 }));
    metrics.up = () => outage.up;
  });

  it('a read in the tick (SQLite getResponseNow) stays synchronous: served while up, nothing while down or when it finds the file gone', async () => {
    const now = (store as Required<Pick<Store, 'getResponseNow'>>).getResponseNow;
    assert.deepEqual(now('ca', '01', 'sha1'), { der: Buffer.from('stored') });
    fake.state.versionError = Object.assign(new Error('database disk image is malformed'), { code: 'SQLITE_CORRUPT' });
    assert.equal(now('ca', '01', 'sha1'), undefined, 'the request goes the asynchronous way, which the guard refuses');
    assert.equal(outage.up, false);
    const calls = fake.state.calls;
    assert.equal(now('ca', '01', 'sha1'), undefined);
    assert.equal(fake.state.calls, calls, 'not asked while down');
    // Any other failure is the read's own, thrown as it is.
    fake.state.versionError = undefined;
    fake.state.down = false;
    clock.advance(2_000);
    await settle();
    assert.ok(outage.up);
    fake.state.versionError = Object.assign(new Error('no such column: x'), { code: 'SQLITE_ERROR' });
    assert.throws(() => now('ca', '01', 'sha1'), /no such column/);
  });

  it('passes calls and their results through while the store answers, and other errors unchanged', async () => {
    assert.deepEqual(await get(), { ca: 'ca', serial: '01', status: 'good', version: 1 });
    const e = await failure(store.revoke('ca', '01', new Date(), 'keyCompromise'));
    assert.ok(e instanceof DatabaseError && e.code === '23505', 'the query error itself');
    assert.ok(outage.up);
    assert.equal(logs.lines.length, 0);
    assert.equal(await sample('ocsp_store_up'), 1);
  });

  it('a connection failure starts an outage: every call is refused at once, with StoreUnavailableError, without reaching the store', async () => {
    fake.state.down = true;
    const first = await failure(get());
    assert.ok(first instanceof StoreUnavailableError);
    assert.match((first as Error).message, /^store unavailable: connect ECONNREFUSED/);
    assert.ok(((first as Error).cause as Error).message.includes('ECONNREFUSED'));
    assert.equal(outage.up, false);
    const calls = fake.state.calls;
    // Refused without the clock moving and without a call reaching the store.
    const refusals = await Promise.all(Array.from({ length: 500 }, () => failure(get())));
    assert.equal(fake.state.calls, calls);
    for (const e of refusals) assert.ok(e instanceof StoreUnavailableError && e instanceof TryLaterError);
    assert.match((refusals[0] as Error).message, /^store unavailable since 2026-01-01T00:00:00\.000Z: connect ECONNREFUSED/);
    assert.match(outage.problem()!, /^unavailable since .*ECONNREFUSED/);
    assert.equal(await sample('ocsp_store_up'), 0);
    assert.equal(await sample('ocsp_store_outages_total'), 1);
    assert.equal(await sample('ocsp_store_refused_calls_total'), 500);
  });

  it('probes every 250 ms while down, one probe at a time, and answers again once one succeeds', async () => {
    fake.state.down = true;
    await failure(get());
    fake.state.probes = 0;
    for (let i = 0; i < 8; i++) {
      clock.advance(250);
      await settle();
    }
    assert.equal(fake.state.probes, 8, 'one probe per 250 ms');
    // A probe that hangs (a connect without an answer): none other starts meanwhile.
    const release = fake.hang();
    clock.advance(250);
    await settle();
    const probes = fake.state.probes;
    for (let i = 0; i < 40; i++) clock.advance(250);
    await settle();
    assert.equal(fake.state.probes, probes, 'no second probe while one is in flight');
    assert.ok(await failure(get()) instanceof StoreUnavailableError, 'still refused at once');
    fake.state.down = false;
    release();
    await settle();
    assert.ok(outage.up, 'the hung probe answered: the store is back');
    assert.ok(outage.upSinceMs >= 10 * 250);
    assert.equal((await get())?.serial, '01');
  });

  it('logs one line when an outage starts and one when it ends, whatever the number of refused calls and probes', async () => {
    fake.state.down = true;
    await failure(get());
    for (let i = 0; i < 40; i++) {
      await Promise.all(Array.from({ length: 50 }, () => failure(get())));
      clock.advance(250);
      await settle();
    }
    assert.deepEqual(logs.above(['error', 'warn', 'info']).map((l) => l.level), ['error']);
    assert.match(logs.lines[0]!.msg!, /^store unavailable/);
    fake.state.down = false;
    clock.advance(250);
    await settle();
    assert.ok(outage.up);
    assert.equal(logs.above(['error', 'warn', 'info']).length, 1, 'the end is logged once the store stayed up for settleMs');
    clock.advance(1000);
    await settle();
    const lines = logs.above(['error', 'warn', 'info']);
    assert.equal(lines.length, 2);
    assert.equal(lines[1]!.msg, 'store available again');
    const ended = lines[1]!.obj as { downForMs: number; refused: number; lastError: string };
    assert.equal(ended.refused, 2000);
    assert.equal(ended.downForMs, 41 * 250);
    assert.match(ended.lastError, /ECONNREFUSED/);
  });

  it('a store that fails again within settleMs of a successful probe is the same outage', async () => {
    fake.state.down = true;
    await failure(get());
    for (let round = 0; round < 5; round++) {
      fake.state.down = false;
      clock.advance(250);
      await settle();
      assert.ok(outage.up);
      fake.state.down = true;
      assert.ok(await failure(get()) instanceof StoreUnavailableError);
      assert.equal(outage.up, false);
    }
    fake.state.down = false;
    clock.advance(250);
    await settle();
    clock.advance(1000);
    await settle();
    assert.deepEqual(logs.above(['error', 'warn', 'info']).map((l) => l.msg), [logs.lines[0]!.msg, 'store available again']);
    assert.equal(await sample('ocsp_store_outages_total'), 1);
    // Past settleMs a new failure is a new outage.
    fake.state.down = true;
    await failure(get());
    assert.equal(await sample('ocsp_store_outages_total'), 2);
    assert.equal(logs.above(['error']).length, 2);
  });

  it('a call sent before an outage that fails after the store came back starts no new outage', async () => {
    const early = fake.hang(); // sent while the store answered, answered late
    const pending = get();
    fake.state.down = true;
    assert.ok(await failure(get()) instanceof StoreUnavailableError);
    fake.state.down = false;
    clock.advance(250);
    await settle();
    assert.ok(outage.up, 'a probe found the store back');
    fake.state.down = true;
    early();
    assert.ok(await failure(pending) instanceof StoreUnavailableError, 'still reported as what it is');
    assert.ok(outage.up, 'but it says nothing of the store since it came back');
    assert.equal(await sample('ocsp_store_outages_total'), 1);
  });

  it("the store's own warnings: logged when a probe finds the store up, folded into the outage line when it is down", async () => {
    outage.warning('PostgreSQL idle connection lost: terminating connection due to administrator command');
    await settle();
    assert.deepEqual(logs.above(['warn', 'error']).map((l) => l.obj), ['PostgreSQL idle connection lost: terminating connection due to administrator command']);
    fake.state.down = true;
    for (let i = 0; i < 5; i++) outage.warning(`PostgreSQL idle connection lost (${i})`);
    outage.warning('PostgreSQL change listener: Connection terminated unexpectedly; reconnecting');
    await settle();
    const above = logs.above(['warn', 'error', 'info']);
    assert.equal(above.length, 2, 'one outage line, not one per warning');
    assert.equal(above[1]!.level, 'error');
    assert.deepEqual((above[1]!.obj as { before: string[] }).before, [
      ...[0, 1, 2, 3, 4].map((i) => `PostgreSQL idle connection lost (${i})`),
      'PostgreSQL change listener: Connection terminated unexpectedly; reconnecting',
    ]);
    outage.warning('during the outage');
    await settle();
    assert.equal(logs.above(['warn', 'error', 'info']).length, 2);
    assert.equal(logs.lines.at(-1)!.level, 'debug');
  });

  it("once closed, the store's warnings (its close reporting connections not handed back) are logged as they are", async () => {
    outage.close();
    outage.warning('PostgreSQL store closed with 1 connection(s) still checked out after 3000 ms');
    await settle();
    assert.deepEqual(logs.above(['warn', 'error']).map((l) => [l.level, l.obj]), [['warn', 'PostgreSQL store closed with 1 connection(s) still checked out after 3000 ms']]);
    assert.equal(fake.state.probes, 0, 'no probe after close');
  });

  it('one broken connection while the store answers (pg_terminate_backend) is no outage: that call gets tryLater, one warning', async () => {
    const terminated = () => pgError('57P01', 'terminating connection due to administrator command');
    // Two calls on the connection as it is cut: one probe for both.
    const [broken] = await Promise.all([failure(outage.run(() => Promise.reject(terminated()))), failure(outage.run(() => Promise.reject(terminated())))]);
    assert.ok(broken instanceof StoreUnavailableError, 'the call that met it is answered tryLater');
    assert.ok(outage.up, 'nothing refused while the probe asks');
    await settle();
    assert.ok(outage.up);
    assert.equal((await get())?.serial, '01');
    assert.deepEqual(logs.above(['warn', 'error', 'info']).map((l) => [l.level, l.obj]), [['warn', 'terminating connection due to administrator command (2 times)']]);
    assert.equal(await sample('ocsp_store_outages_total'), 0);
  });

  it("a probe whose own connection is cut asks once more before it calls an outage", async () => {
    const terminated = () => pgError('57P01', 'terminating connection due to administrator command');
    fake.state.probeErrors.push(terminated());
    await failure(outage.run(() => Promise.reject(terminated())));
    await settle();
    assert.ok(outage.up);
    assert.equal(fake.state.probes, 2);
    assert.equal(await sample('ocsp_store_outages_total'), 0);
    fake.state.probeErrors.push(terminated(), terminated());
    await failure(outage.run(() => Promise.reject(terminated())));
    await settle();
    assert.equal(outage.up, false, 'cut twice: down');
  });

  it('a broken connection when the store is going down: the probe fails, the outage starts with it', async () => {
    fake.state.down = true;
    await failure(outage.run(() => Promise.reject(pgError('57P01', 'terminating connection due to administrator command'))));
    await settle();
    assert.equal(outage.up, false);
    const lines = logs.above(['warn', 'error', 'info']);
    assert.equal(lines.length, 1);
    assert.deepEqual(lines[0]!.obj, { err: 'connect ECONNREFUSED 127.0.0.1:5432', before: ['terminating connection due to administrator command'] });
  });

  it("SQLite's per-hit change check failing under a damaged file: an outage, and \"may have changed\" so memory waits", () => {
    assert.equal(store.mayHaveChanged(), false);
    fake.state.versionError = Object.assign(new Error('disk I/O error'), { code: 'SQLITE_IOERR_READ' });
    assert.equal(store.mayHaveChanged(), true);
    assert.equal(outage.up, false);
    fake.state.versionError = new TypeError('a bug');
    assert.throws(() => store.mayHaveChanged(), TypeError);
  });

  it('close stops probing', async () => {
    fake.state.down = true;
    await failure(get());
    await store.close();
    const probes = fake.state.probes;
    clock.advance(5000);
    await settle();
    assert.equal(fake.state.probes, probes);
  });
});
