// Responders on fake clocks of their own (lease tests): time moved in steps for all, some of them paused.
import type { FakeClock } from '../../src/clock';

/** Lets the store's answers and what they start run (a few event-loop turns). */
export async function settle(): Promise<void> {
  for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r));
}

/**
 * Moves every responder's time by `ms` in 100 ms steps, letting the store answer. A paused responder's clocks move
 * too, but none of its timers fire (they fire, late, once it runs again), as with SIGSTOP or a long GC pause.
 */
export async function advanceAll(responders: readonly { clock: FakeClock }[], ms: number, paused: readonly { clock: FakeClock }[] = []): Promise<void> {
  for (let done = 0; done < ms; done += 100) {
    const step = Math.min(100, ms - done);
    for (const r of responders) {
      if (paused.includes(r)) r.clock.jump(step);
      else r.clock.advance(step);
    }
    await settle();
  }
}
