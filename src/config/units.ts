// Parses the human units used in config files: durations ("90s", "30m", "12h", "7d") and sizes ("64KiB").

const DURATION_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };
const SIZE_BYTES: Record<string, number> = { B: 1, KiB: 1024, MiB: 1024 ** 2, GiB: 1024 ** 3, KB: 1000, MB: 1000 ** 2, GB: 1000 ** 3 };

/** Milliseconds for "<number><unit>", e.g. "1d12h" is not allowed: one unit per value keeps configs readable. */
export function parseDuration(text: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)\s*$/.exec(text);
  if (!m) throw new RangeError(`invalid duration "${text}" (use e.g. 90s, 30m, 12h, 7d)`);
  return Math.round(Number(m[1]) * DURATION_MS[m[2]!]!);
}

export function parseSize(text: string | number): number {
  if (typeof text === 'number') return text;
  const m = /^\s*(\d+)\s*(B|KiB|MiB|GiB|KB|MB|GB)?\s*$/.exec(text);
  if (!m) throw new RangeError(`invalid size "${text}" (use e.g. 65536, 64KiB, 1MiB)`);
  return Number(m[1]) * SIZE_BYTES[m[2] ?? 'B']!;
}
