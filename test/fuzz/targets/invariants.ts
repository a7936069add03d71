// Invariants shared by the fuzz targets: what a parser may throw, and what its results must look like.
import assert from 'node:assert/strict';

type ErrorClass = abstract new (...args: never[]) => Error;

/** The parser's result, or undefined when it refused the input with one of its typed errors; anything else is a finding. */
export function refusedWith<T>(types: ErrorClass[], fn: () => T): T | undefined {
  try {
    return fn();
  } catch (e) {
    if (types.some((t) => e instanceof t)) return undefined;
    throw unexpected(e, types);
  }
}

export async function refusedWithAsync<T>(types: ErrorClass[], fn: () => Promise<T>): Promise<T | undefined> {
  try {
    return await fn();
  } catch (e) {
    if (types.some((t) => e instanceof t)) return undefined;
    throw unexpected(e, types);
  }
}

function unexpected(e: unknown, types: ErrorClass[]): Error {
  const what = e instanceof Error ? `${e.name}: ${e.message}` : String(e);
  return new Error(`threw ${what}, not ${types.map((t) => t.name).join(' or ')}`, { cause: e });
}

/** Serials as the store keys them (ocsp/serial.ts): lowercase hex, no leading zero, a minus sign for negatives. */
export function assertCanonicalSerial(serial: string): void {
  assert.match(serial, /^-?(0|[1-9a-f][0-9a-f]*)$/, `serial "${serial}" is not canonical hex`);
}

export function assertValidDate(d: Date | undefined, what: string): void {
  assert.ok(d instanceof Date && !Number.isNaN(d.getTime()), `${what} is not a valid date: ${d}`);
}
