// Saturating demand on signing limiters with a fake clock: callers that ask again as soon as they are answered,
// and the bounds a token bucket promises (at most burst + rate × t permits in any window t).
import { Clock, FakeClock, Timer } from '../../src/clock';
import type { Permit } from '../../src/signing/signing-limiter';

/** Settles pending promise callbacks. */
export const tick = () => new Promise((r) => setImmediate(r));

/** A fake clock that counts the timers armed on it: a limiter that polls shows up here. */
export class CountingClock extends FakeClock {
  armed = 0;
  override setTimer(fn: () => void, ms: number): Timer {
    this.armed++;
    return super.setTimer(fn, ms);
  }
}

/**
 * A clock whose timers fire only at multiples of `stepMs`, as when the event loop gets the CPU only every
 * `stepMs` (1 ms: Node's whole-millisecond timers; tens of ms: a daemon starved of CPU).
 */
export function steppedClock(stepMs: number) {
  const fake = new FakeClock();
  const clock: Clock = {
    now: () => fake.now(),
    monotonicMs: () => fake.monotonicMs(),
    setTimer: (fn, ms) => {
      const now = fake.monotonicMs();
      return fake.setTimer(fn, Math.ceil((now + Math.max(ms, 0)) / stepMs) * stepMs - now);
    },
  };
  return { clock, fake };
}

/** One kind of caller: `workers` of them each ask with `acquire`, hold the permit `holdMs`, and ask again. */
export interface Demand {
  acquire: () => Promise<Permit>;
  workers: number;
  holdMs?: number;
  /** When each permit was granted (filled in by `saturate`). */
  grants: number[];
}

/**
 * Runs the demands for `seconds` on a stepped clock; a refusal is retried 1 ms later (as the native test's load
 * generator does). Grants after the end are dropped.
 */
export async function saturate(clock: Clock, fake: FakeClock, demands: Demand[], { stepMs, seconds }: { stepMs: number; seconds: number }): Promise<void> {
  let stopped = false;
  for (const d of demands) {
    const ask = (): void => {
      if (stopped) return;
      d.acquire().then(
        (p) => {
          d.grants.push(clock.monotonicMs());
          const done = () => (p.release(), ask());
          if ((d.holdMs ?? 2) > 0) clock.setTimer(done, d.holdMs ?? 2);
          else done();
        },
        () => clock.setTimer(ask, 1),
      );
    };
    for (let i = 0; i < d.workers; i++) ask();
  }
  for (let t = 0; t < seconds * 1000; t += stepMs) {
    await tick();
    fake.advance(stepMs);
  }
  stopped = true;
  await tick();
  for (const d of demands) d.grants.splice(0, d.grants.length, ...d.grants.filter((g) => g < seconds * 1000));
}

/** Most permits granted in any window of `ms` (windows starting at a grant). */
export function maxInWindow(grants: readonly number[], ms: number): number {
  const sorted = [...grants].sort((a, b) => a - b);
  let most = 0;
  for (let i = 0, j = 0; i < sorted.length; i++) {
    while (j < sorted.length && sorted[j]! < sorted[i]! + ms) j++;
    most = Math.max(most, j - i);
  }
  return most;
}

/** The first window (of those tried) in which more than burst + rate × window permits were granted, if any. */
export function overCeiling(grants: readonly number[], ratePerSecond: number, burst: number): string | undefined {
  for (const ms of [1, 10, 100, 250, 1000, 5000]) {
    const n = maxInWindow(grants, ms);
    // A window of `ms` starting at a grant spans less than `ms` of refill: the bound is burst + rate × ms.
    if (n > burst + (ratePerSecond * ms) / 1000) return `${n} permits in ${ms} ms at ${ratePerSecond}/s, burst ${burst}`;
  }
  return undefined;
}
