// What machine a benchmark ran on, recorded next to its figures.
import { execFileSync } from 'node:child_process';
import { cpus, totalmem } from 'node:os';

export function machine(): Record<string, string | number> {
  const pkg = (name: string) => {
    try {
      return execFileSync('dpkg-query', ['-W', '-f=${Version}', name], { encoding: 'utf8' });
    } catch {
      return 'unknown';
    }
  };
  return {
    cpu: cpus()[0]?.model ?? 'unknown',
    cores: cpus().length,
    memoryGiB: Math.round(totalmem() / 2 ** 30),
    node: process.version,
    softhsm2: pkg('softhsm2'),
    openssl: pkg('openssl'),
    date: new Date().toISOString(),
  };
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}
