// The signing limiter alone on the real clock under saturating demand: callers that ask again as soon as they
// are answered, hold each permit a few ms (as a signature does) and retry a refusal after 1 ms. No HTTP, no HSM:
// what the limiter grants when demand never runs out. Prints {"perSecond": N, "maxInSecond": M}: permits per
// second, and the most granted in any window of 1 s (the ceiling allows rate + burst).
// usage: node limiter-saturate.js '<json {ratePerSecond, burst, maxConcurrent, maxQueue, queueTimeoutMs, clientShare, workers, holdMs, seconds}>'
import { systemClock } from '../src/clock';
import { LimiterOptions, SigningLimiter } from '../src/signing/signing-limiter';

/** The limiter's own options (without name and clock), and the load: callers, how long each holds a permit, for how long. */
type Spec = Omit<LimiterOptions, 'name' | 'clock' | 'reserveLiveSlot'> & { workers: number; holdMs: number; seconds: number };

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function main(): Promise<void> {
  const { workers, holdMs, seconds, ...o } = JSON.parse(process.argv[2]!) as Spec;
  const limiter = new SigningLimiter({ name: 'bench', ...o, clock: systemClock });
  let granted = 0;
  let stop = false;
  let measuring = false;
  const times: number[] = [];
  const caller = async () => {
    while (!stop) {
      try {
        const permit = await limiter.acquire({ lane: 'live', client: '127.0.0.1' });
        granted++;
        if (measuring) times.push(performance.now());
        await sleep(holdMs);
        permit.release();
      } catch {
        await sleep(1);
      }
    }
  };
  const callers = Array.from({ length: workers }, caller);
  await sleep(1000); // past the initial burst
  const g0 = granted;
  const t0 = performance.now();
  measuring = true;
  await sleep(seconds * 1000);
  const perSecond = (granted - g0) / ((performance.now() - t0) / 1000);
  measuring = false;
  stop = true;
  await Promise.all(callers);
  process.stdout.write(JSON.stringify({ perSecond, maxInSecond: mostWithin(times, 1000) }));
}

/** Most entries of the sorted `times` within any `ms` window. */
function mostWithin(times: readonly number[], ms: number): number {
  let most = 0;
  for (let i = 0, j = 0; i < times.length; i++) {
    while (j < times.length && times[j]! <= times[i]! + ms) j++;
    most = Math.max(most, j - i);
  }
  return most;
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
