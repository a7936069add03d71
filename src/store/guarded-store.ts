// The store decorator that keeps outages to themselves (store-outage.ts): every call goes through the outage's
// state, so the stores' own code knows nothing of it.
import type { Store } from './response-store';
import { StoreOutage, StoreOutageOptions } from './store-outage';
import { connectionFailure } from './store-unavailable';

/** Members that never reach a connection, or must always pass (close). */
const UNGUARDED = new Set<PropertyKey>(['close', 'constructor']);

/** Wraps `store` (left untouched) so that its outages are handled by a StoreOutage; `outage` says how it stands. */
export function guardStore<T extends Store>(store: T, o: StoreOutageOptions): { store: T; outage: StoreOutage } {
  const outage = new StoreOutage(() => store.lastChange(), o);
  const wrapped = new Map<PropertyKey, unknown>();
  const guarded = new Proxy(store, {
    get(target, prop, receiver) {
      const value = Reflect.get(target, prop, receiver) as unknown;
      if (typeof value !== 'function') return value;
      let fn = wrapped.get(prop);
      if (!fn) {
        const method = value as (...args: unknown[]) => unknown;
        if (prop === 'close') {
          fn = (...args: unknown[]) => {
            outage.close();
            return method.apply(target, args);
          };
        } else if (prop === 'mayHaveChanged') {
          // SQLite asks its file on every hit (data_version): one that fails under it is an outage, and "may have
          // changed" keeps memory from answering until the change log can be read.
          fn = () => {
            try {
              return method.call(target);
            } catch (e) {
              if (connectionFailure(outage.failedNow(e))) return true;
              throw e;
            }
          };
        } else if (prop === 'getResponseNow') {
          // SQLite's read in the tick a request arrived: while the store is down, or when this read finds it gone,
          // nothing is served from it here and the request goes the asynchronous way, which the guard refuses.
          fn = (...args: unknown[]) => {
            if (!outage.up) return undefined;
            try {
              return method.apply(target, args);
            } catch (e) {
              if (connectionFailure(outage.failedNow(e))) return undefined;
              throw e;
            }
          };
        } else if (prop === 'watch') {
          fn = (listener: () => void) => method.call(target, () => outage.changed(listener));
        } else if (UNGUARDED.has(prop)) {
          fn = method.bind(target);
        } else {
          fn = (...args: unknown[]) => outage.run(() => method.apply(target, args));
        }
        wrapped.set(prop, fn);
      }
      return fn;
    },
  });
  return { store: guarded, outage };
}
