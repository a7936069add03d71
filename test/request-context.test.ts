// The per-request context must not tie the request to the old generation (src/http/request-context.ts). Measured
// as the bytes V8's scavenges promote (--trace-gc-nvp, in a child process) while many short-lived requests come
// and go, against an object literal with a getter, which V8 builds as a slow object whose accessor pair is in the
// old generation.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import type { IncomingMessage } from 'node:http';
import { trustedProxyList } from '../src/http/client-address';
import { LiveRequestContext } from '../src/http/request-context';

const REQUESTS = 200_000;
const MB = 1024 * 1024;

/** Bytes promoted by the scavenges of a child making REQUESTS contexts of `kind`. */
function promoted(kind: 'literal' | 'class'): number {
  const child = spawnSync(process.execPath, ['--trace-gc-nvp', join(__dirname, 'support', 'context-promotion-child.js'), kind, String(REQUESTS)], {
    encoding: 'utf8',
    timeout: 60_000,
  });
  assert.equal(child.status, 0, child.stderr);
  assert.match(child.stdout, new RegExp(`^seen=${REQUESTS}$`, 'm'));
  const scavenges = child.stdout.split('\n').filter((l) => / gc=s /.test(l));
  assert.ok(scavenges.length > 0, 'the child scavenged');
  return scavenges.reduce((sum, l) => sum + Number(/ promoted=(\d+)/.exec(l)![1]), 0);
}

describe('LiveRequestContext', () => {
  it('lets a finished request die young: its scavenges promote under 2 MB over 200,000 requests (a getter literal: over 8 MB)', () => {
    const literal = promoted('literal');
    const context = promoted('class');
    assert.ok(literal > 8 * MB, `the measure sees the literal's promotion: ${(literal / MB).toFixed(1)} MB`);
    assert.ok(context < 2 * MB, `promoted ${(context / MB).toFixed(1)} MB`);
  });

  it('is a live-lane context with the deadline given and the client worked out as clientAddress does', () => {
    const req = { headers: { 'x-forwarded-for': '203.0.113.9, 198.51.100.7' }, socket: { remoteAddress: '::ffff:10.0.0.1' } } as unknown as IncomingMessage;
    const ctx = new LiveRequestContext(req, trustedProxyList(['10.0.0.0/8']), 1234);
    assert.deepEqual([ctx.lane, ctx.deadlineMs, ctx.client], ['live', 1234, '198.51.100.7']);
    assert.equal(new LiveRequestContext(req, trustedProxyList([]), 0).client, '10.0.0.1', 'an untrusted peer is the client');
  });
});
