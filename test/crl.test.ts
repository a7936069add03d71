// CRLs made by `openssl ca -gencrl` and `openssl crl -gendelta`: parsed, verified against the CA, applied in order;
// and the cas[].crl config section.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { before, describe, it } from 'node:test';
import { FakeClock } from '../src/clock';
import { ConfigError, validateConfig } from '../src/config/load';
import { applyCrls, fullBeforeDelta, VerifiedCrl } from '../src/ingest/crl-apply';
import { readCertificate } from '../src/pki/certificate';
import { Crl, CrlError, crlBlocks, readCrl } from '../src/pki/crl';
import { issueCrl } from '../src/pki/issue-crl';
import { StaleCrlError } from '../src/store/crl-state';
import { SqliteStore } from '../src/store/sqlite/sqlite-store';
import { openssl, writeTemp } from './support/openssl';
import { makeOpensslCrlCa, OpensslCrlCa } from './support/openssl-crl-ca';
import { softwarePki } from './support/software-pki';

const DELTA_URL = 'http://127.0.0.1:1/delta.crl';

/**
 * CRL 1: nothing revoked. CRL 2: 1001 on hold, 1002 keyCompromise. Then 1001's hold is lifted (index.txt reason set to
 * removeFromCRL: `openssl ca` cannot revoke twice) and 1003 superseded; CRL 3. The delta CRL from 1 to 3 (number 3,
 * base 1) carries all three entries, 1001 as removeFromCRL.
 */
function crlSequence(): { ca: OpensslCrlCa; crl1: string; crl2: string; crl3: string; delta: string } {
  const ca = makeOpensslCrlCa({ cn: 'CRL Test CA', freshestCrl: DELTA_URL });
  const crl1 = ca.gencrl('crl1.pem');
  ca.revoke(ca.leaves[0]!, ['-crl_hold', 'holdInstructionReject']);
  ca.revoke(ca.leaves[1]!, ['-crl_reason', 'keyCompromise']);
  const crl2 = ca.gencrl('crl2.pem');
  ca.setIndexReason('1001', 'removeFromCRL');
  ca.revoke(ca.leaves[2]!, ['-crl_reason', 'superseded']);
  const crl3 = ca.gencrl('crl3.pem');
  return { ca, crl1, crl2, crl3, delta: ca.gendelta(crl1, crl3, 'delta.pem') };
}

/** The same CRL in DER, next to the PEM file. */
function derOf(pem: string): string {
  const out = pem.replace(/\.pem$/, '.der');
  openssl(['crl', '-in', pem, '-outform', 'DER', '-out', out]);
  return out;
}

describe('reading CRLs', () => {
  let s: ReturnType<typeof crlSequence>;
  const read = async (file: string, caCert = s.ca.caCert): Promise<Crl> => {
    const blocks = crlBlocks(readFileSync(file), file);
    assert.equal(blocks.length, 1);
    return readCrl(blocks[0]!, readCertificate(caCert), file);
  };
  before(() => {
    s = crlSequence();
  });

  it('reads a full CRL from `openssl ca -gencrl`: number, dates, http Freshest CRL URL, entries with reasons', async () => {
    const crl = await read(s.crl2);
    assert.equal(crl.isDelta, false);
    assert.equal(crl.crlNumber, 2n);
    assert.equal(crl.baseCrlNumber, undefined);
    assert.equal(crl.nextUpdate!.getTime() - crl.thisUpdate.getTime(), 86_400_000);
    assert.deepEqual(crl.freshestCrlUrls, [DELTA_URL], 'the ldap: URL is left out');
    assert.deepEqual(crl.entries.map((e) => [e.serial, e.reason]), [['1001', 'certificateHold'], ['1002', 'keyCompromise']]);
    assert.ok(crl.entries.every((e) => Math.abs(e.revokedAt.getTime() - crl.thisUpdate.getTime()) < 120_000));
    assert.deepEqual((await read(s.crl1)).entries, []);
  });

  it('reads a delta CRL from `openssl crl -gendelta`: base number, removeFromCRL, no Freshest CRL followed', async () => {
    const crl = await read(s.delta);
    assert.equal(crl.isDelta, true);
    assert.equal(crl.crlNumber, 3n);
    assert.equal(crl.baseCrlNumber, 1n);
    assert.deepEqual(crl.freshestCrlUrls, []);
    assert.deepEqual(crl.entries.map((e) => [e.serial, e.reason]), [['1001', 'removeFromCRL'], ['1002', 'keyCompromise'], ['1003', 'superseded']]);
  });

  it('reads DER, and every block of a PEM file with several CRLs', async () => {
    assert.deepEqual((await read(derOf(s.crl2))).entries, (await read(s.crl2)).entries);
    const both = writeTemp('both.pem', readFileSync(s.crl3, 'utf8') + readFileSync(s.delta, 'utf8'));
    const blocks = crlBlocks(readFileSync(both), both);
    assert.equal(blocks.length, 2);
    const crls = await Promise.all(blocks.map((b) => readCrl(b, readCertificate(s.ca.caCert), both)));
    assert.deepEqual(crls.map((c) => c.isDelta), [false, true]);
  });

  it('refuses a bad signature, a CRL of another CA, and a key-renewed CA with the same name', async () => {
    const bad = `${s.ca.dir}/badsig.pem`;
    openssl(['crl', '-in', s.crl2, '-badsig', '-out', bad]);
    await assert.rejects(read(bad), (e: unknown) => e instanceof CrlError && e.kind === 'signature' && /badsig\.pem: bad signature/.test(e.message));
    const other = makeOpensslCrlCa({ cn: 'Another CA', leaves: 0 });
    await assert.rejects(read(other.gencrl('other.pem')), (e: unknown) =>
      e instanceof CrlError && e.kind === 'issuer' && /CRL issued by "CN=Another CA", not by the CA "CN=CRL Test CA"/.test(e.message));
    const twin = makeOpensslCrlCa({ cn: 'CRL Test CA', leaves: 0 });
    await assert.rejects(read(twin.gencrl('twin.pem')), (e: unknown) => e instanceof CrlError && e.kind === 'signature');
  });

  it('refuses what is not a CRL, naming the file', async () => {
    const garbage = writeTemp('garbage.crl', Buffer.from('30030201ff', 'hex'));
    await assert.rejects(read(garbage), (e: unknown) => e instanceof CrlError && e.kind === 'unparsable' && /garbage\.crl: not a valid X\.509 CRL/.test(e.message));
    const trailing = writeTemp('trailing.der', Buffer.concat([readFileSync(derOf(s.crl1)), Buffer.from([0])]));
    await assert.rejects(read(trailing), /not a single DER element/);
    assert.throws(() => crlBlocks(readFileSync(s.ca.caCert), 'ca.pem'), /ca\.pem: no PEM "X509 CRL" block found/);
  });

  it('reads a CRL built with pkijs and signed with a node:crypto key, numbers beyond 64 bits included', async () => {
    const pki = await softwarePki();
    const der = await issueCrl({
      issuer: pki.ca, signer: pki.caSigner, thisUpdate: new Date('2026-03-01T00:00:00Z'), crlNumber: 2n ** 100n, baseCrlNumber: 2n ** 99n,
      entries: [{ serial: 'ff01', revokedAt: new Date('2026-02-01T00:00:00Z') }],
    });
    const crl = await readCrl(der, pki.ca, 'built');
    assert.equal(crl.crlNumber, 2n ** 100n);
    assert.equal(crl.baseCrlNumber, 2n ** 99n);
    assert.equal(crl.nextUpdate, undefined);
    assert.deepEqual(crl.entries, [{ serial: 'ff01', revokedAt: new Date('2026-02-01T00:00:00Z') }], 'no reason code: none made up');
  });
});

describe('applying CRLs', () => {
  it('full then delta: revoked with reasons, the hold released by removeFromCRL; an older CRL refused, nothing changed', async () => {
    const s = crlSequence();
    const caCert = readCertificate(s.ca.caCert);
    const verified = async (file: string): Promise<VerifiedCrl> => ({ crl: await readCrl(crlBlocks(readFileSync(file), file)[0]!, caCert, file), where: file });
    const store = new SqliteStore(':memory:', new FakeClock());
    const [full, delta] = [await verified(s.crl2), await verified(s.delta)];
    // Given delta first, full first all the same.
    const applied = await applyCrls(store, 'osl', fullBeforeDelta([delta, full]));
    assert.deepEqual(applied.map((a) => a.where), [s.crl2, s.delta]);
    assert.deepEqual(applied[0]!.result, { inserted: 2, updated: 0, unchanged: 0, keptRevoked: 0 });
    assert.deepEqual(applied[1]!.result, { inserted: 1, updated: 1, unchanged: 1, keptRevoked: 0 });
    assert.equal((await store.getCertificate('osl', '1001'))?.status, 'good', 'hold released');
    assert.equal((await store.getCertificate('osl', '1002'))?.reason, 'keyCompromise');
    assert.equal((await store.getCertificate('osl', '1003'))?.reason, 'superseded');
    const crl1 = await verified(s.crl1);
    await assert.rejects(applyCrls(store, 'osl', [crl1]), (e: unknown) => e instanceof StaleCrlError && /crl1\.pem: full CRL number 1 .* is older than the full CRL number 2/.test((e as Error).message));
    // Two CRLs, the second stale: refused before the first is applied.
    const other = new SqliteStore(':memory:', new FakeClock());
    await assert.rejects(applyCrls(other, 'osl', [full, crl1]), StaleCrlError);
    assert.equal(await other.getCertificate('osl', '1002'), undefined);
    assert.deepEqual(await other.lastCrls('osl'), {});
  });
});

describe('cas[].crl config', () => {
  const minimal = (crl: unknown) => ({
    tokens: [{ name: 'hsm', module: '/usr/lib/softhsm/libsofthsm2.so', tokenLabel: 'ocsp', pin: { env: 'OCSP_PIN' } }],
    cas: [{ name: 'ca1', certificate: 'ca.pem', signer: { token: 'hsm', key: { label: 'resp' } }, crl }],
  });
  const errorOf = (crl: unknown) => {
    try {
      validateConfig(minimal(crl), 'test.yaml');
    } catch (e) {
      assert.ok(e instanceof ConfigError);
      return e.message;
    }
    assert.fail('accepted');
  };

  it('has defaults and reads units', () => {
    const { config } = validateConfig(minimal({ urls: ['http://crl.example/ca.crl', 'https://crl.example/ca.crl'] }), 'test.yaml');
    assert.deepEqual(config.cas[0]!.crl, {
      urls: ['http://crl.example/ca.crl', 'https://crl.example/ca.crl'], maxSize: 10 * 1024 * 1024, interval: 600_000, ignoreNextUpdate: false, timeout: 30_000,
    });
    const c = validateConfig(minimal({ urls: ['http://x/c'], maxSize: '64KiB', interval: '1h', ignoreNextUpdate: true }), 'test.yaml').config.cas[0]!.crl!;
    assert.equal(c.maxSize, 65_536);
    assert.equal(c.interval, 3_600_000);
    assert.equal(c.ignoreNextUpdate, true);
  });

  it('names the field of a bad value', () => {
    assert.match(errorOf({ urls: ['ldap://x/c'] }), /cas\[0\]\.crl\.urls\[0\]: an http:\/\/ or https:\/\/ URL/);
    assert.match(errorOf({ urls: ['file:///etc/passwd'] }), /cas\[0\]\.crl\.urls\[0\]: an http:\/\/ or https:\/\/ URL/);
    assert.match(errorOf({ urls: [] }), /cas\[0\]\.crl\.urls: give at least one URL/);
    assert.match(errorOf({ urls: ['http://x/c'], maxSize: 'huge' }), /cas\[0\]\.crl\.maxSize: /);
    assert.match(errorOf({ urls: ['http://x/c'], interval: '0s' }), /cas\[0\]\.crl\.interval: must be greater than 0/);
    assert.match(errorOf({ urls: ['http://x/c'], every: '1h' }), /cas\[0\]\.crl: Unrecognized key\(s\) in object: 'every'/);
  });
});
