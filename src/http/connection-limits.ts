// Bounds on the open connections of a listener, in total and per TCP peer address (README "Connection limits").
// Past the total, the connection that has waited longest without a request in progress is closed to make room
// (nginx reuses idle connections the same way), else the new one; past its address's bound, the new one is closed.
import type { Server } from 'node:http';
import type { BlockList, Socket } from 'node:net';
import { isTrustedProxy, plainAddress } from './client-address';

export interface ConnectionBounds {
  /** Open connections at most. */
  maxConnections: number;
  /** Open connections per peer address at most; 0: no bound per address. */
  maxPerClient: number;
  /** Peers never bound per address: load balancers (server.trustedProxies) carry many clients' connections. */
  exempt: BlockList;
}

/** What became of a new connection: kept, or closed at once past its address's bound or the total. */
export type ConnectionOutcome = 'accepted' | 'refused_per_client' | 'refused_limit';

export interface ConnectionObserver {
  outcome(o: ConnectionOutcome): void;
  /** An idle connection was closed to make room for a new one. */
  evicted(): void;
}

/** The peer address a connection counts against; '' for one not bound per address. */
type PeerKey = string;

export class ConnectionLimits {
  /** Open connections, the one whose last request began longest ago (or that never sent one) first. */
  private readonly open = new Map<Socket, PeerKey>();
  private readonly perPeer = new Map<string, number>();

  constructor(
    private readonly bounds: ConnectionBounds,
    private readonly observer?: ConnectionObserver,
  ) {}

  /** Connections open now (as counted here: a closed one leaves at once). */
  get size(): number {
    return this.open.size;
  }

  attach(server: Server): void {
    server.on('connection', (s: Socket) => this.admit(s));
    server.on('request', (req: { socket: Socket }) => this.asked(req.socket));
  }

  private admit(socket: Socket): void {
    const b = this.bounds;
    const address = plainAddress(socket.remoteAddress ?? '');
    const key: PeerKey = b.maxPerClient > 0 && !isTrustedProxy(address, b.exempt) ? address : '';
    if (key !== '' && (this.perPeer.get(key) ?? 0) >= b.maxPerClient) return this.refuse(socket, 'refused_per_client');
    if (this.open.size >= b.maxConnections && !this.evictIdle()) return this.refuse(socket, 'refused_limit');
    this.open.set(socket, key);
    if (key !== '') this.perPeer.set(key, (this.perPeer.get(key) ?? 0) + 1);
    socket.once('close', () => this.forget(socket));
    this.observer?.outcome('accepted');
  }

  /** A request began on `socket`: it goes to the back of the eviction order. */
  private asked(socket: Socket): void {
    const key = this.open.get(socket);
    if (key === undefined) return;
    this.open.delete(socket);
    this.open.set(socket, key);
  }

  /**
   * Closes the connection idle longest: no request in progress (none sent yet, headers still coming in, or
   * between keep-alive requests). A connection whose request is being read or answered is never closed here.
   */
  private evictIdle(): boolean {
    for (const socket of this.open.keys()) {
      if (inProgress(socket)) continue;
      this.forget(socket);
      socket.destroy();
      this.observer?.evicted();
      return true;
    }
    return false;
  }

  private refuse(socket: Socket, why: ConnectionOutcome): void {
    socket.destroy();
    this.observer?.outcome(why);
  }

  /** Counted out at once (a destroyed socket's 'close' comes a tick later; then this is a no-op). */
  private forget(socket: Socket): void {
    const key = this.open.get(socket);
    if (key === undefined || !this.open.delete(socket) || key === '') return;
    const n = (this.perPeer.get(key) ?? 1) - 1;
    if (n === 0) this.perPeer.delete(key);
    else this.perPeer.set(key, n);
  }
}

/**
 * Whether a response is pending on the connection: node:http sets `_httpMessage` to the response as its request
 * arrives and clears it when the response is finished (test/connection-limits.test.ts holds node to it).
 */
function inProgress(socket: Socket): boolean {
  return (socket as Socket & { _httpMessage?: unknown })._httpMessage != null;
}
