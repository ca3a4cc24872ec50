import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { V1Secret, V1ServiceAccount } from "@kubernetes/client-node";

import type { ECRPullSecret } from "../api/types.ts";
import { ManualClock } from "../clock.ts";
import { ClusterCache, type ObjectStore } from "./cluster-cache.ts";

/** A store holding at most one object per name, as an informer's does. */
function store<T extends { metadata?: { name?: string; namespace?: string } }>(): ObjectStore<T> & {
  put(obj: T): void;
  remove(obj: T): void;
} {
  const objects = new Map<string, T>();
  const key = (name: string | undefined, namespace: string | undefined): string =>
    `${namespace ?? ""}/${name ?? ""}`;
  return {
    get: (name, namespace) => objects.get(key(name, namespace)),
    list: (namespace) =>
      [...objects.values()].filter((o) => namespace === undefined || o.metadata?.namespace === namespace),
    put: (obj) => objects.set(key(obj.metadata?.name, obj.metadata?.namespace), obj),
    remove: (obj) => objects.delete(key(obj.metadata?.name, obj.metadata?.namespace)),
  };
}

function secret(resourceVersion: string, token: string): V1Secret {
  return { metadata: { namespace: "team-a", name: "pull", resourceVersion }, data: { token } };
}

function setup() {
  const secrets = store<V1Secret>();
  const serviceAccounts = store<V1ServiceAccount>();
  const cache = new ClusterCache(
    { ecrPullSecrets: store<ECRPullSecret>(), namespaces: store(), serviceAccounts, secrets },
    new ManualClock(),
  );
  return { cache, secrets, serviceAccounts };
}

describe("ClusterCache", () => {
  it("lets go of a written Secret once the watch shows that version, before anything reads it", () => {
    const { cache, secrets } = setup();
    secrets.put(secret("4", "old"));
    cache.recordSecret(secret("5", "new"));
    cache.settleSecret(secret("4", "old"));
    assert.equal(cache.pendingWrites(), 1, "the watch has not shown the write yet");
    assert.equal(cache.secret("team-a", "pull")?.data?.token, "new");
    secrets.put(secret("5", "new"));
    cache.settleSecret(secret("5", "new"));
    assert.equal(cache.pendingWrites(), 0);
    assert.equal(cache.secret("team-a", "pull")?.data?.token, "new");
  });

  it("keeps a deleted Secret deleted until the watch shows it gone", () => {
    const { cache, secrets } = setup();
    const old = secret("4", "old");
    secrets.put(old);
    cache.recordSecretDeleted("team-a", "pull");
    cache.settleSecret(old);
    assert.equal(cache.pendingWrites(), 1, "the watch still shows the Secret we deleted");
    assert.equal(cache.secret("team-a", "pull"), undefined);
    secrets.remove(old);
    cache.settleSecret(old);
    assert.equal(cache.pendingWrites(), 0);
  });

  it("lets go of a written ServiceAccount once the watch shows that version", () => {
    const { cache, serviceAccounts } = setup();
    const written: V1ServiceAccount = {
      metadata: { namespace: "team-a", name: "default", resourceVersion: "8" },
      imagePullSecrets: [{ name: "pull" }],
    };
    cache.recordServiceAccount(written);
    assert.equal(cache.pendingWrites(), 1);
    serviceAccounts.put(written);
    cache.settleServiceAccount(written);
    assert.equal(cache.pendingWrites(), 0);
    assert.deepEqual(cache.serviceAccount("team-a", "default")?.imagePullSecrets, [{ name: "pull" }]);
  });

  it("keeps written objects without their managedFields, as the informer keeps them", () => {
    const { cache } = setup();
    const managedFields = [{ manager: "ecr-creds-refresher", operation: "Update", fieldsType: "FieldsV1" }];
    cache.recordSecret({
      metadata: { namespace: "team-a", name: "pull", resourceVersion: "5", managedFields },
      data: { token: "new" },
    });
    cache.recordServiceAccount({
      metadata: { namespace: "team-a", name: "default", resourceVersion: "8", managedFields },
      imagePullSecrets: [{ name: "pull" }],
    });
    assert.equal(cache.secret("team-a", "pull")?.data?.token, "new");
    assert.equal(cache.secret("team-a", "pull")?.metadata?.managedFields, undefined);
    const sa = cache.serviceAccount("team-a", "default");
    assert.deepEqual(sa?.imagePullSecrets, [{ name: "pull" }]);
    assert.equal(sa.metadata?.managedFields, undefined);
  });
});
