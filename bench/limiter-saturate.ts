// The signing limiter alone on the real clock under saturating demand: callers that ask again as soon as they
// are answered, hold each permit a few ms (as a signature does) and retry a refusal after 1 ms. No HTTP, no HSM:
// what the limiter grants when demand never runs out. Prints {"perSecond": N}.
// usage: node limiter-saturate.js '<json {ratePerSecond, burst, maxConcurrent, maxQueue, queueTimeoutMs, clientShare, workers, holdMs, seconds}>'
import { systemClock } from '../src/clock';
import { LimiterOptions, SigningLimiter } from '../src/hsm/signing-limiter';

/** The limiter's own options (without name and clock), and the load: callers, how long each holds a permit, for how long. */
type Spec = Omit<LimiterOptions, 'name' | 'clock' | 'reserveLiveSlot'> & { workers: number; holdMs: number; seconds: number };

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function main(): Promise<void> {
  const { workers, holdMs, seconds, ...o } = JSON.parse(process.argv[2]!) as Spec;
  const limiter = new SigningLimiter({ name: 'bench', ...o, clock: systemClock });
  let granted = 0;
  let stop = false;
  const caller = async () => {
    while (!stop) {
      try {
        const permit = await limiter.acquire({ lane: 'live', client: '127.0.0.1' });
        granted++;
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
  await sleep(seconds * 1000);
  const perSecond = (granted - g0) / ((performance.now() - t0) / 1000);
  stop = true;
  await Promise.all(callers);
  process.stdout.write(JSON.stringify({ perSecond }));
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
