// V8's heap growth bound, set by every process of the daemon at startup (serve and each serving process).
import { setFlagsFromString } from 'node:v8';

// After a full GC V8 lets the heap grow to up to 4x what survived before collecting again. The daemon's heap is
// mostly its bounded cache, so that slack was the largest part of its RSS: 1.5x keeps a 100 MiB cache's daemon
// under 400 MB (bench/memory.ts). V8 reads this flag at each GC, so setting it at startup takes effect; an
// operator's own `node --heap-growing-percent=N` wins.
const HEAP_GROWING_PERCENT = 50;

export function boundHeapGrowth(): void {
  if (!process.execArgv.some((a) => a.startsWith('--heap-growing-percent') || a.startsWith('--heap_growing_percent'))) {
    setFlagsFromString(`--heap-growing-percent=${HEAP_GROWING_PERCENT}`);
  }
}
