// Prometheus metrics: one registry, every metric the operator exports, with Prometheus naming.
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";

const prefix = "ecr_creds_refresher_";

export class Metrics {
  readonly registry = new Registry();

  readonly tokenExpiry = new Gauge({
    name: `${prefix}token_expiry_timestamp_seconds`,
    help:
      "When the token an ECRPullSecret's managed Secrets hold for a registry host expires (Unix seconds); " +
      "in the past once it has expired and its entry was removed.",
    labelNames: ["ecrpullsecret", "registry"] as const,
    registers: [this.registry],
  });

  readonly registryRefreshFailing = new Gauge({
    name: `${prefix}registry_refresh_failing`,
    help:
      "1 while refreshing the token an ECRPullSecret writes for a registry host fails (the host keeps its " +
      "last good entry until it expires), else 0.",
    labelNames: ["ecrpullsecret", "registry"] as const,
    registers: [this.registry],
  });

  readonly tokenMints = new Counter({
    name: `${prefix}token_mints_total`,
    help: "ECR authorization tokens requested from AWS, by result and region.",
    labelNames: ["result", "region"] as const,
    registers: [this.registry],
  });

  readonly reconciles = new Counter({
    name: `${prefix}reconcile_total`,
    help: "Reconciles of ECRPullSecrets, by result (success, retry, error).",
    labelNames: ["result"] as const,
    registers: [this.registry],
  });

  readonly reconcileDuration = new Histogram({
    name: `${prefix}reconcile_duration_seconds`,
    help: "Time one reconcile took, by result.",
    labelNames: ["result"] as const,
    buckets: [0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
    registers: [this.registry],
  });

  readonly queueDepth = new Gauge({
    name: `${prefix}workqueue_depth`,
    help: "Keys waiting in the workqueue.",
    registers: [this.registry],
  });

  readonly queueAdds = new Counter({
    name: `${prefix}workqueue_adds_total`,
    help: "Keys added to the workqueue.",
    registers: [this.registry],
  });

  readonly queueRetries = new Counter({
    name: `${prefix}workqueue_retries_total`,
    help: "Rate-limited retries scheduled by the workqueue.",
    registers: [this.registry],
  });

  readonly managedSecrets = new Gauge({
    name: `${prefix}managed_secrets`,
    help: "Target namespaces' pull Secrets by state (synced, failed), over all ECRPullSecrets.",
    labelNames: ["state"] as const,
    registers: [this.registry],
  });

  readonly managedServiceAccounts = new Gauge({
    name: `${prefix}managed_serviceaccounts`,
    help: "ServiceAccounts in target namespaces that list the managed Secret (state=synced).",
    labelNames: ["state"] as const,
    registers: [this.registry],
  });

  readonly ready = new Gauge({
    name: `${prefix}ecrpullsecret_ready`,
    help: "1 when an ECRPullSecret is Ready, else 0.",
    labelNames: ["ecrpullsecret"] as const,
    registers: [this.registry],
  });

  readonly watchRestarts = new Counter({
    name: `${prefix}watch_restarts_total`,
    help: "Watch streams restarted, by resource and reason (error, stalled, expired).",
    labelNames: ["resource", "reason"] as const,
    registers: [this.registry],
  });

  readonly leader = new Gauge({
    name: `${prefix}leader`,
    help: "1 while this process holds the leader Lease (or runs without leader election), else 0.",
    registers: [this.registry],
  });

  readonly awsErrors = new Counter({
    name: `${prefix}aws_errors_total`,
    help: "Failed AWS calls, by error kind (AwsAuth, Throttled, Unavailable, InvalidInput, Unknown).",
    labelNames: ["kind"] as const,
    registers: [this.registry],
  });

  readonly apiErrors = new Counter({
    name: `${prefix}api_errors_total`,
    help: "Failed Kubernetes API calls, by error kind (Conflict, Forbidden, Unavailable, ...).",
    labelNames: ["kind"] as const,
    registers: [this.registry],
  });

  readonly writeFailures = new Counter({
    name: `${prefix}write_failures_total`,
    help:
      "Managed Secrets and ServiceAccounts not written in a namespace, by the reason the ECRPullSecret's " +
      "status gives (SecretConflict, Forbidden, WriteFailed).",
    labelNames: ["reason"] as const,
    registers: [this.registry],
  });

  readonly webhookRequests = new Counter({
    name: `${prefix}webhook_requests_total`,
    help: "Pod admission reviews answered, by result (mutated, unchanged, invalid).",
    labelNames: ["result"] as const,
    registers: [this.registry],
  });

  readonly webhookMutations = new Counter({
    name: `${prefix}webhook_mutations_total`,
    help: "Pods the admission webhook gave an ECRPullSecret's pull Secret, by ECRPullSecret.",
    labelNames: ["ecrpullsecret"] as const,
    registers: [this.registry],
  });

  readonly webhookDuration = new Histogram({
    name: `${prefix}webhook_request_duration_seconds`,
    help: "Time the admission webhook took to answer a review.",
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1],
    registers: [this.registry],
  });

  readonly webhookCertificateExpiry = new Gauge({
    name: `${prefix}webhook_certificate_expiry_timestamp_seconds`,
    help: "When the admission webhook's serving certificate expires (Unix seconds).",
    registers: [this.registry],
  });

  constructor() {
    collectDefaultMetrics({ register: this.registry });
  }
}
