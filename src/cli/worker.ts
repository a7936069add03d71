// A serving process of several (server.workers > 1): answers the OCSP port (shared through node:cluster) from its
// own memory cache, request memo, store connection and change follower, and signs through the primary, which holds
// the tokens and the signing limiters (cluster/remote-signer.ts). Its configuration comes from the primary, never
// from the file: a process started again after a crash serves what the others serve.
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import { Registry } from 'prom-client';
import { Clock, systemClock } from '../clock';
import { LoadedConfig, loadedConfigOf } from '../config/load';
import type { OcspHandler } from '../http/ocsp-handler';
import { ChangeMetrics } from '../metrics/change-metrics';
import { IndexMetrics } from '../metrics/index-metrics';
import { PreSignerMetrics } from '../metrics/presign-metrics';
import { createRegistry } from '../metrics/registry';
import { signerIdOf } from '../source/authority';
import type { Store } from '../store/response-store';
import { Channel, ChannelClosedError, IpcEndpoint } from '../cluster/channel';
import { InitReply, servingShare, ServingConfig, TO_PRIMARY, TO_WORKER } from '../cluster/protocol';
import { bindingKey, RemoteSigner } from '../cluster/remote-signer';
import { bindAuthorities, SignerFactory } from './bindings';
import { createLogger } from './logger';
import { drain, listen, ocspServer } from './ocsp-listener';
import { buildServing, Serving, SharedParts } from './serving';
import { storeProblems } from './readiness';
import { DaemonStore, openDaemonStore } from './store';
import { responderHeartbeat } from './cluster';
import type { Heartbeat } from '../cluster/heartbeat';

/** Beyond a request's deadline, how long the primary may take: its sign timeout plus this. */
const SIGN_SLACK_MS = 2_000;

export class ServingProcess {
  private readonly channel: Channel;
  private readonly clock: Clock = systemClock;
  private logger: Logger;
  private registry: Registry = createRegistry();
  private loaded: LoadedConfig | undefined;
  private generation = 0;
  private store: Store | undefined;
  private guarded: DaemonStore | undefined;
  private shared: SharedParts | undefined;
  private current: Serving | undefined;
  private prepared: { generation: number; serving: Promise<Serving> } | undefined;
  private server: Server | undefined;
  private ocsp: OcspHandler | undefined;
  private heartbeat: Heartbeat | undefined;
  private stopping = false;

  constructor(
    private readonly slot: number,
    endpoint: IpcEndpoint,
  ) {
    this.logger = createLogger('info').child({ worker: slot });
    this.channel = new Channel(endpoint, {
      [TO_WORKER.init]: (c: ServingConfig) => this.start(c),
      [TO_WORKER.prepare]: (c: ServingConfig) => this.prepare(c),
      [TO_WORKER.commit]: (c: ServingConfig) => this.commit(c),
      [TO_WORKER.abort]: (b: { generation: number }) => this.abort(b.generation),
      [TO_WORKER.apply]: () => this.apply(),
      [TO_WORKER.metrics]: () => this.registry.getMetricsAsJSON(),
      [TO_WORKER.drain]: () => this.stop(),
    }, this.clock);
  }

  /** The primary is gone: nothing can be signed any more; finish what was received and exit. */
  orphaned(): void {
    this.channel.close(new ChannelClosedError('the primary process is gone'));
    void this.stop();
  }

  private async start(c: ServingConfig): Promise<InitReply> {
    try {
      return await this.startOnce(c);
    } catch (e) {
      // The primary hears why (the answer to init); a process that cannot serve has no reason to stay.
      setTimeout(() => process.exit(1), 200);
      throw e;
    }
  }

  private async startOnce(c: ServingConfig): Promise<InitReply> {
    const loaded = (this.loaded = this.share(c));
    const { config } = loaded;
    const { clock } = this;
    this.logger = createLogger(config.log.level).child({ worker: this.slot });
    const logger = this.logger;
    const registry = this.registry;
    this.guarded = await openDaemonStore(loaded, clock, logger, registry);
    const store = (this.store = this.guarded.store);
    // Pre-signing and index following run in the primary: their metrics live there.
    const elsewhere = new Registry();
    const d = c.responder;
    const beat = responderHeartbeat({
      store,
      clock,
      logger,
      config,
      registry,
      identity: { id: `${d.id}#${this.slot}`, host: d.host, pid: d.pid, worker: this.slot },
      follower: () => this.current!.follower,
      ready: () => this.ready(),
    });
    this.shared = {
      store,
      clock,
      logger,
      changeMetrics: new ChangeMetrics(registry),
      preSignerMetrics: new PreSignerMetrics(elsewhere, clock),
      indexMetrics: new IndexMetrics(elsewhere),
      heartbeat: beat.hooks,
    };
    this.current = await this.build(loaded, c.generation);
    this.generation = c.generation;
    // Recorded before the port answers: a serving process without a row is not waited for.
    await (this.heartbeat = beat.heartbeat).start();
    const ready = () => this.ready();
    const metrics = config.metrics ? undefined : { contentType: registry.contentType, metrics: () => this.channel.request<string>(TO_PRIMARY.metrics, null, 10_000) };
    const { server, ocsp } = ocspServer(loaded, () => this.current!, { registry, clock, logger, ready, metrics });
    this.ocsp = ocsp;
    this.server = await listen(server, config.server.host, config.server.port);
    const port = (server.address() as AddressInfo).port;
    logger.info({ pid: process.pid, port }, 'serving process listening');
    return { port, generation: c.generation };
  }

  /** The authorities of a configuration, signing through the primary, and the serving part answering from them. */
  private build(loaded: LoadedConfig, generation: number): Promise<Serving> {
    const tokens = new Map(loaded.config.tokens.map((t) => [t.name, t]));
    const remote: SignerFactory = ({ ca, input, resolved, binding }) => ({
      signer: new RemoteSigner(
        this.channel,
        { generation, key: bindingKey({ name: ca.name, binding }), signerId: signerIdOf(resolved.signerCert) },
        resolved.keySpec.algorithm,
        this.clock,
        (tokens.get(input.signer.token)?.signTimeout ?? 0) + SIGN_SLACK_MS,
      ),
      // The permits are taken in the primary, around the signature itself.
      limiters: [],
    });
    return buildServing(loaded, bindAuthorities(loaded, remote), this.shared!, 'answers');
  }

  private share(c: ServingConfig): LoadedConfig {
    return loadedConfigOf(servingShare(c.config), c.file);
  }

  private prepare(c: ServingConfig): Promise<void> {
    void this.abort(this.prepared?.generation ?? -1);
    const serving = this.build(this.share(c), c.generation);
    this.prepared = { generation: c.generation, serving };
    return serving.then(() => undefined);
  }

  private async commit(c: ServingConfig): Promise<void> {
    if (c.generation <= this.generation) return; // caught up already (a process started during the reload)
    const p = this.prepared?.generation === c.generation ? this.prepared.serving : this.build(this.share(c), c.generation);
    this.prepared = undefined;
    let fresh: Serving;
    try {
      fresh = await p;
    } catch (e) {
      // Serving the old configuration while the primary signs for the new would refuse more and more: start again.
      this.logger.error({ err: (e as Error).message }, 'cannot serve the reloaded configuration: exiting to be started again');
      setTimeout(() => process.exit(1), 200);
      throw e;
    }
    const old = this.current!;
    this.current = fresh;
    this.generation = c.generation;
    this.loaded = this.share(c);
    this.ocsp!.setRoute(fresh.source, fresh.memo);
    await old.close();
  }

  private async abort(generation: number): Promise<void> {
    const p = this.prepared;
    if (!p || p.generation !== generation) return;
    this.prepared = undefined;
    await p.serving.then((s) => s.close(), () => undefined);
  }

  /** Answers once every change recorded so far is applied here (or cannot be: then memory answers nothing). */
  private async apply(): Promise<void> {
    await this.current?.follower.apply().catch(() => undefined);
  }

  private async ready(): Promise<string[]> {
    const [daemon, own] = await Promise.all([
      this.channel.request<string[]>(TO_PRIMARY.ready, null, 2_000).catch((e: Error) => [`primary process: ${e.message}`]),
      storeProblems(this.guarded!, this.current!.follower, this.clock, `store (worker ${this.slot})`),
    ]);
    return [...daemon, ...own];
  }

  private async stop(): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    const timeoutMs = this.loaded?.config.server.shutdownTimeout ?? 0;
    if (this.server) {
      await drain(this.server, this.clock, timeoutMs, () => this.logger.warn({ timeoutMs }, 'requests still in flight at the shutdown timeout: closing their connections'));
    }
    this.ocsp?.close();
    await this.heartbeat?.stop();
    await this.abort(this.prepared?.generation ?? -1);
    await this.current?.close();
    await this.store?.close();
    this.logger.flush();
    process.exit(0);
  }
}

/** The entry of a serving process (cluster/worker-pool.ts starts it with its slot in OCSP_HSM_WORKER). */
export function runServingProcess(): void {
  const slot = Number(process.env.OCSP_HSM_WORKER);
  const p = new ServingProcess(slot, process as unknown as IpcEndpoint);
  // The primary decides when to reload and stop, and tells every serving process: signals sent to the whole
  // process group (a terminal's Ctrl-C, a service manager's stop) must not stop one of them on its own.
  for (const s of ['SIGTERM', 'SIGINT', 'SIGHUP'] as const) process.on(s, () => undefined);
  process.on('disconnect', () => p.orphaned());
}
