// Runs a job every interval on the injected clock; a run never overlaps the previous one.
import type { Clock, Timer } from '../clock';

export interface Schedule {
  stop(): void;
}

/** Runs `job` every intervalMs (measured from the end of the last run), first after firstAfterMs. */
export function every(clock: Clock, intervalMs: number, job: () => Promise<unknown>, onError: (e: Error) => void, firstAfterMs = intervalMs): Schedule {
  let timer: Timer | undefined;
  let stopped = false;
  const tick = () => {
    job()
      .catch((e: Error) => onError(e))
      .finally(() => {
        if (!stopped) timer = clock.setTimer(tick, intervalMs);
      });
  };
  timer = clock.setTimer(tick, firstAfterMs);
  return {
    stop() {
      stopped = true;
      timer?.cancel();
    },
  };
}
