// A uniform random sample of fixed size from a stream of unknown length (Vitter's algorithm R).

/**
 * Keeps at most `capacity` items, each item offered having the same chance to be kept: samples are spread
 * over a whole run without knowing in advance how many requests it will make.
 */
export class Reservoir<T> {
  private readonly kept: T[] = [];
  private offered = 0;

  constructor(
    private readonly capacity: number,
    private readonly random: () => number = Math.random,
  ) {}

  offer(item: T): void {
    this.offered++;
    if (this.kept.length < this.capacity) {
      this.kept.push(item);
      return;
    }
    const j = Math.floor(this.random() * this.offered);
    if (j < this.capacity) this.kept[j] = item;
  }

  /** How many items were offered in all. */
  get seen(): number {
    return this.offered;
  }

  items(): readonly T[] {
    return this.kept;
  }
}
