// Who a responder process is, as the other responders on the same store see it: in the lease it holds, in its
// heartbeat row and in `ocsp-hsm cluster status`. Made once per process; a restarted process is a new responder.
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';

export interface ResponderIdentity {
  /** `host/pid/random`: unique across restarts and hosts, readable in a listing. */
  id: string;
  host: string;
  pid: number;
}

/** `name` (cluster.name in the config) replaces the host name, e.g. where containers all share one. */
export function newResponderIdentity(name?: string): ResponderIdentity {
  const host = name ?? hostname();
  return { id: `${host}/${process.pid}/${randomBytes(3).toString('hex')}`, host, pid: process.pid };
}
