// waitForToken: a daemon started before its token exists serves tryLater, then becomes ready when the token
// appears; one whose token never appears gives up after the configured time, naming it.
import assert from 'node:assert/strict';
import { readdirSync, renameSync } from 'node:fs';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import { childEnv, createTestPki, opensslQuery, readyz, runCli, startResponder, TestPki, variantConfig, waitFor } from './support/harness';

describe('waitForToken', () => {
  let pki: TestPki;
  let tokenDir: string;
  let away: string;

  before(() => {
    pki = createTestPki([{ name: 'late', caKey: 'ec-p256', responderKey: 'ec-p256' }]);
    const tokens = join(pki.dir, 'tokens');
    tokenDir = join(tokens, readdirSync(tokens)[0]!);
    away = join(pki.dir, 'token-not-yet');
  });

  it('serves tryLater until the token exists, then becomes ready and signs', async () => {
    renameSync(tokenDir, away); // the token does not exist yet
    const config = variantConfig(pki, 'wait', (c) => {
      c.tokens[0].waitForToken = '60s';
      c.tokens[0].recovery = { initialBackoff: '100ms', maxBackoff: '500ms' };
    });
    const responder = await startResponder(pki, { config });
    try {
      const ca = pki.cas[0]!;
      assert.equal(await readyz(responder.url), 503);
      assert.match(opensslQuery(ca, responder.url, [ca.good.file]), /Responder Error: trylater \(3\)/);
      // The daemon has looked for the token and not found it (its session threads may take a moment to start).
      assert.ok(await waitFor(() => /"msg":"waiting for token"/.test(responder.output()), 15_000), responder.output());
      renameSync(away, tokenDir); // the token is created
      assert.ok(await waitFor(async () => (await readyz(responder.url)) === 200, 15_000), 'ready once the token exists');
      const out = opensslQuery(ca, responder.url, [ca.good.file]);
      assert.match(out, /Response verify OK/);
      assert.match(out, /: good/);
    } finally {
      assert.equal(await responder.stop(), 0, responder.output());
    }
  });

  it('exits non-zero, naming the token, when it does not appear in time', () => {
    renameSync(tokenDir, away);
    try {
      const config = variantConfig(pki, 'wait-short', (c) => {
        c.tokens[0].waitForToken = '1s';
        c.tokens[0].recovery = { initialBackoff: '100ms', maxBackoff: '300ms' };
      });
      const r = runCli(['serve', '--config', config], childEnv(pki));
      assert.equal(r.status, 1);
      assert.match(r.stderr, /ocsp-hsm: token "main" \(tokens\[0\], tokenLabel "test-\d+"\): no initialized token with this label .*\(waited 1s for the token\)/);
    } finally {
      renameSync(away, tokenDir);
    }
  });
});
