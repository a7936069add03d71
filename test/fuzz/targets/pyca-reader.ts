// One python3 process reading OCSPResponses with pyca/cryptography for a whole fuzz run (pyca-ocsp.py): a process
// per answer would cost more than the answer.
import { ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import { join } from 'node:path';
import { FUZZ_DIR } from '../fuzz-target';

export interface PycaSingle {
  serial: string;
  hash: string;
  nameHash: string;
  keyHash: string;
  status: 'GOOD' | 'REVOKED' | 'UNKNOWN';
  reason: string | null;
  thisUpdate: string;
  nextUpdate: string | null;
}

export type PycaResult =
  | { ok: false; error: string }
  | { ok: true; status: string; nonce?: string | null; responderKeyHash?: string | null; certificates?: number; responses?: PycaSingle[] };

export class PycaReader {
  private readonly proc: ChildProcessWithoutNullStreams;
  private readonly waiting: { resolve: (r: PycaResult) => void; reject: (e: Error) => void }[] = [];
  private pending = '';
  private exited: Error | undefined;

  constructor(responderPem: string) {
    this.proc = spawn('/usr/bin/python3', [join(FUZZ_DIR, 'pyca-ocsp.py'), responderPem], { stdio: ['pipe', 'pipe', 'pipe'] });
    let stderr = '';
    this.proc.stderr.on('data', (d: Buffer) => void (stderr += d.toString()));
    this.proc.stdout.on('data', (d: Buffer) => {
      this.pending += d.toString();
      let nl;
      while ((nl = this.pending.indexOf('\n')) >= 0) {
        const line = this.pending.slice(0, nl);
        this.pending = this.pending.slice(nl + 1);
        this.waiting.shift()?.resolve(JSON.parse(line) as PycaResult);
      }
    });
    this.proc.on('exit', (code) => {
      this.exited = new Error(`pyca-ocsp.py exited ${code}: ${stderr}`);
      for (const w of this.waiting.splice(0)) w.reject(this.exited);
    });
  }

  read(der: Buffer): Promise<PycaResult> {
    if (this.exited) return Promise.reject(this.exited);
    return new Promise((resolve, reject) => {
      this.waiting.push({ resolve, reject });
      this.proc.stdin.write(der.toString('base64') + '\n');
    });
  }

  async close(): Promise<void> {
    if (this.exited) return;
    const exited = new Promise((r) => this.proc.once('exit', r));
    this.proc.stdin.end();
    await exited;
  }
}
