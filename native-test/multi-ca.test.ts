// Many CAs and key bindings against a PKI built by openssl: delegated responders, a CA signing directly, a renewed
// CA answered under both keys, the certificates each binding includes, the cACompromise rule, expired
// certificates, non-issued policies, archive cutoff and per-profile validity; every answer verified by openssl.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import * as pkijs from 'pkijs';
import { stringify } from 'yaml';
import { tempDir } from '../test/support/temp';
import { childEnv, Responder, runCli, startResponder, TestPki } from './support/harness';
import { OpensslPki } from './support/openssl-pki';

interface Leaf { file: string; serial: string }

describe('many CAs and key bindings (PKI built by openssl)', () => {
  let pki: OpensslPki;
  let env: NodeJS.ProcessEnv;
  let config: string;
  let responder: Responder;
  const ca: Record<string, { cert: string; key: string }> = {};
  const leaves: Record<string, Leaf> = {};
  const caSerial: Record<string, string> = {};

  /** gamma sends no certificates: its clients hold the responder's and the CA's. */
  const gammaBundle = () => join(pki.dir, 'gamma-bundle.pem');
  const cli = (...args: string[]) => {
    const r = runCli([...args, '--config', config], env);
    assert.equal(r.status, 0, `ocsp-hsm ${args.join(' ')}: ${r.stderr}`);
    return r.stdout;
  };

  before(async () => {
    pki = new OpensslPki(tempDir('multi-ca'));
    env = childEnv({ softhsmConf: pki.softhsmConf } as TestPki);
    // Keys that sign OCSP responses are generated inside the token; CAs that only issue keep file keys.
    pki.tokenKeys(['root-ocsp', 'alpha-ocsp', 'beta-ocsp', 'gamma-ocsp', 'direct-ca', 'renewed-old-ocsp', 'renewed-new-ocsp']);
    const pub = (label: string) => pki.path(`${label}.pub.pem`);
    ca.root = pki.selfSignedCa('root', 'Test Root');
    for (const n of ['alpha', 'beta', 'gamma']) {
      const key = pki.fileKey(`${n}-ca`);
      const issued = pki.issue(`${n}-ca`, `${n} CA`, key, ca.root, 'ca');
      ca[n] = { cert: issued.file, key };
      caSerial[n] = issued.serial;
    }
    const direct = pki.issue('direct-ca', 'direct CA', pub('direct-ca'), ca.root, 'ca');
    ca.direct = { cert: direct.file, key: '' };
    caSerial.direct = direct.serial;
    // CA key renewal: the same subject under two keys, each certified by the root.
    for (const v of ['old', 'new']) {
      const key = pki.fileKey(`renewed-${v}-ca`);
      ca[`renewed-${v}`] = { cert: pki.issue(`renewed-${v}-ca`, 'Renewed CA', key, ca.root, 'ca').file, key };
    }
    for (const n of ['root', 'alpha', 'beta', 'gamma', 'renewed-old', 'renewed-new']) pki.issue(`${n}-ocsp`, `${n} OCSP`, pub(`${n}-ocsp`), ca[n]!, 'ocsp');
    const leafKey = pki.fileKey('leaf');
    for (const n of ['alpha', 'beta', 'gamma', 'renewed-old', 'renewed-new']) {
      leaves[`${n}-good`] = pki.issue(`${n}-good`, `${n} good`, leafKey, ca[n]!, 'leaf');
      leaves[`${n}-revoked`] = pki.issue(`${n}-revoked`, `${n} revoked`, leafKey, ca[n]!, 'leaf');
    }
    leaves['alpha-short'] = pki.issue('alpha-short', 'alpha short-lived profile', leafKey, ca.alpha!, 'leaf');
    leaves['alpha-expired-good'] = pki.issueDated('alpha-expired-good', 'alpha expired good', ca.alpha!, '20200101000000Z', '20200601000000Z');
    leaves['alpha-expired-revoked'] = pki.issueDated('alpha-expired-revoked', 'alpha expired revoked', ca.alpha!, '20200101000000Z', '20200601000000Z');
    // Never recorded in the store: answered by each CA's non-issued policy.
    for (const n of ['alpha', 'beta', 'gamma']) leaves[`${n}-unissued`] = pki.issue(`${n}-unissued`, `${n} unissued`, leafKey, ca[n]!, 'leaf');

    const signer = (label: string, certificate?: string) => ({ token: 'hsm', key: { label }, ...(certificate ? { certificate } : {}) });
    const cfg = {
      server: { host: '127.0.0.1', port: 0 },
      dataDir: 'data',
      tokens: [{ name: 'hsm', module: pki.modulePath, tokenLabel: pki.tokenLabel, pin: { file: pki.userPinFile }, sessions: 2 }],
      chainCertificates: [ca.root.cert],
      defaults: { validity: '1d' },
      profiles: { 'short-lived': { validity: '1h' } },
      cas: [
        { name: 'root', certificate: ca.root.cert, signer: signer('root-ocsp', pki.path('root-ocsp.pem')) },
        // Signer and chain (the default); the profile's 1h beats this CA's 2d.
        { name: 'alpha', certificate: ca.alpha!.cert, signer: signer('alpha-ocsp', pki.path('alpha-ocsp.pem')), validity: '2d', archiveCutoff: '365d' },
        { name: 'beta', certificate: ca.beta!.cert, signer: signer('beta-ocsp', pki.path('beta-ocsp.pem')), includeCertChain: false, nonIssued: 'revoked' },
        { name: 'gamma', certificate: ca.gamma!.cert, signer: signer('gamma-ocsp', pki.path('gamma-ocsp.pem')), includeSignerCert: false, nonIssued: 'good' },
        { name: 'direct', certificate: ca.direct.cert, signer: signer('direct-ca') },
        {
          name: 'renewed',
          certificate: ca['renewed-new']!.cert,
          signer: signer('renewed-new-ocsp', pki.path('renewed-new-ocsp.pem')),
          previousKeys: [{ certificate: ca['renewed-old']!.cert, signer: signer('renewed-old-ocsp', pki.path('renewed-old-ocsp.pem')) }],
        },
      ],
    };
    config = join(pki.dir, 'config.yaml');
    writeFileSync(config, stringify(cfg));

    // Statuses: every CA certificate under the root, leaves under their CA (both renewed keys share "renewed").
    cli('import', 'certs', '--ca', 'root', ca.alpha!.cert, ca.beta!.cert, ca.gamma!.cert, ca.direct.cert);
    for (const n of ['alpha', 'beta', 'gamma']) cli('import', 'certs', '--ca', n, leaves[`${n}-good`]!.file, leaves[`${n}-revoked`]!.file);
    cli('import', 'certs', '--ca', 'renewed', ...['old', 'new'].flatMap((v) => [leaves[`renewed-${v}-good`]!.file, leaves[`renewed-${v}-revoked`]!.file]));
    cli('import', 'certs', '--ca', 'alpha', '--profile', 'short-lived', leaves['alpha-short']!.file);
    cli('import', 'certs', '--ca', 'alpha', leaves['alpha-expired-good']!.file, leaves['alpha-expired-revoked']!.file);
    const revocations: [string, string][] = [
      ['alpha', 'alpha-revoked'], ['beta', 'beta-revoked'], ['gamma', 'gamma-revoked'], ['renewed', 'renewed-old-revoked'],
      ['renewed', 'renewed-new-revoked'], ['alpha', 'alpha-expired-revoked'],
    ];
    for (const [caName, leaf] of revocations) cli('revoke', '--ca', caName, '--serial', leaves[leaf]!.serial, '--reason', 'superseded');
    cli('revoke', '--ca', 'direct', '--serial', '77', '--reason', 'keyCompromise');
    writeFileSync(gammaBundle(), readFileSync(pki.path('gamma-ocsp.pem'), 'utf8') + readFileSync(ca.gamma!.cert, 'utf8'));
    responder = await startResponder({ softhsmConf: pki.softhsmConf } as TestPki, { config });
  });
  after(async () => {
    if (responder) assert.equal(await responder.stop(), 0, responder.output());
  });

  /** openssl ocsp with only the root as trust anchor (never -noverify); the response is kept for inspection. */
  function query(issuer: string, cert: string, extra: string[] = []): { out: string; certsInResponse: string[]; responseExtensions: string[] } {
    const respFile = join(pki.dir, `resp-${Math.random().toString(16).slice(2)}.der`);
    const r = spawnSync('openssl', ['ocsp', '-issuer', ca[issuer]!.cert, '-CAfile', ca.root!.cert, '-url', responder.url, '-timeout', '10', '-cert', cert, '-respout', respFile, '-resp_text', ...extra], {
      encoding: 'utf8', timeout: 30_000,
    });
    const out = `${r.stdout}${r.stderr}`;
    const ocsp = pkijs.OCSPResponse.fromBER(readFileSync(respFile));
    const basic = pkijs.BasicOCSPResponse.fromBER(ocsp.responseBytes!.response.valueBlock.valueHexView);
    const certsInResponse = (basic.certs ?? []).map((c) => (c as pkijs.Certificate).subject.typesAndValues.map((tv) => tv.value.valueBlock.value).join(','));
    const responseExtensions = (basic.tbsResponseData.responseExtensions ?? []).map((e) => e.extnID);
    return { out, certsInResponse, responseExtensions };
  }

  it('two CAs with their own delegated responders: good and revoked, verified against the root alone', () => {
    for (const n of ['alpha', 'beta']) {
      const good = query(n, leaves[`${n}-good`]!.file, n === 'beta' ? ['-verify_other', ca.beta!.cert] : []);
      assert.match(good.out, /Response verify OK/, good.out);
      assert.match(good.out, new RegExp(`${leaves[`${n}-good`]!.file}: good`));
      const revoked = query(n, leaves[`${n}-revoked`]!.file, n === 'beta' ? ['-verify_other', ca.beta!.cert] : []);
      assert.match(revoked.out, /Response verify OK/);
      assert.match(revoked.out, /: revoked[\s\S]*Reason: superseded/);
      assert.match(good.out, new RegExp(`Responder Id: `));
    }
  });

  it('includeSignerCert + includeCertChain: the responder and its CA, never the root', () => {
    assert.deepEqual(query('alpha', leaves['alpha-good']!.file).certsInResponse, ['alpha OCSP', 'alpha CA']);
  });

  it('includeCertChain off: the responder alone (the client needs the CA from elsewhere)', () => {
    const r = query('beta', leaves['beta-good']!.file, ['-verify_other', ca.beta!.cert]);
    assert.deepEqual(r.certsInResponse, ['beta OCSP']);
    assert.match(r.out, /Response verify OK/);
  });

  it('includeSignerCert off: no certificate; verifies once the client has the responder certificate', () => {
    const r = query('gamma', leaves['gamma-good']!.file, ['-verify_other', gammaBundle()]);
    assert.deepEqual(r.certsInResponse, []);
    assert.match(r.out, /Response verify OK/);
    assert.match(r.out, /: good/);
  });

  it('a CA signing directly with its HSM key: it sends itself (its chain without the root)', () => {
    // Its key never leaves the token, so openssl cannot issue under it: asked by serial instead.
    const respFile = join(pki.dir, 'direct.der');
    const r = spawnSync('openssl', ['ocsp', '-issuer', ca.direct.cert, '-CAfile', ca.root!.cert, '-url', responder.url, '-timeout', '10', '-serial', '0x77', '-respout', respFile, '-resp_text'], { encoding: 'utf8', timeout: 30_000 });
    const out = `${r.stdout}${r.stderr}`;
    assert.match(out, /Response verify OK/, out);
    assert.match(out, /0x77: revoked[\s\S]*Reason: keyCompromise/);
    const basic = pkijs.BasicOCSPResponse.fromBER(pkijs.OCSPResponse.fromBER(readFileSync(respFile)).responseBytes!.response.valueBlock.valueHexView);
    assert.deepEqual(basic.certs?.map((c) => (c as pkijs.Certificate).subject.typesAndValues.map((tv) => tv.value.valueBlock.value).join(',')), ['direct CA']);
  });

  it('a renewed CA (same subject, new key) is answered under both keys, each by its own responder', () => {
    for (const v of ['old', 'new']) {
      const r = query(`renewed-${v}`, leaves[`renewed-${v}-good`]!.file);
      assert.match(r.out, /Response verify OK/, r.out);
      assert.match(r.out, /: good/);
      // The chain picked by key, not only by name: the CA certificate that issued this responder.
      assert.deepEqual(r.certsInResponse, [`renewed-${v} OCSP`, 'Renewed CA']);
      const revoked = query(`renewed-${v}`, leaves[`renewed-${v}-revoked`]!.file);
      assert.match(revoked.out, /Response verify OK/);
      assert.match(revoked.out, /: revoked/);
    }
  });

  it('expired certificates are answered with their real status', () => {
    const good = query('alpha', leaves['alpha-expired-good']!.file);
    assert.match(good.out, /Response verify OK/);
    assert.match(good.out, /expired-good\.pem: good/);
    const revoked = query('alpha', leaves['alpha-expired-revoked']!.file);
    assert.match(revoked.out, /expired-revoked\.pem: revoked/);
  });

  it('non-issued serials: unknown by default, revoked (certificateHold at 1970, extended revoked definition) or good per CA', () => {
    assert.match(query('alpha', leaves['alpha-unissued']!.file).out, /unissued\.pem: unknown/);
    const beta = query('beta', leaves['beta-unissued']!.file, ['-verify_other', ca.beta!.cert]);
    assert.match(beta.out, /Response verify OK/);
    assert.match(beta.out, /unissued\.pem: revoked[\s\S]*Reason: certificateHold[\s\S]*Revocation Time: Jan  1 00:00:00 1970 GMT/);
    // id-pkix-ocsp-extended-revoke (RFC 6960 section 4.4.8), which openssl prints under its old name "valid".
    assert.ok(beta.responseExtensions.includes('1.3.6.1.5.5.7.48.1.9'), `response extensions: ${beta.responseExtensions.join(', ')}`);
    assert.match(beta.out, /Response Extensions:[\s\S]*\n\s+valid: \n\s+\.\./);
    const gamma = query('gamma', leaves['gamma-unissued']!.file, ['-verify_other', gammaBundle()]);
    assert.match(gamma.out, /Response verify OK/);
    assert.match(gamma.out, /unissued\.pem: good/);
    // Issued certificates' answers do not carry it (only openssl's nonce).
    assert.deepEqual(query('beta', leaves['beta-good']!.file, ['-verify_other', ca.beta!.cert]).responseExtensions, ['1.3.6.1.5.5.7.48.1.2']);
  });

  it('archive cutoff: producedAt minus the retention, as a singleExtension', () => {
    const r = query('alpha', leaves['alpha-good']!.file);
    const m = /OCSP Archive Cutoff:\s*\n?\s*([A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d \d{4} GMT)/.exec(r.out);
    assert.ok(m, r.out);
    const days = (Date.now() - Date.parse(m[1]!)) / 86_400_000;
    assert.ok(days > 364.9 && days < 365.1, `archive cutoff ${m[1]} is ${days} days ago`);
  });

  it("validity: the certificate profile's wins over the CA's, the CA's over the default", () => {
    const span = (out: string) => {
      const t = /This Update: (.*GMT)/.exec(out)![1]!;
      const n = /Next Update: (.*GMT)/.exec(out)![1]!;
      return (Date.parse(n) - Date.parse(t)) / 3_600_000;
    };
    assert.equal(span(query('alpha', leaves['alpha-short']!.file).out), 1);
    assert.equal(span(query('alpha', leaves['alpha-good']!.file).out), 48);
    assert.equal(span(query('beta', leaves['beta-good']!.file, ['-verify_other', ca.beta!.cert]).out), 24);
  });

  it('cACompromise: once a CA certificate is revoked for key compromise, all it issued is revoked with reason cACompromise', async () => {
    // gamma revoked for a reason that is not a compromise: its certificates keep their status.
    cli('revoke', '--ca', 'root', '--serial', caSerial.gamma!, '--reason', 'superseded');
    cli('revoke', '--ca', 'root', '--serial', caSerial.beta!, '--reason', 'keyCompromise');
    const deadline = Date.now() + 10_000;
    let out = '';
    while (Date.now() < deadline) {
      out = query('beta', leaves['beta-good']!.file, ['-verify_other', ca.beta!.cert]).out;
      if (/: revoked/.test(out)) break;
      await new Promise((r) => setTimeout(r, 200));
    }
    assert.match(out, /Response verify OK/);
    assert.match(out, /beta-good\.pem: revoked[\s\S]*Reason: cACompromise/);
    assert.match(query('gamma', leaves['gamma-good']!.file, ['-verify_other', gammaBundle()]).out, /gamma-good\.pem: good/);
    assert.match(query('alpha', leaves['alpha-good']!.file).out, /alpha-good\.pem: good/);
  });
});
