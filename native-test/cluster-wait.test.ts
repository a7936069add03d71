// Consistent revocation with three real responders on SoftHSM2 sharing one PostgreSQL database (one of them a primary
// with two serving processes): a status change posted to one node with ?wait=all is answered only once every
// responder process applied it, and every node answers it right after (openssl ocsp -CAfile); a responder frozen
// with SIGSTOP is waited for until the timeout and named; one frozen for longer than the liveness window is not
// waited for, and answers the change the moment it wakes. `ocsp-hsm cluster status` lists them, on PostgreSQL and
// SQLite; a clean stop removes a responder's rows.
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { childEnv, createTestPki, opensslQuery, publishingPort, Responder, runCli, startResponder, TestCa, TestPki, variantConfig, waitFor } from './support/harness';
import { postgresCluster } from './support/postgres';

const TOKEN = 'c1a5'.repeat(16);
/** cluster.heartbeat 1s (default) and store.maxStaleness 2s (default): a row older than 4 s is a responder gone. */
const LIVENESS_MS = 4000;
const WAIT_TIMEOUT_MS = 3000;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Listed {
  id: string;
  pid: number;
  worker: number;
  appliedSeq: number;
  lag: number;
  ready: boolean;
  live: boolean;
  heartbeatAgeMs: number;
}

describe('three responders on one PostgreSQL database, ?wait=all', () => {
  let pki: TestPki;
  let ca: TestCa;
  let configs: string[];
  let nodes: Responder[] = [];
  let api: string;

  const status = (config = configs[0]!) => {
    const r = runCli(['cluster', 'status', '--json', '--config', config], childEnv(pki));
    assert.equal(r.status, 0, r.stderr);
    return JSON.parse(r.stdout) as { livenessWindowMs: number; head: number; responders: Listed[]; leases: unknown[] };
  };
  const post = async (path: string, body: unknown) => {
    const r = await fetch(api + path, {
      method: 'POST',
      headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
      body: JSON.stringify(body),
      signal: AbortSignal.timeout(20_000),
    });
    return { status: r.status, json: (await r.json()) as Record<string, any>, at: Date.now() };
  };
  const hold = (serial: string) => ({ serial, revokedAt: new Date(Date.now() - 60_000).toISOString(), reason: 'certificateHold' });
  const release = (serial: string) => ({ serial, revokedAt: new Date(Date.now() - 60_000).toISOString(), reason: 'removeFromCRL' });
  /** Every node's answer, verified; node C twice over, so that both its serving processes answer. */
  const answers = () =>
    [nodes[0]!, nodes[1]!, nodes[2]!, nodes[2]!, nodes[2]!].map((n) => {
      const out = opensslQuery(ca, n.url, [ca.good.file], ['-resp_text']);
      assert.match(out, /Response verify OK/, n.url);
      return /: revoked/.test(out) ? (/Reason: (\w+)/.exec(out)?.[1] ?? 'revoked') : /: good/.test(out) ? 'good' : out;
    });

  before(async () => {
    const pg = await postgresCluster();
    const url = pg.url(await pg.createDatabase());
    pki = createTestPki([{ name: 'waitca', caKey: 'ec-p256', responderKey: 'ec-p256' }]);
    ca = pki.cas[0]!;
    writeFileSync(join(pki.dir, 'publish.token'), TOKEN + '\n', { mode: 0o600 });
    configs = ['a', 'b', 'c'].map((n) =>
      variantConfig(pki, `node-${n}`, (c) => {
        c.store = { url };
        c.cluster = { name: `node-${n}`, waitTimeout: `${WAIT_TIMEOUT_MS / 1000}s` };
        if (n === 'a') c.publishing = { host: '127.0.0.1', port: 0, auth: { tokenFile: 'publish.token' } };
        if (n === 'c') c.server = { ...c.server, workers: 2 };
      }),
    );
    const imported = runCli(['import', 'certs', '--ca', ca.name, ca.good.file, '--config', configs[0]!], childEnv(pki));
    assert.equal(imported.status, 0, imported.stderr);
    nodes = await Promise.all(configs.map((config) => startResponder(pki, { config })));
    api = `http://127.0.0.1:${publishingPort(nodes[0]!)}`;
  });
  after(async () => {
    for (const n of nodes) n.proc.kill('SIGCONT');
    for (const n of nodes) assert.equal(await n.stop(), 0, n.output());
    // A clean stop removes every row: nothing is left to wait for.
    assert.deepEqual(status().responders, []);
  });

  it('cluster status lists every process that answers: one row per single process, one per serving process', () => {
    const s = status();
    assert.equal(s.livenessWindowMs, LIVENESS_MS);
    const pids = nodes.map((n) => n.proc.pid);
    assert.deepEqual(
      s.responders.map((r) => [r.pid, r.worker]).sort(),
      [[pids[0], 0], [pids[1], 0], [pids[2], 1], [pids[2], 2]].sort(),
    );
    for (const r of s.responders) {
      assert.ok(r.live && r.ready && r.lag === 0 && r.appliedSeq === s.head, JSON.stringify(r));
      assert.ok(r.heartbeatAgeMs < 2000, JSON.stringify(r));
    }
    assert.ok(s.responders.some((r) => r.id.startsWith('node-c/') && r.id.endsWith('#2')), 'serving processes as id#slot under their daemon');
    assert.ok(Array.isArray(s.leases));
    const text = runCli(['cluster', 'status', '--config', configs[1]!], childEnv(pki));
    assert.equal(text.status, 0, text.stderr);
    assert.match(text.stdout, /^responders: 4 live, 0 stale \(liveness window 4\.0s; change log head \d+\)$/m);
    assert.match(text.stdout, /^ID +HOST +PID +WORKER +HEARTBEAT +APPLIED +LAG +READY +STATE$/m);
    assert.match(text.stdout, new RegExp(`^node-b/${pids[1]}/\\w+ +node-b +${pids[1]} +- +\\d+\\.\\ds ago +\\d+ +0 +yes +live$`, 'm'));
  });

  it('a hold posted while one responder is frozen is answered only once it woke and applied it; then every node answers it', async () => {
    assert.deepEqual(answers(), ['good', 'good', 'good', 'good', 'good'], 'every cache holds "good"');
    const frozen = nodes[1]!;
    frozen.proc.kill('SIGSTOP');
    const started = Date.now();
    const answer = post(`/v1/cas/${ca.name}/revocations?wait=all`, hold(ca.good.serial));
    await sleep(1500);
    const woke = Date.now();
    frozen.proc.kill('SIGCONT');
    const r = await answer;
    assert.equal(r.status, 200, JSON.stringify(r.json));
    assert.equal(r.json.certificate.status, 'revoked');
    assert.equal(r.json.wait.applied, true);
    assert.equal(r.json.wait.responders, 4);
    assert.ok(r.at >= woke, `answered ${woke - r.at} ms before the frozen responder woke (${r.at - started} ms after posting)`);
    assert.deepEqual(answers(), ['certificateHold', 'certificateHold', 'certificateHold', 'certificateHold', 'certificateHold']);
    assert.ok(status().responders.every((x) => x.appliedSeq >= r.json.wait.seq));
  });

  it('with one responder stopped the request times out and names it; the change is recorded, and the node answers it once woken', async () => {
    const released = await post(`/v1/cas/${ca.name}/revocations?wait=all`, release(ca.good.serial));
    assert.equal(released.status, 200, JSON.stringify(released.json));
    assert.deepEqual(answers(), ['good', 'good', 'good', 'good', 'good']);
    const frozen = nodes[1]!;
    frozen.proc.kill('SIGSTOP');
    try {
      const started = Date.now();
      const r = await post(`/v1/cas/${ca.name}/revocations?wait=all`, hold(ca.good.serial));
      assert.equal(r.status, 202, JSON.stringify(r.json));
      assert.equal(r.json.certificate.status, 'revoked');
      assert.equal(r.json.wait.applied, false);
      assert.ok(r.at - started >= WAIT_TIMEOUT_MS && r.at - started < WAIT_TIMEOUT_MS + 2000, `${r.at - started} ms`);
      assert.deepEqual(r.json.wait.notApplied.map((l: Listed) => [l.pid, l.worker]), [[frozen.proc.pid, 0]]);
      assert.ok(r.json.wait.notApplied[0].id.startsWith('node-b/'));
      assert.ok(r.json.wait.notApplied[0].appliedSeq < r.json.wait.seq);
      const behind = status().responders.find((x) => x.pid === frozen.proc.pid)!;
      assert.ok(behind.lag >= 1, JSON.stringify(behind));
      // The daemon's stdout is a pipe: its line may come a little after the answer.
      assert.ok(await waitFor(() => /not applied by every responder within cluster\.waitTimeout/.test(nodes[0]!.output()), 2000), nodes[0]!.output());
    } finally {
      frozen.proc.kill('SIGCONT');
    }
    assert.deepEqual(answers(), ['certificateHold', 'certificateHold', 'certificateHold', 'certificateHold', 'certificateHold']);
  });

  it('a responder frozen for longer than the liveness window is not waited for, and answers the revocation the moment it wakes', async () => {
    const released = await post(`/v1/cas/${ca.name}/revocations?wait=all`, release(ca.good.serial));
    assert.equal(released.status, 200, JSON.stringify(released.json));
    assert.deepEqual(answers(), ['good', 'good', 'good', 'good', 'good'], 'every cache holds "good" again');
    const frozen = nodes[1]!;
    frozen.proc.kill('SIGSTOP');
    try {
      await sleep(LIVENESS_MS + 1000);
      const gone = status().responders.find((x) => x.pid === frozen.proc.pid)!;
      assert.equal(gone.live, false, JSON.stringify(gone));
      const r = await post(`/v1/cas/${ca.name}/revocations?wait=all`, { serial: ca.good.serial, revokedAt: new Date(Date.now() - 60_000).toISOString(), reason: 'keyCompromise' });
      assert.equal(r.status, 200, JSON.stringify(r.json));
      assert.equal(r.json.wait.responders, 3);
      assert.ok(r.json.wait.waitedMs < 1000, String(r.json.wait.waitedMs));
    } finally {
      frozen.proc.kill('SIGCONT');
    }
    // Its cache held "good": the first answer after it wakes must already be the revocation.
    const out = opensslQuery(ca, frozen.url, [ca.good.file], ['-resp_text']);
    assert.match(out, /Response verify OK/);
    assert.match(out, /Reason: keyCompromise/);
    assert.deepEqual(answers(), ['keyCompromise', 'keyCompromise', 'keyCompromise', 'keyCompromise', 'keyCompromise']);
  });
});

describe('cluster status on SQLite', () => {
  it('lists a daemon\'s serving processes, none once it stopped; bad arguments exit 2, an unreachable store 1', async () => {
    const pki = createTestPki([{ name: 'liteca', caKey: 'ec-p256', responderKey: 'ec-p256' }]);
    const config = variantConfig(pki, 'workers', (c) => {
      c.server = { ...c.server, workers: 2 };
    });
    const cli = (args: string[], cfg = config) => runCli([...args, '--config', cfg], childEnv(pki));
    const node = await startResponder(pki, { config });
    try {
      const r = cli(['cluster', 'status', '--json']);
      assert.equal(r.status, 0, r.stderr);
      const s = JSON.parse(r.stdout) as { responders: Listed[]; leases: unknown[] };
      assert.deepEqual(s.responders.map((x) => [x.pid, x.worker, x.live, x.lag]), [[node.proc.pid, 1, true, 0], [node.proc.pid, 2, true, 0]]);
      assert.match(cli(['cluster', 'status']).stdout, /^responders: 2 live, 0 stale \(liveness window 4\.0s; change log head \d+\)$/m);
    } finally {
      assert.equal(await node.stop(), 0, node.output());
    }
    assert.match(cli(['cluster', 'status']).stdout, /^responders: 0 live, 0 stale/m);
    assert.equal(cli(['cluster']).status, 2);
    assert.equal(cli(['cluster', 'status', 'extra']).status, 2);
    const unreachable = variantConfig(pki, 'unreachable', (c) => {
      c.store = { url: 'postgres://nobody@127.0.0.1:1/none' };
    });
    const down = cli(['cluster', 'status'], unreachable);
    assert.equal(down.status, 1);
    assert.match(down.stderr, /store\.url/);
  });
});
