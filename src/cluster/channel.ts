// Requests, replies and notices between the primary and a serving process over Node's IPC channel, batched: every
// frame queued in one event-loop turn leaves in one message (one serialization, one write), however many there are.
import type { Clock, Timer } from '../clock';
import { decodeError, EncodedError, encodeError } from './errors';

/** The IPC side of a process (`process` in a serving process) or of a child (`cluster.Worker` in the primary). */
export interface IpcEndpoint {
  /** With a callback, a closed channel is reported to it instead of as an 'error' event (which would crash us). */
  send(message: unknown, callback: (error: Error | null) => void): boolean;
  on(event: 'message', listener: (message: unknown) => void): unknown;
  off(event: 'message', listener: (message: unknown) => void): unknown;
}

type Frame =
  | { k: 'q'; id: number; op: string; b: unknown }
  | { k: 'r'; id: number; b: unknown }
  | { k: 'x'; id: number; e: EncodedError }
  | { k: 'n'; op: string; b: unknown };

/** What a channel answers: op -> handler; a thrown error or rejection goes back as the request's error. */
export type Handlers = Record<string, (body: any) => unknown>;

/** Marks our messages among whatever else may use the IPC channel. */
const TAG = 'ocsp-hsm';

interface Pending {
  resolve(v: unknown): void;
  reject(e: Error): void;
  timer: Timer | undefined;
}

export class ChannelClosedError extends Error {
  override name = 'ChannelClosedError';
}

export class Channel {
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();
  private queue: Frame[] = [];
  private flushScheduled = false;
  private closed: Error | undefined;
  private readonly onMessage = (m: unknown) => this.receive(m);

  constructor(
    private readonly endpoint: IpcEndpoint,
    private readonly handlers: Handlers,
    private readonly clock: Clock,
  ) {
    endpoint.on('message', this.onMessage);
  }

  /** Sends `op` and resolves with the handler's result on the other side; rejects after `timeoutMs`, if given. */
  request<T>(op: string, body: unknown, timeoutMs?: number): Promise<T> {
    if (this.closed) return Promise.reject(this.closed);
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      const timer = timeoutMs === undefined ? undefined : this.clock.setTimer(() => {
        if (this.pending.delete(id)) reject(new ChannelTimeoutError(`no answer to "${op}" within ${timeoutMs} ms`));
      }, timeoutMs);
      this.pending.set(id, { resolve: resolve as (v: unknown) => void, reject, timer });
      this.push({ k: 'q', id, op, b: body });
    });
  }

  /** Sends `op` without waiting for anything back. */
  notify(op: string, body: unknown): void {
    if (!this.closed) this.push({ k: 'n', op, b: body });
  }

  /** Requests waiting for their answer. */
  get waiting(): number {
    return this.pending.size;
  }

  /** The other side is gone: every request waiting is rejected with `reason`, and so is every later one. */
  close(reason: Error): void {
    if (this.closed) return;
    this.closed = reason;
    this.endpoint.off('message', this.onMessage);
    this.queue = [];
    for (const p of this.pending.values()) {
      p.timer?.cancel();
      p.reject(reason);
    }
    this.pending.clear();
  }

  private push(f: Frame): void {
    this.queue.push(f);
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    // After this turn's I/O callbacks: everything they asked for leaves together.
    setImmediate(() => this.flush());
  }

  private flush(): void {
    this.flushScheduled = false;
    if (this.queue.length === 0 || this.closed) return;
    const frames = this.queue;
    this.queue = [];
    // The channel closed under us (the other process died): whoever waits hears it now, not at a timeout.
    const lost = (e: Error) => this.close(new ChannelClosedError(`IPC channel closed: ${e.message}`));
    try {
      this.endpoint.send({ [TAG]: frames }, (e) => e && lost(e));
    } catch (e) {
      lost(e as Error);
    }
  }

  private receive(m: unknown): void {
    const frames = (m as Record<string, Frame[] | undefined> | null)?.[TAG];
    if (!Array.isArray(frames)) return;
    for (const f of frames) {
      if (f.k === 'q' || f.k === 'n') this.handle(f);
      else this.settle(f);
    }
  }

  private handle(f: Extract<Frame, { k: 'q' | 'n' }>): void {
    const h = this.handlers[f.op];
    const reply = f.k === 'q' ? f.id : undefined;
    if (!h) {
      if (reply !== undefined) this.push({ k: 'x', id: reply, e: encodeError(new Error(`unknown operation "${f.op}"`)) });
      return;
    }
    let result: unknown;
    try {
      result = h(f.b);
    } catch (e) {
      if (reply !== undefined) this.push({ k: 'x', id: reply, e: encodeError(e) });
      return;
    }
    if (reply === undefined) {
      if (result instanceof Promise) result.catch(() => undefined);
      return;
    }
    if (result instanceof Promise) {
      result.then(
        (b) => this.closed || this.push({ k: 'r', id: reply, b }),
        (e) => this.closed || this.push({ k: 'x', id: reply, e: encodeError(e) }),
      );
    } else {
      this.push({ k: 'r', id: reply, b: result });
    }
  }

  private settle(f: Extract<Frame, { k: 'r' | 'x' }>): void {
    const p = this.pending.get(f.id);
    if (!p) return; // timed out already
    this.pending.delete(f.id);
    p.timer?.cancel();
    if (f.k === 'r') p.resolve(f.b);
    else p.reject(decodeError(f.e));
  }
}

export class ChannelTimeoutError extends Error {
  override name = 'ChannelTimeoutError';
}
