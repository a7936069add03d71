// Builds the fault-injecting PKCS#11 shim (native-test/shim) and drives it through its control file.
import { execFileSync } from 'node:child_process';
import { closeSync, openSync, readSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT } from './harness';

export const SHIM_MODE = { pass: 0, deviceRemoved: 2, hang: 3 } as const;

/** Calls that hang while their bit is set (setHang). */
export const HANG = { sign: 1, signInit: 2, openSession: 4, login: 8, findObjects: 16, sessionInfo: 32 } as const;

export class Shim {
  readonly control: string;
  private constructor(
    readonly library: string,
    dir: string,
  ) {
    this.control = join(dir, 'shim-control');
    writeFileSync(this.control, Buffer.alloc(4096));
  }

  /** Compiles the shim into `dir` with the PKCS#11 headers pkcs11js ships. */
  static build(dir: string): Shim {
    const library = join(dir, 'pkcs11-shim.so');
    execFileSync('gcc', ['-shared', '-fPIC', '-O2', '-Wall', '-I', join(ROOT, 'node_modules/pkcs11js/includes/pkcs11'),
      '-o', library, join(ROOT, 'native-test/shim/pkcs11-shim.c'), '-ldl', '-lpthread'], { stdio: 'pipe', timeout: 60_000 });
    return new Shim(library, dir);
  }

  env(target: string): Record<string, string> {
    return { OCSP_SHIM_TARGET: target, OCSP_SHIM_CONTROL: this.control };
  }

  setMode(mode: number): void {
    this.write(0, int32(mode));
  }

  /** The next PKCS#11 call closes every session on the real token (which also logs the user out). */
  invalidateSessions(): void {
    this.write(4, int32(1));
  }

  /** Every C_Login call the shim saw (PIN attempts, each counting toward a real HSM's lock when wrong). */
  loginCalls(): number {
    return Number(this.read(24).readBigInt64LE(0));
  }

  /** Emulates a PIN retry counter: locked after `after` wrong user PINs in a row, `wrongSoFar` of them already made. */
  emulatePinLock(after: number, wrongSoFar = 0): void {
    this.write(32, Buffer.concat([int32(after), int32(wrongSoFar)]));
  }

  /** Holds every call named in `mask` (bits of HANG) until cleared with 0 (each call at most 30 s). */
  setHang(mask: number): void {
    this.write(40, int32(mask));
  }

  /** Calls the shim held because of a hang. */
  hungCalls(): number {
    return Number(this.read(48).readBigInt64LE(0));
  }

  /** Successful C_Sign calls seen by the shim: signatures the HSM really made. */
  signsOk(): number {
    return Number(this.read(8).readBigInt64LE(0));
  }

  private write(offset: number, data: Buffer): void {
    const fd = openSync(this.control, 'r+');
    try {
      writeSync(fd, data, 0, data.length, offset);
    } finally {
      closeSync(fd);
    }
  }

  private read(offset: number): Buffer {
    const fd = openSync(this.control, 'r');
    const b = Buffer.alloc(8);
    try {
      readSync(fd, b, 0, 8, offset);
    } finally {
      closeSync(fd);
    }
    return b;
  }
}

function int32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeInt32LE(n);
  return b;
}
