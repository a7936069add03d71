// `ocsp-hsm check` on a real PKI: an `openssl ca` CA (index.txt, CRL from -gencrl) whose responses are signed in
// SoftHSM2 by a delegated responder, the store filled by the CLI (import index, revoke, presign), then tampered
// with behind the store's back (better-sqlite3, pg) and checked again.
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import * as pkijs from 'pkijs';
import Database from 'better-sqlite3';
import { Client } from 'pg';
import { openssl } from '../test/support/openssl';
import { opensslCaDir } from '../test/support/openssl-ca-dir';
import { childEnv, createTestPki, runCli, TestPki, variantConfig } from './support/harness';
import { postgresCluster } from './support/postgres';

interface OpensslCa {
  dir: string;
  caCert: string;
  responderCert: string;
  index: string;
  crlPem: string;
  crlDer: string;
  /** The CRL with one byte of its signature changed. */
  crlBadSignature: string;
}

/**
 * An OpenSSL CA with four certificates (5a01-5a04), two revoked, and a CRL from `openssl ca -gencrl`. Its OCSP
 * responder certificate is issued for the public key of a key pair inside the test token (-force_pubkey).
 */
function opensslCa(responderKeySource: string): OpensslCa {
  const { dir, cnf } = opensslCaDir('checkca', {
    cn: 'Checked OpenSSL CA',
    serial: '5A01',
    crlDays: 7,
    sections: ['[ocsp_responder]', 'basicConstraints = critical, CA:FALSE', 'keyUsage = critical, digitalSignature', 'extendedKeyUsage = OCSPSigning', 'noCheck = ignored'],
  });
  const ecKey = (out: string) => ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', out];
  const certs: string[] = [];
  for (const n of [1, 2, 3, 4]) {
    const csr = join(dir, `leaf${n}.csr`);
    openssl(['req', '-new', ...ecKey(join(dir, `leaf${n}.key`)), '-out', csr, '-subj', `/CN=leaf${n}`]);
    certs.push(join(dir, `leaf${n}.pem`));
    openssl(['ca', '-batch', '-config', cnf, '-in', csr, '-out', certs.at(-1)!]);
  }
  openssl(['ca', '-config', cnf, '-revoke', certs[1]!, '-crl_reason', 'keyCompromise']);
  openssl(['ca', '-config', cnf, '-revoke', certs[2]!, '-crl_reason', 'superseded']);
  const crlPem = join(dir, 'crl.pem');
  const crlDer = join(dir, 'crl.der');
  openssl(['ca', '-config', cnf, '-gencrl', '-out', crlPem]);
  openssl(['crl', '-in', crlPem, '-outform', 'DER', '-out', crlDer]);
  const bad = Buffer.from(readFileSync(crlDer));
  bad[bad.length - 3] ^= 0x01; // inside the ECDSA signature, the last element of the CRL
  const crlBadSignature = join(dir, 'crl-bad-signature.der');
  writeFileSync(crlBadSignature, bad);

  // The responder key lives in the token: the CSR is signed by a throwaway key and the certificate carries the token's.
  const pub = join(dir, 'responder-pub.pem');
  writeFileSync(pub, openssl(['x509', '-in', responderKeySource, '-pubkey', '-noout']));
  const csr = join(dir, 'responder.csr');
  openssl(['req', '-new', ...ecKey(join(dir, 'throwaway.key')), '-out', csr, '-subj', '/CN=Checked OpenSSL CA OCSP']);
  const responderCert = join(dir, 'responder.pem');
  openssl(['x509', '-req', '-in', csr, '-CA', join(dir, 'ca.pem'), '-CAkey', join(dir, 'ca.key'), '-CAcreateserial', '-days', '30',
    '-force_pubkey', pub, '-extfile', cnf, '-extensions', 'ocsp_responder', '-out', responderCert]);
  return { dir, caCert: join(dir, 'ca.pem'), responderCert, index: join(dir, 'index.txt'), crlPem, crlDer, crlBadSignature };
}

/** The CLI's output split into finding lines and the summary line. */
function parseOutput(stdout: string): { lines: string[]; summary: string } {
  const all = stdout.trim().split('\n');
  return { lines: all.slice(0, -1), summary: all.at(-1)! };
}

/** Flips one bit inside the signature of a stored OCSPResponse DER (the certificates follow the signature). */
function flipSignatureBit(der: Buffer): Buffer {
  const ocsp = pkijs.OCSPResponse.fromBER(der);
  const basic = pkijs.BasicOCSPResponse.fromBER(ocsp.responseBytes!.response.valueBlock.valueHexView);
  const sig = Buffer.from(basic.signature.valueBlock.valueHexView);
  const at = der.indexOf(sig);
  assert.ok(at > 0 && der.indexOf(sig, at + 1) === -1, 'the signature sits once in the DER');
  const out = Buffer.from(der);
  out[at + sig.length - 1] ^= 0x01;
  return out;
}

/** Runs SQL against the store behind its back: SQLite by file, PostgreSQL by URL. */
interface Backdoor {
  run(sql: string, params?: unknown[]): Promise<void>;
  rows<T>(sql: string, params?: unknown[]): Promise<T[]>;
  close(): Promise<void>;
}

function sqliteBackdoor(file: string): Backdoor {
  const db = new Database(file);
  db.pragma('busy_timeout = 5000');
  // better-sqlite3 takes `?` placeholders; the statements below use PostgreSQL's $n, which SQLite reads as named.
  const conv = (sql: string) => sql.replace(/\$\d+/g, '?');
  return {
    run: async (sql, params = []) => void db.prepare(conv(sql)).run(...params),
    rows: async <T>(sql: string, params: unknown[] = []) => db.prepare(conv(sql)).all(...params) as T[],
    close: async () => void db.close(),
  };
}

async function postgresBackdoor(url: string): Promise<Backdoor> {
  const c = new Client({ connectionString: url, connectionTimeoutMillis: 10_000, query_timeout: 30_000 });
  await c.connect();
  return {
    run: async (sql, params = []) => void (await c.query(sql, params)),
    rows: async <T>(sql: string, params: unknown[] = []) => (await c.query(sql, params)).rows as T[],
    close: () => c.end(),
  };
}

interface Setup {
  pki: TestPki;
  osl: OpensslCa;
  config: string;
  cli: (...args: string[]) => { status: number | null; stdout: string; stderr: string };
}

/** A PKI, the OpenSSL CA bound to the token's responder key with pre-production on, and `store` as the store. */
function setup(store: Record<string, unknown> | undefined, name: string): Setup {
  const pki = createTestPki([{ name: 'hsmca', caKey: 'ec-p256', responderKey: 'ec-p256' }]);
  const osl = opensslCa(pki.cas[0]!.responderCertFile!);
  const config = variantConfig(pki, name, (c) => {
    if (store) c.store = store;
    c.cas.push({
      name: 'osl',
      certificate: osl.caCert,
      signer: { token: 'main', key: { label: pki.cas[0]!.responderKeyLabel }, certificate: osl.responderCert },
      validity: '1d',
      preProduction: { enabled: true, hashes: ['sha1', 'sha256'] },
    });
  });
  const cli = (...args: string[]) => runCli([...args, '--config', config], childEnv(pki));
  return { pki, osl, config, cli };
}

/** import index + presign through the CLI: four certificates, eight stored responses. */
function fillStore(s: Setup): void {
  const imported = s.cli('import', 'index', '--ca', 'osl', s.osl.index);
  assert.equal(imported.status, 0, imported.stderr);
  const presigned = s.cli('presign', '--ca', 'osl');
  assert.equal(presigned.status, 0, presigned.stderr);
  assert.match(presigned.stdout, /presign: 8 responses stored/);
}

const CONSISTENT_INDEX = 'summary: consistent (4 index entries, 4 store entries, 8 stored responses checked)';

describe('ocsp-hsm check on SQLite', () => {
  let s: Setup;
  let db: Backdoor;
  const check = (against: string) => s.cli('check', '--ca', 'osl', '--against', against);

  before(() => {
    s = setup(undefined, 'check-sqlite');
    fillStore(s);
    db = sqliteBackdoor(join(s.pki.dir, 'data', 'ocsp-hsm.sqlite'));
  });
  after(() => db.close());

  it('finds an untouched store consistent with the index.txt and with the CRL (PEM and DER): exit 0', () => {
    const byIndex = check(s.osl.index);
    assert.equal(byIndex.status, 0, byIndex.stdout + byIndex.stderr);
    assert.equal(byIndex.stdout.trim(), CONSISTENT_INDEX);
    for (const crl of [s.osl.crlPem, s.osl.crlDer]) {
      const r = check(crl);
      assert.equal(r.status, 0, r.stdout + r.stderr);
      assert.equal(r.stdout.trim(), 'summary: consistent (2 CRL entries, 4 store entries, 8 stored responses checked)');
    }
  });

  it('finds a tampered reason as differing, and the stored responses that no longer match it', async () => {
    await db.run(`UPDATE certificates SET reason = 'cessationOfOperation' WHERE ca = 'osl' AND serial = '5a03'`);
    try {
      const r = check(s.osl.index);
      assert.equal(r.status, 1, r.stderr);
      const { lines, summary } = parseOutput(r.stdout);
      assert.equal(lines.length, 3, r.stdout);
      assert.match(lines[0]!, /^differing 5a03 reason store: revoked \S+Z cessationOfOperation; reference: revoked \S+Z superseded$/);
      assert.match(lines[1]!, /^bad-response 5a03 sha1 \S+Z says revoked \S+Z superseded, the store says revoked \S+Z cessationOfOperation$/);
      assert.match(lines[2]!, /^bad-response 5a03 sha256 /);
      assert.equal(summary, 'summary: 0 missing, 0 extra, 1 differing, 2 bad responses (4 index entries, 4 store entries, 8 stored responses checked)');
    } finally {
      await db.run(`UPDATE certificates SET reason = 'superseded' WHERE ca = 'osl' AND serial = '5a03'`);
    }
    assert.equal(check(s.osl.index).status, 0, 'restored');
  });

  it('finds a revoked certificate turned good as differing against the CRL', async () => {
    const [saved] = await db.rows<{ revoked_at: number }>(`SELECT revoked_at FROM certificates WHERE ca = 'osl' AND serial = '5a02'`);
    await db.run(`UPDATE certificates SET status = 'good', revoked_at = NULL, reason = NULL WHERE ca = 'osl' AND serial = '5a02'`);
    try {
      const r = check(s.osl.crlDer);
      assert.equal(r.status, 1, r.stderr);
      const { lines } = parseOutput(r.stdout);
      assert.match(lines[0]!, /^differing 5a02 status store: good; reference: revoked \S+Z keyCompromise$/);
      assert.match(lines[1]!, /^bad-response 5a02 sha1 \S+Z says revoked \S+Z keyCompromise, the store says good$/);
    } finally {
      await db.run(`UPDATE certificates SET status = 'revoked', revoked_at = $1, reason = 'keyCompromise' WHERE ca = 'osl' AND serial = '5a02'`, [saved!.revoked_at]);
    }
  });

  it('finds a stored response whose signature was changed by one bit', async () => {
    const [row] = await db.rows<{ der: Buffer }>(`SELECT der FROM responses WHERE ca = 'osl' AND serial = '5a01' AND hash = 'sha256'`);
    await db.run(`UPDATE responses SET der = $1 WHERE ca = 'osl' AND serial = '5a01' AND hash = 'sha256'`, [flipSignatureBit(row!.der)]);
    try {
      const r = check(s.osl.index);
      assert.equal(r.status, 1);
      const { lines, summary } = parseOutput(r.stdout);
      assert.deepEqual(lines.map((l) => l.replace(/ \S+Z /, ' T ')), [
        'bad-response 5a01 sha256 T signature does not verify with the signer certificate (CN=Checked OpenSSL CA OCSP)',
      ]);
      assert.match(summary, /^summary: 0 missing, 0 extra, 0 differing, 1 bad responses/);
    } finally {
      await db.run(`UPDATE responses SET der = $1 WHERE ca = 'osl' AND serial = '5a01' AND hash = 'sha256'`, [row!.der]);
    }
  });

  it('finds a correctly signed response stored for another certificate', async () => {
    const [mine] = await db.rows<{ der: Buffer }>(`SELECT der FROM responses WHERE ca = 'osl' AND serial = '5a01' AND hash = 'sha1'`);
    const [other] = await db.rows<{ der: Buffer }>(`SELECT der FROM responses WHERE ca = 'osl' AND serial = '5a04' AND hash = 'sha1'`);
    await db.run(`UPDATE responses SET der = $1 WHERE ca = 'osl' AND serial = '5a01' AND hash = 'sha1'`, [other!.der]);
    try {
      const r = check(s.osl.index);
      assert.equal(r.status, 1);
      const { lines } = parseOutput(r.stdout);
      assert.equal(lines.length, 1, r.stdout);
      assert.match(lines[0]!, /^bad-response 5a01 sha1 \S+Z CertID is for serial 5a04; the row's CertID is not the response's$/);
    } finally {
      await db.run(`UPDATE responses SET der = $1 WHERE ca = 'osl' AND serial = '5a01' AND hash = 'sha1'`, [mine!.der]);
    }
  });

  it('finds missing and extra entries against an index.txt and against a CRL, and responses without a certificate', async () => {
    // An index without 5a01's line and with a line for a certificate the store never heard of.
    const lines = readFileSync(s.osl.index, 'utf8').trim().split('\n');
    const edited = join(s.osl.dir, 'edited-index.txt');
    writeFileSync(edited, [...lines.filter((l) => !l.includes('\t5A01\t')), 'V\t271121073233Z\t\t5AFF\tunknown\t/CN=by hand'].join('\n') + '\n');
    const r1 = check(edited);
    assert.equal(r1.status, 1);
    assert.deepEqual(parseOutput(r1.stdout), {
      lines: ['missing 5aff good', 'extra 5a01 good'],
      summary: 'summary: 1 missing, 1 extra, 0 differing, 0 bad responses (4 index entries, 4 store entries, 8 stored responses checked)',
    });

    // A revocation of a serial the index does not know (extra for both references), and a revoked entry deleted
    // from the store (missing against the CRL) whose stored responses stay behind.
    const revoked = s.cli('revoke', '--ca', 'osl', '--serial', '7777', '--reason', 'keyCompromise', '--date', '2026-01-02T03:04:05Z');
    assert.equal(revoked.status, 0, revoked.stderr);
    const [gone] = await db.rows<Record<string, unknown>>(`SELECT * FROM certificates WHERE ca = 'osl' AND serial = '5a02'`);
    await db.run(`DELETE FROM certificates WHERE ca = 'osl' AND serial = '5a02'`);
    try {
      const r2 = check(s.osl.crlPem);
      assert.equal(r2.status, 1);
      const out = parseOutput(r2.stdout);
      assert.match(out.lines[0]!, /^missing 5a02 revoked \S+Z keyCompromise$/);
      assert.equal(out.lines[1], 'extra 7777 revoked 2026-01-02T03:04:05Z keyCompromise');
      assert.match(out.lines[2]!, /^bad-response 5a02 sha1 \S+Z says revoked \S+Z keyCompromise, but the store has no certificate with this serial$/);
      assert.match(out.lines[3]!, /^bad-response 5a02 sha256 /);
      assert.equal(out.lines.length, 4, r2.stdout);
      assert.equal(out.summary, 'summary: 1 missing, 1 extra, 0 differing, 2 bad responses (2 CRL entries, 4 store entries, 8 stored responses checked)');
      const r3 = check(s.osl.index);
      assert.deepEqual(parseOutput(r3.stdout).lines.slice(0, 2).map((l) => l.split(' ').slice(0, 2).join(' ')), ['missing 5a02', 'extra 7777']);
    } finally {
      const cols = Object.keys(gone!);
      await db.run(`INSERT INTO certificates (${cols.join(', ')}) VALUES (${cols.map((_, i) => `$${i + 1}`).join(', ')})`, Object.values(gone!));
      await db.run(`DELETE FROM certificates WHERE ca = 'osl' AND serial = '7777'`);
    }
    assert.equal(check(s.osl.index).stdout.trim(), CONSISTENT_INDEX, 'restored');
  });

  it('refuses a CRL whose signature does not verify, or of another CA, and bad arguments', () => {
    const cases: [string[], number, RegExp][] = [
      [['check', '--ca', 'osl', '--against', s.osl.crlBadSignature], 1, /crl-bad-signature\.der: bad signature: the CRL was not signed by the key of CA "CN=Checked OpenSSL CA"/],
      [['check', '--ca', 'hsmca', '--against', s.osl.crlPem], 1, /crl\.pem: CRL issued by "CN=Checked OpenSSL CA", not by the CA/],
      [['check', '--ca', 'osl', '--against', join(s.osl.dir, 'nope.txt')], 1, /cannot read .*nope\.txt: ENOENT/],
      [['check', '--ca', 'osl', '--against', s.osl.responderCert], 1, /responder\.pem:1: expected 6 tab-separated fields/],
      [['check', '--ca', 'osl'], 2, /--against FILE is required/],
      [['check', '--against', s.osl.index], 2, /--ca NAME is required/],
      [['check', '--ca', 'nope', '--against', s.osl.index], 2, /--ca: no CA named "nope"/],
      [['check', '--ca', 'osl', '--against', s.osl.index, s.osl.crlPem], 2, /check takes no file arguments/],
    ];
    for (const [args, code, pattern] of cases) {
      const r = s.cli(...args);
      assert.equal(r.status, code, `${args.join(' ')}: ${r.stdout}${r.stderr}`);
      assert.match(r.stderr, pattern, args.join(' '));
      assert.equal(r.stdout, '', 'nothing reported before the refusal');
    }
  });

  // Last: it changes the store for good.
  it('finds a correctly signed "good" response kept for a certificate revoked since', async () => {
    const [old] = await db.rows<Record<string, unknown>>(`SELECT * FROM responses WHERE ca = 'osl' AND serial = '5a04' AND hash = 'sha1'`);
    const revoked = s.cli('revoke', '--ca', 'osl', '--serial', '5a04', '--reason', 'keyCompromise', '--date', '2026-01-02T03:04:05Z');
    assert.equal(revoked.status, 0, revoked.stderr);
    assert.deepEqual(await db.rows(`SELECT serial FROM responses WHERE ca = 'osl' AND serial = '5a04'`), [], 'the revocation dropped them');
    const cols = Object.keys(old!);
    await db.run(`INSERT INTO responses (${cols.join(', ')}) VALUES (${cols.map((_, i) => `$${i + 1}`).join(', ')})`, Object.values(old!));
    const r = check(s.osl.index);
    assert.equal(r.status, 1);
    const { lines } = parseOutput(r.stdout);
    assert.deepEqual(lines.map((l) => l.replace(/ \S+Z says/, ' T says')), [
      'differing 5a04 status store: revoked 2026-01-02T03:04:05Z keyCompromise; reference: good',
      'bad-response 5a04 sha1 T says good, the store says revoked 2026-01-02T03:04:05Z keyCompromise',
    ]);
  });
});

describe('ocsp-hsm check on PostgreSQL', () => {
  let s: Setup;
  let db: Backdoor;
  const check = (against: string) => s.cli('check', '--ca', 'osl', '--against', against);

  before(async () => {
    const pg = await postgresCluster();
    const url = pg.url(await pg.createDatabase());
    s = setup({ type: 'postgres', url, poolSize: 2 }, 'check-postgres');
    fillStore(s);
    db = await postgresBackdoor(url);
  });
  after(() => db?.close());

  it('consistent, then a tampered status row and a tampered response are found', async () => {
    assert.equal(check(s.osl.index).stdout.trim(), CONSISTENT_INDEX);
    assert.equal(check(s.osl.crlPem).status, 0);
    await db.run(`UPDATE certificates SET status = 'good', revoked_at = NULL, reason = NULL WHERE ca = 'osl' AND serial = '5a03'`);
    const [row] = await db.rows<{ der: Buffer }>(`SELECT der FROM responses WHERE ca = 'osl' AND serial = '5a01' AND hash = 'sha1'`);
    await db.run(`UPDATE responses SET der = $1 WHERE ca = 'osl' AND serial = '5a01' AND hash = 'sha1'`, [flipSignatureBit(row!.der)]);
    const r = check(s.osl.crlDer);
    assert.equal(r.status, 1, r.stderr);
    const { lines, summary } = parseOutput(r.stdout);
    const revokedAt = /^differing 5a03 status store: good; reference: revoked (\S+Z) superseded$/.exec(lines[0]!)?.[1];
    assert.ok(revokedAt, r.stdout);
    assert.deepEqual(lines.slice(1).map((l) => l.replace(/ \S+Z (says|signature)/, ' T $1')), [
      'bad-response 5a01 sha1 T signature does not verify with the signer certificate (CN=Checked OpenSSL CA OCSP)',
      `bad-response 5a03 sha1 T says revoked ${revokedAt} superseded, the store says good`,
      `bad-response 5a03 sha256 T says revoked ${revokedAt} superseded, the store says good`,
    ]);
    assert.equal(summary, 'summary: 0 missing, 0 extra, 1 differing, 3 bad responses (2 CRL entries, 4 store entries, 8 stored responses checked)');
  });
});
