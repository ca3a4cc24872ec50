import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { V1Namespace, V1Secret, V1ServiceAccount } from "@kubernetes/client-node";

import type { ECRPullSecret } from "../api/types.ts";
import { fixedStore, unreachableCluster } from "../../test/harness/cache-stores.ts";
import { ManualClock } from "../clock.ts";
import { KubeClient } from "../kube/rest.ts";
import { createLogger } from "../observability/logger.ts";
import { unobserved } from "../observability/observer.ts";
import { ClusterCache } from "./cluster-cache.ts";
import type { ContentResult } from "./content.ts";
import { desiredSecretBody, type SecretContent } from "./plan/desired.ts";
import { FINALIZER } from "./plan/labels.ts";
import { Reconciler } from "./reconciler.ts";
import { RetryLater } from "./retry-later.ts";
import { SpecResolver } from "./spec-resolver.ts";
import { createWriter, type PlannedChange } from "./writer.ts";

const owner = { name: "team", uid: "uid-1" };
const cr: ECRPullSecret = {
  apiVersion: "ecr-creds-refresher.io/v1alpha1",
  kind: "ECRPullSecret",
  metadata: { name: owner.name, uid: owner.uid, resourceVersion: "3", finalizers: [FINALIZER] },
  spec: { namespaces: ["team-a"], secretName: "team-pull" },
};
const content: SecretContent = {
  dockerConfigJson: '{"auths":{}}',
  expiresAt: "2026-01-01T12:00:00Z",
  refreshedAt: "2026-01-01T00:00:00Z",
  identity: "0123456789abcdef",
};
const body = desiredSecretBody(owner, "team-a", "team-pull", content);
/** The pull Secret as the operator would write it, with an annotation added by hand. */
const current: V1Secret = {
  ...body,
  metadata: {
    ...body.metadata,
    resourceVersion: "9",
    annotations: { ...body.metadata.annotations, "example.com/note": "added by hand" },
  },
};
/** The same change as a watch of metadata alone brought it: no type, no data. */
const changedByOthers: V1Secret = {
  apiVersion: "v1",
  kind: "Secret",
  metadata: structuredClone(current.metadata),
};

function setup(readSecret: (namespace: string, name: string) => Promise<V1Secret | undefined>): {
  reconciler: Reconciler;
  changes: PlannedChange[];
  reads: string[];
  mints: () => number;
} {
  const clock = new ManualClock(Date.parse("2026-01-01T00:00:00Z"));
  const changes: PlannedChange[] = [];
  const reads: string[] = [];
  let mints = 0;
  const log = createLogger({ level: "silent", pretty: false });
  const cache = new ClusterCache(
    {
      ecrPullSecrets: fixedStore<ECRPullSecret>([cr]),
      namespaces: fixedStore<V1Namespace>([{ metadata: { name: "team-a" } }]),
      serviceAccounts: fixedStore<V1ServiceAccount>([]),
      secrets: fixedStore<V1Secret>([structuredClone(changedByOthers)]),
    },
    clock,
  );
  const result: ContentResult = {
    content,
    registries: [],
    problem: undefined,
    refreshAt: Date.parse(content.expiresAt),
    droppedEntries: [],
    minted: false,
  };
  const reconciler = new Reconciler({
    cache,
    readSecret: async (namespace, name) => {
      reads.push(`${namespace}/${name}`);
      return await readSecret(namespace, name);
    },
    specs: new SpecResolver({ defaultRegion: "eu-west-1", trustedNamespaces: new Set() }),
    content: {
      contentFor: () => {
        mints += 1;
        return Promise.resolve(result);
      },
    },
    writer: createWriter({
      kube: new KubeClient(unreachableCluster),
      events: { normal: () => undefined, warning: () => undefined },
      log,
      canWrite: () => true,
      dryRun: true,
      onPlannedChange: (change) => changes.push(change),
    }),
    clock,
    log,
    observer: unobserved,
    writeConcurrency: 4,
    minRequeueMs: 10_000,
    conflictRequeueMs: 60_000,
  });
  return { reconciler, changes, reads, mints: () => mints };
}

describe("Reconciler and Secrets changed by others", () => {
  it("reads such a Secret before planning, and leaves a change to its metadata alone", async () => {
    const { reconciler, changes, reads } = setup(() => Promise.resolve(structuredClone(current)));
    await reconciler.reconcile(owner.name);
    assert.deepEqual(reads, ["team-a/team-pull"]);
    assert.deepEqual(changes, [], "its content is what the operator would write");
  });

  it("writes the Secret again when the read finds it gone", async () => {
    const { reconciler, changes } = setup(() => Promise.resolve(undefined));
    await reconciler.reconcile(owner.name);
    assert.deepEqual(
      changes.map((c) => `${c.action} ${c.kind} ${c.namespace}/${c.name}`),
      ["create Secret team-a/team-pull"],
    );
  });

  it("plans nothing and retries later when the read fails", async () => {
    const { reconciler, changes, mints } = setup(() =>
      Promise.reject(new Error("connect ECONNREFUSED 127.0.0.1:6443")),
    );
    await assert.rejects(reconciler.reconcile(owner.name), (err: unknown) => {
      assert.ok(err instanceof RetryLater);
      assert.match(err.message, /could not read 1 Secrets changed by others/);
      return true;
    });
    assert.deepEqual(changes, []);
    assert.equal(mints(), 0, "no token is fetched for a plan that cannot be made");
  });
});
