// Whether the configured listen addresses (server, metrics, publishing) can be bound: each is bound and, once all
// are, closed again. Run before the daemon logs in to a token, and by `config check`.
import { createServer, Server } from 'node:net';
import type { Config } from '../config/schema';
import { StartupError } from './startup-error';

export interface ListenAddress {
  /** The config field of the port, for messages. */
  field: string;
  host: string;
  port: number;
}

export function listenAddresses(config: Config): ListenAddress[] {
  return [
    { field: 'server.port', host: config.server.host, port: config.server.port },
    ...(config.metrics ? [{ field: 'metrics.port', ...config.metrics }] : []),
    ...(config.publishing ? [{ field: 'publishing.port', host: config.publishing.host, port: config.publishing.port }] : []),
  ];
}

/**
 * One problem per address that cannot be bound (port in use, address not on this host, port needing a
 * privilege), naming its field. All are held at once, so two listeners on one port are found too; every one is
 * closed before this returns. Port 0 (any free port) always binds.
 */
export async function listenProblems(addresses: ListenAddress[]): Promise<string[]> {
  const bound: Server[] = [];
  const problems: string[] = [];
  try {
    for (const a of addresses) {
      const server = createServer();
      const error = await new Promise<Error | undefined>((resolve) => {
        server.once('error', resolve);
        server.listen(a.port, a.host, () => resolve(undefined));
      });
      if (error) problems.push(`${a.field}: cannot listen on ${a.host}:${a.port}: ${error.message}`);
      else bound.push(server);
    }
  } finally {
    await Promise.all(bound.map((s) => new Promise((resolve) => s.close(resolve))));
  }
  return problems;
}

/** For startup: fails at the first address that cannot be bound, before a PIN is spent on the token. */
export async function assertListenable(config: Config): Promise<void> {
  const [first] = await listenProblems(listenAddresses(config));
  if (first !== undefined) throw new StartupError(first);
}
