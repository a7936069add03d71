// Two responders on SoftHSM2 sharing one PostgreSQL store: one's stored response is the other's answer, and a
// revocation written by the CLI reaches both caches by NOTIFY; openssl verifies every answer.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { childEnv, createTestPki, opensslQuery, Responder, runCli, startResponder, TestCa, TestPki, variantConfig, waitFor } from './support/harness';
import { pgCount, postgresCluster } from './support/postgres';

const producedAt = (out: string) => /Produced At: (.*)/.exec(out)?.[1];

describe('two responders sharing one PostgreSQL store', () => {
  let pki: TestPki;
  let ca: TestCa;
  let config: string;
  let url: string;
  let responders: Responder[] = [];
  const cli = (args: string[]) => runCli([...args, '--config', config], childEnv(pki));
  const count = (sql: string, params: unknown[] = []) => pgCount(url, sql, params);

  before(async () => {
    const pg = await postgresCluster();
    url = pg.url(await pg.createDatabase());
    pki = createTestPki([{ name: 'pgca', caKey: 'ec-p256', responderKey: 'ec-p256' }]);
    ca = pki.cas[0]!;
    config = variantConfig(pki, 'postgres', (c) => {
      c.store = { url };
      c.defaults = { ...c.defaults, validity: '1h', preProduction: { enabled: true, storeOnDemand: true, onRevocation: true } };
    });
    // The PKI builder recorded its leaves in SQLite; the PostgreSQL store learns them through the CLI.
    for (const args of [
      ['import', 'certs', '--ca', ca.name, ca.good.file, ca.revoked.file],
      ['revoke', '--ca', ca.name, '--serial', ca.revoked.serial, '--reason', 'keyCompromise'],
    ]) {
      const r = cli(args);
      assert.equal(r.status, 0, `${args.join(' ')}: ${r.stderr}`);
    }
    responders = await Promise.all([startResponder(pki, { config }), startResponder(pki, { config })]);
  });
  after(async () => {
    for (const r of responders) assert.equal(await r.stop(), 0, r.output());
  });

  it('answers from the shared store: what one responder stored, the other serves', async () => {
    const [a, b] = responders as [Responder, Responder];
    const first = opensslQuery(ca, a.url, [ca.good.file], ['-resp_text']);
    assert.match(first, /Response verify OK/);
    assert.match(first, /: good/);
    assert.ok(await waitFor(async () => (await count('SELECT count(*) AS n FROM responses WHERE serial = $1', [ca.good.serial])) > 0, 5000));
    const second = opensslQuery(ca, b.url, [ca.good.file], ['-resp_text']);
    assert.match(second, /Response verify OK/);
    assert.equal(producedAt(second), producedAt(first), 'the same stored response');
    assert.match(opensslQuery(ca, b.url, [ca.revoked.file]), /: revoked/);
    assert.match(opensslQuery(ca, a.url, [ca.unissued.file]), /: unknown/);
  });

  it('a revocation by the CLI reaches both responders, whose caches held "good", within 2 s', async () => {
    for (const r of responders) assert.match(opensslQuery(ca, r.url, [ca.good.file]), /: good/);
    const rev = cli(['revoke', '--ca', ca.name, '--serial', ca.good.serial, '--reason', 'superseded']);
    assert.equal(rev.status, 0, rev.stderr);
    for (const r of responders) {
      const revoked = await waitFor(() => /: revoked/.test(opensslQuery(ca, r.url, [ca.good.file])), 2000, 100);
      assert.ok(revoked, `${r.url} answers revoked`);
      const out = opensslQuery(ca, r.url, [ca.good.file], ['-resp_text']);
      assert.match(out, /Response verify OK/);
      assert.match(out, /Reason: superseded/);
    }
  });
});
