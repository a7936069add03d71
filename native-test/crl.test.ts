// CRL ingestion end to end: CRLs signed by a CA key inside SoftHSM2 imported with the CLI and seen by `openssl ocsp`;
// refused CRLs change nothing; the download service against CRLs served from 127.0.0.1, on SQLite and PostgreSQL.
import assert from 'node:assert/strict';
import { createServer, Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { FakeClock, systemClock } from '../src/clock';
import { CrlDownloadCa, CrlDownloadService } from '../src/ingest/crl-download';
import { httpGet } from '../src/ingest/http-get';
import { readCertificate } from '../src/pki/certificate';
import { crlBlocks, readCrl } from '../src/pki/crl';
import { PostgresStore } from '../src/store/postgres/postgres-store';
import type { Store } from '../src/store/response-store';
import { SqliteStore } from '../src/store/sqlite/sqlite-store';
import { openssl } from '../test/support/openssl';
import { makeOpensslCrlCa } from '../test/support/openssl-crl-ca';
import { tempDir } from '../test/support/temp';
import { assertLogged, childEnv, createTestPki, opensslQuery, Responder, runCli, runCliAsync, startResponder, TestCa, variantConfig, waitFor } from './support/harness';
import { HsmCrl, hsmCrlIssuer } from './support/hsm-crl';
import { postgresCluster } from './support/postgres';

const pki = createTestPki([
  { name: 'hsmca', caKey: 'ec-p256', responderKey: 'ec-p256' },
  { name: 'other', caKey: 'ec-p256' },
]);
const [hsmca, other] = [pki.cas[0]!, pki.cas[1]!];
// This process opens the token too (its own SOFTHSM2_CONF) to sign CRLs with the CA keys, as a CA would.
const crls = hsmCrlIssuer(pki);
after(() => crls.close());

const now = () => new Date(Math.floor(Date.now() / 1000) * 1000);
const hour = 3_600_000;

/** A CRL of `ca` (default hsmca) signed inside the token by `signedBy`'s key (default its own), as PEM; returns the file. */
const hsmCrl = (name: string, o: Omit<HsmCrl, 'ca'> & { ca?: TestCa }): Promise<string> => crls.write(name, { ...o, ca: o.ca ?? hsmca });

describe('import crl with the CLI', () => {
  let responder: Responder;
  const cli = (...args: string[]) => runCli([...args, '--config', pki.configFile], childEnv(pki));
  const statusOf = (serial: string) => cli('status', '--ca', 'hsmca', '--serial', serial).stdout.trim();
  before(async () => {
    responder = await startResponder(pki);
  });
  after(async () => {
    await responder.stop();
  });

  it('a full CRL revokes; openssl ocsp against the running responder shows it; a delta CRL releases a hold', async () => {
    assert.match(opensslQuery(hsmca, responder.url, [hsmca.good.file]), /: good/);
    const revokedAt = new Date(now().getTime() - hour);
    const full = await hsmCrl('full1.pem', {
      number: 1n,
      entries: [
        { serial: hsmca.good.serial, revokedAt, reason: 'keyCompromise' },
        { serial: hsmca.unissued.serial, revokedAt, reason: 'certificateHold' },
      ],
    });
    const r = cli('import', 'crl', '--ca', 'hsmca', full);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /full1\.pem: full CRL number 1 of .*, 2 entries: inserted 1, updated 1, unchanged 0/);
    assert.match(r.stdout, /^inserted 1, updated 1, unchanged 0$/m);
    const out = opensslQuery(hsmca, responder.url, [hsmca.good.file]);
    assert.match(out, /Response verify OK/);
    assert.match(out, /: revoked/);
    assert.match(out, /Reason: keyCompromise/);
    assert.match(opensslQuery(hsmca, responder.url, [hsmca.unissued.file]), /: revoked[\s\S]*Reason: certificateHold/);

    const delta = await hsmCrl('delta2.der.pem', { number: 2n, base: 1n, entries: [{ serial: hsmca.unissued.serial, revokedAt, reason: 'removeFromCRL' }] });
    const d = cli('import', 'crl', '--ca', 'hsmca', delta);
    assert.equal(d.status, 0, d.stderr);
    assert.match(d.stdout, /delta CRL number 2 \(base 1\) .*: inserted 0, updated 1, unchanged 0/);
    const released = opensslQuery(hsmca, responder.url, [hsmca.unissued.file]);
    assert.match(released, /Response verify OK/);
    assert.match(released, /: good/);
    // Older than what was applied: refused, naming both.
    const again = cli('import', 'crl', '--ca', 'hsmca', full);
    assert.equal(again.status, 1);
    assert.match(again.stderr, /full1\.pem: full CRL number 1 .* is older than the delta CRL number 2/);
    assert.match(statusOf(hsmca.unissued.serial), /: good/);
  });

  it('refuses a CRL with a bad signature and one from another CA, with exit 1, changing nothing', async () => {
    const entries = [{ serial: hsmca.revoked.serial, revokedAt: now(), reason: 'superseded' as const }, { serial: 'abc1', revokedAt: now() }];
    const good = await hsmCrl('good5.pem', { number: 5n, entries });
    const der = crlBlocks(readFileSync(good), good)[0]!;
    der[der.length - 3]! ^= 0x01; // inside the signature value
    const tampered = join(pki.dir, 'tampered.crl');
    writeFileSync(tampered, der);
    const foreign = await hsmCrl('other.pem', { ca: other, signedBy: other, number: 7n, entries });
    // The CA's name, but another key: the signature gives it away.
    const forged = await hsmCrl('forged.pem', { signedBy: other, number: 8n, entries });
    const cases: [string[], RegExp][] = [
      [[tampered], /tampered\.crl: bad signature: the CRL was not signed by the key of CA/],
      [[foreign], /other\.pem: CRL issued by "O=ocsp-hsm demo, CN=other Root CA", not by the CA "O=ocsp-hsm demo, CN=hsmca Root CA"/],
      [[forged], /forged\.pem: bad signature/],
      [[good, forged], /forged\.pem: bad signature/],
    ];
    for (const [files, pattern] of cases) {
      const r = cli('import', 'crl', '--ca', 'hsmca', ...files);
      assert.equal(r.status, 1, files.join(' '));
      assert.match(r.stderr, pattern);
      assert.equal(r.stdout, '');
    }
    assert.match(statusOf(hsmca.revoked.serial), /reason keyCompromise/, 'still as build-pki stored it');
    assert.match(statusOf('abc1'), /not in the store/);
    assert.match(opensslQuery(hsmca, responder.url, [hsmca.revoked.file]), /Reason: keyCompromise/);
  });

  it('imports into a PostgreSQL store too, refusing an older CRL there', async () => {
    const pg = await postgresCluster();
    const url = pg.url(await pg.createDatabase());
    const config = variantConfig(pki, 'crl-pg', (c) => {
      c.store = { url };
    });
    const pgCli = (...args: string[]) => runCli([...args, '--config', config], childEnv(pki));
    const crl3 = await hsmCrl('pg3.pem', { number: 3n, entries: [{ serial: hsmca.good.serial, revokedAt: now(), reason: 'affiliationChanged' }] });
    const crl2 = await hsmCrl('pg2.pem', { number: 2n, entries: [{ serial: 'beef', revokedAt: now() }] });
    const r = pgCli('import', 'crl', '--ca', 'hsmca', crl3);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /^inserted 1, updated 0, unchanged 0$/m);
    assert.match(pgCli('status', '--ca', 'hsmca', '--serial', hsmca.good.serial).stdout, /revoked, .*reason affiliationChanged/);
    const old = pgCli('import', 'crl', '--ca', 'hsmca', crl2);
    assert.equal(old.status, 1);
    assert.match(old.stderr, /pg2\.pem: full CRL number 2 .* is older than the full CRL number 3/);
    assert.match(pgCli('status', '--ca', 'hsmca', '--serial', 'beef').stdout, /not in the store/);
  });
});

async function closeServer(web: { server: Server } | undefined): Promise<void> {
  if (!web) return;
  web.server.closeAllConnections();
  await new Promise((r) => web.server.close(r));
}

/** Serves files by path and counts requests; /huge streams without end, /declared-huge announces 10 MB. */
function crlServer(): Promise<{ server: Server; base: string; files: Map<string, Buffer>; hits: Map<string, number>; hugeSent: () => number }> {
  const files = new Map<string, Buffer>();
  const hits = new Map<string, number>();
  let hugeSent = 0;
  const server = createServer((req, res) => {
    const path = req.url ?? '/';
    hits.set(path, (hits.get(path) ?? 0) + 1);
    if (path === '/huge') {
      const chunk = Buffer.alloc(64 * 1024, 0x30);
      const pump = () => {
        while (!res.destroyed && hugeSent < 200 * 1024 * 1024) {
          hugeSent += chunk.length;
          if (!res.write(chunk)) return void res.once('drain', pump);
        }
        res.end();
      };
      return pump();
    }
    if (path === '/declared-huge') {
      res.writeHead(200, { 'Content-Length': 10_000_000 });
      return void res.write(Buffer.alloc(1000));
    }
    const body = files.get(path);
    if (!body) return void res.writeHead(404).end();
    res.end(body);
  });
  return new Promise((resolve) =>
    server.listen(0, '127.0.0.1', () => {
      const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
      resolve({ server, base, files, hits, hugeSent: () => hugeSent });
    }),
  );
}

const backends: [string, (clock: FakeClock) => Promise<Store>][] = [
  ['SQLite', async (clock) => new SqliteStore(join(tempDir('crl-sqlite'), 'store.sqlite'), clock)],
  ['PostgreSQL', async (clock) => {
    const pg = await postgresCluster();
    return PostgresStore.open({ url: pg.url(await pg.createDatabase()), poolSize: 2, clock });
  }],
];

for (const [backend, openBackend] of backends) {
  describe(`CRL download service on ${backend}`, () => {
    let web: Awaited<ReturnType<typeof crlServer>>;
    let store: Store;
    let service: CrlDownloadService;
    let clock: FakeClock;
    let nextUpdate: Date;
    const logged: string[] = [];
    const hits = (path: string) => web.hits.get(path) ?? 0;

    before(async () => {
      web = await crlServer();
      // The openssl CA's CRLs name the delta CRL's URL on our server (Freshest CRL), plus an ldap: one to skip.
      const ca = makeOpensslCrlCa({ cn: `Download CA ${backend}`, freshestCrl: `${web.base}/delta.crl` });
      const crl1 = ca.gencrl('crl1.pem');
      ca.revoke(ca.leaves[0]!, ['-crl_hold', 'holdInstructionReject']);
      ca.revoke(ca.leaves[1]!, ['-crl_reason', 'keyCompromise']);
      const crl2 = ca.gencrl('crl2.pem');
      ca.setIndexReason('1001', 'removeFromCRL');
      ca.revoke(ca.leaves[2]!, ['-crl_reason', 'cessationOfOperation']);
      const delta = ca.gendelta(crl1, ca.gencrl('crl3.pem'), 'delta.pem');
      web.files.set('/full.crl', readFileSync(crl2));
      web.files.set('/delta.crl', readFileSync(delta));
      const badsig = join(ca.dir, 'badsig.pem');
      openssl(['crl', '-in', crl2, '-badsig', '-out', badsig]);
      web.files.set('/badsig.crl', readFileSync(badsig));
      const certificate = readCertificate(ca.caCert);
      const parsed = await readCrl(crlBlocks(readFileSync(crl2), 'crl2')[0]!, certificate, 'crl2');
      nextUpdate = parsed.nextUpdate!;
      clock = new FakeClock(new Date(parsed.thisUpdate.getTime() + 60_000));
      store = await openBackend(clock);
      const cfg = (urls: string[], maxSize = 1024 * 1024) => ({ urls, maxSize, interval: 600_000, ignoreNextUpdate: false, timeout: 10_000 });
      const cas: CrlDownloadCa[] = [
        { name: 'osl', certificate, crl: cfg([`${web.base}/missing.crl`, `${web.base}/full.crl`]) },
        { name: 'big', certificate, crl: cfg([`${web.base}/huge`], 64 * 1024) },
        { name: 'declared', certificate, crl: cfg([`${web.base}/declared-huge`], 64 * 1024) },
        { name: 'bad', certificate, crl: cfg([`${web.base}/badsig.crl`]) },
      ];
      const log = { info: (_o: object, m: string) => void logged.push(m), warn: (o: object, m: string) => void logged.push(`${m} ${JSON.stringify(o)}`) };
      // Downloads time out on the real clock; due-ness follows the fake one.
      service = new CrlDownloadService({ store, cas, clock, log, fetch: httpGet(systemClock) });
    });
    after(async () => {
      await store?.close();
      web?.server.closeAllConnections();
      await new Promise((r) => web?.server.close(r));
    });

    it('downloads the full CRL (trying the URLs in order), then the delta CRL its Freshest CRL extension names', async () => {
      const [r] = await service.runOnce({ cas: ['osl'] });
      assert.equal(r!.full.status, 'applied');
      assert.equal(r!.full.status === 'applied' && r!.full.url, `${web.base}/full.crl`);
      assert.equal(r!.delta?.status, 'applied');
      assert.deepEqual([hits('/missing.crl'), hits('/full.crl'), hits('/delta.crl')], [1, 1, 1]);
      assert.equal((await store.getCertificate('osl', '1001'))?.status, 'good', 'the hold the delta CRL removed');
      assert.equal((await store.getCertificate('osl', '1002'))?.reason, 'keyCompromise');
      assert.equal((await store.getCertificate('osl', '1003'))?.reason, 'cessationOfOperation');
      const last = await store.lastCrls('osl');
      assert.equal(last.full?.crlNumber, 2n);
      assert.deepEqual(last.full?.nextUpdate, nextUpdate);
      assert.deepEqual(last.full?.freshestCrlUrls, [`${web.base}/delta.crl`]);
      assert.equal(last.delta?.crlNumber, 3n);
    });

    it('does not download again before nextUpdate; does with force; does once nextUpdate has passed', async () => {
      const [r] = await service.runOnce({ cas: ['osl'] });
      assert.deepEqual([r!.full.status, r!.delta?.status], ['not-due', 'not-due']);
      assert.deepEqual([hits('/full.crl'), hits('/delta.crl')], [1, 1]);
      const [forced] = await service.runOnce({ cas: ['osl'], force: true });
      assert.deepEqual([hits('/full.crl'), hits('/delta.crl')], [2, 2]);
      // The full CRL 2 again would put 1001 back on hold: older than the delta CRL 3 applied, so ignored.
      assert.equal(forced!.full.status, 'stale');
      assert.match(forced!.full.status === 'stale' ? forced!.full.message : '', /full CRL number 2 .* is older than the delta CRL number 3/);
      assert.equal(forced!.delta?.status, 'applied');
      assert.equal((await store.getCertificate('osl', '1001'))?.status, 'good');
      clock.set(new Date(nextUpdate.getTime() + 1000));
      await service.runOnce({ cas: ['osl'] });
      assert.deepEqual([hits('/full.crl'), hits('/delta.crl')], [3, 3]);
    });

    it('refuses a body over maxSize, cutting the download off, and changes nothing', async () => {
      const [big, declared] = await service.runOnce({ cas: ['big', 'declared'] });
      assert.equal(big!.full.status, 'failed');
      assert.match(big!.full.status === 'failed' ? big!.full.message : '', /\/huge: more than 65536 bytes, the limit \(crl\.maxSize\); download cut off/);
      assert.ok(await waitFor(() => web.hugeSent() > 0, 1000));
      const sent = web.hugeSent();
      await new Promise((r) => setTimeout(r, 200));
      assert.ok(web.hugeSent() < 32 * 1024 * 1024 && web.hugeSent() === sent, `server kept sending: ${web.hugeSent()} bytes`);
      assert.match(declared!.full.status === 'failed' ? declared!.full.message : '', /declared-huge: 10000000 bytes, over the limit of 65536/);
      assert.deepEqual(await store.lastCrls('big'), {});
      assert.deepEqual(await store.lastCrls('declared'), {});
      assert.ok(logged.some((l) => /CRL download failed: nothing changed .*"ca":"big"/.test(l)));
    });

    it('refuses a CRL with a bad signature and changes nothing', async () => {
      const [r] = await service.runOnce({ cas: ['bad'] });
      assert.equal(r!.full.status, 'failed');
      assert.match(r!.full.status === 'failed' ? r!.full.message : '', /badsig\.crl: bad signature/);
      assert.deepEqual(await store.lastCrls('bad'), {});
      assert.equal(await store.getCertificate('bad', '1002'), undefined);
    });
  });
}

describe('the daemon runs the CRL download service every crl.interval', () => {
  let responder: Responder | undefined;
  let web: Awaited<ReturnType<typeof crlServer>>;
  after(async () => {
    await responder?.stop();
    await closeServer(web);
  });

  it('a certificate revoked on the CA\'s CRL is answered revoked once the daemon has fetched it', async () => {
    web = await crlServer();
    web.files.set('/hsmca.crl', readFileSync(await hsmCrl('daemon.pem', {
      number: 1n, entries: [{ serial: hsmca.good.serial, revokedAt: new Date(now().getTime() - hour), reason: 'affiliationChanged' }],
    })));
    // Its own empty store: the serial is unknown until the CRL arrives.
    const config = variantConfig(pki, 'crl-daemon', (c) => {
      c.dataDir = 'data-crl-daemon';
      c.cas[0].crl = { urls: [`${web.base}/hsmca.crl`], interval: '500ms' };
    });
    responder = await startResponder(pki, { config });
    const answered = await waitFor(() => /Reason: affiliationChanged/.test(opensslQuery(hsmca, responder!.url, [hsmca.good.file])), 15_000, 250);
    assert.ok(answered, `${opensslQuery(hsmca, responder.url, [hsmca.good.file])}\n${responder.output()}`);
    assert.match(opensslQuery(hsmca, responder.url, [hsmca.good.file]), /Response verify OK/);
    await assertLogged(responder, /"msg":"CRL applied"/);
    assert.ok((web.hits.get('/hsmca.crl') ?? 0) >= 1);
  });
});

describe('ocsp-hsm crl-download', () => {
  let web: Awaited<ReturnType<typeof crlServer>>;
  after(async () => {
    await closeServer(web);
  });

  it('runs the service once: applies what is due, says what is not, --force downloads anyway, failures exit 1', async () => {
    web = await crlServer();
    web.files.set('/hsmca.crl', readFileSync(await hsmCrl('cli-full.pem', {
      number: 4n, fresh: [`${web.base}/hsmca-delta.crl`], entries: [{ serial: 'c0ffee', revokedAt: new Date(now().getTime() - hour), reason: 'superseded' }],
    })));
    web.files.set('/hsmca-delta.crl', readFileSync(await hsmCrl('cli-delta.pem', { number: 5n, base: 4n, entries: [{ serial: 'c0ffef', revokedAt: now() }] })));
    const config = variantConfig(pki, 'crl-cli', (c) => {
      c.dataDir = 'data-crl-cli';
      c.cas[0].crl = { urls: [`${web.base}/hsmca.crl`] };
      c.cas[1].crl = { urls: [`${web.base}/nothing-here.crl`] };
    });
    // Not runCli: a synchronous child would block this process, and with it the CRL server the child downloads from.
    const cli = (...args: string[]) => runCliAsync([...args, '--config', config], childEnv(pki));
    const first = await cli('crl-download', '--ca', 'hsmca');
    assert.equal(first.status, 0, first.stderr);
    assert.match(first.stdout, /^hsmca: full CRL: full CRL number 4 of .* from http:\/\/127\.0\.0\.1:\d+\/hsmca\.crl, 1 entries: inserted 1, updated 0, unchanged 0$/m);
    assert.match(first.stdout, /^hsmca: delta CRL: delta CRL number 5 \(base 4\) of .*: inserted 1, updated 0, unchanged 0$/m);
    assert.match((await cli('status', '--ca', 'hsmca', '--serial', 'c0ffee')).stdout, /revoked, .*reason superseded/);
    const second = await cli('crl-download', '--ca', 'hsmca');
    assert.match(second.stdout, /^hsmca: full CRL: not due before 20.*Z \(--force downloads anyway\)$/m);
    assert.match(second.stdout, /^hsmca: delta CRL: not due before /m);
    assert.equal(web.hits.get('/hsmca.crl'), 1);
    const forced = await cli('crl-download', '--ca', 'hsmca', '--force');
    assert.equal(forced.status, 0, forced.stderr);
    assert.match(forced.stdout, /^hsmca: full CRL: ignored: .*full CRL number 4 .* is older than the delta CRL number 5/m);
    assert.equal(web.hits.get('/hsmca.crl'), 2);
    const all = await cli('crl-download');
    assert.equal(all.status, 1);
    assert.match(all.stdout, /^other: full CRL: failed: http:\/\/127\.0\.0\.1:\d+\/nothing-here\.crl: HTTP 404$/m);
    assert.match(all.stderr, /1 CRL download failed; nothing was changed by it/);
    const usage = await cli('crl-download', '--ca', 'nope');
    assert.equal(usage.status, 2);
    assert.match(usage.stderr, /--ca: no CA named "nope"/);
  });
});
