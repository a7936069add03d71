// The request path as the daemon wires it (cli/serving.ts), for unit tests on a fake clock: issuer filter ->
// nonce signing -> memory cache -> stored responses -> single flight -> live signer, with the change follower and
// the producer.
import type { Clock } from '../../src/clock';
import { AuthorityIndex, type Authority } from '../../src/source/authority';
import { ChangeFollower } from '../../src/source/change-follower';
import { IssuerFilter } from '../../src/source/issuer-filter';
import { LiveSigner } from '../../src/source/live-signer';
import { MemoryCache } from '../../src/source/memory-cache';
import { NonceSigning } from '../../src/source/nonce-signing';
import { ResponseProducer } from '../../src/source/response-producer';
import { SingleFlight } from '../../src/source/single-flight';
import { StoredResponses } from '../../src/source/stored-responses';
import type { Store } from '../../src/store/response-store';

export const quiet = { warn: () => undefined, info: () => undefined };

export interface TestChain {
  producer: ResponseProducer;
  follower: ChangeFollower;
  cache: MemoryCache | undefined;
  nonces: NonceSigning;
  chain: IssuerFilter;
}

export function buildChain(
  store: Store, authority: Authority, clock: Clock,
  o: { cache?: boolean; maxStalenessMs?: number; log?: { warn: (...a: any[]) => void; info: (...a: any[]) => void } } = {},
): TestChain {
  const producer = new ResponseProducer(clock, store);
  const follower = new ChangeFollower(store, new Map([[authority.name, authority]]), producer, clock, o.log ?? quiet, { maxStalenessMs: o.maxStalenessMs ?? 2000 });
  const live = new LiveSigner(store, clock);
  const stored = new StoredResponses(store, producer, new SingleFlight(live, follower), clock, quiet, follower);
  const cache = o.cache === false ? undefined : new MemoryCache(stored, clock, { maxEntries: 100, maxBytes: 1 << 20 }, follower);
  if (cache) follower.keep(cache);
  const nonces = new NonceSigning(cache ?? stored, live);
  return { producer, follower, cache, nonces, chain: new IssuerFilter(new AuthorityIndex([authority]), nonces) };
}
