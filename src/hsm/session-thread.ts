// The main thread's side of one session thread: one call at a time. A call's promise settles when the HSM
// answers, however late; callers that cannot wait race it against their own deadline (token.ts).
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { fromWire, Reply, Request } from './thread/protocol';

const WORKER_SCRIPT = join(__dirname, 'thread', 'session-worker.js');

export class SessionThreadExitedError extends Error {
  override name = 'SessionThreadExitedError';
}

/** What the pool needs of a session thread (tests drive a controllable one). */
export interface SessionThreadLike {
  readonly inCall: boolean;
  readonly alive: boolean;
  call<T>(req: Request): Promise<T>;
  /** Ends the thread; resolves once it has exited (a thread inside a call exits when the call returns). */
  terminate(): void | Promise<void>;
}

export class SessionThread implements SessionThreadLike {
  private readonly worker: Worker;
  private pending: { resolve(v: unknown): void; reject(e: Error): void } | undefined;
  private exited = false;

  constructor() {
    // Inherits the environment (SOFTHSM2_CONF and the like), not the process's argv or execArgv.
    this.worker = new Worker(WORKER_SCRIPT, { argv: [], execArgv: [] });
    this.worker.unref();
    this.worker.on('message', (r: Reply) => this.onReply(r));
    this.worker.on('error', (e) => this.onExit(e));
    this.worker.on('exit', () => this.onExit(new SessionThreadExitedError('session thread exited')));
  }

  /** True while a call is in the HSM, including one its caller gave up on. */
  get inCall(): boolean {
    return this.pending !== undefined;
  }

  get alive(): boolean {
    return !this.exited;
  }

  /** Sends one request; the promise settles when the thread answers. One call at a time. */
  call<T>(req: Request): Promise<T> {
    if (this.exited) return Promise.reject(new SessionThreadExitedError('session thread exited'));
    if (this.pending) return Promise.reject(new Error('session thread is busy'));
    // Referenced only while a call is out: an idle thread never keeps the process alive.
    this.worker.ref();
    return new Promise<T>((resolve, reject) => {
      this.pending = { resolve: resolve as (v: unknown) => void, reject };
      this.worker.postMessage(req);
    });
  }

  /** Ends the thread; a call still in the HSM keeps it until the call returns. */
  terminate(): Promise<void> {
    this.exited = true;
    return this.worker.terminate().then(
      () => undefined,
      () => undefined,
    );
  }

  private onReply(r: Reply): void {
    const p = this.pending;
    this.pending = undefined;
    this.worker.unref();
    if (!p) return;
    if (r.ok) p.resolve(r.value);
    else p.reject(fromWire(r.error));
  }

  private onExit(e: Error): void {
    this.exited = true;
    const p = this.pending;
    this.pending = undefined;
    p?.reject(e);
  }
}
