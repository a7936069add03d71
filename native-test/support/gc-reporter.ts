// Loaded into a daemon under test with NODE_OPTIONS="--expose-gc --require …": every second, collect garbage
// and print the memory still in use, so a test can tell a leak from a heap that has not been collected yet.
const collect = (globalThis as { gc?: () => void }).gc;
if (collect) {
  setInterval(() => {
    collect();
    const m = process.memoryUsage();
    process.stderr.write(`GC-REPORT ${JSON.stringify({ pid: process.pid, heapUsedMiB: m.heapUsed / 2 ** 20, rssMiB: m.rss / 2 ** 20 })}\n`);
  }, 1000).unref();
}

export {};
