import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { CoreV1Api, Watch, type V1Secret } from "@kubernetes/client-node";
import { startControlPlane, type ControlPlane } from "../harness/controlplane.ts";
import { eventually } from "../harness/wait.ts";

describe("the local control plane", () => {
  let plane: ControlPlane;
  let core: CoreV1Api;

  before(async () => {
    plane = await startControlPlane({ controllerManager: true });
    core = plane.kubeConfig.makeApiClient(CoreV1Api);
  });

  after(async () => {
    await plane.stop();
  });

  it("starts etcd and the API server within 15 seconds", () => {
    assert.ok(plane.startupMs < 15_000, `startup took ${plane.startupMs} ms`);
  });

  it("stores a namespace and a Secret and reads them back", async () => {
    await core.createNamespace({ body: { metadata: { name: "smoke" } } });
    await core.createNamespacedSecret({
      namespace: "smoke",
      body: { metadata: { name: "s1" }, stringData: { greeting: "hello" } },
    });
    const ns = await core.readNamespace({ name: "smoke" });
    assert.equal(ns.metadata?.name, "smoke");
    const secret = await core.readNamespacedSecret({ namespace: "smoke", name: "s1" });
    assert.equal(Buffer.from(secret.data?.greeting ?? "", "base64").toString(), "hello");
  });

  it("creates the default ServiceAccount in a new namespace, like a real cluster", async () => {
    await core.createNamespace({ body: { metadata: { name: "smoke-sa" } } });
    const sa = await eventually(
      () => core.readNamespacedServiceAccount({ namespace: "smoke-sa", name: "default" }),
      {
        timeoutMs: 30_000,
      },
    );
    assert.equal(sa.metadata?.name, "default");
  });

  it("delivers ADDED, MODIFIED and DELETED watch events", async () => {
    await core.createNamespace({ body: { metadata: { name: "smoke-watch" } } });
    const seen: string[] = [];
    const watch = new Watch(plane.kubeConfig);
    const done = new Promise<void>((resolve, reject) => {
      void watch
        .watch(
          "/api/v1/namespaces/smoke-watch/secrets",
          {},
          (type: string, obj: V1Secret) => {
            if (obj.metadata?.name === "watched") {
              seen.push(type);
            }
            if (type === "DELETED") {
              resolve();
            }
          },
          (err: unknown) => {
            if (err !== null && err !== undefined) {
              reject(err instanceof Error ? err : new Error("watch failed"));
            }
          },
        )
        .then(async (request) => {
          await core.createNamespacedSecret({
            namespace: "smoke-watch",
            body: { metadata: { name: "watched" }, stringData: { v: "1" } },
          });
          await core.replaceNamespacedSecret({
            namespace: "smoke-watch",
            name: "watched",
            body: { metadata: { name: "watched" }, stringData: { v: "2" } },
          });
          await core.deleteNamespacedSecret({ namespace: "smoke-watch", name: "watched" });
          await done;
          request.abort();
        });
    });
    await done;
    assert.deepEqual(seen, ["ADDED", "MODIFIED", "DELETED"]);
  });

  it("denies a user without RBAC rights with 403", async () => {
    const nobody = await plane.userKubeConfig("nobody", ["no-rights"]);
    const api = nobody.kubeConfig.makeApiClient(CoreV1Api);
    await assert.rejects(
      () => api.listNamespace(),
      (err: unknown) => (err as { code?: number }).code === 403,
    );
  });
});
