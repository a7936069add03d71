// Under umask 000, every file and directory the demo, the daemon and the key commands create has its documented
// mode (README "Files and their modes"), and a PIN from the environment reaches no serving process.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { parse, stringify } from 'yaml';
import { tempDir } from '../test/support/temp';
import { freePort, runDemo } from './support/demo-process';
import { runCli, startResponder } from './support/harness';

const mode = (p: string) => statSync(p).mode & 0o777;

/** Every path under `dir` with its mode, e.g. `data/ocsp-hsm.sqlite 600`. */
function modesUnder(dir: string): Map<string, number> {
  const found = new Map<string, number>();
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      found.set(relative(dir, p) + (e.isDirectory() ? '/' : ''), mode(p));
      if (e.isDirectory()) walk(p);
    }
  };
  walk(dir);
  return found;
}

/** Directories 0700, certificates 0644, everything else (store, PIN, configs, token objects) 0600. */
function expectedMode(path: string): number {
  return path.endsWith('/') ? 0o700 : path.endsWith('.pem') ? 0o644 : 0o600;
}

function assertModes(found: Map<string, number>) {
  const wrong = [...found].filter(([p, m]) => m !== expectedMode(p)).map(([p, m]) => `${p} ${m.toString(8)}`);
  assert.deepEqual(wrong, [], [...found].map(([p, m]) => `${p} ${m.toString(8)}`).join('\n'));
}

/** The processes whose parent is `pid` (the serving processes of a primary). */
function childrenOf(pid: number): number[] {
  return readdirSync('/proc').filter((d) => /^\d+$/.test(d)).flatMap((d) => {
    try {
      // "pid (comm) state ppid ...": the name may hold spaces and parentheses, so fields are counted after the last ')'.
      const stat = readFileSync(`/proc/${d}/stat`, 'utf8');
      return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) === pid ? [Number(d)] : [];
    } catch {
      return []; // gone meanwhile
    }
  });
}

describe('file modes under umask 000', () => {
  let previousUmask: number;
  let cwd: string;
  // Children inherit the umask: the demo, the daemon and the CLI all run under 000.
  before(() => {
    previousUmask = process.umask(0);
    cwd = tempDir('file-modes');
  });
  after(() => process.umask(previousUmask));

  it('the demo set-up and its running daemon: store with -wal and -shm, PIN, configs, token 0600; certificates 0644; directories 0700', async () => {
    const demo = await runDemo(cwd, await freePort());
    let found: Map<string, number>;
    try {
      found = modesUnder(join(cwd, 'demo'));
    } finally {
      assert.equal(await demo.stop(), 0, demo.log());
    }
    for (const p of ['config.yaml', 'softhsm2.conf', 'user.pin', 'demo-ca.pem', 'data/', 'data/ocsp-hsm.sqlite', 'data/ocsp-hsm.sqlite-wal', 'data/ocsp-hsm.sqlite-shm', 'tokens/']) {
      assert.ok(found.has(p), `${p} missing from:\n${[...found.keys()].join('\n')}`);
    }
    assert.ok([...found.keys()].some((p) => /^tokens\/[^/]+\/token\.object$/.test(p)), 'no token object');
    assert.equal(mode(join(cwd, 'demo')), 0o700); // the token directory's parent
    assertModes(found);
  });

  it('keys generate and csr write their outputs 0644, the new key objects 0600', () => {
    const env = { ...process.env, SOFTHSM2_CONF: join(cwd, 'demo/softhsm2.conf') };
    const config = join(cwd, 'demo/config.yaml');
    const pub = join(cwd, 'demo/extra.pub.pem');
    const csr = join(cwd, 'demo/extra-csr.pem');
    const g = runCli(['keys', 'generate', '--config', config, '--token', 'demo', '--label', 'extra', '--type', 'ec-p256', '--out', pub], env);
    assert.equal(g.status, 0, g.stderr);
    const c = runCli(['csr', '--config', config, '--token', 'demo', '--label', 'extra', '--subject', '/CN=extra', '--out', csr], env);
    assert.equal(c.status, 0, c.stderr);
    assert.deepEqual([mode(pub), mode(csr)], [0o644, 0o644]);
    assertModes(modesUnder(join(cwd, 'demo')));
  });

  it('a PIN from the environment is in the environment of no serving process', async () => {
    const pin = readFileSync(join(cwd, 'demo/user.pin'), 'utf8').trim();
    const config = parse(readFileSync(join(cwd, 'demo/config.yaml'), 'utf8'));
    config.tokens[0].pin = { env: 'FILE_MODES_TEST_PIN' };
    config.server = { ...config.server, port: 0, workers: 2 };
    // Beside the demo's config, for its relative paths (the modes were checked above).
    const file = join(cwd, 'demo/env-pin.yaml');
    writeFileSync(file, stringify(config));
    const running = await startResponder({ softhsmConf: join(cwd, 'demo/softhsm2.conf'), configFile: file }, { env: { FILE_MODES_TEST_PIN: pin } });
    try {
      const serving = childrenOf(running.proc.pid!);
      assert.equal(serving.length, 2, running.output());
      for (const pid of serving) {
        const environ = readFileSync(`/proc/${pid}/environ`, 'utf8');
        assert.ok(environ.includes('SOFTHSM2_CONF='), 'the rest of the environment is inherited');
        assert.ok(!environ.includes('FILE_MODES_TEST_PIN') && !environ.includes(pin), `serving process ${pid} has the PIN`);
      }
    } finally {
      assert.equal(await running.stop(), 0, running.output());
    }
    assert.ok(!running.output().includes(pin));
  });
});
