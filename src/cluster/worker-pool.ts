// The primary's serving processes (node:cluster): started in numbered slots, each with a Channel; one that exits
// unexpectedly is logged and started again in its slot (with backoff while it keeps dying young), the others answer
// meanwhile. Stopping drains them all before the primary closes what they sign with.
import cluster, { Worker } from 'node:cluster';
import type { Logger } from 'pino';
import type { Clock, Timer } from '../clock';
import { Channel, ChannelClosedError, Handlers } from './channel';
import { InitReply, TO_WORKER } from './protocol';

/** A worker that lived this long is healthy again: its next restart is immediate. */
const HEALTHY_AFTER_MS = 30_000;
const RESTART_FIRST_MS = 100;
const RESTART_MAX_MS = 10_000;
/** A serving process opens the store, reads certificates and listens: longer than this means it is stuck. */
const INIT_TIMEOUT_MS = 120_000;

export type WorkerState = 'starting' | 'listening' | 'draining';

export interface PoolWorker {
  readonly slot: number;
  readonly pid: number | undefined;
  readonly channel: Channel;
  state: WorkerState;
}

export interface PoolOptions {
  /** The compiled entry of a serving process (cli/worker-main.js). */
  exec: string;
  size: number;
  clock: Clock;
  logger: Logger;
  /** What every serving process answers (sign, readiness, metrics). */
  handlers: Handlers;
  /** The init message of a worker starting in `slot`: the configuration in force now. */
  initFor(slot: number): unknown;
  /** A worker answered init: it listens. */
  onListening?(w: PoolWorker, reply: InitReply): void;
  /** A worker of this slot was started again after an unexpected exit. */
  onRestart?(slot: number): void;
}

interface Slot {
  worker: (PoolWorker & { handle: Worker }) | undefined;
  startedAt: number;
  failures: number;
  timer: Timer | undefined;
}

export class WorkerPool {
  private readonly slots: Slot[] = [];
  private stopping = false;

  constructor(private readonly o: PoolOptions) {
    cluster.setupPrimary({ exec: o.exec, args: [], serialization: 'advanced' });
    for (let i = 0; i < o.size; i++) this.slots.push({ worker: undefined, startedAt: 0, failures: 0, timer: undefined });
  }

  /** Starts every slot; resolves with the port once all listen, rejects with the first that could not start. */
  start(): Promise<number> {
    return Promise.all(this.slots.map((_, i) => this.fork(i + 1))).then((replies) => replies[0]!.port);
  }

  /** Workers answering now. */
  listening(): PoolWorker[] {
    return this.slots.flatMap((s) => (s.worker?.state === 'listening' ? [s.worker] : []));
  }

  /**
   * Asks every listening worker; settles once each has answered, failed, exited or taken `timeoutMs`. A worker
   * that dies meanwhile counts as answered: its replacement starts from the store, with nothing in memory.
   */
  async broadcast<T>(op: string, body: unknown, timeoutMs: number): Promise<{ slot: number; ok: boolean; value?: T; error?: Error }[]> {
    return Promise.all(
      this.listening().map((w) =>
        w.channel.request<T>(op, body, timeoutMs).then(
          (value) => ({ slot: w.slot, ok: true, value }),
          (error: Error) => ({ slot: w.slot, ok: error instanceof ChannelClosedError, error }),
        ),
      ),
    );
  }

  /** Drains every worker (each finishes what it received, at most `timeoutMs`), then kills what is left. */
  async stop(timeoutMs: number): Promise<void> {
    this.stopping = true;
    const exits: Promise<void>[] = [];
    for (const s of this.slots) {
      s.timer?.cancel();
      const w = s.worker;
      if (!w) continue;
      exits.push(new Promise((resolve) => (w.handle.isDead() ? resolve() : w.handle.once('exit', () => resolve()))));
      if (w.state === 'starting') w.handle.process.kill('SIGKILL');
      else {
        w.state = 'draining';
        w.channel.notify(TO_WORKER.drain, null);
      }
    }
    let timer: Timer | undefined;
    const late = new Promise<boolean>((resolve) => (timer = this.o.clock.setTimer(() => resolve(true), timeoutMs + 5_000)));
    if (await Promise.race([Promise.all(exits).then(() => false), late])) {
      for (const s of this.slots) if (s.worker && !s.worker.handle.isDead()) s.worker.handle.process.kill('SIGKILL');
      this.o.logger.warn('serving processes still running after the shutdown timeout: killed');
      await Promise.all(exits);
    }
    timer?.cancel();
  }

  private fork(slot: number): Promise<InitReply> {
    const s = this.slots[slot - 1]!;
    const handle = cluster.fork({ OCSP_HSM_WORKER: String(slot) });
    const channel = new Channel(handle, this.o.handlers, this.o.clock);
    const w = { slot, pid: handle.process.pid, channel, state: 'starting' as WorkerState, handle };
    s.worker = w;
    s.startedAt = this.o.clock.monotonicMs();
    handle.once('exit', (code, signal) => this.exited(w, code, signal));
    // Sending to a process that just died: the channel reports it to its waiters; nothing else to do.
    handle.on('error', (e) => this.o.logger.debug({ worker: slot, err: e.message }, 'serving process channel error'));
    handle.once('disconnect', () => channel.close(new ChannelClosedError(`worker ${slot} disconnected`)));
    return channel.request<InitReply>(TO_WORKER.init, this.o.initFor(slot), INIT_TIMEOUT_MS).then(
      (reply) => {
        if (w.state === 'starting' && !this.stopping) {
          w.state = 'listening';
          this.o.onListening?.(w, reply);
        }
        return reply;
      },
      (e: Error) => {
        if (!handle.isDead()) handle.process.kill('SIGKILL');
        throw e;
      },
    );
  }

  private exited(w: PoolWorker & { handle: Worker }, code: number | null, signal: string | null): void {
    w.channel.close(new ChannelClosedError(`worker ${w.slot} exited`));
    const s = this.slots[w.slot - 1]!;
    if (s.worker !== w) return;
    s.worker = undefined;
    if (this.stopping) return;
    const lived = this.o.clock.monotonicMs() - s.startedAt;
    if (lived >= HEALTHY_AFTER_MS) s.failures = 0;
    const delay = s.failures === 0 ? 0 : Math.min(RESTART_FIRST_MS * 2 ** (s.failures - 1), RESTART_MAX_MS);
    s.failures++;
    this.o.logger.error({ worker: w.slot, pid: w.pid, code, signal, restartInMs: delay }, 'serving process exited: starting another (requests in flight on it are lost; the others keep answering)');
    s.timer = this.o.clock.setTimer(() => {
      s.timer = undefined;
      if (this.stopping) return;
      this.o.onRestart?.(w.slot);
      this.fork(w.slot).then(
        () => this.o.logger.info({ worker: w.slot, pid: this.slots[w.slot - 1]!.worker?.pid }, 'serving process restarted'),
        (e: Error) => this.o.logger.error({ worker: w.slot, err: e.message }, 'serving process could not start'),
      );
    }, delay);
  }
}
