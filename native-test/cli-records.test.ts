// The status CLI: a real `openssl ca` index.txt, certificate import, revoke and status; bad input changes nothing;
// changes reach a running daemon's answers at once.
import assert from 'node:assert/strict';
import { appendFileSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { openssl } from '../test/support/openssl';
import { opensslCaDir } from '../test/support/openssl-ca-dir';
import { childEnv, createTestPki, opensslQuery, Responder, runCli, startResponder, TestPki, variantConfig } from './support/harness';

/** An OpenSSL CA run the way operators run it, with three issued certificates and two revocations. */
function opensslCa(): { dir: string; caCert: string; certs: string[]; serials: string[]; index: string } {
  const { dir, cnf } = opensslCaDir('opensslca', { cn: 'OpenSSL CA', serial: '5A01' });
  const certs: string[] = [];
  for (const n of [1, 2, 3]) {
    const csr = join(dir, `leaf${n}.csr`);
    openssl(['req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', join(dir, `leaf${n}.key`), '-out', csr, '-subj', `/CN=leaf${n}`]);
    const out = join(dir, `leaf${n}.pem`);
    openssl(['ca', '-batch', '-config', cnf, '-in', csr, '-out', out]);
    certs.push(out);
  }
  openssl(['ca', '-config', cnf, '-revoke', certs[1]!, '-crl_reason', 'keyCompromise']);
  openssl(['ca', '-config', cnf, '-revoke', certs[2]!, '-crl_reason', 'superseded']);
  return { dir, caCert: join(dir, 'ca.pem'), certs, serials: ['5a01', '5a02', '5a03'], index: join(dir, 'index.txt') };
}

describe('status CLI', () => {
  let pki: TestPki;
  let osl: ReturnType<typeof opensslCa>;
  let config: string;
  let responder: Responder;
  const cli = (...args: string[]) => runCli([...args, '--config', config], childEnv(pki));
  const statusOf = (ca: string, serial: string) => cli('status', '--ca', ca, '--serial', serial).stdout.trim();

  before(async () => {
    pki = createTestPki([{ name: 'hsmca', caKey: 'ec-p256', responderKey: 'ec-p256' }]);
    osl = opensslCa();
    // The OpenSSL CA is configured for status management only; the HSM CA is also served.
    config = variantConfig(pki, 'with-openssl-ca', (c) => {
      c.cas.push({ name: 'osl', certificate: osl.caCert, signer: { token: 'main', key: { label: 'hsmca-ca' } } });
    });
    responder = await startResponder(pki);
  });
  after(async () => {
    await responder.stop();
  });

  it('imports an index.txt written by `openssl ca`, with revocation reasons', () => {
    const r = cli('import', 'index', '--ca', 'osl', osl.index);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /inserted 3, updated 0, unchanged 0/);
    assert.match(statusOf('osl', '5A01'), /^osl serial 5a01: good, notAfter 20/);
    assert.match(statusOf('osl', '5a:02'), /^osl serial 5a02: revoked, at 20.*, reason keyCompromise/);
    assert.match(statusOf('osl', '0x5a03'), /reason superseded/);
    assert.equal(cli('import', 'index', '--ca', 'osl', osl.index).stdout.trim(), 'inserted 0, updated 0, unchanged 3');
  });

  it('refuses a bad index line, naming it, and stores nothing from that file', () => {
    const bad = join(osl.dir, 'bad-index.txt');
    writeFileSync(bad, readFileSync(osl.index, 'utf8').replace('5A01', '7A01'));
    appendFileSync(bad, 'R\t271121073233Z\t261120100000Z,stolen\t7A09\tunknown\t/CN=x\n');
    const r = cli('import', 'index', '--ca', 'osl', bad);
    assert.equal(r.status, 1);
    assert.match(r.stderr, /bad-index\.txt:4: unknown revocation reason "stolen"/);
    assert.match(statusOf('osl', '7a01'), /not in the store/);
  });

  it('imports certificates as good with a profile, and refuses certificates of another CA', () => {
    const ok = cli('import', 'certs', '--ca', 'hsmca', '--profile', 'tls-server', pki.cas[0]!.unissued.file);
    assert.equal(ok.status, 0, ok.stderr);
    assert.match(statusOf('hsmca', '1003'), /good, notAfter .*, profile tls-server/);
    const foreign = cli('import', 'certs', '--ca', 'hsmca', pki.cas[0]!.good.file, osl.certs[0]!);
    assert.equal(foreign.status, 1);
    assert.match(foreign.stderr, /leaf1\.pem: certificate with serial 5A01 was not issued by CA "hsmca"/);
  });

  it('gives clear errors for bad arguments and changes nothing', () => {
    const cases: [string[], number, RegExp][] = [
      [['revoke', '--ca', 'nope', '--serial', '1', '--reason', 'superseded'], 2, /--ca: no CA named "nope" .*\(have: hsmca, osl\)/],
      [['revoke', '--ca', 'hsmca', '--serial', 'xyz', '--reason', 'superseded'], 2, /--serial: malformed serial "xyz"/],
      [['revoke', '--ca', 'hsmca', '--serial', '1001', '--reason', 'stolen'], 2, /--reason: unknown revocation reason "stolen"; valid: unspecified/],
      [['revoke', '--ca', 'hsmca', '--serial', '1001', '--reason', 'superseded', '--date', 'yesterday'], 2, /--date: "yesterday" is not an ISO 8601 date/],
      [['revoke', '--ca', 'hsmca', '--serial', '1001', '--reason', 'superseded', '--date', '2999-01-01T00:00:00Z'], 2, /--date: .* is in the future/],
      [['revoke', '--ca', 'hsmca', '--serial', '1001'], 2, /--reason REASON is required/],
      [['import', 'index', '--ca', 'osl', '/nonexistent/index.txt'], 1, /cannot read \/nonexistent\/index\.txt: ENOENT/],
      [['import', 'certs', '--ca', 'osl', '/nonexistent/cert.pem'], 1, /ENOENT|no such file/],
      [['import', 'certs', '--ca', 'osl', osl.index], 1, /index\.txt: not a valid X\.509 certificate/],
      [['frobnicate'], 2, /unknown command "frobnicate"/],
      [['status', '--ca', 'hsmca', '--bogus'], 2, /Unknown option '--bogus'/],
    ];
    for (const [args, code, pattern] of cases) {
      const r = cli(...args);
      assert.equal(r.status, code, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, pattern, args.join(' '));
    }
    assert.match(statusOf('hsmca', '1001'), /: good/, 'nothing was revoked by the refused commands');
  });

  it('a revocation recorded with the CLI is in the next OCSP answer of the running daemon', () => {
    const ca = pki.cas[0]!;
    assert.match(opensslQuery(ca, responder.url, [ca.good.file]), /: good/);
    const r = cli('revoke', '--ca', 'hsmca', '--serial', ca.good.serial, '--reason', 'cessationOfOperation', '--date', '2026-01-15T10:00:00Z');
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /revoked hsmca serial 1001 at 2026-01-15T10:00:00.000Z \(cessationOfOperation\)/);
    const out = opensslQuery(ca, responder.url, [ca.good.file]);
    assert.match(out, /Response verify OK/);
    assert.match(out, /: revoked/);
    assert.match(out, /Reason: cessationOfOperation/);
    assert.match(out, /Revocation Time: Jan 15 10:00:00 2026 GMT/);
  });
});
