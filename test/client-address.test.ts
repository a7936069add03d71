// Client identity for fairness: peer address, or the first untrusted X-Forwarded-For hop behind trusted proxies.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { clientAddress, trustedProxyList } from '../src/http/client-address';

describe('clientAddress', () => {
  const trusted = trustedProxyList(['10.0.0.0/8', '192.0.2.1', '2001:db8::/32']);

  it('uses the peer address when the peer is not a trusted proxy, whatever X-Forwarded-For says', () => {
    assert.equal(clientAddress('198.51.100.5', '1.2.3.4', trusted), '198.51.100.5');
    assert.equal(clientAddress('::ffff:198.51.100.5', undefined, trusted), '198.51.100.5');
  });

  it('walks X-Forwarded-For from the right past trusted proxies', () => {
    assert.equal(clientAddress('10.1.1.1', '203.0.113.7', trusted), '203.0.113.7');
    assert.equal(clientAddress('10.1.1.1', 'spoofed, 203.0.113.7, 192.0.2.1, 10.2.2.2', trusted), '203.0.113.7');
    assert.equal(clientAddress('2001:db8::1', '2001:db8::2, 2600::1', trusted), '2600::1');
  });

  it('stops at garbage rather than trusting it', () => {
    assert.equal(clientAddress('10.1.1.1', '203.0.113.7, not-an-ip', trusted), 'not-an-ip');
  });

  it('falls back to the leftmost hop when every hop is trusted', () => {
    assert.equal(clientAddress('10.1.1.1', '10.3.3.3, 10.2.2.2', trusted), '10.3.3.3');
  });
});
