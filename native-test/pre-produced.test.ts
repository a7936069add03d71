// Pre-produced responses end to end on SoftHSM2: the daemon serves stored and cached responses that openssl
// verifies, the presign CLI fills the store (and resumes after kill -9), revocations through the CLI are never
// answered good, final responses carry nextUpdate 9999-12-31, cleanup keeps the latest.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { parse } from 'yaml';
import { readFileSync } from 'node:fs';
import {
  childEnv, createTestPki, CLI, metric, opensslQuery, Responder, runCli, startResponder, TestCa, TestPki, variantConfig, waitFor,
} from './support/harness';

const producedAt = (out: string) => /Produced At: (.*)/.exec(out)?.[1];
const nextUpdate = (out: string) => /Next Update: (.*)/.exec(out)?.[1];

describe('pre-produced responses on SoftHSM2', () => {
  let pki: TestPki;
  let ca: TestCa;
  let config: string;
  let responder: Responder;
  let dbFile: string;
  const cli = (args: string[], cfg = config) => runCli([...args, '--config', cfg], childEnv(pki));
  const db = () => new Database(dbFile, { readonly: true });
  const count = (sql: string, ...params: unknown[]) => {
    const d = db();
    try {
      return d.prepare(sql).pluck().get(...params) as number;
    } finally {
      d.close();
    }
  };

  before(async () => {
    pki = createTestPki([{ name: 'pre', caKey: 'ec-p256', responderKey: 'ec-p256' }]);
    ca = pki.cas[0]!;
    config = variantConfig(pki, 'pre', (c) => {
      c.defaults = { ...c.defaults, validity: '1h', preProduction: { enabled: true, storeOnDemand: true, onRevocation: true } };
      c.preSigner = { concurrency: 16, batchSize: 500 };
    });
    const cfg = parse(readFileSync(config, 'utf8')) as { dataDir?: string };
    dbFile = join(pki.dir, cfg.dataDir ?? 'data', 'ocsp-hsm.sqlite');
    responder = await startResponder(pki, { config });
  });
  after(async () => {
    assert.equal(await responder.stop(), 0, responder.output());
  });

  it('serves one stored response again and again, to SHA-1 and SHA-256 clients, nonce or not; openssl verifies', async () => {
    const a = opensslQuery(ca, responder.url, [ca.good.file], ['-resp_text']);
    assert.match(a, /Response verify OK/);
    assert.match(a, /: good/);
    const b = opensslQuery(ca, responder.url, [ca.good.file], ['-resp_text', '-nonce']);
    assert.match(b, /Response verify OK/);
    assert.match(b, /WARNING: no nonce in response/, 'pre-production ignores the nonce');
    assert.equal(producedAt(b), producedAt(a), 'the same pre-produced response');
    const c = opensslQuery(ca, responder.url, [ca.good.file], ['-sha256', '-resp_text']);
    assert.match(c, /Response verify OK/);
    assert.match(c, /Hash Algorithm: sha256/);
    assert.equal(count("SELECT count(*) FROM responses WHERE hash IN ('sha1', 'sha256') AND serial = ?", ca.good.serial), 2);
    // One cached response per hash, each counted as its DER plus the per-entry overhead.
    assert.equal(await metric(responder.url, 'ocsp_cache_entries'), 2);
    const bytes = await metric(responder.url, 'ocsp_cache_bytes');
    assert.ok(bytes > 2 * 400 && bytes < 2 * (400 + 2000), `ocsp_cache_bytes ${bytes}`);
    // openssl sends a nonce: such requests are never remembered by their bytes.
    assert.equal(await metric(responder.url, 'ocsp_request_memo_entries'), 0);
  });

  it('a revocation recorded through the CLI is answered revoked at once, from a newly produced stored response', async () => {
    const leaf = ca.good;
    assert.match(opensslQuery(ca, responder.url, [leaf.file]), /: good/);
    const r = cli(['revoke', '--ca', ca.name, '--serial', leaf.serial, '--reason', 'keyCompromise']);
    assert.equal(r.status, 0, r.stderr);
    const out = opensslQuery(ca, responder.url, [leaf.file], ['-resp_text']);
    assert.match(out, /Response verify OK/);
    assert.match(out, /: revoked/);
    assert.match(out, /Reason: keyCompromise/);
    const produced = await waitFor(() => count('SELECT count(*) FROM responses WHERE serial = ?', leaf.serial) === 2, 5000);
    assert.ok(produced, 'responses were produced upon revocation for both hashes');
  });

  it('presign CLI: 20,000 certificates, killed with SIGKILL midway, the rerun signs only what was missing', async () => {
    const serials = Array.from({ length: 20_000 }, (_, i) => (0x100000 + i).toString(16));
    const w = new Database(dbFile);
    const insert = w.prepare("INSERT INTO certificates (ca, serial, status, updated_at) VALUES (?, ?, 'good', 0)");
    w.transaction(() => serials.forEach((s) => insert.run(ca.name, s)))();
    w.close();
    const sha1Only = variantConfig(pki, 'pre-sha1', (c) => {
      Object.assign(c, parse(readFileSync(config, 'utf8')));
      c.defaults.preProduction.hashes = ['sha1'];
    });
    const inBatch = `SELECT count(*) FROM responses WHERE serial >= '100000' AND serial <= '${serials.at(-1)}' AND length(serial) = 6`;
    const proc = spawn(process.execPath, [CLI, 'presign', '--config', sha1Only], { env: childEnv(pki), stdio: 'ignore' });
    const midway = await waitFor(() => count(inBatch) >= 3000, 60_000, 20);
    proc.kill('SIGKILL');
    await new Promise((r) => proc.once('exit', r));
    assert.ok(midway, 'the first run stored some responses before it was killed');
    const before = count(inBatch);
    assert.ok(before < 20_000, `killed midway (${before} stored)`);
    const rerun = cli(['presign', '--config', sha1Only], sha1Only);
    assert.equal(rerun.status, 0, rerun.stderr);
    const stored = Number(/presign: (\d+) responses stored/.exec(rerun.stdout)?.[1]);
    assert.ok(rerun.stderr.includes('100%'), 'progress reached 100%');
    assert.equal(count(inBatch), 20_000, 'every certificate has a response: ' + rerun.stdout + rerun.stderr.slice(-500));
    assert.equal(count(`SELECT count(*) FROM (SELECT serial FROM responses WHERE hash = 'sha1' AND length(serial) = 6 GROUP BY serial HAVING count(*) > 1)`), 0, 'exactly one each');
    // The rerun signed the missing ones (and the two demo leaves' sha1 which had none yet, if any).
    assert.ok(stored >= 20_000 - before && stored <= 20_000 - before + 2, `rerun stored ${stored}, ${20_000 - before} were missing`);
    assert.equal(count(`SELECT count(*) FROM responses WHERE length(serial) = 6 AND next_update <= ?`, Date.now()), 0, 'all valid');
    const again = cli(['presign', '--config', sha1Only], sha1Only);
    assert.match(again.stdout, /presign: 0 responses stored/);
    // A stored (pre-signed) response is what the daemon serves.
    const out = opensslQuery(ca, responder.url, [ca.revoked.file], ['-resp_text']);
    assert.match(out, /Response verify OK/);
  });

  it('final responses: nextUpdate 9999-12-31, verified by openssl; nothing newer stored after; cleanup keeps the latest', () => {
    const finalCfg = variantConfig(pki, 'pre-final', (c) => {
      Object.assign(c, parse(readFileSync(config, 'utf8')));
      c.defaults.preProduction.finalResponsesBefore = '36500d';
      // SHA-256: the daemon has cached no SHA-256 answer for the revoked leaf, so it reads the final one.
      c.defaults.preProduction.hashes = ['sha256'];
    });
    // Only the demo leaves: drop the 20,000 so this stays quick.
    const w = new Database(dbFile);
    w.prepare('DELETE FROM certificates WHERE length(serial) = 6').run();
    w.prepare('DELETE FROM responses WHERE length(serial) = 6').run();
    w.close();
    const r = cli(['presign', '--config', finalCfg], finalCfg);
    assert.equal(r.status, 0, r.stderr);
    assert.ok(Number(/\((\d+) final\)/.exec(r.stdout)?.[1]) >= 2, r.stdout);
    assert.ok(count('SELECT count(*) FROM responses WHERE final = 1') >= 1);
    const again = cli(['presign', '--all', '--config', finalCfg], finalCfg);
    assert.match(again.stdout, /presign: 0 responses stored/, 'nothing newer after a final response');
    const out = opensslQuery(ca, responder.url, [ca.revoked.file], ['-sha256', '-resp_text']);
    assert.match(out, /Response verify OK/);
    assert.match(out, /: revoked/);
    assert.equal(nextUpdate(out), 'Dec 31 23:59:59 9999 GMT');
    const before = count('SELECT count(*) FROM responses');
    const c = cli(['cleanup']);
    assert.equal(c.status, 0, c.stderr);
    const removed = Number(/cleanup: (\d+) superseded/.exec(c.stdout)?.[1]);
    assert.equal(count('SELECT count(*) FROM responses'), before - removed);
    assert.equal(count('SELECT count(*) FROM (SELECT 1 FROM responses GROUP BY ca, serial, hash HAVING count(*) > 1)'), 0);
  });
});
