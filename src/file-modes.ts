// Files and directories ocsp-hsm creates get explicit modes whatever the umask (README "Files and their modes"):
// under umask 000 a config or softhsm2.conf others may write lets them point tokens[].module at a library of theirs.
import { chmodSync, closeSync, fchmodSync, mkdirSync, openSync, writeSync } from 'node:fs';
import { dirname, resolve } from 'node:path';

/** PINs, tokens, the store and its -wal/-shm, config files, SoftHSM2's config: the owner only. */
export const PRIVATE_FILE = 0o600;
/** Certificates, CSRs and public keys: anyone may read them, only the owner write. */
export const PUBLIC_FILE = 0o644;
/** Every directory ocsp-hsm makes. */
export const PRIVATE_DIR = 0o700;

/** Writes `data` to `file` (created, or truncated) with `mode`, set before the data goes in. */
export function writeFileWithMode(file: string, data: string | Buffer, mode: number): void {
  const fd = openSync(file, 'w', mode);
  try {
    fchmodSync(fd, mode);
    const bytes = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
    for (let done = 0; done < bytes.length; ) done += writeSync(fd, bytes, done);
  } finally {
    closeSync(fd);
  }
}

/** Creates `file` empty with `mode` when it does not exist; an existing file is left as it is. */
export function createFileWithMode(file: string, mode: number): void {
  let fd: number;
  try {
    fd = openSync(file, 'wx', mode);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EEXIST') return;
    throw e;
  }
  try {
    fchmodSync(fd, mode);
  } finally {
    closeSync(fd);
  }
}

/** Makes `dir` and its missing parents PRIVATE_DIR; directories that existed keep their mode. */
export function makePrivateDir(dir: string): void {
  const first = mkdirSync(dir, { recursive: true, mode: PRIVATE_DIR });
  if (first === undefined) return;
  // mkdir's mode passes through the umask: set it again on each directory made, from `dir` up to the first.
  const stop = dirname(resolve(first));
  for (let d = resolve(dir); d !== stop && d !== dirname(d); d = dirname(d)) chmodSync(d, PRIVATE_DIR);
}
