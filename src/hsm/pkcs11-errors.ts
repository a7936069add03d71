// PKCS#11 error codes by name, matched by code (never by message text).
import * as pkcs11js from 'pkcs11js';

const CKR_NAMES = new Map<number, string>(
  Object.entries(pkcs11js)
    .filter(([k, v]) => k.startsWith('CKR_') && typeof v === 'number')
    .map(([k, v]) => [v as number, k]),
);

export function ckrName(code: number): string {
  return CKR_NAMES.get(code) ?? `CKR_0x${code.toString(16).padStart(8, '0')}`;
}

export function pkcs11Code(e: unknown): number | undefined {
  return e instanceof pkcs11js.Pkcs11Error ? e.code : undefined;
}

/** Short description for messages and logs: the CKR name, never arguments (which may hold a PIN). */
export function describePkcs11Error(e: unknown): string {
  const code = pkcs11Code(e);
  if (code !== undefined) return ckrName(code);
  return e instanceof Error ? e.message : String(e);
}
