// The publishing API in process on 127.0.0.1, on a real SQLite store: bearer auth, issuance and revocation events
// with the merge rules, idempotent repeats, and every refusal naming its field with nothing stored.
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import pino from 'pino';
import { FakeClock } from '../src/clock';
import { validateConfig } from '../src/config/load';
import { toPem } from '../src/pki/certificate';
import { PublishingStartupError, readBearerToken } from '../src/publish/auth';
import { Publisher } from '../src/publish/publisher';
import { PublishingListener, startPublishing } from '../src/publish/server';
import { SqliteStore } from '../src/store/sqlite/sqlite-store';
import { guardStore } from '../src/store/guarded-store';
import { softwarePki, SoftwarePki } from './support/software-pki';
import { tempDir } from './support/temp';

const TOKEN = 'c0ffee'.repeat(8);

describe('publishing API', () => {
  let dir: string;
  let pki: SoftwarePki;
  let other: SoftwarePki;
  let store: SqliteStore;
  let listener: PublishingListener;
  let base: string;
  let applied = 0;
  const clock = new FakeClock('2026-03-01T12:00:00Z');

  before(async () => {
    dir = tempDir('publish');
    [pki, other] = await Promise.all([softwarePki(), softwarePki('ec-p256', [0x77n])]);
    store = new SqliteStore(join(dir, 'store.sqlite'), clock);
    writeFileSync(join(dir, 'token'), TOKEN + '\n', { mode: 0o600 });
    const publisher = new Publisher({
      store,
      cas: new Map([['ca1', [pki.ca]]]),
      clock,
      afterWrite: async () => void applied++,
      warn: () => undefined,
    });
    const cfg = { host: '127.0.0.1', port: 0, bodyLimit: 4096, auth: { tokenFile: 'token' } };
    listener = await startPublishing(cfg, { publisher, path: (p) => join(dir, p), requestTimeoutMs: 5000, logger: pino({ level: 'silent' }) });
    base = `http://127.0.0.1:${listener.port}`;
  });
  after(async () => {
    await listener.close();
    await store.close();
  });

  const call = async (method: string, path: string, body?: unknown, headers: Record<string, string> = {}) => {
    const r = await fetch(base + path, {
      method,
      headers: { authorization: `Bearer ${TOKEN}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}), ...headers },
      ...(body !== undefined ? { body: typeof body === 'string' ? body : JSON.stringify(body) } : {}),
      signal: AbortSignal.timeout(5000),
    });
    return { status: r.status, json: (await r.json()) as Record<string, any>, headers: r.headers };
  };

  it('refuses a missing, wrong or non-Bearer token with 401 and stores nothing', async () => {
    const seq = await store.lastChange();
    const ev = { serial: '5001', revokedAt: '2026-03-01T10:00:00Z', reason: 'keyCompromise' };
    for (const authorization of ['', `Bearer ${TOKEN}x`, `Bearer ${TOKEN.slice(0, -1)}`, `Basic ${TOKEN}`, 'Bearer', `Bearer ${TOKEN} extra`]) {
      const r = await call('POST', '/v1/cas/ca1/revocations', ev, { authorization });
      assert.equal(r.status, 401, authorization);
      assert.match(r.headers.get('www-authenticate') ?? '', /^Bearer/);
      assert.doesNotMatch(JSON.stringify(r.json), new RegExp(TOKEN));
    }
    // Unauthenticated requests never reach routing either.
    assert.equal((await call('GET', '/v1/cas/ca1/certificates/5001', undefined, { authorization: '' })).status, 401);
    assert.equal(await store.lastChange(), seq);
    assert.equal(await store.getCertificate('ca1', '5001'), undefined);
  });

  it('records an issuance by serial, and a repeat is answered 200 with the same record, unchanged', async () => {
    const ev = { serial: '0x50:02', notAfter: '2027-01-01T00:00:00+01:00', profile: 'tls-server' };
    const first = await call('POST', '/v1/cas/ca1/certificates', ev);
    assert.equal(first.status, 200);
    const expected = { ca: 'ca1', serial: '5002', status: 'good', notAfter: '2026-12-31T23:00:00.000Z', profile: 'tls-server' };
    assert.deepEqual(first.json, { outcome: 'inserted', certificate: expected });
    const appliedBefore = applied;
    const seq = await store.lastChange();
    const again = await call('POST', '/v1/cas/ca1/certificates', ev);
    assert.deepEqual(again.json, { outcome: 'unchanged', certificate: expected });
    assert.equal(await store.lastChange(), seq, 'no change recorded');
    assert.equal(applied, appliedBefore, 'nothing for the follower to do');
    assert.deepEqual((await call('GET', '/v1/cas/ca1/certificates/5002')).json, { certificate: expected });
  });

  it('records an issuance from a PEM certificate (serial and notAfter read from it) and refuses another CA\'s', async () => {
    const leaf = pki.leaves[0]!;
    const r = await call('POST', '/v1/cas/ca1/certificates', { certificate: toPem(leaf.der) });
    assert.equal(r.status, 200);
    assert.equal(r.json.certificate.serial, '1001');
    assert.equal(r.json.certificate.notAfter, new Date(leaf.x509.validTo).toISOString());
    const seq = await store.lastChange();
    const foreign = await call('POST', '/v1/cas/ca1/certificates', { certificate: toPem(other.leaves[0]!.der) });
    assert.equal(foreign.status, 422);
    assert.equal(foreign.json.field, 'certificate');
    assert.match(foreign.json.error, /serial 77 was not issued by CA "ca1"/);
    assert.equal(await store.getCertificate('ca1', '77'), undefined);
    const own = await call('POST', '/v1/cas/ca1/certificates', { certificate: toPem(pki.ca.der) });
    assert.equal(own.status, 422);
    assert.match(own.json.error, /CA "ca1"'s own certificate/);
    assert.equal(await store.getCertificate('ca1', '1'), undefined);
    assert.equal(await store.lastChange(), seq);
  });

  it('records a revocation, idempotently; a later "good" leaves it revoked; a final revocation cannot be put on hold', async () => {
    const ev = { serial: '1001', revokedAt: '2026-03-01T10:00:00Z', reason: 'KEYCOMPROMISE' };
    const first = await call('POST', '/v1/cas/ca1/revocations', ev);
    assert.equal(first.status, 200);
    assert.equal(first.json.outcome, 'updated');
    assert.equal(first.json.certificate.status, 'revoked');
    assert.equal(first.json.certificate.reason, 'keyCompromise');
    assert.equal(first.json.certificate.revokedAt, '2026-03-01T10:00:00.000Z');
    assert.ok(first.json.certificate.notAfter, 'notAfter from the issuance is kept');
    const seq = await store.lastChange();
    const again = await call('POST', '/v1/cas/ca1/revocations', ev);
    assert.deepEqual(again.json, { ...first.json, outcome: 'unchanged' });
    assert.equal(await store.lastChange(), seq);
    const good = await call('POST', '/v1/cas/ca1/certificates', { certificate: toPem(pki.leaves[0]!.der) });
    assert.equal(good.json.outcome, 'keptRevoked');
    assert.equal(good.json.certificate.status, 'revoked');
    const hold = await call('POST', '/v1/cas/ca1/revocations', { ...ev, reason: 'certificateHold' });
    assert.equal(hold.status, 409);
    assert.equal(hold.json.field, 'reason');
    const release = await call('POST', '/v1/cas/ca1/revocations', { ...ev, reason: 'removeFromCRL' });
    assert.equal(release.status, 409);
    assert.equal((await store.getCertificate('ca1', '1001'))?.reason, 'keyCompromise');
    assert.equal(await store.lastChange(), seq);
  });

  it('a hold is released by removeFromCRL; removeFromCRL for an unknown serial stores nothing', async () => {
    const hold = await call('POST', '/v1/cas/ca1/revocations', { serial: '1002', revokedAt: '2026-03-01T11:00:00Z', reason: 'certificateHold' });
    assert.equal(hold.json.outcome, 'inserted');
    const release = await call('POST', '/v1/cas/ca1/revocations', { serial: '1002', revokedAt: '2026-03-01T11:30:00Z', reason: 'removeFromCRL' });
    assert.equal(release.status, 200);
    assert.deepEqual(release.json, { outcome: 'updated', certificate: { ca: 'ca1', serial: '1002', status: 'good' } });
    const unknown = await call('POST', '/v1/cas/ca1/revocations', { serial: '1003', revokedAt: '2026-03-01T11:30:00Z', reason: 'removeFromCRL' });
    assert.equal(unknown.status, 404);
    assert.equal(await store.getCertificate('ca1', '1003'), undefined);
  });

  it('refuses bad input with a 4xx naming the field, and stores nothing', async () => {
    const seq = await store.lastChange();
    const rev = { serial: '6001', revokedAt: '2026-03-01T10:00:00Z', reason: 'superseded' };
    const cases: [string, string, unknown, number, string, RegExp][] = [
      ['POST', '/v1/cas/nope/revocations', rev, 404, 'ca', /no CA named "nope"/],
      ['POST', '/v1/cas/ca1/revocations', { ...rev, serial: 'xyz' }, 400, 'serial', /malformed serial "xyz"/],
      ['POST', '/v1/cas/ca1/revocations', { ...rev, serial: 6001 }, 400, 'serial', /hex string/],
      ['POST', '/v1/cas/ca1/revocations', { ...rev, reason: 'stolen' }, 400, 'reason', /unknown revocation reason "stolen"; valid: unspecified/],
      ['POST', '/v1/cas/ca1/revocations', { ...rev, revokedAt: 'yesterday' }, 400, 'revokedAt', /ISO 8601/],
      ['POST', '/v1/cas/ca1/revocations', { ...rev, revokedAt: '2026-03-01T10:00:00' }, 400, 'revokedAt', /time zone/],
      ['POST', '/v1/cas/ca1/revocations', { ...rev, revokedAt: '2026-03-01T12:05:00Z' }, 400, 'revokedAt', /in the future/],
      // Found by the publish-event fuzz target: zod takes offsets up to ±99:99, Date none past ±23:59 (Invalid Date).
      ['POST', '/v1/cas/ca1/revocations', { ...rev, revokedAt: '2026-03-01T10:00:00+42:00' }, 400, 'revokedAt', /offset/],
      ['POST', '/v1/cas/ca1/revocations', { serial: '6001', reason: 'superseded' }, 400, 'revokedAt', /required/],
      ['POST', '/v1/cas/ca1/revocations', { ...rev, color: 'red' }, 400, 'color', /unknown field "color"/],
      ['POST', '/v1/cas/ca1/revocations', [rev], 400, '(body)', /JSON object/],
      ['POST', '/v1/cas/ca1/revocations', '{"serial": "6001",', 400, '(body)', /malformed JSON/],
      ['POST', '/v1/cas/ca1/revocations', { ...rev, pad: 'x'.repeat(5000) }, 413, '(body)', /larger than 4096 bytes/],
      ['POST', '/v1/cas/ca1/certificates', {}, 400, 'serial', /exactly one of serial/],
      ['POST', '/v1/cas/ca1/certificates', { serial: '6001', certificate: 'x' }, 400, 'serial', /exactly one of serial/],
      ['POST', '/v1/cas/ca1/certificates', { serial: '6001', notAfter: '31/12/2027' }, 400, 'notAfter', /ISO 8601/],
      ['POST', '/v1/cas/ca1/certificates', { serial: '6001', notAfter: '2027-12-31T00:00:00-99:99' }, 400, 'notAfter', /offset/],
      ['POST', '/v1/cas/ca1/certificates', { certificate: 'not pem' }, 400, 'certificate', /no PEM CERTIFICATE block/],
      ['POST', '/v1/cas/ca1/certificates', { certificate: toPem(pki.leaves[2]!.der), notAfter: '2027-01-01T00:00:00Z' }, 400, 'notAfter', /read from the certificate/],
      ['POST', '/v1/cas/ca1/certificates', { certificate: toPem(pki.leaves[2]!.der) + toPem(pki.leaves[1]!.der) }, 400, 'certificate', /one PEM certificate, found 2/],
      ['POST', '/v1/cas/ca1/certificates', { serial: '6001', profile: '' }, 400, 'profile', /at least 1/],
      ['GET', '/v1/cas/ca1/certificates/zz', undefined, 400, 'serial', /malformed serial/],
      ['GET', '/v1/cas/ca1/certificates/6001', undefined, 404, 'serial', /not in the store/],
    ];
    for (const [method, path, body, status, field, pattern] of cases) {
      const r = await call(method, path, body);
      const what = `${method} ${path} ${JSON.stringify(body)?.slice(0, 80)}`;
      assert.equal(r.status, status, `${what}: ${JSON.stringify(r.json)}`);
      assert.equal(r.json.field, field, what);
      assert.match(r.json.error, pattern, what);
    }
    const text = await fetch(`${base}/v1/cas/ca1/revocations`, {
      method: 'POST', body: JSON.stringify(rev), headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'text/plain' }, signal: AbortSignal.timeout(5000),
    });
    assert.equal(text.status, 415);
    assert.equal((await call('PUT', '/v1/cas/ca1/revocations', rev)).status, 405);
    assert.equal((await call('POST', '/v2/anything', rev)).status, 404);
    assert.equal(await store.lastChange(), seq, 'no change recorded');
    assert.equal(await store.getCertificate('ca1', '6001'), undefined);
  });
});

describe('publishing configuration', () => {
  const minimal = () => ({
    tokens: [{ name: 'hsm', module: '/usr/lib/softhsm/libsofthsm2.so', tokenLabel: 'ocsp', pin: { env: 'OCSP_PIN' } }],
    cas: [{ name: 'ca1', certificate: 'ca.pem', signer: { token: 'hsm', key: { label: 'resp' } } }],
  });
  const errors = (publishing: unknown) => {
    try {
      validateConfig({ ...minimal(), publishing }, 't.yaml');
      return '';
    } catch (e) {
      return (e as Error).message;
    }
  };

  it('takes exactly one auth method and names the field otherwise', () => {
    const ok = validateConfig({ ...minimal(), publishing: { port: 8081, auth: { tokenFile: 't' } } }, 't.yaml').config.publishing;
    assert.deepEqual(ok, { host: '127.0.0.1', port: 8081, bodyLimit: 65_536, auth: { tokenFile: 't' } });
    const mtls = { ca: 'c.pem', cert: 's.pem', key: 's.key' };
    assert.deepEqual(validateConfig({ ...minimal(), publishing: { port: 1, auth: { mtls } } }, 't.yaml').config.publishing?.auth, { mtls });
    assert.match(errors({ port: 8081, auth: { tokenFile: 't', mtls } }), /publishing\.auth: set exactly one of tokenFile/);
    assert.match(errors({ port: 8081, auth: {} }), /publishing\.auth: set exactly one of tokenFile/);
    assert.match(errors({ port: 8081, auth: { mtls: { ca: 'c.pem', cert: 's.pem' } } }), /publishing\.auth\.mtls\.key: Required/);
    assert.match(errors({ port: 8081, auth: { token: 'secret' } }), /publishing\.auth: Unrecognized key.*token/);
    assert.match(errors({ auth: { tokenFile: 't' } }), /publishing\.port: Required/);
    assert.match(errors({ port: 8080, auth: { tokenFile: 't' } }), /publishing\.port: must differ from server\.port \(8080\)/);
  });

  it('reads the token file at startup: missing, empty or malformed files are errors naming the field, never the content', () => {
    const d = tempDir('token');
    const f = (name: string, text: string) => {
      writeFileSync(join(d, name), text, { mode: 0o600 });
      return join(d, name);
    };
    const read = (file: string) => readBearerToken(file, 'publishing.auth.tokenFile', () => undefined);
    assert.equal(read(f('ok', 'abc123\n')), 'abc123');
    assert.throws(() => read(join(d, 'missing')), (e: Error) => e instanceof PublishingStartupError && /publishing\.auth\.tokenFile: cannot read token file .*missing: ENOENT/.test(e.message));
    assert.throws(() => read(f('empty', '\n')), /publishing\.auth\.tokenFile: token file .* is empty/);
    assert.throws(() => read(f('spaces', 'two words\n')), (e: Error) => /must hold one line/.test(e.message) && !e.message.includes('two words'));
    const warned: string[] = [];
    readBearerToken(f('open', 'abc'), 'publishing.auth.tokenFile', (m) => warned.push(m));
    assert.equal(warned.length, 0);
    writeFileSync(join(d, 'wide'), 'abc', { mode: 0o644 });
    readBearerToken(join(d, 'wide'), 'publishing.auth.tokenFile', (m) => warned.push(m));
    assert.match(warned[0] ?? '', /readable by group or others/);
  });
});

describe('publishing API while the store is unavailable', () => {
  it('answers 503 with Retry-After, logs nothing per request, and stores nothing', async () => {
    const dir = tempDir('publish-outage');
    const pki = await softwarePki();
    const clock = new FakeClock('2026-03-01T12:00:00Z');
    const sqlite = new SqliteStore(join(dir, 'store.sqlite'), clock);
    let stopped = false;
    // The database as a stopped server leaves it: every call refused.
    const db = new Proxy(sqlite, {
      get(target, prop, receiver) {
        const value = Reflect.get(target, prop, receiver) as unknown;
        if (typeof value !== 'function' || prop === 'close' || prop === 'mayHaveChanged' || prop === 'watch') return typeof value === 'function' ? value.bind(target) : value;
        return (...args: unknown[]) =>
          stopped ? Promise.reject(Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5432'), { code: 'ECONNREFUSED' })) : (value as (...a: unknown[]) => unknown).apply(target, args);
      },
    });
    const silent = pino({ level: 'silent' });
    const { store } = guardStore(db, { clock, log: silent });
    writeFileSync(join(dir, 'token'), TOKEN + '\n', { mode: 0o600 });
    const publisher = new Publisher({ store, cas: new Map([['ca1', [pki.ca]]]), clock, afterWrite: async () => undefined, warn: () => undefined });
    const logged: string[] = [];
    const logger = pino({ level: 'debug' }, { write: (line: string) => void logged.push(line) });
    const cfg = { host: '127.0.0.1', port: 0, bodyLimit: 4096, auth: { tokenFile: 'token' } };
    const listener = await startPublishing(cfg, { publisher, path: (p) => join(dir, p), requestTimeoutMs: 5000, logger });
    try {
      stopped = true;
      const post = () =>
        fetch(`http://127.0.0.1:${listener.port}/v1/cas/ca1/revocations`, {
          method: 'POST',
          headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
          body: JSON.stringify({ serial: '1001', revokedAt: '2026-03-01T10:00:00Z', reason: 'keyCompromise' }),
          signal: AbortSignal.timeout(5000),
        });
      for (let i = 0; i < 3; i++) {
        const r = await post();
        assert.equal(r.status, 503);
        assert.equal(r.headers.get('retry-after'), '1');
        assert.match(((await r.json()) as { error: string }).error, /^store unavailable.*ECONNREFUSED.*; retry later/);
      }
      assert.deepEqual(logged.map((l) => JSON.parse(l).level).filter((level: number) => level >= 40), [], 'nothing above debug per request');
      stopped = false;
      assert.equal(await sqlite.getCertificate('ca1', '1001'), undefined);
    } finally {
      await listener.close();
      await store.close();
    }
  });
});
