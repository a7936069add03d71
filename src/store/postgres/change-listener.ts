// One dedicated connection that LISTENs for status-change notifications and reconnects, with backoff, when lost.
import { Client, type ClientConfig } from 'pg';

export interface ChangeListenerOptions {
  client: ClientConfig;
  /** A plain identifier: LISTEN takes no parameters. */
  channel: string;
  /** Called for each notification, and once each time listening (re)starts. */
  onChange: () => void;
  /** Told once when the connection is lost or cannot be made, until it listens again; the message carries no password. */
  warn: (message: string) => void;
  /** Reconnection delays; by default 100 ms doubling to 1 s, so listening resumes within a second of the database's return. */
  backoff?: { initialMs: number; maxMs: number };
}

export class ChangeListener {
  private client: Client | undefined;
  private retryTimer: NodeJS.Timeout | undefined;
  private stopped = false;
  private readonly backoff: { initialMs: number; maxMs: number };
  private delayMs: number;
  /** Failed connections since the last LISTEN that worked: one warning per run of them. */
  private failures = 0;

  constructor(private readonly opts: ChangeListenerOptions) {
    if (!/^[a-z_][a-z0-9_]*$/.test(opts.channel)) throw new Error(`invalid channel name "${opts.channel}"`);
    this.backoff = opts.backoff ?? { initialMs: 100, maxMs: 1000 };
    this.delayMs = this.backoff.initialMs;
    void this.connect();
  }

  private async connect(): Promise<void> {
    if (this.stopped) return;
    const client = new Client(this.opts.client);
    this.client = client;
    // Without an 'error' listener a dropped connection would be an uncaught exception: the process would die.
    client.on('error', (e) => this.lost(client, e));
    client.on('end', () => this.lost(client, new Error('connection ended')));
    client.on('notification', (n) => {
      if (this.client === client && n.channel === this.opts.channel) this.opts.onChange();
    });
    try {
      await client.connect();
      await client.query(`LISTEN ${this.opts.channel}`);
    } catch (e) {
      this.lost(client, e as Error);
      return;
    }
    if (this.client !== client) return;
    this.delayMs = this.backoff.initialMs;
    this.failures = 0;
    // Whatever was written while nobody listened went unannounced: tell the listener it may have missed changes.
    this.opts.onChange();
  }

  private lost(client: Client, err: Error): void {
    if (this.client !== client) return;
    this.client = undefined;
    client.end().catch(() => undefined);
    if (this.stopped) return;
    if (this.failures++ === 0) this.opts.warn(`PostgreSQL change listener: ${err.message}; reconnecting (every ${this.backoff.maxMs} ms at most) until it listens again`);
    this.retryTimer = setTimeout(() => void this.connect(), this.delayMs);
    this.retryTimer.unref();
    this.delayMs = Math.min(this.delayMs * 2, this.backoff.maxMs);
  }

  /** Stops listening and closes the connection; safe to call more than once. */
  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.retryTimer);
    const client = this.client;
    this.client = undefined;
    if (client) await client.end().catch(() => undefined);
  }
}
