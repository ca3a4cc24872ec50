// What the operator tells about its work as it happens: each part reports an observation where the
// thing happens, and only the metrics observer knows how it is counted. Tests can collect them.
import type { ECRPullSecretStatus, NamespaceFailureReason } from "../api/types.ts";
import type { AwsErrorKind } from "../aws/errors.ts";
import type { MintResult } from "../aws/token-cache.ts";
import type { KubeErrorKind } from "../kube/errors.ts";
import type { WatchRestartReason } from "../kube/informer/informer.ts";

/** How a reconcile ended: done, to be retried with backoff (an expected wait), or failed. */
export type ReconcileResult = "success" | "retry" | "error";

/** How the Pod webhook answered a review. */
export type WebhookResult = "mutated" | "unchanged" | "invalid";

export type Observation =
  /** A key became queued in the workqueue. */
  | { type: "QueueAdded" }
  /** The workqueue scheduled a retry with backoff. */
  | { type: "QueueRetried" }
  | { type: "QueueDepth"; depth: number }
  | { type: "WatchRestarted"; resource: string; reason: WatchRestartReason }
  /** A Kubernetes API call failed. */
  | { type: "ApiError"; kind: KubeErrorKind }
  /** Getting a registry's token from AWS failed for a CR. */
  | { type: "AwsError"; kind: AwsErrorKind }
  /** A token was requested from AWS. */
  | { type: "TokenMinted"; region: string; result: MintResult }
  | { type: "Reconciled"; result: ReconcileResult; seconds: number }
  /** The status a reconcile computed for a CR, and how many ServiceAccounts list its Secret. */
  | { type: "CrReported"; name: string; status: ECRPullSecretStatus; serviceAccountsSynced: number }
  /** A CR the operator reported on no longer exists. */
  | { type: "CrGone"; name: string }
  /** A reconcile or a sweep is about to make this many writes: Secrets, ServiceAccounts, deletions. */
  | { type: "WritesPlanned"; writes: number }
  /** Writing a managed Secret or ServiceAccount in a namespace failed. */
  | { type: "WriteFailed"; reason: NamespaceFailureReason }
  /** This replica started or stopped being the one that reconciles and writes. */
  | { type: "Leading"; leading: boolean }
  | { type: "WebhookAnswered"; result: WebhookResult; seconds: number }
  /** The webhook gave a Pod the Secret of this CR. */
  | { type: "PodMutated"; ecrPullSecret: string }
  /** The webhook serves a certificate valid until `notAfter` (Unix milliseconds). */
  | { type: "WebhookCertificateServed"; notAfter: number };

export interface Observer {
  observe(observation: Observation): void;
}

/** An observer that hands every observation to each of `observers`, in order. */
export function allOf(...observers: Observer[]): Observer {
  return {
    observe(observation) {
      for (const observer of observers) observer.observe(observation);
    },
  };
}

/** An observer that drops every observation: for runs without metrics. */
export const unobserved: Observer = {
  observe() {
    // Nothing counts these.
  },
};
