// The webhook's own CA and serving certificate, kept in one Secret in the operator's namespace.
// Every replica watches the Secret and serves its certificate; only the one allowed to write (the
// leader) issues, rotates, and keeps the caBundle of the operator's MutatingWebhookConfiguration
// equal to the Secret's trust bundle. Both objects are read by name only.
import type { KubernetesObject, V1Secret } from "@kubernetes/client-node";
import type { Clock, TimerHandle } from "../clock.ts";
import { classifyKubeError, type KubeError, type KubeErrorKind } from "../kube/errors.ts";
import { Informer } from "../kube/informer/informer.ts";
import type { ClusterConnection } from "../kube/kubeconfig/cluster-access.ts";
import { clusterPath, KubeClient, namespacedPath } from "../kube/rest.ts";
import { backoffDelay } from "../kube/workqueue.ts";
import type { Logger } from "../observability/logger.ts";
import { planTls, validityWindow, type RotationPolicy, type TlsPlan } from "./certificates.ts";
import type { ServingCertificate, TlsSource } from "./server.ts";
import {
  bundleFingerprints,
  CA_BUNDLE_KEY,
  CA_KEY_KEY,
  decodeSecretData,
  encodeSecretData,
  parseTlsSecret,
  SERVING_CERT_KEY,
  SERVING_KEY_KEY,
  type ParsedTlsSecret,
} from "./tls-secret.ts";
import { issueCa, issueServing, type IssuedCertificate } from "./x509.ts";

const admissionPrefix = "/apis/admissionregistration.k8s.io/v1";
const webhookConfigurations = "mutatingwebhookconfigurations";
const retryBackoff = { baseMs: 1_000, maxMs: 30_000 };
const caCommonName = "ecr-creds-refresher webhook CA";
const secretLabels = {
  "app.kubernetes.io/name": "ecr-creds-refresher",
  "app.kubernetes.io/component": "webhook-tls",
};

/** The part of a MutatingWebhookConfiguration the operator reads; every other field is kept. */
interface WebhookConfiguration extends KubernetesObject {
  webhooks?: ({ name: string; clientConfig: { caBundle?: string } & Record<string, unknown> } & Record<
    string,
    unknown
  >)[];
}

export interface SelfManagedTlsOptions {
  kubeConfig: ClusterConnection;
  namespace: string;
  secretName: string;
  webhookConfigurationName: string;
  /** DNS names and IP addresses the serving certificate covers. */
  hosts: readonly string[];
  policy: RotationPolicy;
  clock: Clock;
  log: Logger;
  /** Issue and write only while this says so (leader election). */
  canWrite: () => boolean;
  onApiError?: (kind: KubeErrorKind) => void;
}

function versionOf(obj: { metadata?: { resourceVersion?: string } } | undefined): number {
  return Number(obj?.metadata?.resourceVersion ?? Number.NaN);
}

/** The newer of the cached object and the one we wrote last. */
function newest<T extends { metadata?: { resourceVersion?: string } }>(
  cached: T | undefined,
  written: T | undefined,
): T | undefined {
  if (written === undefined) return cached;
  if (cached === undefined) return written;
  return versionOf(cached) >= versionOf(written) ? cached : written;
}

export class SelfManagedTls implements TlsSource {
  readonly #options: SelfManagedTlsOptions;
  readonly #kube: KubeClient;
  readonly #secrets: Informer<V1Secret>;
  readonly #configurations: Informer<WebhookConfiguration>;
  /** When the webhook configuration was first seen trusting each CA (by fingerprint). */
  readonly #trustedSince = new Map<string, number>();
  #listener: ((cert: ServingCertificate) => void) | undefined;
  #writtenSecret: V1Secret | undefined;
  #writtenConfiguration: WebhookConfiguration | undefined;
  #published: string | undefined;
  #syncing: Promise<void> | undefined;
  #again = false;
  #stopped = false;
  #failures = 0;
  #timer: TimerHandle | undefined;
  #reportedMissingConfiguration = false;

  constructor(options: SelfManagedTlsOptions) {
    this.#options = options;
    this.#kube = new KubeClient(options.kubeConfig);
    const hooks = {
      // Changes seen during the first list wait for both lists; this looks once both are in.
      onSynced: () => {
        this.kick();
      },
      onError: (err: KubeError) => {
        options.onApiError?.(err.kind);
        options.log.warn({ err: err.message }, "webhook TLS watch failed; retrying");
      },
    };
    this.#secrets = new Informer<V1Secret>({
      name: "webhook-tls-secret",
      kubeConfig: options.kubeConfig,
      path: namespacedPath("/api/v1", options.namespace, "secrets"),
      fieldSelector: `metadata.name=${options.secretName}`,
      clock: options.clock,
      hooks,
    });
    this.#configurations = new Informer<WebhookConfiguration>({
      name: "webhook-configuration",
      kubeConfig: options.kubeConfig,
      path: `${admissionPrefix}/${webhookConfigurations}`,
      fieldSelector: `metadata.name=${options.webhookConfigurationName}`,
      clock: options.clock,
      hooks,
    });
    const kick = (): void => {
      this.kick();
    };
    const changed = { onAdd: kick, onUpdate: kick, onDelete: kick };
    this.#secrets.addHandlers(changed);
    this.#configurations.addHandlers(changed);
  }

  onCertificate(listener: (cert: ServingCertificate) => void): void {
    this.#listener = listener;
  }

  start(): void {
    this.#secrets.start();
    this.#configurations.start();
  }

  kick(): void {
    if (this.#stopped) return;
    if (this.#syncing !== undefined) {
      this.#again = true;
      return;
    }
    this.#syncing = this.#syncLoop().finally(() => {
      this.#syncing = undefined;
      // A kick that arrived after the last pass looked is not lost.
      if (this.#rerunRequested()) this.kick();
    });
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    this.#clearTimer();
    await this.#syncing;
    await Promise.all([this.#secrets.stop(), this.#configurations.stop()]);
  }

  async #syncLoop(): Promise<void> {
    let again = true;
    while (again && !this.#stopped) {
      this.#again = false;
      if (!this.#secrets.hasSynced() || !this.#configurations.hasSynced()) return;
      let nextAt: number | undefined;
      try {
        nextAt = await this.#sync();
        this.#failures = 0;
      } catch (err) {
        const error = classifyKubeError(err);
        this.#options.onApiError?.(error.kind);
        const delay = backoffDelay(retryBackoff, this.#failures);
        this.#failures += 1;
        this.#options.log.warn(
          { err: error.message, retryInMs: delay },
          "could not write the webhook's certificate or caBundle; retrying",
        );
        nextAt = this.#options.clock.now() + delay;
      }
      this.#schedule(nextAt);
      again = this.#rerunRequested();
    }
  }

  /** Whether a change arrived (or a write was made) while a pass ran. */
  #rerunRequested(): boolean {
    return this.#again;
  }

  /** One pass; returns when to look again (undefined: on the next change only). */
  async #sync(): Promise<number | undefined> {
    const { clock, hosts, policy, canWrite } = this.#options;
    const secret = newest(
      this.#secrets.get(this.#options.secretName, this.#options.namespace),
      this.#writtenSecret,
    );
    const parsed = parseTlsSecret(decodeSecretData(secret?.data), hosts);
    const now = clock.now();
    this.#publish(parsed, now);
    const configuration = newest(
      this.#configurations.get(this.#options.webhookConfigurationName),
      this.#writtenConfiguration,
    );
    this.#observeTrust(configuration, now);
    if (!canWrite()) return undefined;

    const plan = planTls(parsed.state, now, policy, (fingerprint) => this.#trustedSince.get(fingerprint));
    const bundleChanged = plan.keepCas.join() !== parsed.state.cas.map((ca) => ca.fingerprint).join();
    if (plan.newCa || plan.newServing || bundleChanged) {
      const data = await this.#renewedData(parsed, plan, now);
      this.#writtenSecret = await this.#writeSecret(secret, data);
      this.#options.log.info(
        {
          newCa: plan.newCa,
          newServingCertificate: plan.newServing,
          trustedCas: plan.keepCas.length + (plan.newCa ? 1 : 0),
        },
        "webhook certificates written",
      );
      this.#again = true;
      return undefined;
    }
    await this.#ensureCaBundle(configuration, secret?.data?.[CA_BUNDLE_KEY], now);
    return plan.recheckAt;
  }

  #publish(parsed: ParsedTlsSecret, now: number): void {
    const serving = parsed.serving;
    if (serving === undefined || serving.notAfter <= now || serving.certPem === this.#published) return;
    this.#published = serving.certPem;
    this.#listener?.(serving);
  }

  #observeTrust(configuration: WebhookConfiguration | undefined, now: number): void {
    const webhooks = configuration?.webhooks ?? [];
    const perWebhook = webhooks.map((w) => new Set(bundleFingerprints(w.clientConfig.caBundle)));
    const trusted = (perWebhook[0] === undefined ? [] : [...perWebhook[0]]).filter((fp) =>
      perWebhook.every((set) => set.has(fp)),
    );
    for (const fingerprint of [...this.#trustedSince.keys()]) {
      if (!trusted.includes(fingerprint)) this.#trustedSince.delete(fingerprint);
    }
    for (const fingerprint of trusted) {
      if (!this.#trustedSince.has(fingerprint)) this.#trustedSince.set(fingerprint, now);
    }
  }

  async #renewedData(parsed: ParsedTlsSecret, plan: TlsPlan, now: number): Promise<Record<string, string>> {
    const { policy, hosts } = this.#options;
    const bundle = plan.keepCas.map((fingerprint) => parsed.caPems.get(fingerprint) ?? "");
    let signing: IssuedCertificate | undefined = parsed.signingCa;
    let signingNotAfter = parsed.state.cas.find((ca) => ca.fingerprint === parsed.state.signingCa)?.notAfter;
    if (plan.newCa || signing === undefined) {
      const window = validityWindow(now, policy.caValidityMs, policy);
      signing = await issueCa(caCommonName, window);
      signingNotAfter = window.notAfter;
      bundle.push(signing.certPem);
    }
    let serving =
      parsed.serving === undefined
        ? undefined
        : { certPem: parsed.serving.certPem, keyPem: parsed.serving.keyPem };
    if (plan.newServing || serving === undefined) {
      serving = await issueServing(
        signing,
        hosts,
        validityWindow(now, policy.servingValidityMs, policy, signingNotAfter),
      );
    }
    return {
      [CA_BUNDLE_KEY]: bundle.map((pem) => pem.trim()).join("\n") + "\n",
      [CA_KEY_KEY]: signing.keyPem,
      [SERVING_CERT_KEY]: serving.certPem,
      [SERVING_KEY_KEY]: serving.keyPem,
    };
  }

  async #writeSecret(current: V1Secret | undefined, data: Record<string, string>): Promise<V1Secret> {
    const { namespace, secretName } = this.#options;
    const encoded = encodeSecretData(data);
    if (current === undefined) {
      return this.#kube.create<V1Secret>(namespacedPath("/api/v1", namespace, "secrets"), {
        apiVersion: "v1",
        kind: "Secret",
        type: "Opaque",
        metadata: { name: secretName, namespace, labels: secretLabels },
        data: encoded,
      });
    }
    return this.#kube.replace<V1Secret>(namespacedPath("/api/v1", namespace, "secrets", secretName), {
      apiVersion: "v1",
      kind: "Secret",
      type: current.type,
      metadata: current.metadata,
      data: encoded,
    });
  }

  /** Sets the trust bundle as the caBundle of every webhook in the operator's configuration. */
  async #ensureCaBundle(
    configuration: WebhookConfiguration | undefined,
    bundle: string | undefined,
    now: number,
  ): Promise<void> {
    if (bundle === undefined) return;
    const name = this.#options.webhookConfigurationName;
    if (configuration === undefined) {
      if (!this.#reportedMissingConfiguration) {
        this.#options.log.info(
          { webhookConfiguration: name },
          "no webhook configuration to give the caBundle to yet",
        );
        this.#reportedMissingConfiguration = true;
      }
      return;
    }
    this.#reportedMissingConfiguration = false;
    const webhooks = configuration.webhooks ?? [];
    if (webhooks.every((w) => w.clientConfig.caBundle === bundle)) return;
    const updated = await this.#kube.replace<WebhookConfiguration>(
      clusterPath(admissionPrefix, webhookConfigurations, name),
      {
        ...configuration,
        webhooks: webhooks.map((w) => ({ ...w, clientConfig: { ...w.clientConfig, caBundle: bundle } })),
      },
    );
    this.#writtenConfiguration = updated;
    this.#observeTrust(updated, now);
    this.#options.log.info(
      { webhookConfiguration: name, webhooks: webhooks.length },
      "webhook caBundle updated",
    );
  }

  #schedule(at: number | undefined): void {
    this.#clearTimer();
    if (at === undefined || this.#stopped) return;
    const { clock } = this.#options;
    this.#timer = clock.setTimer(
      () => {
        this.#timer = undefined;
        this.kick();
      },
      Math.max(at - clock.now(), 100),
    );
  }

  #clearTimer(): void {
    if (this.#timer === undefined) return;
    this.#options.clock.clearTimer(this.#timer);
    this.#timer = undefined;
  }
}
