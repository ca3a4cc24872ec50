import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { V1Namespace, V1Secret, V1ServiceAccount } from "@kubernetes/client-node";

import type { ECRPullSecret } from "../api/types.ts";
import { fixedStore, unreachableCluster } from "../../test/harness/cache-stores.ts";
import { ManualClock } from "../clock.ts";
import { ObjectStore } from "../kube/informer/object-store.ts";
import { KubeClient } from "../kube/rest.ts";
import { createLogger } from "../observability/logger.ts";
import { unobserved } from "../observability/observer.ts";
import { ClusterCache, type ClusterStores } from "./cluster-cache.ts";
import type { ContentResult } from "./content.ts";
import { desiredSecretBody, type SecretContent } from "./plan/desired.ts";
import { CONTENT_DIGEST_ANNOTATION, FINALIZER } from "./plan/labels.ts";
import { Reconciler } from "./reconciler.ts";
import { RetryLater } from "./retry-later.ts";
import { SpecResolver } from "./spec-resolver.ts";
import { createWriter, WriteFailure, type PlannedChange } from "./writer.ts";

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

const tokenResult: ContentResult = {
  content,
  registries: [],
  problem: undefined,
  refreshAt: Date.parse(content.expiresAt),
  droppedEntries: [],
  minted: false,
};

/** A reconciler over these stores whose writer is a dry run, recording each change it would make. */
function dryRunReconciler(
  stores: ClusterStores,
  clock: ManualClock,
  readSecret: (namespace: string, name: string) => Promise<V1Secret | undefined>,
  conflictIn?: string,
  ownedSecretPages: (owner: string) => AsyncIterable<V1Secret[]> = pagesOf([]),
): {
  reconciler: Reconciler;
  planned: () => string[];
  contentCalls: () => number;
  statusWrites: () => number;
} {
  const changes: PlannedChange[] = [];
  let contentCalls = 0;
  let statusWrites = 0;
  const log = createLogger({ level: "silent", pretty: false });
  const writer = createWriter({
    kube: new KubeClient(unreachableCluster),
    events: { normal: () => undefined, warning: () => undefined },
    log,
    canWrite: () => true,
    dryRun: true,
    onPlannedChange: (change) => changes.push(change),
  });
  const reconciler = new Reconciler({
    cache: new ClusterCache(stores, clock),
    readSecret,
    ownedSecretPages,
    specs: new SpecResolver({ defaultRegion: "eu-west-1", trustedNamespaces: new Set() }),
    content: {
      contentFor: () => {
        contentCalls += 1;
        return Promise.resolve(tokenResult);
      },
    },
    writer: {
      ...writer,
      // A Secret of the same name that someone else made, as the writer finds it on create.
      writeSecret: async (write) => {
        if (write.namespace === conflictIn) {
          throw new WriteFailure(
            "SecretConflict",
            `Secret ${write.namespace}/team-pull is not managed`,
            false,
          );
        }
        return await writer.writeSecret(write);
      },
      writeStatus: async (cr, status) => {
        statusWrites += 1;
        await writer.writeStatus(cr, status);
      },
    },
    clock,
    log,
    observer: unobserved,
    writeConcurrency: 4,
    minRequeueMs: 10_000,
    conflictRequeueMs: 60_000,
    fullPassDelayMs: 2000,
  });
  return {
    reconciler,
    planned: () => changes.splice(0).map((c) => `${c.action} ${c.kind} ${c.namespace}/${c.name}`),
    contentCalls: () => contentCalls,
    statusWrites: () => statusWrites,
  };
}

/** Pages of Secrets as a list of the CR's own would bring them. */
function pagesOf(pages: V1Secret[][], listed: string[] = []): (owner: string) => AsyncIterable<V1Secret[]> {
  return async function* (owner) {
    listed.push(owner);
    for (const page of pages) yield await Promise.resolve(page);
  };
}

function setup(readSecret: (namespace: string, name: string) => Promise<V1Secret | undefined>): {
  reconciler: Reconciler;
  planned: () => string[];
  reads: string[];
  contentCalls: () => number;
} {
  const reads: string[] = [];
  const stores = {
    ecrPullSecrets: fixedStore<ECRPullSecret>([cr]),
    namespaces: fixedStore<V1Namespace>([{ metadata: { name: "team-a" } }]),
    serviceAccounts: fixedStore<V1ServiceAccount>([]),
    secrets: fixedStore<V1Secret>([structuredClone(changedByOthers)]),
  };
  const clock = new ManualClock(Date.parse("2026-01-01T00:00:00Z"));
  const built = dryRunReconciler(stores, clock, async (namespace, name) => {
    reads.push(`${namespace}/${name}`);
    return await readSecret(namespace, name);
  });
  return { ...built, reads };
}

describe("Reconciler and Secrets changed by others", () => {
  it("reads such a Secret before planning, and leaves a change to its metadata alone", async () => {
    const { reconciler, planned, reads } = setup(() => Promise.resolve(structuredClone(current)));
    await reconciler.reconcile(owner.name);
    assert.deepEqual(reads, ["team-a/team-pull"]);
    assert.deepEqual(planned(), [], "its content is what the operator would write");
  });

  it("writes the Secret again when the read finds it gone", async () => {
    const { reconciler, planned } = setup(() => Promise.resolve(undefined));
    await reconciler.reconcile(owner.name);
    assert.deepEqual(planned(), ["create Secret team-a/team-pull"]);
  });

  it("plans nothing and retries later when the read fails", async () => {
    const { reconciler, planned, contentCalls } = setup(() =>
      Promise.reject(new Error("connect ECONNREFUSED 127.0.0.1:6443")),
    );
    await assert.rejects(reconciler.reconcile(owner.name), (err: unknown) => {
      assert.ok(err instanceof RetryLater);
      assert.match(err.message, /could not read 1 Secrets: .*ECONNREFUSED/);
      return true;
    });
    assert.deepEqual(planned(), []);
    assert.equal(contentCalls(), 0, "no token is fetched for a plan that cannot be made");
  });
});

describe("Reconciler and many Secrets of unknown content", () => {
  const manyCr: ECRPullSecret = { ...cr, spec: { namespaces: ["team-*"], secretName: "team-pull" } };
  const names = Array.from({ length: 60 }, (_, i) => `team-${String(i)}`);
  /** The pull Secret in `namespace` as an older release wrote it: no digest. */
  const olderRelease = (namespace: string): V1Secret => {
    const written = desiredSecretBody(owner, namespace, "team-pull", content);
    const annotations = Object.fromEntries(
      Object.entries(written.metadata.annotations).filter(([key]) => key !== CONTENT_DIGEST_ANNOTATION),
    );
    return { ...written, metadata: { ...written.metadata, annotations, resourceVersion: "7" } };
  };

  function many(
    ownedSecretPages: (owner: string) => AsyncIterable<V1Secret[]>,
  ): ReturnType<typeof dryRunReconciler> & { reads: string[] } {
    const reads: string[] = [];
    const stores = {
      ecrPullSecrets: fixedStore<ECRPullSecret>([manyCr]),
      namespaces: fixedStore<V1Namespace>(names.map((name) => ({ metadata: { name } }))),
      serviceAccounts: fixedStore<V1ServiceAccount>([]),
      // As a list of metadata alone brings them.
      secrets: fixedStore<V1Secret>(
        names.map((name) => ({ apiVersion: "v1", kind: "Secret", metadata: olderRelease(name).metadata })),
      ),
    };
    const clock = new ManualClock(Date.parse("2026-01-01T00:00:00Z"));
    const readSecret = (namespace: string, name: string): Promise<V1Secret | undefined> => {
      reads.push(`${namespace}/${name}`);
      return Promise.resolve(olderRelease(namespace));
    };
    return { ...dryRunReconciler(stores, clock, readSecret, undefined, ownedSecretPages), reads };
  }

  it("lists the CR's own Secrets once instead of reading each, and rewrites none", async () => {
    const listed: string[] = [];
    const pages = [names.slice(0, 25).map(olderRelease), names.slice(25).map(olderRelease)];
    const { reconciler, planned, reads } = many(pagesOf(pages, listed));
    await reconciler.reconcile(owner.name);
    assert.deepEqual(listed, [owner.name]);
    assert.deepEqual(reads, []);
    assert.deepEqual(planned(), [], "a Secret without a digest is current");
  });

  it("reads one by one what the list did not show", async () => {
    const { reconciler, planned, reads } = many(pagesOf([names.slice(1).map(olderRelease)]));
    await reconciler.reconcile(owner.name);
    assert.deepEqual(reads, ["team-0/team-pull"]);
    assert.deepEqual(planned(), []);
  });

  it("plans nothing and retries later when the list fails", async () => {
    const { reconciler, planned, reads } = many(() => ({
      [Symbol.asyncIterator]: () => ({
        next: () => Promise.reject(new Error("connect ECONNREFUSED 127.0.0.1:6443")),
      }),
    }));
    await assert.rejects(
      reconciler.reconcile(owner.name),
      /could not list the Secrets of team: .*ECONNREFUSED/,
    );
    assert.deepEqual(reads, []);
    assert.deepEqual(planned(), []);
  });
});

describe("Reconciler and passes over the namespaces a change touched", () => {
  const teamCr: ECRPullSecret = {
    ...cr,
    metadata: { ...cr.metadata, generation: 1 },
    spec: { namespaces: ["team-*"], secretName: "team-pull" },
  };
  const inSync = (namespace: string): V1Secret => {
    const written = desiredSecretBody(owner, namespace, "team-pull", content);
    return { ...written, metadata: { ...written.metadata, resourceVersion: "5" } };
  };
  const namespace = (name: string): V1Namespace => ({ metadata: { name, resourceVersion: "1" } });

  function scoped(conflictIn?: string): ReturnType<typeof dryRunReconciler> & {
    clock: ManualClock;
    stores: {
      ecrPullSecrets: ObjectStore<ECRPullSecret>;
      namespaces: ObjectStore<V1Namespace>;
      secrets: ObjectStore<V1Secret>;
    };
  } {
    const clock = new ManualClock(Date.parse("2026-01-01T00:00:00Z"));
    const stores = {
      ecrPullSecrets: new ObjectStore<ECRPullSecret>(),
      namespaces: new ObjectStore<V1Namespace>(),
      serviceAccounts: new ObjectStore<V1ServiceAccount>(),
      secrets: new ObjectStore<V1Secret>(),
    };
    stores.ecrPullSecrets.upsert(structuredClone(teamCr));
    for (const name of ["team-a", "team-b"]) {
      stores.namespaces.upsert(namespace(name));
      stores.secrets.upsert(inSync(name));
    }
    if (conflictIn !== undefined) stores.namespaces.upsert(namespace(conflictIn));
    return {
      ...dryRunReconciler(stores, clock, () => Promise.resolve(undefined), conflictIn),
      clock,
      stores,
    };
  }

  /** A cluster after a clean full pass, where team-b then lost its Secret unnoticed and team-c appeared. */
  async function afterFullPass(): Promise<ReturnType<typeof scoped>> {
    const setup = scoped();
    const first = await setup.reconciler.reconcile(owner.name);
    assert.ok((first.requeueAfter ?? 0) > 3600_000, "the next full pass is the token's refresh");
    assert.deepEqual(setup.planned(), [], "everything was in sync");
    setup.stores.secrets.delete(inSync("team-b"));
    setup.stores.namespaces.upsert(namespace("team-c"));
    return setup;
  }

  it("plans the namespace a change touched alone, with the content already written", async () => {
    const { reconciler, planned, contentCalls } = await afterFullPass();
    reconciler.touch(owner.name, "team-c");
    const result = await reconciler.reconcile(owner.name);
    assert.deepEqual(planned(), ["create Secret team-c/team-pull"], "team-b waits for the full pass");
    assert.equal(contentCalls(), 1, "the token content of the full pass is reused");
    assert.equal(result.requeueAfter, 2000, "a full pass follows within fullPassDelayMs");
  });

  it("plans a touched namespace alone while another is in conflict, and one in conflict with a full pass", async () => {
    const { reconciler, stores, planned } = scoped("team-x");
    const first = await reconciler.reconcile(owner.name);
    assert.equal(first.requeueAfter, 60_000, "the conflict is looked at again after conflictRequeueMs");
    assert.deepEqual(planned(), [], "the create in team-x failed before it was recorded");
    assert.deepEqual(
      reconciler.lastReport(owner.name)?.status.failures?.map((f) => `${f.namespace} ${f.reason}`),
      ["team-x SecretConflict"],
    );
    stores.secrets.delete(inSync("team-b"));
    stores.namespaces.upsert(namespace("team-c"));
    reconciler.touch(owner.name, "team-c");
    const second = await reconciler.reconcile(owner.name);
    assert.deepEqual(planned(), ["create Secret team-c/team-pull"]);
    assert.equal(second.requeueAfter, 2000);
    reconciler.touch(owner.name, "team-x");
    await reconciler.reconcile(owner.name);
    assert.deepEqual(
      planned(),
      ["create Secret team-b/team-pull", "create Secret team-c/team-pull"],
      "the conflict in team-x made the pass full",
    );
  });

  it("runs the full pass when it is due, however often namespaces are touched meanwhile", async () => {
    const { reconciler, clock, planned, contentCalls } = await afterFullPass();
    reconciler.touch(owner.name, "team-c");
    await reconciler.reconcile(owner.name);
    planned();
    clock.advance(1500);
    reconciler.touch(owner.name, "team-c");
    const second = await reconciler.reconcile(owner.name);
    assert.equal(second.requeueAfter, 500, "touching again does not put the full pass off");
    planned();
    clock.advance(500);
    reconciler.touch(owner.name, "team-c");
    await reconciler.reconcile(owner.name);
    assert.deepEqual(planned(), ["create Secret team-b/team-pull", "create Secret team-c/team-pull"]);
    assert.equal(contentCalls(), 2);
  });

  it("makes every reconcile a full pass that is not asked for by a touch alone", async () => {
    const { reconciler, planned } = await afterFullPass();
    await reconciler.reconcile(owner.name);
    assert.deepEqual(planned(), ["create Secret team-b/team-pull", "create Secret team-c/team-pull"]);
  });

  it("makes a touched reconcile full when a full pass was asked for too", async () => {
    const { reconciler, planned } = await afterFullPass();
    reconciler.touch(owner.name, "team-c");
    reconciler.requestFullPass(owner.name);
    reconciler.touch(owner.name, "team-c");
    await reconciler.reconcile(owner.name);
    assert.deepEqual(planned(), ["create Secret team-b/team-pull", "create Secret team-c/team-pull"]);
  });

  it("makes a touched reconcile full after the CR's spec changed", async () => {
    const { reconciler, stores, planned } = await afterFullPass();
    stores.ecrPullSecrets.upsert({
      ...teamCr,
      metadata: { ...teamCr.metadata, generation: 2, resourceVersion: "4" },
    });
    reconciler.touch(owner.name, "team-c");
    await reconciler.reconcile(owner.name);
    assert.deepEqual(planned(), ["create Secret team-b/team-pull", "create Secret team-c/team-pull"]);
  });

  it("knows a change to the status alone, to the status it built, as its own write", async () => {
    const { reconciler, stores, statusWrites } = await afterFullPass();
    assert.equal(statusWrites(), 1);
    const before = stores.ecrPullSecrets.get(owner.name);
    assert.ok(before !== undefined);
    // The status as the API server echoes it: every field of the one the reconcile built.
    const built = reconciler.lastReport(owner.name)?.status;
    assert.ok(built !== undefined);
    const echo: ECRPullSecret = {
      ...before,
      metadata: { ...before.metadata, resourceVersion: "101" },
      status: structuredClone(built),
    };
    assert.ok(reconciler.isOwnStatus(echo, before));
    const otherStatus = { ...echo, status: { ...built, synced: "0/2" } };
    assert.ok(!reconciler.isOwnStatus(otherStatus, before), "someone else's status");
    const respec = { ...echo, metadata: { ...echo.metadata, generation: 2 } };
    assert.ok(!reconciler.isOwnStatus(respec, before), "the spec changed too");
    const deleting = {
      ...echo,
      metadata: { ...echo.metadata, deletionTimestamp: new Date("2026-01-01T00:00:01Z") },
    };
    assert.ok(!reconciler.isOwnStatus(deleting, before), "the CR is being deleted");
    const unfinalized = { ...echo, metadata: { ...echo.metadata, finalizers: [] } };
    assert.ok(!reconciler.isOwnStatus(unfinalized, before), "its finalizer was removed");
  });

  it("makes a touched reconcile full once the token is due for refresh", async () => {
    const { reconciler, clock, planned, contentCalls } = await afterFullPass();
    clock.advance(Date.parse(content.expiresAt) - clock.now());
    reconciler.touch(owner.name, "team-c");
    await reconciler.reconcile(owner.name);
    assert.deepEqual(planned(), ["create Secret team-b/team-pull", "create Secret team-c/team-pull"]);
    assert.equal(contentCalls(), 2);
  });
});
