import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { V1Secret, V1ServiceAccount } from "@kubernetes/client-node";

import type { ECRPullSecret } from "../api/types.ts";
import { ManualClock } from "../clock.ts";
import { ClusterCache, contentUnknown, secretFromWatch, type ObjectStore } from "./cluster-cache.ts";

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

/** A managed Secret as a metadata-only watch event brings it. */
function metadataEvent(name: string, resourceVersion: string, owner = "cr-1"): V1Secret {
  return {
    apiVersion: "meta.k8s.io/v1",
    kind: "PartialObjectMetadata",
    metadata: {
      namespace: "team-a",
      name,
      resourceVersion,
      labels: { "ecr-creds-refresher.io/owner": owner },
    },
  };
}

function written(name: string, resourceVersion: string, token: string): V1Secret {
  return {
    apiVersion: "v1",
    kind: "Secret",
    metadata: {
      namespace: "team-a",
      name,
      resourceVersion,
      labels: { "ecr-creds-refresher.io/owner": "cr-1" },
    },
    type: "kubernetes.io/dockerconfigjson",
    data: { token },
  };
}

describe("managed Secrets watched by their metadata", () => {
  const fromWatch = (cache: ClusterCache, raw: V1Secret): V1Secret =>
    secretFromWatch(raw, (namespace, name, version) => cache.writtenSecret(namespace, name, version));

  it("completes the operator's own write with the content it wrote", () => {
    const { cache, secrets } = setup();
    cache.recordSecret(written("pull", "5", "new"));
    const record = fromWatch(cache, metadataEvent("pull", "5"));
    assert.equal(record.kind, "Secret");
    assert.equal(record.type, "kubernetes.io/dockerconfigjson");
    assert.deepEqual(record.data, { token: "new" });
    secrets.put(record);
    cache.settleSecret(record);
    assert.equal(cache.pendingWrites(), 0);
    assert.deepEqual(cache.secretsOfUnknownContent("cr-1", "pull"), []);
  });

  it("completes a version the watch brought before the write's answer came", () => {
    const { cache, secrets } = setup();
    const record = fromWatch(cache, metadataEvent("pull", "5"));
    assert.ok(contentUnknown(record));
    secrets.put(record);
    cache.settleSecret(record);
    cache.recordSecret(written("pull", "5", "new"));
    assert.equal(cache.secret("team-a", "pull")?.data?.token, "new");
    assert.equal(secrets.get("pull", "team-a")?.data?.token, "new", "the informer's copy is completed");
    assert.deepEqual(cache.secretsOfUnknownContent("cr-1", "pull"), []);
  });

  it("leaves a change the operator did not make without content until it is read", () => {
    const { cache, secrets } = setup();
    cache.recordSecret(written("pull", "5", "ours"));
    const record = fromWatch(cache, metadataEvent("pull", "7"));
    assert.ok(contentUnknown(record), "version 7 is not the one written");
    assert.equal(record.data, undefined);
    secrets.put(record);
    cache.settleSecret(record);
    secrets.put(fromWatch(cache, metadataEvent("other-name", "8", "cr-2")));
    assert.deepEqual(
      cache.secretsOfUnknownContent("cr-1", "pull").map((s) => s.metadata?.name),
      ["pull"],
      "only what the CR's plan reads: its own Secrets and those of its Secret name",
    );
    cache.recordSecret(written("pull", "7", "theirs"));
    assert.equal(cache.secret("team-a", "pull")?.data?.token, "theirs");
    assert.deepEqual(cache.secretsOfUnknownContent("cr-1", "pull"), []);
  });

  it("keeps a whole object from a watch as it came", () => {
    const { cache } = setup();
    const whole = written("pull", "9", "whole");
    assert.equal(fromWatch(cache, whole), whole);
  });
});
