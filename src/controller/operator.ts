// Wires the controller together: informers on exactly what the operator manages, the workqueue,
// the reconciler and the shared token cache. `start` runs until `stop`.
import type { KubernetesObject, V1Namespace, V1Secret, V1ServiceAccount } from "@kubernetes/client-node";
import { GROUP, PLURAL, VERSION, type ECRPullSecret } from "../api/types.ts";
import { defaultChainSource } from "../aws/credentials.ts";
import { createTokenCache, type TokenCache } from "../aws/token-cache.ts";
import { EcrClientPool } from "../aws/token.ts";
import type { Config } from "../config.ts";
import { systemClock, type Clock } from "../clock.ts";
import { createEventRecorder } from "../kube/events.ts";
import { dropManagedFields, Informer } from "../kube/informer/informer.ts";
import { StringInterner } from "../kube/interner.ts";
import type { ClusterConnection } from "../kube/kubeconfig/cluster-access.ts";
import { KubeClient } from "../kube/rest.ts";
import { Workqueue, runWorkers, type WorkResult } from "../kube/workqueue.ts";
import type { Logger } from "../observability/logger.ts";
import { unobserved, type Observer } from "../observability/observer.ts";
import { ClusterCache, internedValues, internSecretData } from "./cluster-cache.ts";
import { createTokenContentSource } from "./content.ts";
import { CredentialStore } from "./credentials-store.ts";
import { MANAGED_SECRETS_SELECTOR, OWNER_LABEL } from "./plan/labels.ts";
import { Reconciler, type ReconcileReport } from "./reconciler.ts";
import { Sweeper } from "./sweeper.ts";
import { RetryLater } from "./retry-later.ts";
import { SpecResolver } from "./spec-resolver.ts";
import { createWriter, type PlannedChange } from "./writer.ts";
import { rotationPolicy } from "../webhook/certificates.ts";
import { FileTls } from "../webhook/file-tls.ts";
import { PodWebhook } from "../webhook/pod-webhook.ts";
import { SelfManagedTls } from "../webhook/self-managed-tls.ts";
import type { TlsSource } from "../webhook/server.ts";

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
}

/** Strips what the operator never reads, to keep the caches small. */
function slim(obj: KubernetesObject): KubernetesObject {
  delete obj.metadata?.annotations?.["kubectl.kubernetes.io/last-applied-configuration"];
  return dropManagedFields(obj);
}

export class Operator {
  readonly queue: Workqueue;
  readonly tokens: TokenCache;
  /** The SDK clients every mint goes through, closed when the operator stops. */
  private readonly awsClients = new EcrClientPool();
  private readonly options: OperatorOptions;
  private readonly clock: Clock;
  private readonly log: Logger;
  private readonly crs: Informer<ECRPullSecret>;
  private readonly namespaces: Informer<V1Namespace>;
  private readonly serviceAccounts: Informer<V1ServiceAccount>;
  private readonly secrets: Informer<V1Secret>;
  private readonly credentials: CredentialStore;
  private readonly reconciler: Reconciler;
  private readonly sweeper: Sweeper;
  private workers: Promise<void> | undefined;
  private resyncTimer: NodeJS.Timeout | undefined;
  private readonly observer: Observer;
  /** The Pod admission webhook, with --webhook-addr; every replica serves it. */
  private readonly webhook: PodWebhook | undefined;

  constructor(options: OperatorOptions) {
    this.options = options;
    const { config, kubeConfig, log } = options;
    this.clock = options.clock ?? systemClock;
    this.log = log;
    const observer = options.observer ?? unobserved;
    this.observer = observer;
    this.queue = new Workqueue({
      clock: this.clock,
      hooks: {
        onAdd: () => {
          observer.observe({ type: "QueueAdded" });
        },
        onRetry: () => {
          observer.observe({ type: "QueueRetried" });
        },
        onDepth: (depth) => {
          observer.observe({ type: "QueueDepth", depth });
        },
      },
    });

    const informer = <T extends KubernetesObject>(
      name: string,
      path: string,
      labelSelector?: string,
      transform: (raw: KubernetesObject) => KubernetesObject = slim,
    ): Informer<T> =>
      new Informer<T>({
        name,
        kubeConfig,
        path,
        labelSelector,
        clock: this.clock,
        transform: (raw) => transform(raw) as T,
        hooks: {
          onWatchRestart: (reason) => {
            observer.observe({ type: "WatchRestarted", resource: name, reason });
            log.debug({ informer: name, reason }, "watch restarted");
          },
          onError: (err) => {
            observer.observe({ type: "ApiError", kind: err.kind });
            log.warn({ informer: name, err: err.message }, "watch failed; retrying");
          },
        },
      });
    this.crs = informer<ECRPullSecret>("ecrpullsecrets", `/apis/${GROUP}/${VERSION}/${PLURAL}`);
    this.namespaces = informer<V1Namespace>("namespaces", "/api/v1/namespaces");
    this.serviceAccounts = informer<V1ServiceAccount>("serviceaccounts", "/api/v1/serviceaccounts");
    const tokenContent = new StringInterner(internedValues);
    this.secrets = informer<V1Secret>("secrets", "/api/v1/secrets", MANAGED_SECRETS_SELECTOR, (raw) =>
      internSecretData(slim(raw), tokenContent),
    );

    const kube = new KubeClient(kubeConfig);
    const cache = new ClusterCache(
      {
        ecrPullSecrets: this.crs,
        namespaces: this.namespaces,
        serviceAccounts: this.serviceAccounts,
        secrets: this.secrets,
      },
      this.clock,
      tokenContent,
    );
    const specs = new SpecResolver({
      defaultRegion: config.region,
      trustedNamespaces: new Set(config.trustedCredentialsNamespaces),
    });
    this.credentials = new CredentialStore({
      kubeConfig,
      defaultSecret: config.credentialsSecret,
      defaultChain: () => defaultChainSource(config.awsEndpoints.sts),
      stsOptions: { endpoint: config.awsEndpoints.sts, region: config.region ?? "us-east-1" },
      onChange: (ref) => {
        log.info({ secret: `${ref.namespace}/${ref.name}` }, "credentials Secret changed");
        this.enqueueAll();
      },
      onRetired: (sourceKeyPrefix) => {
        this.tokens.invalidate(sourceKeyPrefix);
      },
    });
    this.tokens = createTokenCache({
      clock: this.clock,
      clients: this.awsClients,
      endpoints: config.awsEndpoints,
      onMint: (target, result) => {
        observer.observe({ type: "TokenMinted", region: target.region, result });
      },
    });
    const canWrite = options.canWrite ?? (() => true);
    if (config.webhookAddr !== undefined) {
      this.webhook = new PodWebhook({
        addr: config.webhookAddr,
        tls: this.webhookTls(canWrite),
        ecrPullSecrets: this.crs,
        namespaces: this.namespaces,
        serviceAccounts: this.serviceAccounts,
        specs,
        clock: this.clock,
        log,
        observer,
      });
    }
    const writer = createWriter({
      kube,
      events: createEventRecorder({
        kube,
        clock: this.clock,
        component: "ecr-creds-refresher",
        // The API server accepts Events about cluster-scoped objects only in "default".
        clusterScopedNamespace: "default",
        onError: (err) => {
          log.debug({ err: err.message }, "could not record an Event");
        },
      }),
      log,
      canWrite,
      dryRun: config.dryRun,
      onPlannedChange:
        options.onPlannedChange ??
        ((change) => {
          log.info(change, "dry run: would change");
        }),
    });
    this.reconciler = new Reconciler({
      cache,
      specs,
      content: createTokenContentSource({
        credentials: this.credentials,
        tokens: this.tokens,
        clock: this.clock,
        observer,
      }),
      writer,
      clock: this.clock,
      log,
      observer,
      writeConcurrency: config.writeConcurrency,
      minRequeueMs: options.minRequeueMs ?? 10_000,
      conflictRequeueMs: 5 * 60_000,
    });
    this.sweeper = new Sweeper({
      cache,
      specs,
      writer,
      writeConcurrency: config.writeConcurrency,
      observer,
      clock: this.clock,
      log,
      intervalMs: this.resyncIntervalMs(),
    });

    this.crs.addHandlers({
      onAdd: (cr) => {
        this.enqueue(cr);
      },
      onUpdate: (cr) => {
        this.enqueue(cr);
      },
      onDelete: (cr) => {
        specs.forget(cr.metadata.uid ?? "");
        // Other CRs may now hold a Secret name this one held.
        this.enqueueAll();
        this.sweeper.request();
      },
    });
    const everyCr = {
      onAdd: () => {
        this.enqueueAll();
      },
      onUpdate: () => {
        this.enqueueAll();
      },
      onDelete: () => {
        this.enqueueAll();
      },
    };
    this.namespaces.addHandlers(everyCr);
    this.serviceAccounts.addHandlers(everyCr);
    const owner = (secret: V1Secret): void => {
      const name = secret.metadata?.labels?.[OWNER_LABEL];
      if (name !== undefined) this.queue.add(name);
    };
    this.secrets.addHandlers({ onAdd: owner, onUpdate: owner, onDelete: owner });
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
      canWrite: () => canWrite() && !config.dryRun,
      onApiError: (kind) => {
        this.observer.observe({ type: "ApiError", kind });
      },
    });
  }

  private resyncIntervalMs(): number {
    return this.options.resyncIntervalMs ?? 10 * 60_000;
  }

  private enqueue(cr: ECRPullSecret): void {
    const name = cr.metadata.name;
    if (name !== undefined) this.queue.add(name);
  }

  private enqueueAll(): void {
    if (!this.crs.hasSynced()) {
      return;
    }
    for (const cr of this.crs.list()) {
      this.enqueue(cr);
    }
  }

  private informers(): Informer<KubernetesObject>[] {
    return [this.crs, this.namespaces, this.serviceAccounts, this.secrets] as Informer<KubernetesObject>[];
  }

  /** Starts the informers and waits until every cache holds a full list. */
  async startCaches(signal?: AbortSignal): Promise<void> {
    const credentialWatches = [];
    if (this.options.config.credentialsSecret !== undefined) {
      credentialWatches.push(this.credentials.watch(this.options.config.credentialsSecret));
    }
    for (const informer of this.informers()) {
      informer.start();
    }
    await Promise.all(this.informers().map((informer) => informer.waitForSync(signal)));
    // Read the credentials the CRs name before the first reconcile needs them.
    const trusted = new Set(this.options.config.trustedCredentialsNamespaces);
    for (const cr of this.crs.list()) {
      const ref = cr.spec.aws?.credentialsSecretRef;
      if (ref !== undefined && trusted.has(ref.namespace))
        credentialWatches.push(this.credentials.watch(ref));
    }
    await Promise.all(credentialWatches.map((informer) => informer.waitForSync(signal)));
    this.log.info(
      {
        ecrPullSecrets: this.crs.size(),
        namespaces: this.namespaces.size(),
        serviceAccounts: this.serviceAccounts.size(),
        managedSecrets: this.secrets.size(),
      },
      "caches synced",
    );
  }

  /** The managed Secrets the operator holds in memory, as namespace/name (for tests and debugging). */
  cachedSecretKeys(): string[] {
    return this.secrets.list().map((s) => `${s.metadata?.namespace ?? ""}/${s.metadata?.name ?? ""}`);
  }

  cachesSynced(): boolean {
    return this.informers().every((informer) => informer.hasSynced());
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
    const names = this.crs
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
    const stuck = this.informers().filter((informer) => now - informer.lastActivity() > stuckAfterMs);
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
    await Promise.all([...this.informers().map((informer) => informer.stop()), this.credentials.stop()]);
    this.awsClients.destroy();
  }
}
