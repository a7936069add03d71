// `ocsp-hsm demo` (what `npm start` runs): creates everything once, serves, and the commands it prints work.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { tempDir } from '../test/support/temp';
import { freePort, runDemo } from './support/demo-process';

describe('ocsp-hsm demo', () => {
  it('serves the demo, and every openssl command it prints verifies with the right status', async () => {
    const cwd = tempDir('demo');
    const port = await freePort();
    const first = await runDemo(cwd, port);
    try {
      assert.match(first.output, /Creating the demo in demo:/);
      const commands = first.output.split('\n').filter((l) => l.startsWith('  openssl ocsp')).map((l) => l.trim());
      assert.equal(commands.length, 5, first.output);
      const expectations = [/good/, /revoked[\s\S]*Reason: keyCompromise/, /unknown/, /good/, /good[\s\S]*revoked[\s\S]*unknown/];
      commands.forEach((cmd, i) => {
        assert.ok(cmd.includes(`-url http://127.0.0.1:${port}`) && cmd.includes('-CAfile') && !cmd.includes('-noverify'));
        const r = spawnSync('sh', ['-c', cmd], { cwd, encoding: 'utf8', timeout: 30_000 });
        const out = r.stdout + r.stderr;
        assert.match(out, /Response verify OK/, cmd);
        assert.match(out, expectations[i]!, cmd);
        assert.doesNotMatch(out, /WARNING: no nonce/, cmd);
      });
    } finally {
      assert.equal(await first.stop(), 0, first.log());
    }

    // Second run: reuses the token, keys and certificates instead of creating new ones.
    const caBefore = readFileSync(join(cwd, 'demo/demo-ca.pem'), 'utf8');
    const second = await runDemo(cwd, port);
    try {
      assert.match(second.output, /Using the demo in demo/);
      assert.equal(readFileSync(join(cwd, 'demo/demo-ca.pem'), 'utf8'), caBefore);
      const r = spawnSync('openssl', ['ocsp', '-issuer', 'demo/demo-ca.pem', '-CAfile', 'demo/demo-ca.pem', '-cert', 'demo/demo-revoked.pem', '-url', `http://127.0.0.1:${port}`], { cwd, encoding: 'utf8', timeout: 30_000 });
      assert.match(r.stdout + r.stderr, /Response verify OK/);
      assert.match(r.stdout, /revoked/);
    } finally {
      assert.equal(await second.stop(), 0, second.log());
    }
  });
});
