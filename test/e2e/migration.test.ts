// docs/migration.md on a real node: the original alchemy.com operator's Secrets in place (one
// constant name, the `default` ServiceAccounts' lists replaced by it), then the operator installed
// by its chart and the guide's path (b), to a name of your choice, run command for command while
// Pods that pull a private image are created throughout. Every one of them must pull.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import type { V1Pod } from "@kubernetes/client-node";
import { migrateWhileWatched, openMigrationShell, type MigrationShell } from "../harness/migration.ts";
import { motoDefaultCredentials } from "../harness/moto.ts";
import {
  appRepository,
  ecrRegistryCredentials,
  installOperatorChart,
  startNodeEnv,
  waitForPod,
  type NodeEnv,
} from "../harness/node-env.ts";
import {
  createOriginalCr,
  installOriginalCrd,
  originalRegistry,
  originalSecretName,
  runOriginalOperator,
} from "../harness/original-operator.ts";
import { stopStarted } from "../harness/processes.ts";
import { eventually } from "../harness/wait.ts";

const namespaces = ["default", "production", "team-a"];
const chosenName = "ecr-pull";
const image = `${originalRegistry}/${appRepository}`;

function pulled(pod: V1Pod): void {
  if ((pod.status?.containerStatuses?.[0]?.imageID ?? "") === "") {
    throw new Error(`not pulled: ${JSON.stringify(pod.status?.containerStatuses?.[0]?.state ?? {})}`);
  }
}

describe("migrating from the original operator on a real node, with Pods pulling throughout", () => {
  let env: NodeEnv;
  let shell: MigrationShell | undefined;

  before(async () => {
    env = await startNodeEnv();
    await installOriginalCrd(env.plane.kubeConfig);
    for (const name of namespaces.slice(1)) await env.core.createNamespace({ body: { metadata: { name } } });
    for (const namespace of namespaces) {
      await eventually(() => env.core.readNamespacedServiceAccount({ namespace, name: "default" }));
    }
    await createOriginalCr(env.plane.kubeConfig, "ecr-config", { secretName: chosenName, namespaces });
    await runOriginalOperator({
      kubeConfig: env.plane.kubeConfig,
      awsEndpoint: env.aws.endpoint,
      credentials: motoDefaultCredentials,
    });
    await installOperatorChart(env);
    shell = await openMigrationShell(env.plane.kubeconfigPath, {
      OLD: originalSecretName,
      REGISTRY: originalRegistry,
      CR: "ecr-config",
      NEW: chosenName,
    });
  });

  after(async () => {
    await stopStarted(
      shell === undefined ? undefined : { stop: () => shell?.dispose() ?? Promise.resolve() },
      env,
    );
  });

  it("starts where the original operator leaves a cluster: its Secret works, under its one name", async () => {
    for (const namespace of namespaces) {
      const sa = await env.core.readNamespacedServiceAccount({ namespace, name: "default" });
      assert.deepEqual(
        (sa.imagePullSecrets ?? []).map((ref) => ref.name),
        [originalSecretName],
        namespace,
      );
    }
    await env.core.createNamespacedPod({
      namespace: "production",
      body: {
        metadata: { name: "before" },
        spec: { containers: [{ name: "app", image, command: ["sleep", "3600"] }] },
      },
    });
    await waitForPod(env, "production", "before", pulled);
  });

  it("path (b): every Pod created during the migration pulls, and no trace of the old name is left", async () => {
    assert.ok(shell !== undefined);
    const password = ecrRegistryCredentials().password;
    const run = await migrateWhileWatched(shell, "new-name", {
      core: env.core,
      accepts: (_registry, candidate) => candidate === password,
      namespaces,
      image,
      podIntervalMs: 1_500,
    });
    assert.deepEqual(run.podErrors, []);
    assert.deepEqual(run.coverage.gaps, [], "a namespace was left without a working entry");
    const pods = run.pods;
    assert.ok(pods.length >= 3, `only ${String(pods.length)} Pods were created during the migration`);
    for (const pod of pods) {
      await waitForPod(env, pod.namespace, pod.name, pulled, { timeoutMs: 180_000 });
    }

    for (const namespace of namespaces) {
      const sa = await env.core.readNamespacedServiceAccount({ namespace, name: "default" });
      assert.deepEqual(
        (sa.imagePullSecrets ?? []).map((ref) => ref.name),
        [chosenName],
        namespace,
      );
    }
    await eventually(async () => {
      const left = await env.core.listSecretForAllNamespaces({
        fieldSelector: `metadata.name=${originalSecretName}`,
      });
      if (left.items.length > 0) throw new Error(`${String(left.items.length)} old Secrets remain`);
    });
  });
});
