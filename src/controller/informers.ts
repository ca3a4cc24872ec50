// The informers the controller reads: ECRPullSecrets, Namespaces, ServiceAccounts and the Secrets
// it manages (selected by label on the API server), each trimmed to what the operator reads. The
// managed Secrets are listed and watched by their metadata, a tenth of a pull Secret: the operator
// knows the content of its own writes, and of the Secrets no one else wrote (ClusterCache). Watch
// restarts and errors are logged and told to the observer.
import type { KubernetesObject, V1Namespace, V1Secret, V1ServiceAccount } from "@kubernetes/client-node";
import { GROUP, PLURAL, VERSION, type ECRPullSecret } from "../api/types.ts";
import type { Clock } from "../clock.ts";
import { Informer } from "../kube/informer/informer.ts";
import { StringInterner } from "../kube/interner.ts";
import type { ClusterConnection } from "../kube/kubeconfig/cluster-access.ts";
import type { Logger } from "../observability/logger.ts";
import type { Observer } from "../observability/observer.ts";
import { namespaceRecord, objectRecord, sharedMetadataValues } from "./cache-records.ts";
import { internSecretData } from "./cluster-cache.ts";
import { MANAGED_SECRETS_SELECTOR } from "./plan/labels.ts";

export interface ControllerInformers {
  ecrPullSecrets: Informer<ECRPullSecret>;
  namespaces: Informer<V1Namespace>;
  serviceAccounts: Informer<V1ServiceAccount>;
  secrets: Informer<V1Secret>;
}

export interface ControllerInformerOptions {
  kubeConfig: ClusterConnection;
  clock: Clock;
  log: Logger;
  observer: Observer;
  /** Keeps the token content the managed Secrets share once, however many carry it. */
  secretData: StringInterner;
  /** A managed Secret as listed or watched, completed with what is known of it (ClusterCache). */
  completeSecret: (raw: KubernetesObject) => V1Secret;
}

export function createInformers(options: ControllerInformerOptions): ControllerInformers {
  const { kubeConfig, clock, log, observer, secretData, completeSecret } = options;
  const shared = new StringInterner(sharedMetadataValues);
  const informer = <T extends KubernetesObject>(
    name: string,
    path: string,
    labelSelector?: string,
    transform: (raw: KubernetesObject) => KubernetesObject = (raw) => objectRecord(raw, shared),
    metadataOnly = false,
  ): Informer<T> =>
    new Informer<T>({
      name,
      kubeConfig,
      path,
      labelSelector,
      metadataOnly,
      clock,
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
  return {
    ecrPullSecrets: informer<ECRPullSecret>("ecrpullsecrets", `/apis/${GROUP}/${VERSION}/${PLURAL}`),
    namespaces: informer<V1Namespace>("namespaces", "/api/v1/namespaces", undefined, (raw) =>
      namespaceRecord(raw, shared),
    ),
    serviceAccounts: informer<V1ServiceAccount>("serviceaccounts", "/api/v1/serviceaccounts"),
    secrets: informer<V1Secret>(
      "secrets",
      "/api/v1/secrets",
      MANAGED_SECRETS_SELECTOR,
      (raw) => internSecretData(objectRecord(completeSecret(raw), shared), secretData),
      true,
    ),
  };
}

/** The four informers as a list, to start, stop and check them alike. */
export function informerList(informers: ControllerInformers): Informer<KubernetesObject>[] {
  return [
    informers.ecrPullSecrets,
    informers.namespaces,
    informers.serviceAccounts,
    informers.secrets,
  ] as Informer<KubernetesObject>[];
}
