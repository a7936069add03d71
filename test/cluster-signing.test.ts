// Signing through the primary (server.workers > 1) over the real IPC channel: a child process plays the primary
// (SignService, a software key behind a SigningLimiter); this process signs with RemoteSigner as a serving process
// does. Signatures verify; refusals keep their type and their OCSP status; requests of one turn leave together;
// a primary that dies is tryLater, never a hang.
import assert from 'node:assert/strict';
import { ChildProcess, fork } from 'node:child_process';
import { createPublicKey, verify } from 'node:crypto';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { systemClock } from '../src/clock';
import { Channel, ChannelClosedError, IpcEndpoint } from '../src/cluster/channel';
import { RemoteSigner } from '../src/cluster/remote-signer';
import { SignerUnavailableError } from '../src/hsm/faults';
import { algorithmForPublicKey } from '../src/signing/signer';
import { LimiterRejectedError, PermitNotFreeError } from '../src/signing/signing-limiter';
import { statusForError } from '../src/http/ocsp-status';

interface Setup {
  key: string;
  roomyKey: string;
  signerId: string;
  publicKeyPem: string;
}

function startPrimary(): { child: ChildProcess; channel: Channel; exited: Promise<void> } {
  const child = fork(join(__dirname, 'support/sign-primary-child.js'), [], { serialization: 'advanced', stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const channel = new Channel(child as unknown as IpcEndpoint, {}, systemClock);
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  // As a serving process does (cli/worker.ts): the channel closes with the primary.
  child.once('disconnect', () => channel.close(new ChannelClosedError('the primary process is gone')));
  return { child, channel, exited };
}

const outcome = (p: Promise<Buffer>) => p.then((sig) => ({ sig }), (error: Error) => ({ error }));

describe('signing through the primary process', () => {
  let primary: ReturnType<typeof startPrimary>;
  let setup: Setup;
  let signer: (over?: Partial<{ generation: number; signerId: string; key: string }>) => RemoteSigner;

  before(async () => {
    primary = startPrimary();
    setup = await primary.channel.request<Setup>('setup', null, 30_000);
    const publicKey = createPublicKey(setup.publicKeyPem);
    signer = (over = {}) =>
      new RemoteSigner(primary.channel, { generation: 1, key: setup.key, signerId: setup.signerId, ...over }, algorithmForPublicKey(publicKey), systemClock, 5_000);
  });
  after(async () => {
    primary.child.kill('SIGKILL');
    await primary.exited;
  });

  it('returns signatures made with the primary\'s key, every request of one turn in one message', async () => {
    const before = await primary.channel.request<{ messages: number; signed: number }>('stats', null, 5_000);
    const data = Array.from({ length: 40 }, (_, i) => Buffer.from(`to be signed ${i}`));
    const s = signer({ key: setup.roomyKey });
    const sigs = await Promise.all(data.map((d) => s.sign(d, { lane: 'live', client: '127.0.0.1', deadlineMs: systemClock.monotonicMs() + 5_000 })));
    const publicKey = createPublicKey(setup.publicKeyPem);
    sigs.forEach((sig, i) => assert.ok(verify('sha256', data[i]!, publicKey, sig), `signature ${i} verifies`));
    const stats = await primary.channel.request<{ messages: number; signed: number }>('stats', null, 5_000);
    assert.equal(stats.signed - before.signed, 40);
    // 40 requests, then the stats request: at most a few IPC messages, not one per signature.
    assert.ok(stats.messages - before.messages <= 3, `${stats.messages - before.messages} messages for 40 signatures`);
  });

  it('hands the limiter\'s refusals over with their reason: tryLater, as in one process', async () => {
    await primary.channel.request('hold', null, 5_000);
    const s = signer();
    const ctx = { lane: 'live' as const, client: '127.0.0.1', deadlineMs: systemClock.monotonicMs() + 5_000 };
    const first = outcome(s.sign(Buffer.from('a'), ctx)); // holds the one concurrent slot (held at the signer)
    await primary.channel.request('until', 1, 15_000);
    const second = outcome(s.sign(Buffer.from('b'), ctx)); // the queue's one place
    const third = await outcome(s.sign(Buffer.from('c'), ctx)); // refused on arrival: the queue is full
    assert.ok('error' in third && third.error instanceof LimiterRejectedError, `refused: ${JSON.stringify(third)}`);
    assert.equal((third.error as LimiterRejectedError).reason, 'queue_full');
    assert.equal(statusForError(third.error), 'tryLater');
    await primary.channel.request('release', null, 5_000);
    assert.ok('sig' in (await first) && 'sig' in (await second), 'the two admitted requests were signed');
    const stats = await primary.channel.request<{ inFlight: number }>('stats', null, 5_000);
    assert.equal(stats.inFlight, 0, 'every permit was released');
  });

  it('a signature that may not wait (a nonce signed when idle) is made while a permit is free, refused at once when none is', async () => {
    const s = signer();
    const ctx = { lane: 'live' as const, client: '127.0.0.1', deadlineMs: systemClock.monotonicMs() + 5_000 };
    assert.ok('sig' in (await outcome(s.sign(Buffer.from('idle'), { ...ctx, immediate: true }))), 'idle: signed');
    await primary.channel.request('hold', null, 5_000);
    const first = outcome(s.sign(Buffer.from('a'), ctx)); // holds the one concurrent slot
    await primary.channel.request('until', 1, 15_000);
    const busy = await outcome(s.sign(Buffer.from('b'), { ...ctx, immediate: true }));
    assert.ok('error' in busy && busy.error instanceof PermitNotFreeError, `refused at once, its type kept: ${JSON.stringify(busy)}`);
    await primary.channel.request('release', null, 5_000);
    assert.ok('sig' in (await first));
  });

  it('refuses a configuration generation it no longer signs for, and another signer certificate: tryLater', async () => {
    for (const over of [{ generation: 7 }, { signerId: '00'.repeat(32) }]) {
      const r = await outcome(signer(over).sign(Buffer.from('x'), { lane: 'live' }));
      assert.ok('error' in r && r.error instanceof SignerUnavailableError, JSON.stringify(over));
      assert.equal(statusForError(r.error), 'tryLater');
    }
  });

  it('answers tryLater at once when the primary dies with signatures pending, and for every later one', async () => {
    await primary.channel.request('hold', null, 5_000);
    const s = signer();
    const pending = outcome(s.sign(Buffer.from('held'), { lane: 'live', deadlineMs: systemClock.monotonicMs() + 60_000 }));
    await primary.channel.request('until', 1, 15_000);
    primary.child.kill('SIGKILL');
    await primary.exited;
    const r = await pending;
    assert.ok('error' in r && r.error instanceof SignerUnavailableError, JSON.stringify(r));
    assert.equal(statusForError(r.error), 'tryLater');
    const later = await outcome(s.sign(Buffer.from('later'), { lane: 'live' }));
    assert.ok('error' in later && statusForError(later.error) === 'tryLater');
  });
});
