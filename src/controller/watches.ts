// What each watched change puts on the queue, the way a kubebuilder controller's For, Owns and
// Watches say it. Level-triggered: a CR's name is all the queue needs; the reconcile reads the rest.
import type { V1Secret, V1ServiceAccount } from "@kubernetes/client-node";
import type { ECRPullSecret } from "../api/types.ts";
import type { ControllerInformers } from "./informers.ts";
import { OWNER_LABEL } from "./plan/labels.ts";

export interface WatchActions {
  /** Puts one CR on the queue. */
  enqueue(name: string): void;
  /** Puts every CR on the queue; the queue holds each name once, so this is cheap. */
  enqueueAll(): void;
  /**
   * Puts one CR, or every CR, on the queue for a change in one namespace: its reconcile may look
   * at the namespaces so noted alone.
   */
  touch(namespace: string, name?: string): void;
  /** Whether a CR changed in its status alone, to what the operator wrote: no reconcile needed. */
  ownStatus(cr: ECRPullSecret, old: ECRPullSecret): boolean;
  /** Forgets what is remembered of a deleted CR (its resolved spec). */
  forget(cr: ECRPullSecret): void;
  /** Asks for a sweep of what no CR claims any more. */
  sweep(): void;
}

/** What the table needs of each informer: a way to be told of its changes. */
export type WatchedInformers = {
  [K in keyof ControllerInformers]: Pick<ControllerInformers[K], "addHandlers">;
};

export function watch(informers: WatchedInformers, actions: WatchActions): void {
  const enqueue = (cr: ECRPullSecret): void => {
    if (cr.metadata.name !== undefined) actions.enqueue(cr.metadata.name);
  };
  // For: an ECRPullSecret enqueues itself, unless the change is the operator's own status write.
  // Once deleted, every other CR too, as one may now hold a Secret name it held, and a sweep.
  informers.ecrPullSecrets.addHandlers({
    onAdd: enqueue,
    onUpdate: (cr, old) => {
      if (!actions.ownStatus(cr, old)) enqueue(cr);
    },
    onDelete: (cr) => {
      actions.forget(cr);
      actions.enqueueAll();
      actions.sweep();
    },
  });
  // Watches: a Namespace or ServiceAccount enqueues every CR, since any CR may target it, for that
  // namespace.
  const touchAll = (namespace: string | undefined): void => {
    if (namespace !== undefined) actions.touch(namespace);
  };
  informers.namespaces.addHandlers({
    onAdd: (ns) => {
      touchAll(ns.metadata?.name);
    },
    onUpdate: (ns) => {
      touchAll(ns.metadata?.name);
    },
    onDelete: (ns) => {
      touchAll(ns.metadata?.name);
    },
  });
  const serviceAccount = (sa: V1ServiceAccount): void => {
    touchAll(sa.metadata?.namespace);
  };
  informers.serviceAccounts.addHandlers({
    onAdd: serviceAccount,
    onUpdate: serviceAccount,
    onDelete: serviceAccount,
  });
  // Owns: a managed Secret enqueues the CR its owner label names, for its namespace, so that a
  // Secret deleted or edited by hand is restored at once.
  const owner = (secret: V1Secret): void => {
    const name = secret.metadata?.labels?.[OWNER_LABEL];
    const namespace = secret.metadata?.namespace;
    if (name !== undefined && namespace !== undefined) actions.touch(namespace, name);
  };
  informers.secrets.addHandlers({ onAdd: owner, onUpdate: owner, onDelete: owner });
}
