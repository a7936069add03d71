// Following index.txt (cas[].index): a SoftHSM2 responder for a CA run with the real `openssl ca`; certificates it
// issues and revokes are answered within the check interval (openssl ocsp -CAfile); a garbled file keeps the
// answers, is logged and counted; a hand-edited V after R stays revoked; a reload follows a changed setting.
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { parse, stringify } from 'yaml';
import { openssl } from '../test/support/openssl';
import { opensslCaDir } from '../test/support/openssl-ca-dir';
import {
  childEnv, createTestPki, metric, opensslQuery, Responder, runCli, startResponder, TestCa, TestPki, variantConfig, waitFor,
} from './support/harness';

/** Interval configured; every answer must come within it plus slack for a loaded machine. */
const INTERVAL = '1s';
const WITHIN_MS = 10_000;

interface OpensslCa {
  dir: string;
  cnf: string;
  caCert: string;
  index: string;
  responderCert: string;
}

/** An `openssl ca` directory whose delegated OCSP responder certificate carries the token's responder key. */
function opensslCa(responderKeySource: string): OpensslCa {
  const { dir, cnf, caCert, caKey } = opensslCaDir('indexca', {
    cn: 'Followed OpenSSL CA',
    serial: '5A01',
    sections: ['[ocsp_responder]', 'basicConstraints = critical, CA:FALSE', 'keyUsage = critical, digitalSignature', 'extendedKeyUsage = OCSPSigning', 'noCheck = ignored'],
  });
  const pub = join(dir, 'responder-pub.pem');
  writeFileSync(pub, openssl(['x509', '-in', responderKeySource, '-pubkey', '-noout']));
  const csr = join(dir, 'responder.csr');
  openssl(['req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', join(dir, 'throwaway.key'), '-out', csr, '-subj', '/CN=Followed OpenSSL CA OCSP']);
  const responderCert = join(dir, 'responder.pem');
  openssl(['x509', '-req', '-in', csr, '-CA', caCert, '-CAkey', caKey, '-CAcreateserial', '-days', '30', '-force_pubkey', pub, '-extfile', cnf, '-extensions', 'ocsp_responder', '-out', responderCert]);
  return { dir, cnf, caCert, index: join(dir, 'index.txt'), responderCert };
}

/** `openssl ca` issues a certificate for a fresh key; returns the certificate file. */
function issue(ca: OpensslCa, name: string): string {
  const csr = join(ca.dir, `${name}.csr`);
  openssl(['req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', join(ca.dir, `${name}.key`), '-out', csr, '-subj', `/CN=${name}`]);
  const out = join(ca.dir, `${name}.pem`);
  openssl(['ca', '-batch', '-config', ca.cnf, '-in', csr, '-out', out]);
  return out;
}

describe('following index.txt (cas[].index)', () => {
  let pki: TestPki;
  let osl: OpensslCa;
  let config: string;
  let responder: Responder;
  let ca: TestCa;
  const leaves: Record<string, string> = {};
  const ask = (leaf: string) => opensslQuery(ca, responder.url, [leaves[leaf]!]);
  /** Polls openssl ocsp until the answer for `leaf` matches `status`, at most WITHIN_MS; returns the last output. */
  const answeredWithin = async (leaf: string, status: RegExp): Promise<string> => {
    let out = '';
    const ok = await waitFor(() => status.test((out = ask(leaf))), WITHIN_MS, 100);
    assert.ok(ok, `${leaf} not answered ${status} within ${WITHIN_MS} ms; last answer:\n${out}\n${responder.output().slice(-3000)}`);
    assert.match(out, /Response verify OK/);
    return out;
  };
  const failing = () => metric(responder.url, 'ocsp_index_import_failing{ca="osl"}');

  before(async () => {
    pki = createTestPki([{ name: 'hsmca', caKey: 'ec-p256', responderKey: 'ec-p256' }]);
    osl = opensslCa(pki.cas[0]!.responderCertFile!);
    leaves.first = issue(osl, 'first');
    leaves.second = issue(osl, 'second');
    config = variantConfig(pki, 'index-follow', (c) => {
      c.cas.unshift({
        name: 'osl',
        certificate: osl.caCert,
        signer: { token: 'main', key: { label: pki.cas[0]!.responderKeyLabel }, certificate: osl.responderCert },
        // Answers are stored and kept in memory: an import must drop them at once.
        preProduction: { enabled: true },
        // Relative to the config file, as every path of the config.
        index: { file: relative(pki.dir, osl.index), interval: INTERVAL },
      });
    });
    ca = { ...pki.cas[0]!, name: 'osl', caCertFile: osl.caCert };
    responder = await startResponder(pki, { config });
  });
  after(async () => {
    if (responder) assert.equal(await responder.stop(), 0, responder.output());
  });

  it('imports index.txt at startup: what `openssl ca` issued before is good, nothing was imported by hand', async () => {
    await answeredWithin('first', /first\.pem: good/);
    await answeredWithin('second', /second\.pem: good/);
    assert.ok(await waitFor(() => /"ca":"osl".*"entries":2,"inserted":2.*"msg":"index.txt imported"/.test(responder.output()), WITHIN_MS, 50), responder.output());
    assert.ok((await metric(responder.url, 'ocsp_index_last_import_timestamp_seconds{ca="osl"}')) > 0);
  });

  it('a certificate `openssl ca` issues while serving is answered good within the interval', async () => {
    leaves.third = issue(osl, 'third');
    await answeredWithin('third', /third\.pem: good/);
  });

  it('a revocation by `openssl ca -revoke` is answered within the interval, over the cached good answer', async () => {
    assert.match(ask('first'), /first\.pem: good/, 'answered (and cached) good before');
    openssl(['ca', '-config', osl.cnf, '-revoke', leaves.first!, '-crl_reason', 'keyCompromise']);
    const out = await answeredWithin('first', /first\.pem: revoked/);
    assert.match(out, /Reason: keyCompromise/);
    assert.match(ask('third'), /third\.pem: good/);
  });

  it('a garbled index.txt changes no answer, and is logged and counted until it is written out', async () => {
    const saved = readFileSync(osl.index, 'utf8');
    const okBefore = await metric(responder.url, 'ocsp_index_imports_total{ca="osl",result="ok"}');
    // Would revoke "third" if it were imported; its last line is cut inside the serial, as a half-written file.
    const lines = saved.trimEnd().split('\n');
    const third = lines.findIndex((l) => l.split('\t')[3] === '5A03');
    assert.ok(third >= 0, saved);
    lines[third] = lines[third]!.replace(/^V\t(\S+)\t\t/, 'R\t$1\t260101000000Z,superseded\t');
    writeFileSync(osl.index, [...lines, 'V\t271121073233Z\t\t5A0'].join('\n'));
    assert.ok(await waitFor(async () => (await failing()) === 1, WITHIN_MS, 100), responder.output().slice(-3000));
    const logged = new RegExp(`"reason":"invalid","err":"[^"]*index\\.txt:${lines.length + 1}: expected 6 tab-separated fields, found 4","msg":"index.txt import failed: nothing changed"`);
    assert.ok(await waitFor(() => logged.test(responder.output()), WITHIN_MS, 50), responder.output().slice(-3000));
    assert.ok((await metric(responder.url, 'ocsp_index_imports_total{ca="osl",result="invalid"}')) >= 1);
    assert.match(ask('third'), /third\.pem: good/);
    assert.match(ask('first'), /first\.pem: revoked/);
    assert.match(ask('second'), /second\.pem: good/);

    writeFileSync(osl.index, saved);
    assert.ok(await waitFor(async () => (await failing()) === 0, WITHIN_MS, 100), responder.output().slice(-3000));
    assert.ok((await metric(responder.url, 'ocsp_index_imports_total{ca="osl",result="ok"}')) > okBefore);
    assert.match(ask('third'), /third\.pem: good/);
  });

  it('a hand-edited V for a revoked certificate keeps it revoked, and is logged and counted', async () => {
    const text = readFileSync(osl.index, 'utf8');
    writeFileSync(osl.index, text.replace(/^R\t(\S+)\t\S+\t5A01\t/m, 'V\t$1\t\t5A01\t'));
    assert.ok(await waitFor(async () => (await metric(responder.url, 'ocsp_index_kept_revoked_entries{ca="osl"}')) === 1, WITHIN_MS, 100), responder.output().slice(-3000));
    // The log line may reach us a moment after the metric moved: the daemon's stdout is a pipe.
    const logged = /"ca":"osl".*"keptRevoked":1,"msg":"index.txt: kept final revocations as stored/;
    assert.ok(await waitFor(() => logged.test(responder.output()), WITHIN_MS, 50), responder.output().slice(-3000));
    const out = ask('first');
    assert.match(out, /first\.pem: revoked/);
    assert.match(out, /Reason: keyCompromise/);
    writeFileSync(osl.index, text);
  });

  it('a reload (SIGHUP) follows a changed index setting', async () => {
    // Another copy of the database, with a line written by hand for a serial nobody asked about yet.
    const copy = join(osl.dir, 'index-copy.txt');
    writeFileSync(copy, readFileSync(osl.index, 'utf8') + 'V\t271121073233Z\t\t5AFF\tunknown\t/CN=by hand\n');
    const cfg = parse(readFileSync(config, 'utf8')) as { cas: { name: string; index?: unknown }[] };
    cfg.cas.find((c) => c.name === 'osl')!.index = { file: copy, interval: INTERVAL };
    writeFileSync(config, stringify(cfg));
    responder.proc.kill('SIGHUP');
    assert.ok(await waitFor(() => /"msg":"reloaded"/.test(responder.output()), WITHIN_MS), responder.output().slice(-2000));
    const status = () => runCli(['status', '--ca', 'osl', '--serial', '5aff', '--config', config], childEnv(pki)).stdout;
    assert.ok(await waitFor(() => /osl serial 5aff: good/.test(status()), WITHIN_MS, 200), status());
    assert.match(ask('first'), /first\.pem: revoked/);
    // `openssl ca` renames index.txt away and back on every change: never a file reported missing.
    assert.doesNotMatch(responder.output(), /"reason":"(missing|unreadable|store_error)"/);
  });
});
