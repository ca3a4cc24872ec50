// The operator as users run it, on a real node: the image built from the Dockerfile, installed by
// the Helm chart under the restricted Pod Security Standard, and Pods that pull private images
// from a registry answering as ECR with the Secret the operator wrote. The original operator's
// walkthrough, a Deployment in a new namespace, token rotation, two registries in one Pod, the
// create-before-patch race with the Pod webhook and without it, uninstall, and the static manifest.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import type { V1Pod } from "@kubernetes/client-node";
import { API_VERSION, KIND } from "../../src/api/types.ts";
import { motoDefaultCredentials } from "../harness/moto.ts";
import {
  appRepository,
  ecrHosts,
  ecrRegistryCredentials,
  installOperatorChart,
  operatorRelease,
  uninstallOperatorChart,
  upgradeOperatorChart,
  startNodeEnv,
  waitForPod,
  waitingReasons,
  type NodeEnv,
} from "../harness/node-env.ts";
import { repoRoot } from "../harness/paths.ts";
import { describeRace, runRace, sleepingDeployment } from "../harness/race.ts";
import { stopStarted } from "../harness/processes.ts";
import { eventually } from "../harness/wait.ts";

const operatorNamespace = operatorRelease.namespace;
const release = operatorRelease.name;
const image = `${ecrHosts[0]}/${appRepository}`;
const secondImage = `${ecrHosts[1]}/${appRepository}`;

function crYaml(name: string, spec: object): string {
  return JSON.stringify({ apiVersion: API_VERSION, kind: KIND, metadata: { name }, spec });
}

function terminatedCompleted(pod: V1Pod): void {
  const status = pod.status?.containerStatuses?.[0];
  const terminated = status?.state?.terminated ?? status?.lastState?.terminated;
  if (terminated?.reason !== "Completed" || terminated.exitCode !== 0) {
    throw new Error(`not completed yet: ${JSON.stringify(status?.state ?? {})}`);
  }
}

function pullFailed(pod: V1Pod): void {
  const reasons = waitingReasons(pod);
  if (!reasons.some((r) => r === "ImagePullBackOff" || r === "ErrImagePull")) {
    throw new Error(`no pull failure yet: ${reasons.join(", ") || pod.status?.phase || "pending"}`);
  }
}

describe("on a real node, with the operator installed by its Helm chart", () => {
  let env: NodeEnv;
  let operatorImage: string;

  async function podEvents(namespace: string, pod: string): Promise<string[]> {
    const events = await env.core.listNamespacedEvent({
      namespace,
      fieldSelector: `involvedObject.name=${pod}`,
    });
    return events.items.map((e) => `${e.reason ?? ""}: ${e.message ?? ""}`);
  }

  async function operatorPod(): Promise<V1Pod> {
    const pods = await env.core.listNamespacedPod({
      namespace: operatorNamespace,
      labelSelector: `app.kubernetes.io/name=${release}`,
    });
    const pod = pods.items[0];
    if (pod === undefined) throw new Error("no operator Pod");
    return pod;
  }

  /** The walkthrough's command: `kubectl run <name> --image=<private ECR image> --image-pull-policy=Always -- sleep 5`. */
  async function kubectlRun(name: string, namespace = "default"): Promise<void> {
    await env.kubectl([
      "run",
      name,
      "-n",
      namespace,
      `--image=${image}`,
      "--image-pull-policy=Always",
      "--",
      "sleep",
      "5",
    ]);
  }

  async function waitForServiceAccountEntry(namespace: string, secretName: string): Promise<void> {
    await eventually(
      async () => {
        const sa = await env.core.readNamespacedServiceAccount({ namespace, name: "default" });
        if (!(sa.imagePullSecrets ?? []).some((ref) => ref.name === secretName)) {
          throw new Error(`default ServiceAccount in ${namespace} does not list ${secretName}`);
        }
      },
      { timeoutMs: 30_000, message: `${namespace}/default lists ${secretName}` },
    );
  }

  before(async () => {
    env = await startNodeEnv();
    operatorImage = await installOperatorChart(env);
  });

  after(async () => {
    await stopStarted(env);
  });

  it("runs the operator Pod Ready through its own probes, with in-cluster config, holding the Lease", async () => {
    const pod = await eventually(
      async () => {
        const current = await operatorPod();
        const ready = current.status?.conditions?.find((c) => c.type === "Ready");
        if (ready?.status !== "True") throw new Error("operator Pod not Ready");
        return current;
      },
      { timeoutMs: 120_000, message: "operator Pod Ready" },
    );
    const container = pod.spec?.containers[0];
    assert.ok(container !== undefined);
    assert.equal(container.image, operatorImage);
    assert.ok(container.readinessProbe?.httpGet !== undefined, "the chart's readiness probe is an HTTP GET");
    assert.ok(
      !(container.args ?? []).some((arg) => arg.startsWith("--kubeconfig")),
      "no kubeconfig is given",
    );
    assert.equal(pod.status?.containerStatuses?.[0]?.restartCount, 0);
    // The restricted profile admitted it: the namespace enforces it, so any violation would have been refused.
    const namespace = await env.core.readNamespace({ name: operatorNamespace });
    assert.equal(namespace.metadata?.labels?.["pod-security.kubernetes.io/enforce"], "restricted");

    const lease = await eventually(async () => {
      const coordination = await env.kubectl([
        "get",
        "lease",
        release,
        "-n",
        operatorNamespace,
        "-o",
        "json",
      ]);
      const parsed = JSON.parse(coordination) as { spec?: { holderIdentity?: string } };
      const holder = parsed.spec?.holderIdentity ?? "";
      if (!holder.startsWith(`${pod.metadata?.name ?? "?"}_`)) throw new Error(`Lease held by '${holder}'`);
      return holder;
    });
    assert.ok(lease.length > 0);
  });

  it("has no shell to exec into, and runs as 65532 on a read-only root filesystem", async () => {
    const pod = (await operatorPod()).metadata?.name ?? "";
    const viaShell = await env.kubectl(["exec", "-n", operatorNamespace, pod, "--", "sh", "-c", "true"]).then(
      () => "ran",
      (err: unknown) => String((err as { stderr?: unknown }).stderr ?? err),
    );
    assert.match(viaShell, /"sh": executable file not found|no such file or directory/);
    const probe =
      "const fs = require('node:fs'); let write = 'written';" +
      "try { fs.writeFileSync('/app/probe', 'x'); } catch (e) { write = e.code; }" +
      "console.log(JSON.stringify({ uid: process.getuid(), gid: process.getgid(), write }));";
    const seen = JSON.parse(
      await env.kubectl(["exec", "-n", operatorNamespace, pod, "--", "/usr/local/bin/node", "-e", probe]),
    ) as { uid: number; gid: number; write: string };
    assert.deepEqual(seen, { uid: 65532, gid: 65532, write: "EROFS" });
  });

  it("stops on SIGTERM well within its grace period, with no shell or init, and a replacement becomes Ready", async () => {
    const pod = (await operatorPod()).metadata?.name ?? "";
    const started = Date.now();
    await env.kubectl(["delete", "pod", "-n", operatorNamespace, pod, "--wait", "--timeout=60s"]);
    const stoppedMs = Date.now() - started;
    // The kubelet would wait out the chart's 15 s grace period and then kill a process that ignored SIGTERM.
    assert.ok(stoppedMs < 10_000, `deleting the operator Pod took ${String(stoppedMs)} ms`);
    await env.kubectl([
      "-n",
      operatorNamespace,
      "rollout",
      "status",
      `deployment/${release}`,
      "--timeout=120s",
    ]);
  });

  it("walkthrough: kubectl run fails with ImagePullBackOff, then works once an ECRPullSecret exists", async (t) => {
    await kubectlRun("test");
    await waitForPod(env, "default", "test", pullFailed);
    const events = await eventually(async () => {
      const found = await podEvents("default", "test");
      if (!found.some((e) => e.startsWith("Failed:") && /401|unauthori[sz]ed|authorization/i.test(e))) {
        throw new Error(`no authorization failure event yet: ${found.join(" | ")}`);
      }
      return found;
    });
    assert.ok(events.length > 0);

    // The original operator's shape: secretName and namespaces, nothing else.
    await env.kubectl(
      ["apply", "-f", "-"],
      crYaml("ecr-config", { secretName: "aws-registry", namespaces: ["default"] }),
    );
    await waitForServiceAccountEntry("default", "aws-registry");

    await kubectlRun("test2");
    const pod = await waitForPod(env, "default", "test2", terminatedCompleted);
    assert.deepEqual(
      (pod.spec?.imagePullSecrets ?? []).map((ref) => ref.name),
      ["aws-registry"],
      "from the default ServiceAccount",
    );
    assert.match(pod.status?.containerStatuses?.[0]?.imageID ?? "", /@sha256:/);
    // kubectl run's Pod restarts after `sleep 5`, and pulls again each time (imagePullPolicy Always).
    const pulled = (await podEvents("default", "test2")).filter((e) => e.startsWith("Pulled:"));
    assert.ok(pulled.length >= 1, "the kubelet reports the pull");
    t.diagnostic(pulled.join(" | "));
  });

  it("a Deployment in a namespace created after the CR, matched by a glob, becomes Available", async () => {
    await env.kubectl(
      ["apply", "-f", "-"],
      crYaml("teams", { secretName: "ecr-pull", namespaces: ["team-*"] }),
    );
    await env.core.createNamespace({ body: { metadata: { name: "team-a" } } });
    await waitForServiceAccountEntry("team-a", "ecr-pull");
    await env.apps.createNamespacedDeployment({
      namespace: "team-a",
      body: sleepingDeployment("app", 2),
    });
    await waitForAvailable("team-a", "app", 2);
  });

  async function waitForAvailable(
    namespace: string,
    name: string,
    replicas: number,
    timeoutMs = 120_000,
  ): Promise<void> {
    await eventually(
      async () => {
        const current = await env.apps.readNamespacedDeployment({ namespace, name });
        if ((current.status?.availableReplicas ?? 0) !== replicas) {
          throw new Error(`${current.status?.availableReplicas ?? 0} of ${replicas} available`);
        }
      },
      { timeoutMs, intervalMs: 250, message: `Deployment ${namespace}/${name} Available` },
    );
  }

  it("rotates the token end to end: new Pods pull with the new token, the old one is refused", async () => {
    await env.core.createNamespace({ body: { metadata: { name: "rotation" } } });
    await env.kubectl(
      ["apply", "-f", "-"],
      crYaml("rotation", {
        secretName: "ecr-rotating",
        namespaces: ["rotation"],
        registries: [ecrHosts[0]],
        refreshInterval: "1m",
      }),
    );
    await waitForServiceAccountEntry("rotation", "ecr-rotating");
    const oldPassword = ecrRegistryCredentials().password;
    const newPassword = "rotated-token-0001";
    // From here on AWS hands out the new token and the registry accepts only it, for the rest of the suite.
    env.aws.setEcrTokenPassword(newPassword);
    await env.registry.setUsers([ecrRegistryCredentials(newPassword)]);
    await kubectlRun("old-token", "rotation");
    await waitForPod(env, "rotation", "old-token", pullFailed);
    assert.equal(
      await secretPassword("rotation", "ecr-rotating"),
      oldPassword,
      "the refused pull used the old token",
    );

    await eventually(
      async () => {
        const password = await secretPassword("rotation", "ecr-rotating");
        if (password !== newPassword) throw new Error("the Secret still holds the old token");
      },
      { timeoutMs: 150_000, intervalMs: 1_000, message: "the operator refreshes the token" },
    );
    await kubectlRun("new-token", "rotation");
    await waitForPod(env, "rotation", "new-token", terminatedCompleted);
  });

  async function secretPassword(namespace: string, name: string): Promise<string> {
    const secret = await env.core.readNamespacedSecret({ namespace, name });
    const config = JSON.parse(Buffer.from(secret.data?.[".dockerconfigjson"] ?? "", "base64").toString()) as {
      auths: Record<string, { password: string }>;
    };
    return config.auths[ecrHosts[0]]?.password ?? "";
  }

  it("pulls from two accounts' registries in one Pod with one managed Secret", async () => {
    await env.core.createNamespace({ body: { metadata: { name: "multi" } } });
    await env.kubectl(
      ["apply", "-f", "-"],
      crYaml("multi", { secretName: "ecr-multi", namespaces: ["multi"], registries: [...ecrHosts] }),
    );
    await waitForServiceAccountEntry("multi", "ecr-multi");
    await env.core.createNamespacedPod({
      namespace: "multi",
      body: {
        metadata: { name: "two-registries" },
        spec: {
          restartPolicy: "Never",
          containers: [
            { name: "first", image, imagePullPolicy: "Always", command: ["sleep", "1"] },
            { name: "second", image: secondImage, imagePullPolicy: "Always", command: ["sleep", "1"] },
          ],
        },
      },
    });
    const pod = await waitForPod(env, "multi", "two-registries", (current) => {
      if (current.status?.phase !== "Succeeded")
        throw new Error(`phase ${current.status?.phase ?? "unknown"}`);
    });
    assert.deepEqual(
      (pod.status?.containerStatuses ?? []).map((status) => status.state?.terminated?.exitCode),
      [0, 0],
    );
    // containerd names both containers' image after the first host (same digest); its events do not.
    const events = await podEvents("multi", "two-registries");
    for (const pulled of [image, secondImage]) {
      assert.ok(
        events.some((e) => e.startsWith("Pulled:") && e.includes(`"${pulled}"`)),
        `pulled ${pulled}: ${events.join(" | ")}`,
      );
    }
  });

  it("with the Pod webhook (the chart's default), every Pod of a namespace applied with its Deployment gets the secret, 20 times", async (t) => {
    await env.kubectl(
      ["apply", "-f", "-"],
      crYaml("race", { secretName: "ecr-race", namespaces: ["race-*"] }),
    );
    await env.kubectl(["wait", "ecrpullsecret", "race", "--for=condition=Ready", "--timeout=60s"]);
    const race = await runRace(env, {
      rounds: 20,
      replicas: 3,
      namespacePrefix: "race-on-",
      secretName: "ecr-race",
    });
    t.diagnostic(describeRace(race));
    const pods = race.rounds.flatMap((r) => r.pods);
    assert.equal(pods.length, 60);
    assert.deepEqual(
      pods.filter((p) => !p.hadSecret || !p.pulled || p.restarts > 0),
      [],
      "every replica admitted with the secret, pulled, never restarted",
    );
    assert.equal(race.rounds.filter((r) => r.availableMs === undefined).length, 0, "every round Available");
  });

  it("without the webhook (webhook.enabled=false), measures the create-before-patch race, 20 times", async (t) => {
    await upgradeOperatorChart(env, ["webhook.enabled=false"]);
    const race = await runRace(env, {
      rounds: 20,
      replicas: 3,
      namespacePrefix: "race-off-",
      secretName: "ecr-race",
    });
    t.diagnostic(describeRace(race));
    assert.equal(race.pods, 60);
    // The mechanism, measured: a Pod pulls exactly when it was admitted with the secret.
    assert.deepEqual(
      race.rounds.flatMap((r) => r.pods).filter((p) => p.hadSecret !== p.pulled),
      [],
      "every Pod admitted with the secret pulled, and none admitted without it did",
    );
    assert.equal(
      race.rounds.filter((r) => r.availableMs !== undefined).length,
      race.rounds.filter((r) => r.pods.every((p) => p.hadSecret)).length,
      "every round whose Pods all had the secret became Available",
    );
  });

  it("deleting the CRs removes Secrets and ServiceAccount entries, and running Pods keep running", async () => {
    const before = await env.apps.readNamespacedDeployment({ namespace: "team-a", name: "app" });
    await env.kubectl(["delete", "ecrpullsecrets", "--all", "--wait", "--timeout=60s"]);
    for (const [namespace, secretName] of [
      ["default", "aws-registry"],
      ["team-a", "ecr-pull"],
      ["rotation", "ecr-rotating"],
      ["multi", "ecr-multi"],
    ] as const) {
      await eventually(async () => {
        const secrets = await env.core.listNamespacedSecret({ namespace });
        if (secrets.items.some((s) => s.metadata?.name === secretName))
          throw new Error(`${namespace}/${secretName} remains`);
        const sa = await env.core.readNamespacedServiceAccount({ namespace, name: "default" });
        if ((sa.imagePullSecrets ?? []).some((ref) => ref.name === secretName)) {
          throw new Error(`${namespace}/default still lists ${secretName}`);
        }
      });
    }
    const pods = await env.core.listNamespacedPod({ namespace: "team-a", labelSelector: "app=app" });
    assert.deepEqual(
      pods.items.map((pod) => [pod.status?.phase, pod.status?.containerStatuses?.map((s) => s.restartCount)]),
      [
        ["Running", [0]],
        ["Running", [0]],
      ],
      "both replicas keep running, never restarted",
    );
    const current = await env.apps.readNamespacedDeployment({ namespace: "team-a", name: "app" });
    assert.equal(current.status?.availableReplicas, before.status?.availableReplicas);

    await uninstallOperatorChart(env);
    await eventually(async () => {
      const left = await env.core.listNamespacedPod({ namespace: operatorNamespace });
      if (left.items.length > 0) throw new Error(`${left.items.length} operator Pods remain`);
    });
  });

  it("installs from deploy/install.yaml as the README says, and serves a CR", async () => {
    const manifest = join(repoRoot, "deploy", "install.yaml");
    await env.kubectl(["apply", "--server-side", "-f", manifest]);
    // The README: edit the Deployment's image to where you pushed it.
    await env.kubectl([
      "-n",
      operatorNamespace,
      "set",
      "image",
      "deployment/ecr-creds-refresher",
      `operator=${operatorImage}`,
    ]);
    await env.kubectl([
      "-n",
      operatorNamespace,
      "create",
      "secret",
      "generic",
      "aws-creds",
      `--from-literal=AWS_ACCESS_KEY_ID=${motoDefaultCredentials.accessKeyId}`,
      `--from-literal=AWS_SECRET_ACCESS_KEY=${motoDefaultCredentials.secretAccessKey}`,
    ]);
    await env.kubectl([
      "-n",
      operatorNamespace,
      "set",
      "env",
      "deployment/ecr-creds-refresher",
      `ECR_REFRESHER_CREDENTIALS_SECRET=${operatorNamespace}/aws-creds`,
      "AWS_REGION=eu-west-1",
      `AWS_ENDPOINT_URL=${env.aws.endpoint}`,
    ]);
    await env.kubectl([
      "-n",
      operatorNamespace,
      "rollout",
      "status",
      "deployment/ecr-creds-refresher",
      "--timeout=180s",
    ]);
    await env.core.createNamespace({ body: { metadata: { name: "manifest" } } });
    await env.kubectl(
      ["apply", "-f", "-"],
      crYaml("manifest", { secretName: "ecr-manifest", namespaces: ["manifest"] }),
    );
    await waitForServiceAccountEntry("manifest", "ecr-manifest");
    await kubectlRun("pull", "manifest");
    await waitForPod(env, "manifest", "pull", terminatedCompleted);

    await env.kubectl(["delete", "ecrpullsecrets", "--all", "--wait", "--timeout=60s"]);
    await env.kubectl(["delete", "-f", manifest, "--wait", "--timeout=120s"]);
  });
});
