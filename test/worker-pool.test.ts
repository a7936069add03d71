// The primary's pool of serving processes (real node:cluster processes, a minimal serving process): they share one
// port, answer a broadcast, one killed with SIGKILL is logged and started again in its slot while the other keeps
// answering, and stop() drains them all.
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import pino from 'pino';
import { systemClock } from '../src/clock';
import { WorkerPool } from '../src/cluster/worker-pool';

/** One request over a connection of its own: the pid of the process that answered. */
function pidAnswering(port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, agent: false, timeout: 5_000 }, (res) => {
      let body = '';
      res.on('data', (d) => (body += d));
      res.on('end', () => resolve(Number(body)));
    });
    req.on('error', reject);
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.end();
  });
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe('WorkerPool', () => {
  const lines: Record<string, unknown>[] = [];
  const logger = pino({ level: 'debug' }, new Writable({ write: (chunk, _e, done) => (lines.push(JSON.parse(String(chunk))), done()) }));
  const restarted: number[] = [];
  let pool: WorkerPool;
  let port: number;

  before(async () => {
    pool = new WorkerPool({
      exec: join(__dirname, 'support/pool-worker-child.js'), size: 2, clock: systemClock, logger, handlers: {},
      initFor: () => ({ generation: 1, port: 0 }),
      onRestart: (slot) => restarted.push(slot),
    });
    port = await pool.start();
  });
  after(async () => {
    const pids = (await pool.broadcast<{ pid: number }>('whoami', null, 5_000)).map((w) => w.value?.pid);
    assert.equal(pids.filter((p) => p).length, 2);
    await pool.stop(5_000);
    for (const pid of pids) assert.ok(!alive(pid!), `process ${pid} still runs after stop()`);
    assert.ok(lines.every((l) => l.msg !== 'serving processes still running after the shutdown timeout: killed'), 'drained, not killed');
  });

  it('starts every slot on one shared port, and each answers a broadcast', async () => {
    assert.ok(port > 0);
    assert.equal(pool.listening().length, 2);
    const who = await pool.broadcast<{ slot: number; pid: number }>('whoami', null, 5_000);
    assert.deepEqual(who.map((w) => w.value!.slot).sort(), [1, 2]);
    const answering = new Set<number>();
    for (let i = 0; i < 8; i++) answering.add(await pidAnswering(port));
    assert.deepEqual([...answering].sort(), who.map((w) => w.value!.pid).sort(), 'connections are handed to both');
  });

  it('starts a killed process again in its slot and logs it; the other keeps answering', async () => {
    const who = await pool.broadcast<{ slot: number; pid: number }>('whoami', null, 5_000);
    const victim = who.find((w) => w.value!.slot === 1)!.value!.pid;
    const other = who.find((w) => w.value!.slot === 2)!.value!.pid;
    process.kill(victim, 'SIGKILL');
    const until = async (done: () => boolean) => {
      const deadline = Date.now() + 15_000;
      while (!done() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    };
    // Once the primary knows (a connection handed over just as the process died is lost with it), connections made
    // meanwhile reach the other process.
    await until(() => lines.some((l) => l.msg?.toString().startsWith('serving process exited')));
    if (pool.listening().length < 2) assert.equal(await pidAnswering(port), other);
    await until(() => restarted.length === 1 && pool.listening().length === 2);
    const now = await pool.broadcast<{ slot: number; pid: number }>('whoami', null, 5_000);
    const replacement = now.find((w) => w.value!.slot === 1)!.value!.pid;
    assert.notEqual(replacement, victim);
    assert.deepEqual(restarted, [1]);
    const exit = lines.find((l) => l.msg?.toString().startsWith('serving process exited'));
    assert.deepEqual({ worker: exit?.worker, pid: exit?.pid, signal: exit?.signal, level: exit?.level }, { worker: 1, pid: victim, signal: 'SIGKILL', level: 50 });
    assert.ok(lines.some((l) => l.msg === 'serving process restarted' && l.worker === 1));
  });
});
