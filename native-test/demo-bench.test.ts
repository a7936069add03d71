// `ocsp-hsm bench` against the demo that `npm start` serves: the figures are printed and every sampled signature
// verifies (issue 6's acceptance for the stress tool).
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { tempDir } from '../test/support/temp';
import { runCli } from './support/harness';
import { freePort, runDemo } from './support/demo-process';

describe('ocsp-hsm bench against the demo', () => {
  it('prints requests/s, latency and status counts, and finds every sampled signature valid (GET and POST, nonces)', async () => {
    const cwd = tempDir('demo-bench');
    const port = await freePort();
    const demo = await runDemo(cwd, port);
    try {
      const config = join(cwd, 'demo/config.yaml');
      const url = `http://127.0.0.1:${port}`;
      for (const extra of [['--method', 'POST'], ['--method', 'GET', '--nonce', '--hash', 'sha256']]) {
        const r = runCli(['bench', '--config', config, '--ca', 'demo', '--url', url, '--duration', '2s', '--connections', '4', ...extra], process.env);
        assert.equal(r.status, 0, r.stdout + r.stderr);
        const m = /^requests\s+(\d+) in [\d.]+ s: ([\d.]+) requests\/s/m.exec(r.stdout);
        assert.ok(m && Number(m[1]) > 0 && Number(m[2]) > 0, r.stdout);
        const requests = Number(m[1]);
        assert.match(r.stdout, /^latency ms\s+p50 [\d.]+\s+p95 [\d.]+\s+p99 [\d.]+\s+max [\d.]+$/m);
        assert.match(r.stdout, new RegExp(`^HTTP status\\s+200: ${requests}$`, 'm'));
        assert.match(r.stdout, new RegExp(`^OCSP status\\s+successful: ${requests}$`, 'm'));
        // The demo's store knows the good and the revoked certificate.
        const certs = /^cert status\s+(.*)$/m.exec(r.stdout)![1]!;
        assert.deepEqual(certs.split(', ').map((kv) => kv.split(':')[0]).sort(), ['good', 'revoked']);
        assert.match(r.stdout, /^errors\s+none$/m);
        const sampled = Math.min(100, requests);
        assert.match(r.stdout, new RegExp(`^sampled ${sampled} responses: ${sampled} signatures valid$`, 'm'));
      }
    } finally {
      const code = await demo.stop();
      assert.equal(code, 0, demo.log().slice(-4000));
    }
  });
});
