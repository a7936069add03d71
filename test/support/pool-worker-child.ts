// Child-process entry for test/worker-pool: a minimal serving process. On init it listens on the shared port (through
// node:cluster) and answers every HTTP request with its pid; on drain it stops listening and exits.
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { systemClock } from '../../src/clock';
import { Channel, IpcEndpoint } from '../../src/cluster/channel';

const server = createServer((_req, res) => res.end(String(process.pid)));
new Channel(process as unknown as IpcEndpoint, {
  init: (c: { generation: number; port: number }) =>
    new Promise((resolve) => server.listen(c.port, '127.0.0.1', () => resolve({ port: (server.address() as AddressInfo).port, generation: c.generation }))),
  whoami: () => ({ slot: Number(process.env.OCSP_HSM_WORKER), pid: process.pid }),
  drain: () => server.close(() => process.exit(0)),
}, systemClock);
for (const s of ['SIGTERM', 'SIGINT'] as const) process.on(s, () => undefined);
