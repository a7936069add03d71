// compliance: cabf on SoftHSM2: `ocsp-hsm config check` and `serve` refuse each setting the CA/B Forum Baseline
// Requirements forbid, one line per field citing the section; a config keeping to them checks clean.
import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import { childEnv, createTestPki, runCliAsync, TestPki, variantConfig } from './support/harness';

describe('compliance: cabf', () => {
  let pki: TestPki;
  before(() => {
    pki = createTestPki([
      { name: 'one', caKey: 'ec-p256', responderKey: 'ec-p256' },
      { name: 'two', caKey: 'ec-p256' },
    ]);
  });

  const cli = async (cmd: string[], config: string) => {
    const r = await runCliAsync([...cmd, '--config', config], childEnv(pki));
    return { status: r.status, stdout: r.stdout, stderr: r.stderr, lines: r.stdout.split('\n').filter(Boolean) };
  };
  const line = (lines: string[], field: string) => lines.find((l) => l.startsWith(`${field}: `)) ?? assert.fail(`no line for ${field} in:\n${lines.join('\n')}`);

  it('config check passes a config that keeps to the rules', async () => {
    const good = variantConfig(pki, 'cabf-good', (c) => {
      c.defaults = { ...c.defaults, compliance: 'cabf', validity: '7d' };
      c.cas[1].preProduction = { enabled: true };
      c.preSigner = { interval: '1h', refreshAfter: 0.5 };
      c.server = { ...c.server, port: 0 };
    });
    const r = await cli(['config', 'check'], good);
    assert.equal(r.status, 0, r.stdout + r.stderr);
    assert.match(r.lines.at(-1)!, /^config check: no problems in .* \(2 keys proved\)$/);
  });

  it('config check and serve refuse the validity, the pre-signer schedule, final responses and the response time, each with its section', async () => {
    const bad = variantConfig(pki, 'cabf-settings', (c) => {
      c.defaults = { ...c.defaults, compliance: 'cabf' };
      c.cas[0].validity = '10d';
      c.cas[1].preProduction = { enabled: true, finalResponsesBefore: '30d' };
      c.profiles = { short: { validity: '1h' } };
      c.server = { ...c.server, port: 0, responseTimeout: '11s' };
    });
    const r = await cli(['config', 'check'], bad);
    assert.equal(r.status, 1, r.stdout + r.stderr);
    assert.match(line(r.lines, 'cas[0].validity'), /10d1s, over the 10 days BR 4\.9\.9 allows; at most 863999s .*CA "one"/);
    assert.match(line(r.lines, 'cas[1].preProduction.finalResponsesBefore'), /9999-12-31.*BR 4\.9\.9.*CA "two"/);
    assert.match(line(r.lines, 'preSigner.interval'), /required with pre-production.*BR 4\.9\.9/);
    assert.match(line(r.lines, 'profiles.short.validity'), /under the 8 hours BR 4\.9\.9 requires/);
    assert.match(line(r.lines, 'server.responseTimeout'), /ten seconds BR 4\.10\.2 allows/);
    assert.match(r.lines.at(-1)!, /^config check: 5 problems/);
    const s = await cli(['serve'], bad);
    assert.equal(s.status, 1, s.stdout + s.stderr);
    for (const field of ['cas[0].validity', 'cas[1].preProduction.finalResponsesBefore', 'preSigner.interval', 'profiles.short.validity', 'server.responseTimeout']) {
      assert.ok(s.stderr.includes(`${field}: `), `serve names ${field}:\n${s.stderr}`);
    }
  });

  it('refuses a refresh point after the update deadline', async () => {
    const late = variantConfig(pki, 'cabf-refresh', (c) => {
      c.defaults = { ...c.defaults, compliance: 'cabf', preProduction: { enabled: true } };
      c.preSigner = { interval: '1h', refreshAfter: 0.9 };
    });
    const r = await cli(['config', 'check'], late);
    assert.equal(r.status, 1);
    assert.match(line(r.lines, 'preSigner.refreshAfter'), /22h36m after thisUpdate, after the update BR 4\.9\.9 requires 16h after thisUpdate/);
  });

  it('refuses nonIssued: good for a CA that is not Technically Constrained, in config check (keys still proved) and serve', async () => {
    const good = variantConfig(pki, 'cabf-nonissued', (c) => {
      c.cas[0].compliance = 'cabf';
      c.cas[0].nonIssued = 'good';
      // The other CA is not under cabf: its good answers for unknown serials are its business.
      c.cas[1].nonIssued = 'good';
      c.server = { ...c.server, port: 0 };
    });
    const r = await cli(['config', 'check'], good);
    assert.equal(r.status, 1, r.stdout + r.stderr);
    assert.match(line(r.lines, 'cas[0].nonIssued'), /BR 4\.9\.9 forbids unless the CA is Technically Constrained \(BR 7\.1\.2\.3, 7\.1\.2\.5\); cas\[0\]\.certificate/);
    assert.equal(r.lines.filter((l) => l.includes('nonIssued')).length, 1, r.stdout);
    assert.match(r.lines.at(-1)!, /^config check: 1 problem in .* \(2 keys proved\)$/);
    const s = await cli(['serve'], good);
    assert.equal(s.status, 1, s.stdout + s.stderr);
    assert.match(s.stderr, /CA "one": cas\[0\]\.nonIssued: good answers unassigned serials "good"/);
  });
});
