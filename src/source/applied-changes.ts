// What this process has applied of the status change feed, per certificate: lets a cache or a shared signature
// refuse an answer that was begun before a change it has since heard of.

/** One piece of work that may end in a cached or shared answer (a cache fill, a signature others may join). */
export interface Fill {
  /** The feed position applied when it began: it saw every change up to here. */
  readonly mark: number;
  end(): void;
}

/** What the request path asks of the change follower. */
export interface ChangeSignal {
  /** Cheap and synchronous: true while changes may be unapplied; answers from memory must wait for apply(). */
  pending(): boolean;
  /** Applies what is pending; rejects when the feed cannot be brought up to date (then nothing is served from memory). */
  apply(): Promise<void>;
  /** Registers work whose result may be cached or shared; `end()` it once that is decided. */
  begin(): Fill;
  /**
   * True when an answer made from the certificate's state at `version` (CertificateRecord.version, or a fill's mark)
   * by `fill` may be outdated: a change to the certificate was applied since, or the record of it is gone.
   */
  outdated(ca: string, serial: string, version: number, fill: Fill): boolean;
}

// Per-certificate records kept at most; past that, fills begun earlier are all treated as outdated.
const MAX_TRACKED = 200_000;

/**
 * The per-certificate records are needed only while a fill that began before them is open: a fill reads the store
 * after it began, so what it made already includes every change applied before its mark.
 */
export class AppliedChanges {
  private seqApplied = 0;
  /** (ca, serial) -> seq of the latest change applied to it; insertion order is seq order. */
  private readonly latest = new Map<string, number>();
  /** Fills begun before this lost their records to the size bound. */
  private floor = 0;
  /** Open fills per mark. */
  private readonly open = new Map<number, number>();

  constructor(start: number) {
    this.seqApplied = start;
  }

  get seq(): number {
    return this.seqApplied;
  }

  /** A change was applied (in seq order). */
  record(ca: string, serial: string, seq: number): void {
    const k = key(ca, serial);
    this.latest.delete(k); // re-inserted at the end, keeping the map in seq order
    if (this.open.size > 0) this.latest.set(k, seq);
    this.seqApplied = seq;
    if (this.latest.size > MAX_TRACKED) this.prune();
  }

  /** Everything up to `seq` is known applied without per-certificate records (a feed gap, or a fresh start). */
  skipTo(seq: number): void {
    this.floor = Math.max(this.floor, seq);
    this.seqApplied = Math.max(this.seqApplied, seq);
  }

  begin(): Fill {
    const mark = this.seqApplied;
    this.open.set(mark, (this.open.get(mark) ?? 0) + 1);
    let ended = false;
    return {
      mark,
      end: () => {
        if (ended) return;
        ended = true;
        const n = this.open.get(mark)! - 1;
        if (n > 0) this.open.set(mark, n);
        else this.open.delete(mark);
        this.prune();
      },
    };
  }

  outdated(ca: string, serial: string, version: number, fill: Fill): boolean {
    if (fill.mark < this.floor) return true;
    return (this.latest.get(key(ca, serial)) ?? 0) > version;
  }

  /** How many per-certificate records are held (metrics, tests). */
  get tracked(): number {
    return this.latest.size;
  }

  private prune(): void {
    let oldest = Infinity;
    for (const m of this.open.keys()) oldest = Math.min(oldest, m);
    for (const [k, seq] of this.latest) {
      if (seq > oldest) break;
      this.latest.delete(k);
    }
    if (this.latest.size > MAX_TRACKED) {
      this.latest.clear();
      this.floor = this.seqApplied;
    }
  }
}

function key(ca: string, serial: string): string {
  return `${ca}\0${serial}`;
}
