// `ocsp-hsm demo` (what `npm start` runs): creates everything once, serves, and the commands it prints work.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { tempDir } from '../test/support/temp';
import { CLI } from './support/harness';

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

/** Runs the demo until it listens; returns its output so far and a stop function. */
function runDemo(cwd: string, port: number): Promise<{ output: string; stop: () => Promise<number | null> }> {
  const env = { ...process.env };
  delete env.SOFTHSM2_CONF; // the demo must find its own token without help
  const proc = spawn(process.execPath, [CLI, 'demo', '--dir', 'demo', '--port', String(port)], { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  proc.stdout.on('data', (d) => (out += d));
  proc.stderr.on('data', (d) => (out += d));
  const exited = new Promise<number | null>((r) => proc.once('exit', r));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      proc.kill('SIGKILL');
      reject(new Error(`demo did not listen within 60s:\n${out}`));
    }, 60_000);
    proc.stdout.on('data', () => {
      if (!/"msg":"listening"/.test(out)) return;
      clearTimeout(timer);
      resolve({
        output: out,
        stop: async () => {
          proc.kill('SIGTERM');
          return exited;
        },
      });
    });
    exited.then((code) => reject(new Error(`demo exited ${code}:\n${out}`)));
  });
}

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
      assert.equal(await first.stop(), 0);
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
      assert.equal(await second.stop(), 0);
    }
  });
});
