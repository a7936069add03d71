// Child process of the revocation race test, bounded in time and count, talking only to 127.0.0.1: store-on-demand
// traffic (no nonce) and live nonce traffic (two CertIDs and a nonce: never pre-produced) while the writes go on,
// polls of every revoked serial from its acknowledgement on, and a final sweep over them all. Every answer saying
// "good" for a serial being revoked is kept and judged at the end against when that revocation was acknowledged.
// Driven over IPC by startPoller().
import { fork } from 'node:child_process';
import type { KeyObject } from 'node:crypto';
import { join } from 'node:path';
import { readCertificate } from '../../src/pki/certificate';
import { Answer, OcspExchange, Question, signatureVerifies } from './ocsp-exchange';

export interface PollerSpec {
  urls: string[];
  caCertFile: string;
  responderCertFile: string;
  /** Every serial of the CA (canonical hex). */
  serials: string[];
  /** The serials revoked during the run. */
  revoking: string[];
  /** An answer to a request sent later than acknowledgement + boundMs must not say good. */
  boundMs: number;
  /** Each acknowledged serial is asked about this long after its acknowledgement, once per responder each time. */
  pollDelaysMs: number[];
  pollConcurrency: number;
  onDemandConcurrency: number;
  liveConcurrency: number;
  /** Traffic stops by itself after this long (the parent normally stops it first). */
  maxRunMs: number;
  /** One successful answer in this many has its signature verified (and every one saying good after its bound). */
  verifyEvery: number;
}

type Kind = 'poll' | 'sweep' | 'onDemand' | 'live';
interface GoodAnswer {
  serial: string;
  kind: Kind;
  url: string;
  method: string;
  nonce: boolean;
  sentAt: number;
  signed?: Answer['signed'];
}

export interface PollerResult {
  requests: Record<Kind, number>;
  byOcspStatus: Record<string, number>;
  /** What the polls (all sent after acknowledgement, the final sweep included) were told. */
  polled: { good: number; revoked: number; unknown: number };
  transportErrors: Record<string, number>;
  problems: number;
  problemExamples: string[];
  acknowledged: number;
  /** Answers saying good to requests sent later than acknowledgement + boundMs: the failure this test is about. */
  goodAfterBound: number;
  goodAfterBoundSerials: number;
  goodAfterBoundExamples: string[];
  /** Good answers sent after acknowledgement but within boundMs (PostgreSQL's notification delay; 0 on SQLite). */
  goodWithinBound: number;
  /** Acknowledged serials some responder never answered successfully for a request sent after the bound. */
  uncovered: number;
  uncoveredExamples: string[];
  signatures: { verified: number; failed: number };
}

type Message =
  | { kind: 'start'; spec: PollerSpec }
  | { kind: 'pending'; serials: string[] }
  | { kind: 'ack'; serials: string[]; at: number }
  | { kind: 'quiesce' }
  | { kind: 'finish' };

const VARIANTS: { method: 'GET' | 'POST'; nonce: boolean }[] = [
  { method: 'POST', nonce: false },
  { method: 'GET', nonce: true },
  { method: 'GET', nonce: false },
  { method: 'POST', nonce: true },
];

class Poller {
  private readonly exchange: OcspExchange;
  private readonly responderKey: KeyObject;
  private readonly revoking: Set<string>;
  private readonly ackAt = new Map<string, number>();
  /** Serials a writer is writing now: the traffic asks about them while their revocation commits. */
  private hot: string[] = [];
  private readonly goods: GoodAnswer[] = [];
  private readonly covered = new Map<string, Set<string>>();
  private readonly queue: (Question & { kind: Kind })[] = [];
  private readonly timers = new Set<NodeJS.Timeout>();
  private inFlightPolls = 0;
  private drained: (() => void) | undefined;
  private stopped = false;
  private answered = 0;
  private readonly r: PollerResult = {
    requests: { poll: 0, sweep: 0, onDemand: 0, live: 0 }, byOcspStatus: {}, polled: { good: 0, revoked: 0, unknown: 0 }, transportErrors: {},
    problems: 0, problemExamples: [], acknowledged: 0, goodAfterBound: 0, goodAfterBoundSerials: 0, goodAfterBoundExamples: [],
    goodWithinBound: 0, uncovered: 0, uncoveredExamples: [], signatures: { verified: 0, failed: 0 },
  };
  private readonly traffic: Promise<void>[] = [];

  constructor(private readonly spec: PollerSpec) {
    const caCert = readCertificate(spec.caCertFile);
    this.exchange = new OcspExchange(caCert, spec.pollConcurrency + spec.onDemandConcurrency + spec.liveConcurrency);
    this.responderKey = readCertificate(spec.responderCertFile).x509.publicKey;
    this.revoking = new Set(spec.revoking);
    const end = Date.now() + spec.maxRunMs;
    for (let i = 0; i < spec.onDemandConcurrency; i++) this.traffic.push(this.loop(end, 'onDemand', () => this.onDemandQuestion(i)));
    for (let i = 0; i < spec.liveConcurrency; i++) this.traffic.push(this.loop(end, 'live', () => this.liveQuestion(i)));
  }

  pending(serials: string[]): void {
    this.hot = this.hot.concat(serials);
  }

  ack(serials: string[], at: number): void {
    const fresh = serials.filter((s) => !this.ackAt.has(s));
    for (const s of fresh) this.ackAt.set(s, at);
    const done = new Set(serials);
    this.hot = this.hot.filter((s) => !done.has(s));
    if (fresh.length === 0) return;
    this.spec.pollDelaysMs.forEach((delay, round) => {
      const t = setTimeout(() => {
        this.timers.delete(t);
        for (const serial of fresh) {
          this.spec.urls.forEach((url, u) => this.queue.push({ kind: 'poll', url, serials: [serial], ...VARIANTS[(round + u) % VARIANTS.length]! }));
        }
        this.pump();
        this.signalIfDrained();
      }, delay);
      this.timers.add(t);
    });
  }

  /** Stops the traffic and sends the polls still scheduled. */
  async quiesce(): Promise<void> {
    this.stopped = true;
    await Promise.all(this.traffic);
    await this.drain();
  }

  /**
   * Quiesces, then asks every responder once more about every acknowledged serial (what a client gets once the
   * writes and the pre-signer are done), and judges every answer.
   */
  async finish(): Promise<PollerResult> {
    await this.quiesce();
    const rounds = this.spec.pollDelaysMs.length;
    for (const serial of this.ackAt.keys()) {
      // The variant after the polls' last: with them, each responder is asked each way about every serial.
      this.spec.urls.forEach((url, u) => this.queue.push({ kind: 'sweep', url, serials: [serial], ...VARIANTS[(rounds + u) % VARIANTS.length]! }));
    }
    this.pump();
    await this.drain();
    this.exchange.close();
    return this.judge();
  }

  private async drain(): Promise<void> {
    while (this.timers.size > 0 || this.queue.length > 0 || this.inFlightPolls > 0) {
      await new Promise<void>((r) => (this.drained = r));
    }
  }

  private async loop(end: number, kind: Kind, question: () => Question): Promise<void> {
    while (!this.stopped && Date.now() < end) await this.ask({ ...question(), kind });
  }

  private pick(from: readonly string[]): string {
    return from[Math.floor(Math.random() * from.length)]!;
  }

  /** Half the time a serial being written now, else one being revoked during the run, else any. */
  private someSerial(): string {
    const x = Math.random();
    if (x < 0.5 && this.hot.length > 0) return this.pick(this.hot);
    return x < 0.75 ? this.pick(this.spec.revoking) : this.pick(this.spec.serials);
  }

  private onDemandQuestion(i: number): Question {
    const url = this.spec.urls[(this.r.requests.onDemand + i) % this.spec.urls.length]!;
    return { url, serials: [this.someSerial()], method: this.r.requests.onDemand % 2 ? 'GET' : 'POST', nonce: false };
  }

  private liveQuestion(i: number): Question {
    const url = this.spec.urls[(this.r.requests.live + i) % this.spec.urls.length]!;
    const a = this.someSerial();
    let b = this.pick(this.spec.serials);
    while (b === a) b = this.pick(this.spec.serials);
    return { url, serials: [a, b], method: this.r.requests.live % 2 ? 'GET' : 'POST', nonce: true };
  }

  private pump(): void {
    while (this.inFlightPolls < this.spec.pollConcurrency && this.queue.length > 0) {
      const q = this.queue.shift()!;
      this.inFlightPolls++;
      void this.ask(q).finally(() => {
        this.inFlightPolls--;
        this.pump();
        this.signalIfDrained();
      });
    }
  }

  private signalIfDrained(): void {
    if (this.timers.size === 0 && this.queue.length === 0 && this.inFlightPolls === 0) this.drained?.();
  }

  private async ask(q: Question & { kind: Kind }): Promise<void> {
    this.r.requests[q.kind]++;
    const a = await this.exchange.ask(q);
    if (a.transportError) {
      this.r.transportErrors[a.transportError] = (this.r.transportErrors[a.transportError] ?? 0) + 1;
      return;
    }
    const status = String(a.ocspStatus ?? 'none');
    this.r.byOcspStatus[status] = (this.r.byOcspStatus[status] ?? 0) + 1;
    if (a.problem) {
      this.r.problems++;
      if (this.r.problemExamples.length < 5) this.r.problemExamples.push(`${q.kind} ${q.method} ${q.serials.join(',')}: ${a.problem}`);
    }
    if (a.ocspStatus !== 0) return;
    if (++this.answered % this.spec.verifyEvery === 0) this.verify(a.signed!);
    for (const [serial, said] of a.statuses) {
      if (q.kind === 'poll' || q.kind === 'sweep') this.r.polled[said]++;
      const ack = this.ackAt.get(serial);
      if (ack !== undefined && a.sentAt > ack + this.spec.boundMs) {
        let urls = this.covered.get(serial);
        if (!urls) this.covered.set(serial, (urls = new Set()));
        urls.add(q.url);
      }
      if (said === 'good' && this.revoking.has(serial)) {
        this.goods.push({ serial, kind: q.kind, url: q.url, method: q.method, nonce: q.nonce, sentAt: a.sentAt, signed: a.signed! });
      }
    }
  }

  private verify(signed: NonNullable<Answer['signed']>): boolean {
    const ok = signatureVerifies(signed, this.responderKey);
    this.r.signatures[ok ? 'verified' : 'failed']++;
    return ok;
  }

  private judge(): PollerResult {
    const r = this.r;
    r.acknowledged = this.ackAt.size;
    const serials = new Set<string>();
    for (const g of this.goods) {
      const ack = this.ackAt.get(g.serial);
      if (ack === undefined || g.sentAt <= ack) continue;
      if (g.sentAt <= ack + this.spec.boundMs) {
        r.goodWithinBound++;
        continue;
      }
      r.goodAfterBound++;
      serials.add(g.serial);
      if (r.goodAfterBoundExamples.length < 10) {
        const signature = this.verify(g.signed!) ? 'signature verifies' : 'SIGNATURE DOES NOT VERIFY';
        r.goodAfterBoundExamples.push(`${g.serial}: ${g.kind} ${g.method}${g.nonce ? ' with nonce' : ''} to ${g.url} sent ${g.sentAt - ack} ms after acknowledgement said good (${signature})`);
      }
    }
    r.goodAfterBoundSerials = serials.size;
    for (const s of this.ackAt.keys()) {
      if ((this.covered.get(s)?.size ?? 0) === this.spec.urls.length) continue;
      r.uncovered++;
      if (r.uncoveredExamples.length < 5) r.uncoveredExamples.push(s);
    }
    return r;
  }
}

if (require.main === module) {
  let poller: Poller | undefined;
  process.on('message', (m: Message) => {
    if (m.kind === 'start') poller = new Poller(m.spec);
    else if (m.kind === 'pending') poller!.pending(m.serials);
    else if (m.kind === 'ack') poller!.ack(m.serials, m.at);
    else if (m.kind === 'quiesce') void poller!.quiesce().then(() => process.send!({ kind: 'quiet' }));
    else void poller!.finish().then((result) => process.send!({ kind: 'result', result }, () => process.exit(0)));
  });
}

export interface PollerHandle {
  /** A writer is about to write these serials. */
  pending(serials: string[]): void;
  /** These serials' revocation was acknowledged at `at` (Date.now()). */
  ack(serials: string[], at: number): void;
  /** Stops the traffic and waits for the polls still due. */
  quiesce(): Promise<void>;
  /** Then asks every responder about every acknowledged serial once more, and returns what the answers said. */
  finish(): Promise<PollerResult>;
  kill(): void;
}

/** Starts the poller in a process of its own, so that decoding answers does not delay the writers' acknowledgements. */
export function startPoller(spec: PollerSpec): PollerHandle {
  const child = fork(join(__dirname, 'revocation-poller.js'), [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const exited = new Promise<never>((_, reject) => child.once('exit', (code) => reject(new Error(`revocation poller exited with ${code}`))));
  exited.catch(() => undefined);
  const reply = <T>(kind: string, send: string): Promise<T> => {
    const answered = new Promise<T>((resolve) => child.on('message', (m: { kind: string; result: T }) => m.kind === kind && resolve(m.result)));
    child.send({ kind: send });
    // Bounded: the polls still due take seconds, the final sweep a minute or two on a busy machine.
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`revocation poller: no ${kind} within 300 s`)), 300_000)));
    return Promise.race([answered, exited, late]).finally(() => clearTimeout(timer));
  };
  child.send({ kind: 'start', spec });
  return {
    pending: (serials) => child.connected && child.send({ kind: 'pending', serials }),
    ack: (serials, at) => child.connected && child.send({ kind: 'ack', serials, at }),
    quiesce: () => reply<void>('quiet', 'quiesce'),
    finish: () => reply<PollerResult>('result', 'finish'),
    kill: () => child.exitCode === null && child.kill('SIGKILL'),
  };
}
