// Fuzz target: the publishing API's event parser (publish/events.ts). JSON bodies of issuance and revocation
// events with fields removed, added, retyped and replaced. Each parser refuses with a 400 PublishError naming a
// field, or returns an event with a canonical serial and valid dates.
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { parseIssuance, parseRevocation, serialParam } from '../../../src/publish/events';
import { PublishError } from '../../../src/publish/errors';
import type { FuzzTarget } from '../fuzz-target';
import { byteEdit, Json, mutated, valueEdit } from '../mutate';
import { assertCanonicalSerial, assertValidDate } from './invariants';

const NOW = new Date('2026-12-01T00:00:00Z');

const SCALARS: Json[] = [
  '1a2b', '0x1A2B', '1a:2b', '', ' ', '-1', 'zz', '0', '00', 'f'.repeat(80), 'f'.repeat(81), '1e3',
  '2026-11-20T10:00:00Z', '2026-11-20T10:00:00', '2026-11-20', '2026-02-29T00:00:00Z', '0000-01-01T00:00:00Z',
  '9999-12-31T23:59:59+23:59', '2026-11-20T10:00:00.123456789Z', '2126-01-01T00:00:00Z', '2026-12-01T00:00:59Z',
  'keyCompromise', 'removeFromCRL', 'unspecified', 'aACompromise', 'KEYCOMPROMISE', 'constructor', '__proto__', 'toString',
  '-----BEGIN CERTIFICATE-----\nMAA=\n-----END CERTIFICATE-----\n', 'x'.repeat(129), 0, -1, 1e308, true, false, null, [], {},
];
const KEYS = ['serial', 'certificate', 'notAfter', 'profile', 'revokedAt', 'reason', '__proto__', 'constructor'];

function checkEvent(text: string): void {
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    return; // not JSON: express.json() refuses it before the parser
  }
  const issuance = refused(() => parseIssuance(body));
  if (issuance) {
    if ('serial' in issuance) assertCanonicalSerial(issuance.serial);
    else assert.ok(issuance.certificate.der.length > 0);
    if ('notAfter' in issuance) assertValidDate(issuance.notAfter, 'notAfter');
  }
  const revocation = refused(() => parseRevocation(body, NOW));
  if (revocation) {
    assertCanonicalSerial(revocation.serial);
    assertValidDate(revocation.revokedAt, 'revokedAt');
    assert.ok(revocation.revokedAt.getTime() <= NOW.getTime() + 60_000, 'revokedAt in the future');
  }
  const serial = typeof body === 'object' && body ? (body as { serial?: unknown }).serial : undefined;
  if (typeof serial === 'string') {
    const s = refused(() => serialParam(serial));
    if (s !== undefined) assertCanonicalSerial(s);
  }
}

/** The parser's result, or undefined for a refusal, which must be a 400 naming the field. */
function refused<T>(parse: () => T): T | undefined {
  try {
    return parse();
  } catch (e) {
    if (!(e instanceof PublishError)) throw new Error(`threw ${(e as Error)?.name} instead of PublishError`, { cause: e });
    assert.equal(e.status, 400);
    assert.ok(typeof e.field === 'string' && e.message.length > 0, 'a refusal names the field and says why');
    return undefined;
  }
}

export const publishEventTarget: FuzzTarget = {
  name: 'publish-event',
  ext: 'json',
  arbitrary: (corpus) => {
    // Findings kept in the corpus need not be JSON: they seed the byte edits only.
    const values = corpus.flatMap((c) => {
      try {
        return [JSON.parse(c.toString('utf8')) as Json];
      } catch {
        return [];
      }
    });
    return fc.oneof(
      { arbitrary: mutated(values, valueEdit(SCALARS, KEYS)).map((v) => Buffer.from(JSON.stringify(v))), weight: 4 },
      { arbitrary: mutated(corpus, byteEdit), weight: 1 },
    );
  },
  check: (input) => checkEvent(input.toString('utf8')),
};
