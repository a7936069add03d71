// Who a request comes from, for per-client fairness: the peer address, or behind trusted proxies the first
// untrusted hop of X-Forwarded-For, read from the right (the left part is whatever the client wrote).
import { BlockList, isIPv4 } from 'node:net';

export function trustedProxyList(entries: readonly string[]): BlockList {
  const list = new BlockList();
  for (const e of entries) {
    const [addr, bits] = e.split('/');
    const type = isIPv4(addr!) ? 'ipv4' : 'ipv6';
    if (bits === undefined) list.addAddress(addr!, type);
    else list.addSubnet(addr!, Number(bits), type);
  }
  return list;
}

export function clientAddress(peer: string | undefined, forwardedFor: string | undefined, trusted: BlockList): string {
  let current = plainAddress(peer ?? '');
  if (!forwardedFor || !isTrustedProxy(current, trusted)) return current;
  const hops = forwardedFor.split(',').map((h) => plainAddress(h.trim())).filter(Boolean);
  for (let i = hops.length - 1; i >= 0; i--) {
    current = hops[i]!;
    if (!isTrustedProxy(current, trusted)) return current;
  }
  return current;
}

/** An IPv4 peer of a dual-stack listener as plain IPv4 (::ffff:192.0.2.1 is 192.0.2.1). */
export function plainAddress(a: string): string {
  return a.startsWith('::ffff:') && isIPv4(a.slice(7)) ? a.slice(7) : a;
}

export function isTrustedProxy(a: string, list: BlockList): boolean {
  try {
    return list.check(a, isIPv4(a) ? 'ipv4' : 'ipv6');
  } catch {
    return false; // not an IP address at all: never trusted
  }
}
