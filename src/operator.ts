// Wires the operator together: the informers (informers.ts) and what their changes enqueue
// (watches.ts), the workqueue and its workers, the reconciler, the sweeper and the writer they
// share, the token cache and the Pod webhook. `start` runs until `stop`.
import type { KubernetesObject, V1Secret, V1ServiceAccount } from "@kubernetes/client-node";
import { defaultChainSource } from "./aws/credentials.ts";
import { createTokenCache, type TokenCache } from "./aws/token-cache.ts";
import { EcrClientPool } from "./aws/token.ts";
import type { Config } from "./config.ts";
import { systemClock, type Clock } from "./clock.ts";
import { createEventRecorder, type EventRecorder } from "./kube/events.ts";
import { StringInterner } from "./kube/interner.ts";
import type { ClusterConnection } from "./kube/kubeconfig/cluster-access.ts";
import { KubeClient } from "./kube/rest.ts";
import { Workqueue, runWorkers, type WorkqueueHooks, type WorkResult } from "./kube/workqueue.ts";
import type { Logger } from "./observability/logger.ts";
import { unobserved, type Observer } from "./observability/observer.ts";
import { ClusterCache, internedValues } from "./controller/cluster-cache.ts";
import { createTokenContentSource } from "./controller/content.ts";
import { CredentialStore } from "./controller/credentials-store.ts";
import { createInformers, informerList, type ControllerInformers } from "./controller/informers.ts";
import { Reconciler, type ReconcileReport } from "./controller/reconciler.ts";
import { RetryLater } from "./controller/retry-later.ts";
import { SpecResolver } from "./controller/spec-resolver.ts";
import { Sweeper } from "./controller/sweeper.ts";
import { watch } from "./controller/watches.ts";
import {
  createWriter,
  ownedSecretPages,
  readManagedSecret,
  type PlannedChange,
} from "./controller/writer.ts";
import { rotationPolicy } from "./webhook/certificates.ts";
import { FileTls } from "./webhook/file-tls.ts";
import { PodWebhook } from "./webhook/pod-webhook.ts";
import { SelfManagedTls } from "./webhook/self-managed-tls.ts";
import type { TlsSource } from "./webhook/server.ts";

export interface OperatorOptions {
  config: Config;
  kubeConfig: ClusterConnection;
  log: Logger;
  /** Told what happens, for metrics; default: nobody. */
  observer?: Observer;
  clock?: Clock;
  /** Writes are allowed only while this says so (leader election); default: always. */
  canWrite?: () => boolean;
  /** With config.dryRun: receives every change the operator would make. */
  onPlannedChange?: (change: PlannedChange) => void;
  /** Period of the full resync that re-enqueues every CR. */
  resyncIntervalMs?: number;
  /** Shortest requeue delay. */
  minRequeueMs?: number;
  /** Longest wait for a full pass over every namespace after a pass over a few of them. */
  fullPassDelayMs?: number;
}

const defaultResyncIntervalMs = 10 * 60_000;

function queueHooks(observer: Observer): WorkqueueHooks {
  return {
    onAdd: () => {
      observer.observe({ type: "QueueAdded" });
    },
    onRetry: () => {
      observer.observe({ type: "QueueRetried" });
    },
    onDepth: (depth) => {
      observer.observe({ type: "QueueDepth", depth });
    },
  };
}

export class Operator {
  readonly queue: Workqueue;
  readonly tokens: TokenCache;
  private readonly options: OperatorOptions;
  private readonly clock: Clock;
  private readonly log: Logger;
  private readonly observer: Observer;
  private readonly informers: ControllerInformers;
  private readonly credentials: CredentialStore;
  /** The SDK clients every mint goes through, closed when the operator stops. */
  private readonly awsClients = new EcrClientPool();
  private readonly reconciler: Reconciler;
  private readonly sweeper: Sweeper;
  /** The Pod admission webhook, with --webhook-addr; every replica serves it. */
  private readonly webhook: PodWebhook | undefined;
  private workers: Promise<void> | undefined;
  private resyncTimer: NodeJS.Timeout | undefined;

  constructor(options: OperatorOptions) {
    this.options = options;
    const { config, kubeConfig, log } = options;
    const clock = options.clock ?? systemClock;
    const observer = options.observer ?? unobserved;
    const canWrite = options.canWrite ?? (() => true);
    this.clock = clock;
    this.log = log;
    this.observer = observer;

    this.queue = new Workqueue({ clock, hooks: queueHooks(observer) });
    const secretData = new StringInterner(internedValues);
    // The cache reads the informers, and the Secrets' informer reads the cache's record of our writes.
    const completeSecret = (raw: KubernetesObject): V1Secret => cache.completeSecret(raw);
    this.informers = createInformers({ kubeConfig, clock, log, observer, secretData, completeSecret });
    const cache = new ClusterCache(this.informers, clock, secretData);
    // Our written copies leave the overlay as soon as the watch shows them, not at the next read:
    // after a converge, most would otherwise stay until the next refresh.
    const settleSecret = (secret: V1Secret): void => {
      cache.settleSecret(secret);
    };
    const settleServiceAccount = (sa: V1ServiceAccount): void => {
      cache.settleServiceAccount(sa);
    };
    this.informers.secrets.addHandlers({
      onAdd: settleSecret,
      onUpdate: settleSecret,
      onDelete: settleSecret,
    });
    this.informers.serviceAccounts.addHandlers({
      onAdd: settleServiceAccount,
      onUpdate: settleServiceAccount,
      onDelete: settleServiceAccount,
    });
    const specs = new SpecResolver({
      defaultRegion: config.region,
      trustedNamespaces: new Set(config.trustedCredentialsNamespaces),
    });
    this.credentials = new CredentialStore({
      kubeConfig,
      defaultSecret: config.credentialsSecret,
      defaultChain: () => defaultChainSource(config.awsEndpoints.sts),
      stsOptions: { endpoint: config.awsEndpoints.sts, region: config.region ?? "us-east-1" },
      // Any CR may use the credentials of a Secret that changed.
      onChange: (ref) => {
        log.info({ secret: `${ref.namespace}/${ref.name}` }, "credentials Secret changed");
        this.enqueueAll();
      },
      onRetired: (sourceKeyPrefix) => {
        this.tokens.invalidate(sourceKeyPrefix);
      },
    });
    this.tokens = createTokenCache({
      clock,
      clients: this.awsClients,
      endpoints: config.awsEndpoints,
      onMint: (target, result) => {
        observer.observe({ type: "TokenMinted", region: target.region, result });
      },
    });
    const kube = new KubeClient(kubeConfig);
    const writer = createWriter({
      kube,
      events: this.eventRecorder(kube),
      log,
      canWrite,
      dryRun: config.dryRun,
      onPlannedChange:
        options.onPlannedChange ??
        ((change) => {
          log.info(change, "dry run: would change");
        }),
    });
    const writing = { cache, writer, writeConcurrency: config.writeConcurrency, observer, clock, log };
    this.reconciler = new Reconciler({
      ...writing,
      readSecret: (namespace, name) => readManagedSecret(kube, namespace, name),
      ownedSecretPages: (owner) => ownedSecretPages(kube, owner),
      specs,
      content: createTokenContentSource({
        credentials: this.credentials,
        tokens: this.tokens,
        clock,
        observer,
      }),
      minRequeueMs: options.minRequeueMs ?? 10_000,
      conflictRequeueMs: 5 * 60_000,
      fullPassDelayMs: options.fullPassDelayMs ?? 2000,
    });
    this.sweeper = new Sweeper({ ...writing, specs, intervalMs: this.resyncIntervalMs() });
    this.webhook =
      config.webhookAddr === undefined
        ? undefined
        : new PodWebhook({
            addr: config.webhookAddr,
            tls: this.webhookTls(canWrite),
            ecrPullSecrets: this.informers.ecrPullSecrets,
            namespaces: this.informers.namespaces,
            serviceAccounts: this.informers.serviceAccounts,
            specs,
            clock,
            log,
            observer,
          });

    watch(this.informers, {
      enqueue: (name) => {
        this.enqueue(name);
      },
      enqueueAll: () => {
        this.enqueueAll();
      },
      touch: (namespace, name) => {
        this.touch(namespace, name);
      },
      ownStatus: (cr, old) => this.reconciler.isOwnStatus(cr, old),
      forget: (cr) => {
        specs.forget(cr.metadata.uid ?? "");
      },
      sweep: () => {
        this.sweeper.request();
      },
    });
  }

  private eventRecorder(kube: KubeClient): EventRecorder {
    return createEventRecorder({
      kube,
      clock: this.clock,
      component: "ecr-creds-refresher",
      // The API server accepts Events about cluster-scoped objects only in "default".
      clusterScopedNamespace: "default",
      onError: (err) => {
        this.log.debug({ err: err.message }, "could not record an Event");
      },
    });
  }

  private webhookTls(canWrite: () => boolean): TlsSource {
    const { config, kubeConfig, log } = this.options;
    if (config.webhookCertDir !== undefined) return new FileTls(config.webhookCertDir, this.clock, log);
    return new SelfManagedTls({
      kubeConfig,
      namespace: config.operatorNamespace,
      secretName: config.webhookSecret,
      webhookConfigurationName: config.webhookConfiguration,
      hosts: config.webhookCertHosts,
      policy: rotationPolicy(config.webhookCertValidity),
      clock: this.clock,
      log,
      // A dry run leaves the webhook's certificates alone too.
      canWrite: () => canWrite() && !config.dryRun,
      onApiError: (kind) => {
        this.observer.observe({ type: "ApiError", kind });
      },
    });
  }

  private resyncIntervalMs(): number {
    return this.options.resyncIntervalMs ?? defaultResyncIntervalMs;
  }

  private enqueueAll(): void {
    const crs = this.informers.ecrPullSecrets;
    if (!crs.hasSynced()) {
      return;
    }
    for (const cr of crs.list()) {
      if (cr.metadata.name !== undefined) this.enqueue(cr.metadata.name);
    }
  }

  /** Queues the CR `name` for a pass over every namespace. */
  private enqueue(name: string): void {
    this.reconciler.requestFullPass(name);
    this.queue.add(name);
  }

  /**
   * Queues the CR `name`, or every CR, for a change in `namespace`. Before the workers start, the
   * full pass they begin with covers it.
   */
  private touch(namespace: string, name: string | undefined): void {
    if (this.workers === undefined) return;
    const names =
      name === undefined ? this.informers.ecrPullSecrets.list().map((cr) => cr.metadata.name) : [name];
    for (const each of names) {
      if (each === undefined) continue;
      this.reconciler.touch(each, namespace);
      this.queue.add(each);
    }
  }

  /** Starts the informers and waits until every cache holds a full list. */
  async startCaches(signal?: AbortSignal): Promise<void> {
    const { config } = this.options;
    const credentialWatches = [];
    if (config.credentialsSecret !== undefined) {
      credentialWatches.push(this.credentials.watch(config.credentialsSecret));
    }
    const informers = informerList(this.informers);
    for (const informer of informers) {
      informer.start();
    }
    await Promise.all(informers.map((informer) => informer.waitForSync(signal)));
    // Read the credentials the CRs name before the first reconcile needs them.
    const trusted = new Set(config.trustedCredentialsNamespaces);
    for (const cr of this.informers.ecrPullSecrets.list()) {
      const ref = cr.spec.aws?.credentialsSecretRef;
      if (ref !== undefined && trusted.has(ref.namespace))
        credentialWatches.push(this.credentials.watch(ref));
    }
    await Promise.all(credentialWatches.map((informer) => informer.waitForSync(signal)));
    this.log.info(
      {
        ecrPullSecrets: this.informers.ecrPullSecrets.size(),
        namespaces: this.informers.namespaces.size(),
        serviceAccounts: this.informers.serviceAccounts.size(),
        managedSecrets: this.informers.secrets.size(),
      },
      "caches synced",
    );
  }

  /** Loads the ECR SDK ahead of the first mint, which otherwise loads it. */
  preloadSdk(): Promise<void> {
    return this.awsClients.preload();
  }

  /** The managed Secrets the operator holds in memory, as namespace/name (for tests and debugging). */
  cachedSecretKeys(): string[] {
    return this.informers.secrets
      .list()
      .map((s) => `${s.metadata?.namespace ?? ""}/${s.metadata?.name ?? ""}`);
  }

  cachesSynced(): boolean {
    return informerList(this.informers).every((informer) => informer.hasSynced());
  }

  /** Serves the Pod admission webhook (with --webhook-addr) once its certificate is at hand. */
  startWebhook(): void {
    this.webhook?.start();
  }

  /** Where the webhook listens (host:port), once it does. */
  webhookAddress(): string | undefined {
    return this.webhook?.address;
  }

  /** Starts reconciling: every CR now, then on every change. */
  startWorkers(): void {
    // This replica may now write: the webhook's certificates are its job too.
    this.webhook?.kick();
    this.observer.observe({ type: "Leading", leading: true });
    this.enqueueAll();
    this.sweeper.start();
    const reconcile = (name: string): Promise<WorkResult> => this.reconciler.reconcile(name);
    this.workers = runWorkers(this.queue, this.options.config.workers, reconcile, {
      onError: (name, err) => {
        const message = err instanceof Error ? err.message : "unknown error";
        const level = err instanceof RetryLater ? "info" : "error";
        this.log[level](
          { cr: name, err: message, retries: this.queue.numRequeues(name) },
          "reconcile will be retried",
        );
      },
    });
    // A full resync now and then, as controller-runtime does, catches anything a watch missed.
    this.resyncTimer = setInterval(() => {
      this.enqueueAll();
    }, this.resyncIntervalMs());
    this.resyncTimer.unref();
  }

  /**
   * One pass over every CR, without requeues: for `once`. Returns each CR's report; a CR whose
   * reconcile failed still has one (its status says why).
   */
  async reconcileAllOnce(): Promise<ReconcileReport[]> {
    const reports: ReconcileReport[] = [];
    const names = this.informers.ecrPullSecrets
      .list()
      .map((cr) => cr.metadata.name ?? "")
      .sort();
    for (const name of names) {
      try {
        await this.reconciler.reconcile(name);
      } catch (err) {
        this.log.warn({ cr: name, err: err instanceof Error ? err.message : "unknown" }, "reconcile failed");
      }
      const report = this.reconciler.lastReport(name);
      if (report !== undefined) reports.push(report);
    }
    return reports;
  }

  /** Why the operator is not alive, for /healthz: a watch that has seen nothing for too long. */
  liveness(stuckAfterMs: number): string | undefined {
    const now = this.clock.now();
    const stuck = informerList(this.informers).filter(
      (informer) => now - informer.lastActivity() > stuckAfterMs,
    );
    return stuck.length === 0
      ? undefined
      : `watches stuck for more than ${Math.round(stuckAfterMs / 1000)} s: ${stuck.length}`;
  }

  /** Why the operator is not ready, for /readyz. */
  readiness(): string | undefined {
    if (!this.cachesSynced()) return "caches not synced yet";
    return this.webhook?.readiness();
  }

  async start(signal?: AbortSignal): Promise<void> {
    await this.startCaches(signal);
    this.startWebhook();
    this.startWorkers();
  }

  async stop(): Promise<void> {
    if (this.resyncTimer !== undefined) clearInterval(this.resyncTimer);
    await Promise.all([this.queue.shutDownWithDrain(), this.sweeper.stop()]);
    await this.workers;
    // Admission reviews are answered until the end; the informers they read stop after.
    await this.webhook?.stop();
    await Promise.all([
      ...informerList(this.informers).map((informer) => informer.stop()),
      this.credentials.stop(),
    ]);
    this.awsClients.destroy();
  }
}
