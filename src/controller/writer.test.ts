import { describe, it } from "node:test";
import assert from "node:assert/strict";
import type { ECRPullSecret } from "../api/types.ts";
import type { EventRecorder } from "../kube/events.ts";
import type { ClusterConnection } from "../kube/kubeconfig/cluster-access.ts";
import { KubeClient } from "../kube/rest.ts";
import { connection, FakeApiServer } from "../../test/harness/fake-apiserver.ts";
import { createLogger } from "../observability/logger.ts";
import { desiredSecretBody, type SecretWrite } from "./plan/desired.ts";
import { RetryLater } from "./retry-later.ts";
import { createWriter, ownedSecretPages, type PlannedChange, type Writer } from "./writer.ts";

/** A cluster the test must never reach. */
const unreachable: ClusterConnection = {
  getCurrentCluster: () => assert.fail("the writer reached the cluster"),
  applyToHTTPSOptions: () => assert.fail("the writer reached the cluster"),
};
const noEvents: EventRecorder = {
  normal: () => assert.fail("the writer recorded an Event"),
  warning: () => assert.fail("the writer recorded an Event"),
};

const cr: ECRPullSecret = {
  apiVersion: "ecr-creds-refresher.io/v1alpha1",
  kind: "ECRPullSecret",
  metadata: { name: "team", uid: "uid-1", resourceVersion: "7" },
  spec: { namespaces: ["team-a"] },
};
const write: SecretWrite = {
  action: "create",
  namespace: "team-a",
  body: desiredSecretBody({ name: "team", uid: "uid-1" }, "team-a", "team-pull", {
    dockerConfigJson: "{}",
    expiresAt: "2026-01-01T12:00:00Z",
    refreshedAt: "2026-01-01T00:00:00Z",
    identity: "0123456789abcdef",
  }),
};
const edit = { namespace: "team-a", name: "default", add: ["team-pull"], remove: ["old-pull"] };

function writer(options: { dryRun: boolean; canWrite: boolean }, changes: PlannedChange[] = []): Writer {
  return createWriter({
    kube: new KubeClient(unreachable),
    events: noEvents,
    log: createLogger({ level: "silent", pretty: false }),
    canWrite: () => options.canWrite,
    dryRun: options.dryRun,
    onPlannedChange: (change) => changes.push(change),
  });
}

describe("the writer", () => {
  it("records each change to Secrets and ServiceAccounts in a dry run and writes nothing else", async () => {
    const changes: PlannedChange[] = [];
    const dryRun = writer({ dryRun: true, canWrite: true }, changes);
    const secret = await dryRun.writeSecret(write);
    assert.equal(secret.metadata?.name, "team-pull");
    await dryRun.deleteSecret({ namespace: "team-b", name: "team-pull" });
    assert.equal(await dryRun.editServiceAccount(edit, undefined), undefined);
    assert.equal(await dryRun.setFinalizers(cr, ["ecr-creds-refresher.io/cleanup"]), undefined);
    await dryRun.writeStatus(cr, { observedGeneration: 1 });
    dryRun.events.warning({ apiVersion: "v1", kind: "ECRPullSecret", name: "team", uid: "uid-1" }, "X", "y");
    assert.deepEqual(changes, [
      {
        action: "create",
        kind: "Secret",
        namespace: "team-a",
        name: "team-pull",
        detail: "token expires 2026-01-01T12:00:00Z",
      },
      {
        action: "delete",
        kind: "Secret",
        namespace: "team-b",
        name: "team-pull",
        detail: "no longer targeted",
      },
      {
        action: "patch",
        kind: "ServiceAccount",
        namespace: "team-a",
        name: "default",
        detail: "imagePullSecrets +team-pull -old-pull",
      },
    ]);
  });

  for (const dryRun of [false, true]) {
    it(`refuses every write while this replica does not lead${dryRun ? ", in a dry run too" : ""}`, async () => {
      const standby = writer({ dryRun, canWrite: false });
      assert.throws(() => {
        standby.ensureWritable();
      }, RetryLater);
      const writes: Promise<unknown>[] = [
        standby.writeSecret(write),
        standby.deleteSecret({ namespace: "team-a", name: "team-pull" }),
        standby.editServiceAccount(edit, undefined),
        standby.setFinalizers(cr, []),
        standby.writeStatus(cr, { observedGeneration: 1 }),
      ];
      for (const attempt of writes) {
        await assert.rejects(
          attempt,
          (err: unknown) => err instanceof RetryLater && /not the leader/.test(err.message),
        );
      }
    });
  }
});

/** A writer to `api` that writes for real. */
async function clusterWriter(api: FakeApiServer): Promise<Writer> {
  return createWriter({
    kube: new KubeClient(connection(await api.listen()), { timeoutMs: 2000 }),
    events: noEvents,
    log: createLogger({ level: "silent", pretty: false }),
    canWrite: () => true,
    dryRun: false,
    onPlannedChange: () => assert.fail("a dry run's change outside a dry run"),
  });
}

describe("the writer against an API server", () => {
  it("creates a Secret asking for its metadata alone, and keeps the content it sent", async () => {
    const api = new FakeApiServer();
    try {
      const stored = { name: "team-pull", namespace: "team-a", uid: "uid-9", resourceVersion: "42" };
      api.reply = (_req, res) => {
        res.statusCode = 201;
        res.end(
          JSON.stringify({ kind: "PartialObjectMetadata", apiVersion: "meta.k8s.io/v1", metadata: stored }),
        );
      };
      const cluster = await clusterWriter(api);
      const written = await cluster.writeSecret(write);
      assert.match(
        api.seen.at(-1)?.accept ?? "",
        /^application\/json;as=PartialObjectMetadata;g=meta\.k8s\.io;v=v1, /,
      );
      assert.deepEqual(written, {
        apiVersion: "v1",
        kind: "Secret",
        metadata: stored,
        type: write.body.type,
        data: write.body.data,
      });
      assert.notEqual(
        written.data,
        write.body.data,
        "the plan's data map is shared; the written Secret has its own",
      );
    } finally {
      await api.close();
    }
  });

  it("retries a finalizer change when the CR changed since it was read, and lets a deleted CR go", async () => {
    const api = new FakeApiServer();
    try {
      let code = 409;
      api.reply = (_req, res) => {
        res.statusCode = code;
        const reason = code === 409 ? "Conflict" : "NotFound";
        res.end(JSON.stringify({ kind: "Status", apiVersion: "v1", status: "Failure", reason, code }));
      };
      const cluster = await clusterWriter(api);
      await assert.rejects(
        cluster.setFinalizers(cr, []),
        (err: unknown) =>
          err instanceof RetryLater && err.message === "ECRPullSecret team changed since it was read",
      );
      assert.deepEqual(JSON.parse(api.seen.at(-1)?.body ?? ""), {
        metadata: { finalizers: [], resourceVersion: "7" },
      });
      code = 404;
      assert.equal(await cluster.setFinalizers(cr, []), undefined);
    } finally {
      await api.close();
    }
  });

  it("lists the Secrets a CR owns page by page, following the continue token", async () => {
    const api = new FakeApiServer();
    try {
      api.reply = (req, res) => {
        const next = new URL(req.url ?? "", "http://api").searchParams.get("continue");
        const page = next === null ? ["a", "b"] : ["c"];
        res.end(
          JSON.stringify({
            kind: "SecretList",
            apiVersion: "v1",
            metadata: { resourceVersion: "9", continue: next === null ? "token-2" : "" },
            items: page.map((namespace) => ({ metadata: { namespace, name: "team-pull" } })),
          }),
        );
      };
      const kube = new KubeClient(connection(await api.listen()), { timeoutMs: 2000 });
      const pages: string[][] = [];
      for await (const page of ownedSecretPages(kube, "team", 2)) {
        pages.push(page.map((secret) => secret.metadata?.namespace ?? ""));
      }
      assert.deepEqual(pages, [["a", "b"], ["c"]]);
      const queries = api.seen.map((seen) => new URL(seen.url, "http://api"));
      assert.deepEqual(
        queries.map((url) => [
          url.pathname,
          url.searchParams.get("labelSelector"),
          url.searchParams.get("limit"),
        ]),
        [
          [
            "/api/v1/secrets",
            "app.kubernetes.io/managed-by=ecr-creds-refresher,ecr-creds-refresher.io/owner=team",
            "2",
          ],
          [
            "/api/v1/secrets",
            "app.kubernetes.io/managed-by=ecr-creds-refresher,ecr-creds-refresher.io/owner=team",
            "2",
          ],
        ],
      );
      assert.deepEqual(
        queries.map((url) => url.searchParams.get("continue")),
        [null, "token-2"],
      );
    } finally {
      await api.close();
    }
  });
});
