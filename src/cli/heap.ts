// V8's heap growth bound and pretenuring, set by every process of the daemon at startup (serve and each serving process).
import { setFlagsFromString } from 'node:v8';

// After a full GC V8 lets the heap grow to up to 4x what survived before collecting again. The daemon's heap is
// mostly its bounded cache, so that slack was the largest part of its RSS: 1.5x keeps a 100 MiB cache's daemon
// under 400 MB (bench/memory.ts). V8 reads this flag at each GC, so setting it at startup takes effect; an
// operator's own `node --heap-growing-percent=N` wins.
const HEAP_GROWING_PERCENT = 50;

// V8 allocates objects directly in the old generation at allocation sites where most objects survived
// (pretenuring). Requests waiting on the store or the HSM survive, so node:http's per-request sites got tenured,
// and from then on every request's objects died in the old generation, keeping their young parts alive across
// scavenges: hot-cache POSTs spent 28 MB/s in promotion and two mark-compacts a second (README, Benchmarks).
// The daemon's long-lived objects (cache entries) are promoted by two scavenges anyway.
const NO_PRETENURING = '--no-allocation-site-pretenuring';

export function boundHeapGrowth(): void {
  if (!process.execArgv.some((a) => a.startsWith('--heap-growing-percent') || a.startsWith('--heap_growing_percent'))) {
    setFlagsFromString(`--heap-growing-percent=${HEAP_GROWING_PERCENT}`);
  }
  if (!process.execArgv.some((a) => /^--(no-)?allocation[-_]site[-_]pretenuring/.test(a))) setFlagsFromString(NO_PRETENURING);
}
