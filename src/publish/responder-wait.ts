// `?wait=all`: a status write is answered once every live responder has applied it (its heartbeat row's applied_seq
// reached the write's seq), or at the timeout, naming those that had not. One poll of the responders table, every
// 50 ms while anything waits, serves every waiting request. README "Consistent revocation across responders".
import type { Clock, Timer } from '../clock';
import type { ResponderRow, ResponderStore } from '../store/responder-store';

const POLL_MS = 50;

/** A responder that had not applied the change when the wait ended. */
export interface Laggard {
  id: string;
  host: string;
  pid: number;
  worker: number;
  appliedSeq: number;
  heartbeatAgeMs: number;
  /** Its heartbeat was still within the liveness window at the end (false: it stopped beating during the wait). */
  live: boolean;
}

export interface WaitOutcome {
  /** The change waited for (the record's version). */
  seq: number;
  /** Every responder waited for applied it. */
  applied: boolean;
  /** Responders waited for: live at some read during the wait. */
  responders: number;
  waitedMs: number;
  /** Those that had not applied it (empty when applied). */
  notApplied: Laggard[];
  /** The responders could not be read at the end (the store failed). */
  error?: string;
}

export interface ResponderWaitOptions {
  store: Pick<ResponderStore, 'responders'>;
  clock: Clock;
  /** A row whose heartbeat is older than this is a responder gone (cluster/heartbeat.ts livenessWindowMs). */
  livenessMs: number;
  /** cluster.waitTimeout. */
  timeoutMs: number;
  pollMs?: number;
}

interface Waiting {
  seq: number;
  startedMs: number;
  /** Only reads begun after the wait began count: an earlier one may predate a responder that started since. */
  afterRead: number;
  /** A read that counts has come back. */
  counted: boolean;
  /** Responders live at some read of this wait, by id, as last read. */
  seen: Map<string, ResponderRow>;
  error?: string;
  deadline: Timer;
  resolve(o: WaitOutcome): void;
}

export class ResponderWait {
  private readonly waits = new Set<Waiting>();
  private readsStarted = 0;
  private reading = false;
  private timer: Timer | undefined;

  constructor(private readonly o: ResponderWaitOptions) {}

  /** Resolves when every responder waited for has applied `seq`, or at the timeout (a store that hangs too); never rejects. */
  untilApplied(seq: number): Promise<WaitOutcome> {
    return new Promise((resolve) => {
      const w: Waiting = {
        seq,
        startedMs: this.o.clock.monotonicMs(),
        afterRead: this.readsStarted,
        counted: false,
        seen: new Map(),
        resolve,
        deadline: this.o.clock.setTimer(() => this.finish(w), this.o.timeoutMs),
      };
      this.waits.add(w);
      if (!this.reading) {
        this.timer?.cancel();
        void this.read();
      }
    });
  }

  private async read(): Promise<void> {
    this.timer = undefined;
    this.reading = true;
    const read = ++this.readsStarted;
    let rows: ResponderRow[] | undefined;
    let error: string | undefined;
    try {
      rows = await this.o.store.responders();
    } catch (e) {
      error = (e as Error).message;
    }
    this.reading = false;
    for (const w of this.waits) {
      if (read <= w.afterRead) continue;
      w.error = error;
      if (!rows) continue;
      this.update(w, rows);
      w.counted = true;
      if (laggards(w).length === 0) this.finish(w);
    }
    if (this.waits.size === 0) return;
    // A wait that began during this read has not been looked at yet: at once.
    const unread = [...this.waits].some((w) => w.afterRead >= read);
    this.timer = this.o.clock.setTimer(() => void this.read(), unread ? 0 : (this.o.pollMs ?? POLL_MS));
  }

  /**
   * A live row joins the wait (a responder that started meanwhile too) and stays in it when its heartbeat goes stale
   * (it may still answer once it wakes: the timeout names it); a row that is gone was removed by a clean shutdown.
   */
  private update(w: Waiting, rows: ResponderRow[]): void {
    const ids = new Set(rows.map((r) => r.id));
    for (const id of w.seen.keys()) if (!ids.has(id)) w.seen.delete(id);
    for (const r of rows) if (r.ageMs <= this.o.livenessMs || w.seen.has(r.id)) w.seen.set(r.id, r);
  }

  private finish(w: Waiting): void {
    if (!this.waits.delete(w)) return;
    w.deadline.cancel();
    if (this.waits.size === 0) {
      this.timer?.cancel();
      this.timer = undefined;
    }
    const late = laggards(w);
    const error = w.error ?? (w.counted ? undefined : 'the responders could not be read within the timeout');
    w.resolve({
      seq: w.seq,
      applied: late.length === 0 && !error,
      responders: w.seen.size,
      waitedMs: Math.round(this.o.clock.monotonicMs() - w.startedMs),
      notApplied: late.map((r) => ({
        id: r.id,
        host: r.host,
        pid: r.pid,
        worker: r.worker,
        appliedSeq: r.appliedSeq,
        heartbeatAgeMs: Math.round(r.ageMs),
        live: r.ageMs <= this.o.livenessMs,
      })),
      ...(error ? { error } : {}),
    });
  }
}

function laggards(w: Waiting): ResponderRow[] {
  return [...w.seen.values()].filter((r) => r.appliedSeq < w.seq).sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
}
