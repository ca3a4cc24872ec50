// docs/migration.md's steps against a real API server: the original operator's CRs (alchemy.com)
// converted by changing apiVersion, and the Secrets it wrote adopted in place, never deleted.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import type { V1Secret } from "@kubernetes/client-node";
import { API_VERSION, KIND, type ECRPullSecretSpec } from "../../src/api/types.ts";
import { ADDED_PULL_SECRETS_ANNOTATION, MANAGED_BY_LABEL, OWNER_LABEL } from "../../src/controller/labels.ts";
import { installCrds } from "../harness/controlplane.ts";
import {
  createNamespace,
  createPullSecretCr,
  dockerConfigOf,
  pullSecretNames,
  readSecret,
  readServiceAccount,
  startOperatorEnv,
  waitForReady,
  type OperatorEnv,
} from "../harness/operator-env.ts";
import { eventually } from "../harness/wait.ts";

/** The original operator's API, as its users have it installed: group alchemy.com, two spec fields. */
const original = { group: "alchemy.com", version: "v1alpha1", plural: "ecrpullsecrets" } as const;
const originalCrd = {
  apiVersion: "apiextensions.k8s.io/v1",
  kind: "CustomResourceDefinition",
  metadata: { name: `${original.plural}.${original.group}` },
  spec: {
    group: original.group,
    names: {
      kind: "ECRPullSecret",
      plural: original.plural,
      singular: "ecrpullsecret",
      shortNames: ["ecrps"],
    },
    scope: "Cluster",
    versions: [
      {
        name: original.version,
        served: true,
        storage: true,
        schema: {
          openAPIV3Schema: {
            type: "object",
            properties: {
              spec: {
                type: "object",
                required: ["secretName"],
                properties: {
                  secretName: { type: "string" },
                  namespaces: { type: "array", items: { type: "string" } },
                },
              },
            },
          },
        },
      },
    ],
  },
};

interface OriginalCr {
  metadata: { name: string };
  spec: { secretName: string; namespaces?: string[] };
}

const staleDockerConfig = JSON.stringify({
  auths: {
    "123456789012.dkr.ecr.eu-west-1.amazonaws.com": {
      username: "AWS",
      password: "old",
      auth: "QVdTOm9sZA==",
    },
  },
});

describe("migrating from the original alchemy.com/v1alpha1 operator", () => {
  let env: OperatorEnv;
  const written = new Map<string, V1Secret>();

  before(async () => {
    env = await startOperatorEnv();
    await installCrds(env.plane.kubeConfig, [originalCrd]);
    await createNamespace(env, "production");
    // What the original operator left behind: its CRs, unlabelled pull Secrets, and `default`
    // ServiceAccounts whose imagePullSecrets it replaced with its one entry.
    for (const [name, spec] of [
      ["ecr-config", { secretName: "aws-registry", namespaces: ["default", "production"] }],
      ["implicit-default", { secretName: "aws-registry-implicit" }],
    ] as const) {
      await env.objects.createClusterCustomObject({
        ...original,
        body: {
          apiVersion: `${original.group}/${original.version}`,
          kind: "ECRPullSecret",
          metadata: { name },
          spec,
        },
      });
    }
    for (const [namespace, secret] of [
      ["default", "aws-registry"],
      ["production", "aws-registry"],
      ["default", "aws-registry-implicit"],
    ] as const) {
      const stale = await env.core.createNamespacedSecret({
        namespace,
        body: {
          metadata: { name: secret },
          type: "kubernetes.io/dockerconfigjson",
          stringData: { ".dockerconfigjson": staleDockerConfig },
        },
      });
      written.set(`${namespace}/${secret}`, stale);
    }
    for (const namespace of ["default", "production"]) {
      await eventually(() => readServiceAccount(env, namespace, "default"));
      const entries = namespace === "default" ? ["aws-registry", "aws-registry-implicit"] : ["aws-registry"];
      await env.core.patchNamespacedServiceAccount({
        namespace,
        name: "default",
        body: [{ op: "add", path: "/imagePullSecrets", value: entries.map((name) => ({ name })) }],
      });
    }
  });

  after(async () => {
    await env.stop();
  });

  it("adopts the original operator's Secrets in place once its CRs move to the new apiVersion", async () => {
    // Step 2: convert, keeping name and spec; `namespaces` left out meant [default].
    const list = (await env.objects.listClusterCustomObject({ ...original })) as { items: OriginalCr[] };
    const converted = list.items.map((cr) => ({
      name: cr.metadata.name,
      spec: { ...cr.spec, namespaces: cr.spec.namespaces ?? ["default"] } satisfies ECRPullSecretSpec,
    }));
    assert.equal(converted.length, 2);

    // Step 3: retire the original API.
    for (const cr of converted) {
      await env.objects.deleteClusterCustomObject({ ...original, name: cr.name });
    }

    // Step 4: label the Secrets as managed by the CR that now claims them.
    for (const cr of converted) {
      for (const namespace of cr.spec.namespaces) {
        await env.core.patchNamespacedSecret({
          namespace,
          name: cr.spec.secretName,
          body: [
            {
              op: "add",
              path: "/metadata/labels",
              value: { [MANAGED_BY_LABEL]: "ecr-creds-refresher", [OWNER_LABEL]: cr.name },
            },
          ],
        });
      }
    }

    // Step 5: the same CRs under the new apiVersion.
    for (const cr of converted) {
      const created = await createPullSecretCr(env, cr.name, cr.spec);
      assert.equal(created.apiVersion, API_VERSION);
      assert.equal(created.kind, KIND);
    }
    const ready = await waitForReady(env, "ecr-config");
    assert.deepEqual(ready.status?.namespaces, { desired: 2, synced: 2 });
    await waitForReady(env, "implicit-default");

    for (const [key, old] of written) {
      const [namespace = "", name = ""] = key.split("/");
      const adopted = await eventually(async () => {
        const secret = await readSecret(env, namespace, name);
        assert.ok(
          (secret.metadata?.ownerReferences ?? []).some((ref) => ref.kind === KIND),
          `${key} not adopted`,
        );
        return secret;
      });
      assert.equal(adopted.metadata?.uid, old.metadata?.uid, `${key} was replaced instead of adopted`);
      const auth = Object.values(dockerConfigOf(adopted).auths)[0];
      assert.ok(auth !== undefined && auth.password !== "old", `${key} still holds the old token`);
    }

    // The ServiceAccounts already listed the Secrets: left exactly as they were.
    const defaultSa = await readServiceAccount(env, "default", "default");
    assert.deepEqual(pullSecretNames(defaultSa), ["aws-registry", "aws-registry-implicit"]);
    assert.equal(defaultSa.metadata?.annotations?.[ADDED_PULL_SECRETS_ANNOTATION], undefined);
    assert.deepEqual(pullSecretNames(await readServiceAccount(env, "production", "default")), [
      "aws-registry",
    ]);
  });
});
