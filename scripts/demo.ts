// The demo: a local control plane with moto as AWS, the operator as its own process, a few
// namespaces and ECRPullSecrets, and a summary of what the operator did. Where a real node can
// start (root, the node's Debian packages), it then shows the original operator's walkthrough:
// a Pod that pulls a private ECR image fails with ImagePullBackOff, and the same command works
// once an ECRPullSecret exists.
//   npm run demo            keeps running until Ctrl-C
//   npm run demo -- --once  prints the summary and stops
import { execFile } from "node:child_process";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";
import { CoreV1Api, CustomObjectsApi } from "@kubernetes/client-node";
import { ecrPullSecretCrd } from "../src/api/crd.ts";
import {
  API_VERSION,
  GROUP,
  KIND,
  PLURAL,
  VERSION,
  type ECRPullSecret,
  type ECRPullSecretSpec,
} from "../src/api/types.ts";
import { OWNER_LABEL } from "../src/controller/plan/labels.ts";
import { startEcrPublicStandIn } from "../test/harness/ecr-public-standin.ts";
import { createMotoCredentials } from "../test/harness/moto.ts";
import { nodeUnavailableReason } from "../test/harness/node.ts";
import {
  appRepository,
  ecrHosts,
  startLocalCluster,
  waitForPod,
  waitingReasons,
  type NodeEnv,
} from "../test/harness/node-env.ts";
import { startOperatorProcess } from "../test/harness/operator-process.ts";
import { binDir } from "../test/harness/paths.ts";
import { eventually } from "../test/harness/wait.ts";

const once = process.argv.includes("--once");
const operatorNamespace = "ecr-system";

const namespaces: { name: string; labels?: Record<string, string> }[] = [
  { name: "shop" },
  { name: "team-a" },
  { name: "team-b" },
  { name: "team-legacy" },
  { name: "payments", labels: { "ecr-pull": "true" } },
];

const examples: { name: string; description: string; spec: ECRPullSecretSpec }[] = [
  {
    name: "original-style",
    description: "the original operator's spec: a Secret name and a list of namespaces",
    spec: { secretName: "ecr-pull", namespaces: ["shop"] },
  },
  {
    name: "teams",
    description: "globs + a label selector, minus exclusions, on every ServiceAccount",
    spec: {
      secretName: "ecr-teams",
      namespaces: ["team-*"],
      namespaceSelector: { matchLabels: { "ecr-pull": "true" } },
      excludeNamespaces: ["*-legacy"],
      serviceAccounts: ["*"],
    },
  },
  {
    name: "multi-registry",
    description:
      "two accounts in eu-west-1, one in us-east-1 and ECR Public in one Secret (one token per region)",
    spec: {
      secretName: "ecr-multi",
      namespaces: ["payments"],
      registries: [
        "123456789012.dkr.ecr.eu-west-1.amazonaws.com",
        "210987654321.dkr.ecr.eu-west-1.amazonaws.com",
        "123456789012.dkr.ecr.us-east-1.amazonaws.com",
        "public.ecr.aws",
      ],
    },
  },
];

function say(line = ""): void {
  process.stdout.write(`${line}\n`);
}

function table(rows: string[][]): string {
  const widths = rows[0]?.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? "").length))) ?? [];
  return rows
    .map((r) =>
      r
        .map((c, i) => c.padEnd(widths[i] ?? 0))
        .join("  ")
        .trimEnd(),
    )
    .join("\n");
}

const nodeProblem = nodeUnavailableReason();
say(
  nodeProblem === undefined
    ? "Starting a local Kubernetes control plane, a real node, a registry posing as ECR and moto as AWS ..."
    : "Starting a local Kubernetes control plane and moto as the AWS stand-in ...",
);
const cluster = await startLocalCluster(nodeProblem === undefined, [ecrPullSecretCrd]);
const { plane, moto, nodeEnv } = cluster;
// moto has no ECR Public: the operator reaches the stand-in through --aws-endpoint-url-ecr-public.
const ecrPublic = await startEcrPublicStandIn();
const core = plane.kubeConfig.makeApiClient(CoreV1Api);
const objects = plane.kubeConfig.makeApiClient(CustomObjectsApi);
const kubectlPath = join(binDir, "kubectl");
let operator: Awaited<ReturnType<typeof startOperatorProcess>> | undefined;

async function stopAll(): Promise<void> {
  await operator?.stop();
  await ecrPublic.stop();
  await cluster.stop();
}

async function kubectl(kubeconfigPath: string, args: readonly string[]): Promise<string> {
  const { stdout } = await promisify(execFile)(kubectlPath, ["--kubeconfig", kubeconfigPath, ...args]);
  return stdout.trimEnd();
}

/** The original operator's walkthrough, on the real node: ImagePullBackOff, an ECRPullSecret, then a pull. */
async function walkthrough(env: NodeEnv, kubeconfigPath: string): Promise<void> {
  const image = `${ecrHosts[0]}/${appRepository}`;
  const run = (name: string): string[] => [
    "run",
    name,
    `--image=${image}`,
    "--image-pull-policy=Always",
    "--",
    "sleep",
    "5",
  ];
  say("\nThe walkthrough on a real node (kubelet + containerd), in namespace default:");
  say(`  $ kubectl ${run("test").join(" ")}`);
  await kubectl(kubeconfigPath, run("test"));
  const failed = await waitForPod(env, "default", "test", (pod) => {
    const reasons = waitingReasons(pod);
    if (!reasons.includes("ImagePullBackOff")) throw new Error(`waiting: ${reasons.join(", ")}`);
  });
  const events = await core.listNamespacedEvent({
    namespace: "default",
    fieldSelector: "involvedObject.name=test",
  });
  const why = events.items.find((e) => e.reason === "Failed" && /401|unauthorized/i.test(e.message ?? ""));
  // containerd's message names the image twice before the registry's answer; keep the answer.
  const answer = (why?.message ?? "").split(": ").slice(-2).join(": ");
  say(`  pod/test: ${waitingReasons(failed).join(", ")}, the kubelet reports: ${answer}`);

  const cr = { secretName: "aws-registry", namespaces: ["default"] };
  say(`  $ kubectl apply -f walkthrough.yaml   # an ECRPullSecret with spec ${JSON.stringify(cr)}`);
  await objects.createClusterCustomObject({
    group: GROUP,
    version: VERSION,
    plural: PLURAL,
    body: { apiVersion: API_VERSION, kind: KIND, metadata: { name: "walkthrough" }, spec: cr },
  });
  await eventually(async () => {
    const sa = await core.readNamespacedServiceAccount({ namespace: "default", name: "default" });
    if (!(sa.imagePullSecrets ?? []).some((ref) => ref.name === "aws-registry")) throw new Error("not yet");
  });
  say(`  $ kubectl ${run("test2").join(" ")}`);
  const started = Date.now();
  await kubectl(kubeconfigPath, run("test2"));
  await waitForPod(env, "default", "test2", (pod) => {
    const status = pod.status?.containerStatuses?.[0];
    const terminated = status?.state?.terminated ?? status?.lastState?.terminated;
    if (terminated?.reason !== "Completed") throw new Error("not completed yet");
  });
  say(
    `  pod/test2: pulled with the operator's Secret and Completed in ${((Date.now() - started) / 1000).toFixed(1)} s`,
  );
  say(await kubectl(kubeconfigPath, ["get", "pods", "-n", "default"]));
}

process.removeAllListeners("SIGINT");
process.removeAllListeners("SIGTERM");
for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.once(signal, () => {
    say("\nStopping the operator, moto and the control plane ...");
    void stopAll().then(() => process.exit(0));
  });
}

try {
  await createMotoCredentials(core, operatorNamespace, "aws-creds");
  for (const ns of namespaces) {
    await core.createNamespace({ body: { metadata: { name: ns.name, labels: ns.labels } } });
  }
  await core.createNamespacedServiceAccount({ namespace: "team-a", body: { metadata: { name: "builder" } } });
  for (const example of examples) {
    await objects.createClusterCustomObject({
      group: GROUP,
      version: VERSION,
      plural: PLURAL,
      body: { apiVersion: API_VERSION, kind: KIND, metadata: { name: example.name }, spec: example.spec },
    });
  }
  const kubeconfigPath = join(plane.dir, "demo.kubeconfig");
  await writeFile(kubeconfigPath, plane.kubeConfig.exportConfig(), { mode: 0o600 });

  say("Starting the operator: node src/main.ts run ...");
  operator = await startOperatorProcess({
    kubeconfigPath,
    args: [
      "--operator-namespace",
      operatorNamespace,
      "--credentials-secret",
      `${operatorNamespace}/aws-creds`,
      "--region",
      "eu-west-1",
      "--aws-endpoint-url",
      moto.endpoint,
      "--aws-endpoint-url-ecr-public",
      ecrPublic.endpoint,
      "--leader-elect=false",
      "--metrics-addr",
      "127.0.0.1:0",
      "--health-addr",
      "127.0.0.1:0",
    ],
  });

  await eventually(
    async () => {
      const list = (await objects.listClusterCustomObject({
        group: GROUP,
        version: VERSION,
        plural: PLURAL,
      })) as { items: ECRPullSecret[] };
      for (const cr of list.items) {
        const ready = cr.status?.conditions?.find((c) => c.type === "Ready");
        if (ready?.status !== "True")
          throw new Error(`${cr.metadata.name ?? ""} is not Ready yet: ${ready?.message ?? "no status"}`);
      }
      return list.items;
    },
    { timeoutMs: 60_000, message: "every ECRPullSecret Ready" },
  );

  say("\nECRPullSecrets:");
  for (const example of examples) say(`  ${example.name.padEnd(16)} ${example.description}`);

  say("\nWhat the operator wrote:");
  const rows = [["NAMESPACE", "SECRET", "REGISTRIES", "SERVICEACCOUNTS PATCHED", "TOKEN EXPIRES"]];
  for (const ns of namespaces) {
    const secrets = (await core.listNamespacedSecret({ namespace: ns.name, labelSelector: OWNER_LABEL }))
      .items;
    const accounts = (await core.listNamespacedServiceAccount({ namespace: ns.name })).items;
    if (secrets.length === 0) {
      rows.push([ns.name, "-", "(not targeted)", "-", "-"]);
    }
    for (const secret of secrets) {
      const name = secret.metadata?.name ?? "";
      const config = JSON.parse(
        Buffer.from(secret.data?.[".dockerconfigjson"] ?? "", "base64").toString(),
      ) as { auths: object };
      const patched = accounts
        .filter((sa) => (sa.imagePullSecrets ?? []).some((ref) => ref.name === name))
        .map((sa) => sa.metadata?.name ?? "");
      const [first = "", ...more] = Object.keys(config.auths);
      const expires = secret.metadata?.annotations?.["ecr-creds-refresher.io/expires-at"] ?? "";
      rows.push([ns.name, name, first, patched.join(", "), expires]);
      for (const registry of more) rows.push(["", "", registry, "", ""]);
    }
  }
  say(table(rows));

  say("\nkubectl get ecrps:");
  say(await kubectl(kubeconfigPath, ["get", "ecrps"]));
  if (nodeEnv !== undefined) {
    await walkthrough(nodeEnv, kubeconfigPath);
  } else {
    say(`\nNo real node here, so no Pod pulls an image in this demo: ${nodeProblem ?? ""}`);
  }
  if (once) {
    await stopAll();
    say("Demo finished; everything it started has stopped.");
    process.exit(0);
  }
  say(`\nTry it yourself: kubectl --kubeconfig ${kubeconfigPath} get secrets,serviceaccounts -A`);
  say(
    "The operator keeps running: delete a Secret or create a namespace named team-* and watch it react. Ctrl-C stops everything.",
  );
} catch (err) {
  process.stderr.write(`demo failed: ${err instanceof Error ? err.message : "unknown error"}\n`);
  await stopAll();
  process.exit(1);
}
