import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { V1Namespace, V1Secret, V1ServiceAccount } from "@kubernetes/client-node";

import type { ECRPullSecret } from "../api/types.ts";
import type { InformerHandlers } from "../kube/informer/informer.ts";
import { OWNER_LABEL } from "./plan/labels.ts";
import { watch, type WatchActions } from "./watches.ts";

/** An informer that hands its handlers to the test, which plays the watch. */
class FakeInformer<T> {
  readonly handlers: InformerHandlers<T>[] = [];

  addHandlers(handlers: InformerHandlers<T>): void {
    this.handlers.push(handlers);
  }

  add(obj: T): void {
    for (const h of this.handlers) h.onAdd?.(obj);
  }

  update(obj: T, old: T): void {
    for (const h of this.handlers) h.onUpdate?.(obj, old);
  }

  delete(obj: T): void {
    for (const h of this.handlers) h.onDelete?.(obj);
  }
}

function setup(): {
  informers: {
    ecrPullSecrets: FakeInformer<ECRPullSecret>;
    namespaces: FakeInformer<V1Namespace>;
    serviceAccounts: FakeInformer<V1ServiceAccount>;
    secrets: FakeInformer<V1Secret>;
  };
  calls: string[];
} {
  const calls: string[] = [];
  const informers = {
    ecrPullSecrets: new FakeInformer<ECRPullSecret>(),
    namespaces: new FakeInformer<V1Namespace>(),
    serviceAccounts: new FakeInformer<V1ServiceAccount>(),
    secrets: new FakeInformer<V1Secret>(),
  };
  const actions: WatchActions = {
    enqueue: (name) => calls.push(`enqueue ${name}`),
    enqueueAll: () => calls.push("enqueueAll"),
    touch: (namespace, name) => calls.push(`touch ${namespace}${name === undefined ? "" : ` for ${name}`}`),
    ownStatus: (cr) => cr.status?.synced === "ours",
    forget: (cr) => calls.push(`forget ${cr.metadata.name ?? ""}`),
    sweep: () => calls.push("sweep"),
  };
  watch(informers, actions);
  return { informers, calls };
}

const crAt = (resourceVersion: string, synced?: string): ECRPullSecret => ({
  apiVersion: "ecr-creds-refresher.io/v1alpha1",
  kind: "ECRPullSecret",
  metadata: { name: "team", resourceVersion },
  spec: { namespaces: ["*"] },
  status: { synced },
});

describe("what each watched change enqueues", () => {
  it("notes the namespace of a Namespace or ServiceAccount change for every CR", () => {
    const { informers, calls } = setup();
    const ns: V1Namespace = { metadata: { name: "team-a" } };
    informers.namespaces.add(ns);
    informers.namespaces.update(ns, ns);
    informers.namespaces.delete(ns);
    const sa: V1ServiceAccount = { metadata: { name: "default", namespace: "team-b" } };
    informers.serviceAccounts.add(sa);
    informers.serviceAccounts.update(sa, sa);
    informers.serviceAccounts.delete(sa);
    assert.deepEqual(calls, [
      "touch team-a",
      "touch team-a",
      "touch team-a",
      "touch team-b",
      "touch team-b",
      "touch team-b",
    ]);
  });

  it("notes a managed Secret's namespace for the CR its owner label names, and for none without one", () => {
    const { informers, calls } = setup();
    const owned: V1Secret = {
      metadata: { name: "pull", namespace: "team-a", labels: { [OWNER_LABEL]: "team" } },
    };
    informers.secrets.add(owned);
    informers.secrets.update(owned, owned);
    informers.secrets.delete(owned);
    informers.secrets.add({ metadata: { name: "pull", namespace: "team-b", labels: {} } });
    assert.deepEqual(calls, ["touch team-a for team", "touch team-a for team", "touch team-a for team"]);
  });

  it("enqueues a CR for every change but its own status write, and all CRs and a sweep once it is deleted", () => {
    const { informers, calls } = setup();
    informers.ecrPullSecrets.add(crAt("5"));
    informers.ecrPullSecrets.update(crAt("6"), crAt("5"));
    informers.ecrPullSecrets.update(crAt("7", "ours"), crAt("6"));
    informers.ecrPullSecrets.update(crAt("8"), crAt("7"));
    informers.ecrPullSecrets.delete(crAt("8"));
    assert.deepEqual(calls, [
      "enqueue team",
      "enqueue team",
      "enqueue team",
      "forget team",
      "enqueueAll",
      "sweep",
    ]);
  });
});
