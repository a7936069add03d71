// README "Bring your own CA", step by step: an empty SoftHSM2 token, keys generate, csr, an `openssl ca` CA signs the
// responder certificate, import index, config check, serve, and `openssl ocsp -CAfile` verifies good, revoked and
// unknown answers.
// The config names token and key by PKCS#11 URI (RFC 7512).
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { stringify } from 'yaml';
import { openssl } from '../test/support/openssl';
import { OpensslCaDir, opensslCaDir } from '../test/support/openssl-ca-dir';
import { FreshToken, freshTokens } from './support/fresh-token';
import { Responder, runCli, startResponder, TestPki } from './support/harness';

/** The extension section the README tells `openssl ca` to use for the responder (RFC 6960 section 4.2.2.2). */
const RESPONDER_SECTION = [
  '[ocsp_responder]',
  'basicConstraints = critical,CA:FALSE',
  'keyUsage = critical,digitalSignature',
  'extendedKeyUsage = OCSPSigning',
  'noCheck = ignored',
  'subjectKeyIdentifier = hash',
  'authorityKeyIdentifier = keyid',
  '[leaf]',
  'basicConstraints = critical,CA:FALSE',
  'keyUsage = critical,digitalSignature',
];

describe('bring your own CA: from an empty token to openssl ocsp "Response verify OK"', () => {
  let t: FreshToken;
  let ca: OpensslCaDir;
  let config: string;
  let responder: Responder | undefined;
  const certs: Record<'good' | 'revoked' | 'unknown', string> = { good: '', revoked: '', unknown: '' };
  const outputs: string[] = [];

  const cli = (...args: string[]) => {
    const r = runCli([...args, '--config', config], t.env);
    outputs.push(r.stdout, r.stderr);
    assert.equal(r.status, 0, `ocsp-hsm ${args.join(' ')}:\n${r.stdout}${r.stderr}`);
    return r.stdout;
  };

  function query(cert: string): string {
    const r = spawnSync('openssl', ['ocsp', '-issuer', ca.caCert, '-CAfile', ca.caCert, '-cert', cert, '-url', `${responder!.url}/`, '-timeout', '10'], {
      encoding: 'utf8',
      timeout: 30_000,
    });
    return `${r.stdout}${r.stderr}`;
  }

  before(() => {
    t = freshTokens('byo', [`ocsp-${process.pid}`]);
    ca = opensslCaDir('byo-ca', { cn: 'Example Issuing CA', serial: '1000', sections: RESPONDER_SECTION });
    config = join(t.dir, 'ocsp-hsm.yaml');
    writeFileSync(config, stringify({
      server: { host: '127.0.0.1', port: 0 },
      dataDir: join(t.dir, 'data'),
      tokens: [{ name: 'hsm', uri: `pkcs11:token=${t.tokenLabel}?module-path=${t.modulePath}`, pin: { file: t.pinFile }, sessions: 2 }],
      cas: [{
        name: 'issuing',
        certificate: ca.caCert,
        signer: { token: 'hsm', key: 'pkcs11:object=ocsp-responder-1;type=private', certificate: join(t.dir, 'responder.pem') },
      }],
    }));
  });

  after(async () => {
    await responder?.stop();
    const pin = t.pin;
    for (const out of [...outputs, responder?.output() ?? '']) assert.ok(!out.includes(pin), 'the PIN must not be printed');
  });

  it('1. keys generate: an EC P-256 key pair in the token', () => {
    const out = cli('keys', 'generate', '--token', 'hsm', '--label', 'ocsp-responder-1', '--type', 'ec-p256');
    assert.match(out, /^generated EC P-256 key pair on token "hsm"/);
  });

  it('2. csr: a request signed in the token', () => {
    const csr = join(t.dir, 'responder.csr');
    cli('csr', '--token', 'hsm', '--label', 'ocsp-responder-1', '--subject', '/O=Example/CN=Example OCSP Responder', '--out', csr);
    assert.match(openssl(['req', '-in', csr, '-verify', '-noout']), /verify OK/);
  });

  it('3. openssl ca signs it as a delegated OCSP responder; it issues and revokes certificates as always', () => {
    openssl(['ca', '-batch', '-config', ca.cnf, '-extensions', 'ocsp_responder', '-days', '365', '-in', join(t.dir, 'responder.csr'), '-out', join(t.dir, 'responder.pem')]);
    for (const name of ['good', 'revoked'] as const) {
      const csr = join(ca.dir, `${name}.csr`);
      openssl(['req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', join(ca.dir, `${name}.key`), '-out', csr, '-subj', `/CN=${name}.example`]);
      certs[name] = join(ca.dir, `${name}.pem`);
      openssl(['ca', '-batch', '-config', ca.cnf, '-extensions', 'leaf', '-in', csr, '-out', certs[name]]);
    }
    openssl(['ca', '-config', ca.cnf, '-revoke', certs.revoked, '-crl_reason', 'keyCompromise']);
    // Signed by the CA key, never entered in index.txt: a serial the responder has not heard of.
    const csr = join(ca.dir, 'unknown.csr');
    openssl(['req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', join(ca.dir, 'unknown.key'), '-out', csr, '-subj', '/CN=unknown.example']);
    certs.unknown = join(ca.dir, 'unknown.pem');
    openssl(['x509', '-req', '-in', csr, '-CA', ca.caCert, '-CAkey', ca.caKey, '-set_serial', '0x7777', '-days', '30', '-out', certs.unknown]);
  });

  it('4. import index: the CA database into the store', () => {
    assert.match(cli('import', 'index', '--ca', 'issuing', join(ca.dir, 'index.txt')), /inserted 3, updated 0, unchanged 0/);
  });

  it('5. config check: everything serve checks, the responder key proved against its certificate', () => {
    const out = cli('config', 'check');
    assert.match(out, /^config check: no problems in .*ocsp-hsm\.yaml \(1 key proved\)$/m);
  });

  it('6. serve, and openssl ocsp -CAfile verifies good, revoked and unknown', async () => {
    responder = await startResponder({ softhsmConf: t.softhsmConf } as TestPki, { config });
    const good = query(certs.good);
    assert.match(good, /Response verify OK/);
    assert.match(good, /good\.pem: good/);
    const revoked = query(certs.revoked);
    assert.match(revoked, /Response verify OK/);
    assert.match(revoked, /revoked\.pem: revoked\n\s+This Update: .*\n(?:.*\n)*?\s+Reason: keyCompromise\n\s+Revocation Time: /);
    // cas[].nonIssued defaults to unknown (RFC 6960 section 2.2).
    const unknown = query(certs.unknown);
    assert.match(unknown, /Response verify OK/);
    assert.match(unknown, /unknown\.pem: unknown/);
  });
});
