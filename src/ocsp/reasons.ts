// CRLReason codes (RFC 5280 section 5.3.1) and their names as operators and OpenSSL write them.

export const REASONS = {
  unspecified: 0,
  keyCompromise: 1,
  cACompromise: 2,
  affiliationChanged: 3,
  superseded: 4,
  cessationOfOperation: 5,
  certificateHold: 6,
  removeFromCRL: 8,
  privilegeWithdrawn: 9,
  aACompromise: 10,
} as const;

export type ReasonName = keyof typeof REASONS;
export const REASON_NAMES = Object.keys(REASONS) as ReasonName[];

/** Case-insensitive lookup; throws a RangeError listing the valid names. */
export function parseReason(text: string): ReasonName {
  const found = REASON_NAMES.find((n) => n.toLowerCase() === text.trim().toLowerCase());
  if (!found) throw new RangeError(`unknown revocation reason "${text}"; valid: ${REASON_NAMES.join(', ')}`);
  return found;
}
