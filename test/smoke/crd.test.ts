import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { ApiException, CustomObjectsApi } from "@kubernetes/client-node";
import { ecrPullSecretCrd } from "../../src/api/crd.ts";
import { API_VERSION, GROUP, KIND, PLURAL, VERSION } from "../../src/api/types.ts";
import { startControlPlane, type ControlPlane } from "../harness/controlplane.ts";

describe("the ECRPullSecret CRD on a real API server", () => {
  let plane: ControlPlane;
  let objects: CustomObjectsApi;

  before(async () => {
    plane = await startControlPlane({ crds: [ecrPullSecretCrd] });
    objects = plane.kubeConfig.makeApiClient(CustomObjectsApi);
  });

  after(async () => {
    await plane.stop();
  });

  const create = (name: string, spec: unknown): Promise<unknown> =>
    objects.createClusterCustomObject({
      group: GROUP,
      version: VERSION,
      plural: PLURAL,
      body: { apiVersion: API_VERSION, kind: KIND, metadata: { name }, spec },
    });

  it("is established and accepts the original operator's spec", async () => {
    await create("original", { secretName: "ecr-pull", namespaces: ["default", "team-a"] });
    const stored = (await objects.getClusterCustomObject({
      group: GROUP,
      version: VERSION,
      plural: PLURAL,
      name: "original",
    })) as { spec: { secretName: string } };
    assert.equal(stored.spec.secretName, "ecr-pull");
  });

  it("rejects a registry host that is not an ECR host, naming the field", async () => {
    await assert.rejects(
      () => create("bad-host", { registries: ["registry.example.invalid"] }),
      (err: unknown) =>
        err instanceof ApiException && err.code === 422 && /spec\.registries/.test(String(err.body)),
    );
  });

  it("rejects a role ARN that is not an IAM role ARN", async () => {
    await assert.rejects(
      () => create("bad-arn", { aws: { assumeRole: { roleArn: "arn:aws:s3:::bucket" } } }),
      (err: unknown) => err instanceof ApiException && err.code === 422 && /roleArn/.test(String(err.body)),
    );
  });

  it("rejects '*' mixed with named ServiceAccounts", async () => {
    await assert.rejects(
      () => create("bad-sa", { serviceAccounts: ["*", "builder"] }),
      (err: unknown) =>
        err instanceof ApiException && err.code === 422 && /serviceAccounts/.test(String(err.body)),
    );
  });

  it("rejects a refresh interval longer than the token lifetime", async () => {
    await assert.rejects(
      () => create("bad-interval", { refreshInterval: "13h" }),
      (err: unknown) =>
        err instanceof ApiException && err.code === 422 && /refreshInterval/.test(String(err.body)),
    );
  });
});
