import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { V1Secret, V1ServiceAccount } from "@kubernetes/client-node";

import type { ECRPullSecret } from "../api/types.ts";
import { ManualClock } from "../clock.ts";
import { ClusterCache, contentUnknown, type ObjectStore } from "./cluster-cache.ts";
import { contentDigest, type SecretContent } from "./plan/desired.ts";

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

describe("managed Secrets listed and watched by their metadata", () => {
  const fromWatch = (cache: ClusterCache, raw: V1Secret): V1Secret => cache.completeSecret(raw);

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

  it("keeps the content of the cached copy when a relist brings the same version", () => {
    const { cache, secrets } = setup();
    secrets.put(written("pull", "5", "cached"));
    assert.deepEqual(fromWatch(cache, metadataEvent("pull", "5")).data, { token: "cached" });
    assert.ok(contentUnknown(fromWatch(cache, metadataEvent("pull", "6"))), "not another version");
  });
});

const content: SecretContent = {
  dockerConfigJson: '{"auths":{}}',
  expiresAt: "2026-12-02T16:00:00Z",
  refreshedAt: "2026-12-02T04:00:00Z",
  identity: "id-1",
};

/** A Secret's annotations as the operator writes them for `content`, with that digest unless told. */
function annotationsFor(held: SecretContent, digest = contentDigest(held)): Record<string, string> {
  return {
    "ecr-creds-refresher.io/expires-at": held.expiresAt,
    "ecr-creds-refresher.io/refreshed-at": held.refreshedAt,
    "ecr-creds-refresher.io/identity": held.identity,
    "ecr-creds-refresher.io/content-digest": digest,
  };
}

/** managedFields where these managers wrote the Secret's `.dockerconfigjson`. */
function dataWrittenBy(...managers: string[]): NonNullable<V1Secret["metadata"]>["managedFields"] {
  return managers.map((manager) => ({
    manager,
    operation: "Update",
    fieldsType: "FieldsV1",
    fieldsV1: { "f:data": { ".": {}, "f:.dockerconfigjson": {} } },
  }));
}

function listedMetadata(
  name: string,
  annotations: Record<string, string>,
  managedFields = dataWrittenBy("ecr-creds-refresher"),
): V1Secret {
  const raw = metadataEvent(name, "3");
  const { metadata = {} } = raw;
  metadata.annotations = annotations;
  metadata.managedFields = managedFields;
  return raw;
}

function readWhole(name: string, held: SecretContent, digest?: string): V1Secret {
  const whole = written(name, "3", "");
  const { metadata = {} } = whole;
  metadata.annotations = annotationsFor(held, digest);
  whole.data = { ".dockerconfigjson": Buffer.from(held.dockerConfigJson).toString("base64") };
  return whole;
}

describe("managed Secrets known by their content digest", () => {
  function listed(
    names: string[],
    annotations = annotationsFor(content),
    managedFields = dataWrittenBy("ecr-creds-refresher"),
  ) {
    const { cache, secrets } = setup();
    for (const name of names) {
      secrets.put(cache.completeSecret(listedMetadata(name, annotations, managedFields)));
    }
    return { cache, secrets, unknown: cache.secretsOfUnknownContent("cr-1", "pull") };
  }

  it("reads one Secret of a digest whole and completes the others written by the operator alone", () => {
    const { cache, secrets, unknown } = listed(["a", "b", "c"]);
    assert.equal(unknown.length, 3, "a list of metadata brings no content");
    const samples = cache.vouchedSamples(unknown);
    assert.deepEqual(
      samples.map((s) => s.metadata?.name),
      ["a"],
      "one read for the three",
    );
    cache.recordSecret(readWhole("a", content));
    assert.deepEqual(cache.completeVouched(unknown), []);
    const c = secrets.get("c", "team-a");
    assert.equal(c?.type, "kubernetes.io/dockerconfigjson");
    assert.equal(
      Buffer.from(c.data?.[".dockerconfigjson"] ?? "", "base64").toString(),
      content.dockerConfigJson,
    );
    assert.deepEqual(cache.secretsOfUnknownContent("cr-1", "pull"), []);
  });

  it("completes a Secret listed after its digest was read, as it arrives", () => {
    const { cache } = setup();
    cache.recordSecret(readWhole("a", content));
    const later = cache.completeSecret(listedMetadata("b", annotationsFor(content)));
    assert.equal(later.type, "kubernetes.io/dockerconfigjson");
  });

  it("reads a Secret whose data another client wrote, whatever its digest says", () => {
    const { cache, unknown } = listed(
      ["a", "b"],
      annotationsFor(content),
      dataWrittenBy("ecr-creds-refresher", "kubectl-edit"),
    );
    assert.deepEqual(cache.vouchedSamples(unknown), [], "nothing vouches for them");
    cache.recordSecret(readWhole("c", content));
    assert.equal(cache.completeVouched(unknown).length, 2, "both are read");
  });

  it("reads a Secret without a digest, as an older release wrote it", () => {
    const older = Object.fromEntries(
      Object.entries(annotationsFor(content)).filter(
        ([key]) => key !== "ecr-creds-refresher.io/content-digest",
      ),
    );
    const { cache, unknown } = listed(["a", "b"], older);
    assert.deepEqual(cache.vouchedSamples(unknown), []);
    cache.recordSecret(readWhole("c", content));
    assert.equal(cache.completeVouched(unknown).length, 2);
  });

  it("reads a Secret whose managedFields show no writer of its data", () => {
    const { cache, unknown } = listed(["a"], annotationsFor(content), []);
    assert.deepEqual(cache.vouchedSamples(unknown), []);
  });

  it("learns nothing from a Secret whose content does not match its digest", () => {
    const forged = contentDigest({ ...content, dockerConfigJson: '{"auths":{"other":{}}}' });
    const { cache, unknown } = listed(["a", "b"], annotationsFor(content, forged));
    cache.recordSecret(readWhole("a", content, forged));
    assert.deepEqual(
      cache.completeVouched(unknown).map((s) => s.metadata?.name),
      ["b"],
      "a was read; b is read too",
    );
  });

  it("reads a Secret whose digest was left behind by a release that wrote none", () => {
    const refreshed = { ...content, refreshedAt: "2026-12-02T05:00:00Z" };
    const { cache, unknown } = listed(["a"]);
    const stale = cache.completeSecret(
      listedMetadata("b", annotationsFor(refreshed, contentDigest(content))),
    );
    cache.recordSecret(readWhole("a", content));
    assert.deepEqual(
      cache.completeVouched([...unknown, stale]).map((s) => s.metadata?.name),
      ["b"],
      "b's annotations are not those of its digest",
    );
  });
});
