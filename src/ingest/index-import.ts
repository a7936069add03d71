// Reads an OpenSSL index.txt for import, all or nothing: shared by `ocsp-hsm import index` and the daemon's index
// follower, so both read and check a file the same way (and write it with one putCertificates).
import { readFileSync, statSync } from 'node:fs';
import { parseOpensslIndex } from '../pki/openssl-index';
import type { CertificateRecord } from '../store/status-store';

/** The file could not be read (missing, no permission), or changed while it was read. */
export class IndexFileError extends Error {
  override name = 'IndexFileError';
  constructor(
    message: string,
    /** `missing`: no such file; `unreadable`: any other read failure; `changing`: written to while read. */
    readonly reason: 'missing' | 'unreadable' | 'changing',
  ) {
    super(message);
  }
}

/** What identifies one version of a file without reading it: a rename (`openssl ca`) or a write changes it. */
export interface FileVersion {
  ino: bigint;
  size: bigint;
  mtimeNs: bigint;
}

/** When the version was written. */
export function mtimeOf(v: FileVersion): Date {
  return new Date(Number(v.mtimeNs / 1_000_000n));
}

export function sameVersion(a: FileVersion | undefined, b: FileVersion | undefined): boolean {
  return a !== undefined && b !== undefined && a.ino === b.ino && a.size === b.size && a.mtimeNs === b.mtimeNs;
}

export function fileVersion(file: string): FileVersion {
  try {
    const s = statSync(file, { bigint: true });
    return { ino: s.ino, size: s.size, mtimeNs: s.mtimeNs };
  } catch (e) {
    throw readError(file, e);
  }
}

/** A whole index.txt, parsed. */
export interface IndexFile {
  records: CertificateRecord[];
  /** The version read: the file did not change while it was read. */
  version: FileVersion;
}

/**
 * Reads and parses the whole file; the caller writes `records` with one putCertificates (one transaction). A file
 * that changed while it was read (written in place by some tool) is refused rather than parsed half old, half new;
 * a bad line throws IndexParseError naming the file and line, so nothing of that file is written.
 */
export function readIndexFile(file: string, ca: string): IndexFile {
  const version = fileVersion(file);
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw readError(file, e);
  }
  if (!sameVersion(version, fileVersion(file))) {
    throw new IndexFileError(`${file} changed while it was read: try again once it is written`, 'changing');
  }
  return { records: parseOpensslIndex(text, ca, file), version };
}

function readError(file: string, e: unknown): IndexFileError {
  const code = (e as NodeJS.ErrnoException).code;
  return new IndexFileError(`cannot read ${file}: ${code ?? e}`, code === 'ENOENT' ? 'missing' : 'unreadable');
}
