// The Pod admission webhook as the operator runs it on every replica: answers each review from
// the informer caches (no API call per request), with the decision of pod-pull-secrets.ts, and
// serves with the certificate its TLS source provides.
import type { KubernetesObject, V1Namespace, V1ServiceAccount } from "@kubernetes/client-node";
import type { ECRPullSecret } from "../api/types.ts";
import { namespaceView } from "../controller/cluster-cache.ts";
import type { SpecResolver } from "../controller/spec-resolver.ts";
import type { Clock } from "../clock.ts";
import type { Informer } from "../kube/informer/informer.ts";
import type { Logger } from "../observability/logger.ts";
import type { Observer, WebhookResult } from "../observability/observer.ts";
import {
  allowResponse,
  InvalidReview,
  isPodCreate,
  parseAdmissionReview,
  type PodCreate,
} from "./admission-review.ts";
import {
  decidePodPullSecrets,
  imagePullSecretsPatch,
  podServiceAccount,
  type PodDecision,
} from "./pod-pull-secrets.ts";
import { WebhookServer, type TlsSource } from "./server.ts";

/**
 * How long a review waits for the watch to deliver a namespace or ServiceAccount the cache does not
 * have yet (a namespace created a moment ago); well inside the API server's 3 s timeout.
 */
const arrivalWaitMs = 500;

export interface PodWebhookOptions {
  addr: string;
  tls: TlsSource;
  ecrPullSecrets: Informer<ECRPullSecret>;
  namespaces: Informer<V1Namespace>;
  serviceAccounts: Informer<V1ServiceAccount>;
  specs: SpecResolver;
  clock: Clock;
  log: Logger;
  /** Told of each review, mutation and certificate, for metrics. */
  observer: Observer;
}

/** Resolves lookups of objects the informer has not delivered yet, once it does (or a timeout passes). */
class Arrivals<T extends KubernetesObject> {
  readonly #informer: Informer<T>;
  readonly #clock: Clock;
  readonly #waiters = new Map<string, Set<(obj: T) => void>>();

  constructor(informer: Informer<T>, clock: Clock) {
    this.#informer = informer;
    this.#clock = clock;
    informer.addHandlers({
      onAdd: (obj) => {
        const key = `${obj.metadata?.namespace ?? ""}/${obj.metadata?.name ?? ""}`;
        for (const waiter of this.#waiters.get(key) ?? []) waiter(obj);
      },
    });
  }

  get(name: string, namespace = "", timeoutMs = arrivalWaitMs): Promise<T | undefined> {
    const cached = this.#informer.get(name, namespace);
    if (cached !== undefined) return Promise.resolve(cached);
    const key = `${namespace}/${name}`;
    return new Promise((resolve) => {
      const waiters = this.#waiters.get(key) ?? new Set();
      this.#waiters.set(key, waiters);
      const done = (obj: T | undefined): void => {
        this.#clock.clearTimer(timer);
        waiters.delete(done);
        if (waiters.size === 0) this.#waiters.delete(key);
        resolve(obj);
      };
      const timer = this.#clock.setTimer(() => {
        done(undefined);
      }, timeoutMs);
      waiters.add(done);
    });
  }
}

export class PodWebhook {
  readonly #options: PodWebhookOptions;
  readonly #server: WebhookServer;
  readonly #namespaces: Arrivals<V1Namespace>;
  readonly #serviceAccounts: Arrivals<V1ServiceAccount>;

  constructor(options: PodWebhookOptions) {
    this.#options = options;
    this.#server = new WebhookServer(options.addr, (body) => this.#review(body));
    this.#namespaces = new Arrivals(options.namespaces, options.clock);
    this.#serviceAccounts = new Arrivals(options.serviceAccounts, options.clock);
  }

  /** host:port once serving. */
  get address(): string | undefined {
    return this.#server.address;
  }

  /** Starts the TLS source; the server listens once it has a certificate. */
  start(): void {
    const { tls, log, observer } = this.#options;
    tls.onCertificate((cert) => {
      const first = this.#server.address === undefined;
      this.#server.serve(cert).then(
        () => {
          observer.observe({ type: "WebhookCertificateServed", notAfter: cert.notAfter });
          const fields = { address: this.#server.address, notAfter: new Date(cert.notAfter).toISOString() };
          log.info(fields, first ? "webhook serving" : "webhook serving certificate replaced");
        },
        (err: unknown) => {
          log.error({ err: err instanceof Error ? err.message : "unknown" }, "webhook cannot serve");
        },
      );
    });
    tls.start();
  }

  /** Look at the certificates again now: this replica may have become the one that writes them. */
  kick(): void {
    this.#options.tls.kick();
  }

  /** Why this replica cannot answer reviews yet, for /readyz. */
  readiness(): string | undefined {
    return this.#server.address === undefined ? "webhook has no serving certificate yet" : undefined;
  }

  async stop(): Promise<void> {
    await this.#options.tls.stop();
    await this.#server.close();
  }

  async #review(body: unknown): Promise<{ status: number; body: object | string }> {
    const started = performance.now();
    let result: WebhookResult = "unchanged";
    try {
      const request = parseAdmissionReview(body);
      if (!isPodCreate(request)) return { status: 200, body: allowResponse(request.uid) };
      const decision = await this.#decide(request);
      if (decision.result === "unchanged") return { status: 200, body: allowResponse(request.uid) };
      result = "mutated";
      this.#recordMutation(request, decision);
      const patch = imagePullSecretsPatch(request.pod.imagePullSecrets, decision.add);
      return { status: 200, body: allowResponse(request.uid, patch) };
    } catch (err) {
      if (!(err instanceof InvalidReview)) throw err;
      result = "invalid";
      return { status: 400, body: err.message };
    } finally {
      const seconds = (performance.now() - started) / 1000;
      this.#options.observer.observe({ type: "WebhookAnswered", result, seconds });
    }
  }

  async #decide(request: PodCreate): Promise<PodDecision> {
    const { pod } = request;
    const { specs } = this.#options;
    const namespace = await this.#namespaces.get(pod.namespace);
    // The account's entries matter only for telling the Pod's own list from a copied one.
    const serviceAccount =
      (pod.imagePullSecrets ?? []).length === 0
        ? undefined
        : await this.#serviceAccounts.get(podServiceAccount(pod), pod.namespace);
    return decidePodPullSecrets({
      pod,
      namespace: namespace === undefined ? undefined : namespaceView(namespace),
      serviceAccountPullSecrets: serviceAccount?.imagePullSecrets?.map((ref) => ref.name ?? ""),
      claims: this.#options.ecrPullSecrets.list().map((cr) => ({ cr, spec: specs.resolved(cr) })),
    });
  }

  #recordMutation(request: PodCreate, decision: Extract<PodDecision, { result: "mutated" }>): void {
    const { log, observer } = this.#options;
    for (const name of decision.ecrPullSecrets) observer.observe({ type: "PodMutated", ecrPullSecret: name });
    log.debug(
      {
        namespace: request.pod.namespace,
        pod: request.podName,
        serviceAccount: podServiceAccount(request.pod),
        added: decision.add,
        ecrPullSecrets: decision.ecrPullSecrets,
        dryRun: request.dryRun,
      },
      "added pull secrets to a Pod",
    );
  }
}
