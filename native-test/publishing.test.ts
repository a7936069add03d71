// The publishing API of a running daemon on SoftHSM2: bearer token and mutual TLS refuse outsiders and store nothing;
// a revocation or issuance posted to it reaches the next OCSP answer (openssl ocsp -CAfile) and triggers production
// upon revocation/issuance; repeats are idempotent; on SQLite and on PostgreSQL.
import assert from 'node:assert/strict';
import { request } from 'node:https';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { makeOpensslPki, openssl } from '../test/support/openssl';
import { tempDir } from '../test/support/temp';
import { assertLogged, childEnv, createTestPki, opensslQuery, publishingPort, Responder, runCli, startResponder, TestCa, TestPki, variantConfig, waitFor } from './support/harness';
import { pgCount, postgresCluster } from './support/postgres';

const TOKEN = 'f00dfeed'.repeat(8);
const PRE_PRODUCTION = { enabled: true, storeOnDemand: true, onRevocation: true, onIssuance: true, hashes: ['sha1', 'sha256'] };

let pki: TestPki;
let ca: TestCa;
before(() => {
  pki = createTestPki([{ name: 'pubca', caKey: 'ec-p256', responderKey: 'ec-p256' }]);
  ca = pki.cas[0]!;
  writeFileSync(join(pki.dir, 'publish.token'), TOKEN + '\n', { mode: 0o600 });
});

async function post(base: string, path: string, body: unknown, token: string | null = TOKEN) {
  const r = await fetch(base + path, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(token === null ? {} : { authorization: `Bearer ${token}` }) },
    body: typeof body === 'string' ? body : JSON.stringify(body),
    signal: AbortSignal.timeout(10_000),
  });
  return { status: r.status, json: (await r.json()) as Record<string, any> };
}

describe('publishing API with a bearer token, SQLite store', () => {
  let responder: Responder;
  let base: string;
  let dbFile: string;
  const count = (sql: string, ...params: unknown[]) => {
    const d = new Database(dbFile, { readonly: true });
    try {
      return d.prepare(sql).pluck().get(...params) as number;
    } finally {
      d.close();
    }
  };
  const changes = () => count('SELECT count(*) FROM status_changes');
  const statusOf = (serial: string) => runCli(['status', '--ca', ca.name, '--serial', serial, '--config', pki.configFile], childEnv(pki)).stdout.trim();

  before(async () => {
    const config = variantConfig(pki, 'publish-token', (c) => {
      c.defaults = { validity: '1h', preProduction: PRE_PRODUCTION };
      c.publishing = { host: '127.0.0.1', port: 0, auth: { tokenFile: 'publish.token' } };
    });
    dbFile = join(pki.dir, 'data', 'ocsp-hsm.sqlite');
    responder = await startResponder(pki, { config });
    base = `http://127.0.0.1:${publishingPort(responder)}`;
  });
  after(async () => {
    assert.equal(await responder.stop(), 0, responder.output());
    assert.ok(!responder.output().includes(TOKEN), 'the token never appears in the logs');
  });

  it('refuses a missing or wrong token with 401 and stores nothing', async () => {
    const before = changes();
    const ev = { serial: ca.good.serial, revokedAt: new Date().toISOString(), reason: 'keyCompromise' };
    for (const token of [null, TOKEN.slice(1), 'x' + TOKEN]) {
      const r = await post(base, `/v1/cas/${ca.name}/revocations`, ev, token);
      assert.equal(r.status, 401, String(token));
      assert.match(r.json.error, /bearer token is required/);
    }
    assert.equal(changes(), before);
    assert.match(statusOf(ca.good.serial), /: good/);
  });

  it('a revocation posted with the token is in the next OCSP answer, and a response is produced upon it', async () => {
    // The daemon caches its "good" answer first: the revocation must reach the cache too.
    assert.match(opensslQuery(ca, responder.url, [ca.good.file]), /: good/);
    assert.equal(count("SELECT count(*) FROM responses WHERE serial = ? AND hash = 'sha256'", ca.good.serial), 0);
    const ev = { serial: ca.good.serial, revokedAt: '2026-01-15T10:00:00Z', reason: 'keyCompromise' };
    const r = await post(base, `/v1/cas/${ca.name}/revocations`, ev);
    assert.equal(r.status, 200, JSON.stringify(r.json));
    assert.deepEqual(r.json, {
      outcome: 'updated',
      certificate: { ca: ca.name, serial: ca.good.serial, status: 'revoked', revokedAt: '2026-01-15T10:00:00.000Z', reason: 'keyCompromise' },
    });
    const out = opensslQuery(ca, responder.url, [ca.good.file], ['-resp_text']);
    assert.match(out, /Response verify OK/);
    assert.match(out, /: revoked/);
    assert.match(out, /Reason: keyCompromise/);
    assert.match(out, /Revocation Time: Jan 15 10:00:00 2026 GMT/);
    // Nobody asked with SHA-256: only production upon revocation stores that one.
    const produced = await waitFor(() => count("SELECT count(*) FROM responses WHERE serial = ? AND hash = 'sha256'", ca.good.serial) === 1, 5000);
    assert.ok(produced, 'a SHA-256 response was produced upon revocation');
    const sha256 = opensslQuery(ca, responder.url, [ca.good.file], ['-sha256']);
    assert.match(sha256, /Response verify OK/);
    assert.match(sha256, /: revoked/);

    const seq = changes();
    const again = await post(base, `/v1/cas/${ca.name}/revocations`, ev);
    assert.equal(again.status, 200);
    assert.deepEqual(again.json, { ...r.json, outcome: 'unchanged' });
    assert.equal(changes(), seq, 'the repeat changed nothing');
  });

  it('an issuance posted as a PEM certificate turns "unknown" into "good", with responses produced upon issuance', async () => {
    assert.match(opensslQuery(ca, responder.url, [ca.unissued.file]), /: unknown/);
    const pem = readFileSync(ca.unissued.file, 'utf8');
    const r = await post(base, `/v1/cas/${ca.name}/certificates`, { certificate: pem, profile: 'tls-server' });
    assert.equal(r.status, 200, JSON.stringify(r.json));
    assert.equal(r.json.outcome, 'inserted');
    assert.equal(r.json.certificate.status, 'good');
    assert.equal(r.json.certificate.profile, 'tls-server');
    assert.match(r.json.certificate.notAfter, /^20\d\d-/);
    const produced = await waitFor(() => count('SELECT count(*) FROM responses WHERE serial = ?', ca.unissued.serial) === 2, 5000);
    assert.ok(produced, 'SHA-1 and SHA-256 responses were produced upon issuance, before anyone asked');
    const out = opensslQuery(ca, responder.url, [ca.unissued.file]);
    assert.match(out, /Response verify OK/);
    assert.match(out, /: good/);
    const again = await post(base, `/v1/cas/${ca.name}/certificates`, { certificate: pem, profile: 'tls-server' });
    assert.deepEqual(again.json, { ...r.json, outcome: 'unchanged' });
  });

  it('bad input gets a 4xx naming the field and stores nothing', async () => {
    const seq = changes();
    const rev = { serial: 'abcd01', revokedAt: '2026-01-15T10:00:00Z', reason: 'superseded' };
    const cases: [string, unknown, number, string][] = [
      ['/v1/cas/no-such-ca/revocations', rev, 404, 'ca'],
      [`/v1/cas/${ca.name}/revocations`, { ...rev, serial: 'not-hex' }, 400, 'serial'],
      [`/v1/cas/${ca.name}/revocations`, { ...rev, reason: 'lostKey' }, 400, 'reason'],
      [`/v1/cas/${ca.name}/revocations`, { ...rev, revokedAt: '15/01/2026' }, 400, 'revokedAt'],
      [`/v1/cas/${ca.name}/revocations`, '{"serial": "abcd01", ', 400, '(body)'],
      [`/v1/cas/${ca.name}/revocations`, { ...rev, pad: 'x'.repeat(70_000) }, 413, '(body)'],
      [`/v1/cas/${ca.name}/certificates`, { certificate: readFileSync(makeOpensslPki().leafCert, 'utf8') }, 422, 'certificate'],
      [`/v1/cas/${ca.name}/certificates`, { certificate: readFileSync(ca.caCertFile, 'utf8') }, 422, 'certificate'],
    ];
    for (const [path, body, status, field] of cases) {
      const r = await post(base, path, body);
      assert.equal(r.status, status, `${path}: ${JSON.stringify(r.json)}`);
      assert.equal(r.json.field, field, path);
      assert.ok(r.json.error, path);
    }
    assert.equal(changes(), seq);
    assert.match(statusOf('abcd01'), /not in the store/);
  });
});

describe('publishing API startup', () => {
  it('a missing token file or an unreadable TLS key stops the daemon with an error naming the field', async () => {
    const cases: [Record<string, unknown>, RegExp][] = [
      [{ tokenFile: 'no-such.token' }, /publishing\.auth\.tokenFile: cannot read token file .*no-such\.token: ENOENT/],
      [{ mtls: { ca: pki.cas[0]!.caCertFile, cert: pki.cas[0]!.caCertFile, key: 'no-such.key' } }, /publishing\.auth\.mtls\.key: cannot read .*no-such\.key: ENOENT/],
    ];
    for (const [auth, pattern] of cases) {
      const config = variantConfig(pki, 'publish-broken', (c) => (c.publishing = { port: 0, auth }));
      await assert.rejects(startResponder(pki, { config }), (e: Error) => /exited with 1/.test(e.message) && pattern.test(e.message));
    }
  });
});

describe('publishing API with mutual TLS', () => {
  let responder: Responder;
  let dir: string;
  let port: number;

  /** One HTTPS request; rejects when the TLS handshake or the connection is refused. */
  const call = (method: string, path: string, body: unknown, client?: 'good' | 'rogue') =>
    new Promise<{ status: number; json: Record<string, any> }>((resolve, reject) => {
      const data = body === undefined ? undefined : JSON.stringify(body);
      const req = request(
        {
          host: '127.0.0.1', port, path, method, agent: false, timeout: 10_000,
          ca: readFileSync(join(dir, 'server.pem')),
          ...(client ? { cert: readFileSync(join(dir, `${client}.pem`)), key: readFileSync(join(dir, `${client}.key`)) } : {}),
          headers: data === undefined ? {} : { 'content-type': 'application/json', 'content-length': Buffer.byteLength(data) },
        },
        (res) => {
          let text = '';
          res.setEncoding('utf8');
          res.on('data', (d) => (text += d));
          res.on('end', () => resolve({ status: res.statusCode!, json: JSON.parse(text) }));
          res.on('error', reject);
        },
      );
      req.on('timeout', () => req.destroy(new Error('timed out')));
      req.on('error', reject);
      req.end(data);
    });

  before(async () => {
    dir = tempDir('mtls');
    const key = (name: string) => ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', join(dir, `${name}.key`)];
    // The listener's own certificate, for 127.0.0.1; the clients trust it directly.
    openssl(['req', '-x509', ...key('server'), '-out', join(dir, 'server.pem'), '-days', '2', '-subj', '/CN=publishing listener',
      '-addext', 'subjectAltName=IP:127.0.0.1']);
    const ext = join(dir, 'client.ext');
    writeFileSync(ext, 'basicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=clientAuth\n');
    // Two CAs with the same name: only certificates from the configured one may publish.
    for (const [caName, client] of [['clients-ca', 'good'], ['rogue-ca', 'rogue']] as const) {
      openssl(['req', '-x509', ...key(caName), '-out', join(dir, `${caName}.pem`), '-days', '2', '-subj', '/CN=Publishing Clients CA']);
      openssl(['req', '-new', ...key(client), '-out', join(dir, `${client}.csr`), '-subj', '/CN=issuing CA publisher']);
      openssl(['x509', '-req', '-in', join(dir, `${client}.csr`), '-CA', join(dir, `${caName}.pem`), '-CAkey', join(dir, `${caName}.key`),
        '-set_serial', '7', '-days', '2', '-extfile', ext, '-out', join(dir, `${client}.pem`)]);
    }
    const config = variantConfig(pki, 'publish-mtls', (c) => {
      c.publishing = {
        host: '127.0.0.1', port: 0,
        auth: { mtls: { ca: join(dir, 'clients-ca.pem'), cert: join(dir, 'server.pem'), key: join(dir, 'server.key') } },
      };
    });
    responder = await startResponder(pki, { config });
    port = publishingPort(responder);
  });
  after(async () => {
    assert.equal(await responder.stop(), 0, responder.output());
  });

  it('refuses a client without a certificate and one with a certificate from another CA; stores nothing', async () => {
    const ev = { serial: 'beef01', revokedAt: '2026-01-15T10:00:00Z', reason: 'superseded' };
    await assert.rejects(call('POST', `/v1/cas/${ca.name}/revocations`, ev));
    await assert.rejects(call('POST', `/v1/cas/${ca.name}/revocations`, ev, 'rogue'));
    const read = await call('GET', `/v1/cas/${ca.name}/certificates/beef01`, undefined, 'good');
    assert.equal(read.status, 404, 'the refused revocations stored nothing');
    await assertLogged(responder, /publishing TLS handshake refused/);
  });

  it('accepts a client with a certificate from the configured CA', async () => {
    const ev = { serial: 'beef02', revokedAt: '2026-01-15T10:00:00Z', reason: 'superseded' };
    const r = await call('POST', `/v1/cas/${ca.name}/revocations`, ev, 'good');
    assert.equal(r.status, 200, JSON.stringify(r.json));
    assert.equal(r.json.certificate.status, 'revoked');
    const read = await call('GET', `/v1/cas/${ca.name}/certificates/beef02`, undefined, 'good');
    assert.deepEqual(read.json, { certificate: r.json.certificate });
  });
});

describe('publishing API on a PostgreSQL store', () => {
  let responder: Responder;
  let base: string;
  let url: string;
  let config: string;
  const count = (sql: string, params: unknown[] = []) => pgCount(url, sql, params);

  before(async () => {
    const pg = await postgresCluster();
    url = pg.url(await pg.createDatabase());
    config = variantConfig(pki, 'publish-postgres', (c) => {
      c.store = { url };
      c.defaults = { validity: '1h', preProduction: PRE_PRODUCTION };
      c.publishing = { host: '127.0.0.1', port: 0, auth: { tokenFile: 'publish.token' } };
    });
    const imported = runCli(['import', 'certs', '--ca', ca.name, ca.revoked.file, '--config', config], childEnv(pki));
    assert.equal(imported.status, 0, imported.stderr);
    responder = await startResponder(pki, { config });
    base = `http://127.0.0.1:${publishingPort(responder)}`;
  });
  after(async () => {
    assert.equal(await responder.stop(), 0, responder.output());
  });

  it('a revocation round trip: refused without the token, stored with it, answered revoked, repeat unchanged', async () => {
    const leaf = ca.revoked;
    assert.match(opensslQuery(ca, responder.url, [leaf.file]), /: good/);
    const ev = { serial: leaf.serial, revokedAt: '2026-02-01T08:30:00Z', reason: 'cessationOfOperation' };
    const seq = await count('SELECT count(*) AS n FROM status_changes');
    assert.equal((await post(base, `/v1/cas/${ca.name}/revocations`, ev, 'wrong')).status, 401);
    assert.equal((await post(base, `/v1/cas/${ca.name}/revocations`, { ...ev, reason: 'lostKey' })).status, 400);
    assert.equal(await count('SELECT count(*) AS n FROM status_changes'), seq, 'refused events stored nothing');
    const r = await post(base, `/v1/cas/${ca.name}/revocations`, ev);
    assert.equal(r.status, 200, JSON.stringify(r.json));
    assert.equal(r.json.outcome, 'updated');
    const out = opensslQuery(ca, responder.url, [leaf.file], ['-resp_text']);
    assert.match(out, /Response verify OK/);
    assert.match(out, /: revoked/);
    assert.match(out, /Reason: cessationOfOperation/);
    assert.match(out, /Revocation Time: Feb {2}1 08:30:00 2026 GMT/);
    const produced = await waitFor(async () => (await count("SELECT count(*) AS n FROM responses WHERE serial = $1 AND hash = 'sha256'", [leaf.serial])) === 1, 5000);
    assert.ok(produced, 'a SHA-256 response was produced upon revocation');
    const after = await count('SELECT count(*) AS n FROM status_changes');
    const again = await post(base, `/v1/cas/${ca.name}/revocations`, ev);
    assert.deepEqual(again.json, { ...r.json, outcome: 'unchanged' });
    assert.equal(await count('SELECT count(*) AS n FROM status_changes'), after);
  });
});
