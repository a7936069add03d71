// Canonical text form of certificate serial numbers: lowercase hex without leading zeros.

/** Canonical hex of a DER INTEGER's content octets (two's complement; negative serials keep a '-'). */
export function serialFromIntegerBytes(bytes: Uint8Array): string {
  if (bytes.length === 0) throw new RangeError('empty INTEGER');
  // Positive (every serial RFC 5280 allows): the hex without leading zeros, no BigInt on the hot path.
  if (!(bytes[0]! & 0x80)) {
    const hex = (Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes)).toString('hex');
    let i = 0;
    while (i < hex.length - 1 && hex.charCodeAt(i) === 48) i++;
    return i === 0 ? hex : hex.slice(i);
  }
  let value = BigInt('0x' + Buffer.from(bytes).toString('hex'));
  if (bytes[0]! & 0x80) value -= 1n << BigInt(bytes.length * 8);
  return value < 0n ? '-' + (-value).toString(16) : value.toString(16);
}

/**
 * Parses a serial typed by an operator or read from index.txt: hex, optionally with a 0x prefix
 * or colon separators ("01:a2:ff"). Throws a RangeError naming the bad input.
 */
export function parseSerial(text: string): string {
  const cleaned = text.trim().replace(/^0x/i, '').replace(/:/g, '');
  if (!/^[0-9a-fA-F]+$/.test(cleaned) || cleaned.length > 80) {
    throw new RangeError(`malformed serial "${text}": expected hex digits (e.g. 1A2B or 1a:2b)`);
  }
  return BigInt('0x' + cleaned).toString(16);
}
