import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { request as httpsRequest } from "node:https";
import { join } from "node:path";
import { promisify } from "node:util";
import { CoordinationV1Api, CoreV1Api, CustomObjectsApi } from "@kubernetes/client-node";
import { ecrPullSecretCrd } from "../../src/api/crd.ts";
import { API_VERSION, GROUP, KIND, PLURAL, VERSION, type ECRPullSecret } from "../../src/api/types.ts";
import { startAwsProxy, type AwsProxy } from "../harness/aws-proxy.ts";
import { readAuditLog, writesBy } from "../harness/audit.ts";
import { startControlPlane, type ControlPlane } from "../harness/controlplane.ts";
import { httpStatus } from "../harness/http-wait.ts";
import { createMotoCredentials, startMoto, type Moto } from "../harness/moto.ts";
import { startOperatorProcess, type OperatorProcess } from "../harness/operator-process.ts";
import { repoRoot } from "../harness/paths.ts";
import { startTcpProxy } from "../harness/tcp-proxy.ts";
import { eventually } from "../harness/wait.ts";

const run = promisify(execFile);
const operatorNamespace = "ecr-system";
const lease = "ecr-test-lease";

interface StartingLine {
  msg: string;
  identity?: string;
  health?: string;
  metrics?: string;
}

function startingLine(proc: OperatorProcess): StartingLine {
  const line = proc
    .logs()
    .map((l) => JSON.parse(l) as StartingLine)
    .find((l) => l.msg === "starting");
  if (line === undefined) throw new Error("the operator has not logged its start yet");
  return line;
}

describe("running the operator as a production process", () => {
  let plane: ControlPlane;
  let moto: Moto;
  let aws: AwsProxy;
  let core: CoreV1Api;
  let objects: CustomObjectsApi;
  const processes: OperatorProcess[] = [];

  /** Where the operator runs and which AWS it mints from, for `run` and `once` alike. */
  const clusterArgs = (): string[] => [
    "--operator-namespace",
    operatorNamespace,
    "--credentials-secret",
    `${operatorNamespace}/aws-creds`,
    "--region",
    "eu-west-1",
    "--aws-endpoint-url",
    aws.endpoint,
  ];
  const commonArgs = (): string[] => [
    ...clusterArgs(),
    "--metrics-addr",
    "127.0.0.1:0",
    "--health-addr",
    "127.0.0.1:0",
  ];

  async function startAs(user: string, args: string[], kubeconfigPath?: string): Promise<OperatorProcess> {
    const path = kubeconfigPath ?? (await plane.userKubeConfig(user, ["system:masters"])).kubeconfigPath;
    const proc = await startOperatorProcess({ kubeconfigPath: path, args: [...commonArgs(), ...args] });
    processes.push(proc);
    await eventually(() => startingLine(proc), { message: `${user} started` });
    return proc;
  }

  async function leaseHolder(): Promise<string> {
    const api = plane.kubeConfig.makeApiClient(CoordinationV1Api);
    const current = await api.readNamespacedLease({ namespace: operatorNamespace, name: lease });
    return current.spec?.holderIdentity ?? "";
  }

  async function createCr(name: string, namespaces: string[], region?: string): Promise<void> {
    await objects.createClusterCustomObject({
      group: GROUP,
      version: VERSION,
      plural: PLURAL,
      body: {
        apiVersion: API_VERSION,
        kind: KIND,
        metadata: { name },
        spec: { secretName: name, namespaces, region },
      },
    });
  }

  async function readCr(name: string): Promise<ECRPullSecret> {
    return (await objects.getClusterCustomObject({
      group: GROUP,
      version: VERSION,
      plural: PLURAL,
      name,
    })) as ECRPullSecret;
  }

  async function waitSynced(name: string, namespace: string): Promise<void> {
    await eventually(
      async () => {
        await core.readNamespacedSecret({ namespace, name });
        const sa = await core.readNamespacedServiceAccount({ namespace, name: "default" });
        assert.ok((sa.imagePullSecrets ?? []).some((ref) => ref.name === name));
      },
      { timeoutMs: 30_000, message: `${namespace}/${name} synced` },
    );
  }

  before(async () => {
    plane = await startControlPlane({ controllerManager: true, crds: [ecrPullSecretCrd], audit: true });
    moto = await startMoto();
    aws = await startAwsProxy(moto.endpoint);
    core = plane.kubeConfig.makeApiClient(CoreV1Api);
    objects = plane.kubeConfig.makeApiClient(CustomObjectsApi);
    await createMotoCredentials(core, operatorNamespace, "aws-creds");
  });

  after(async () => {
    await Promise.all(processes.map((p) => p.stop()));
    await aws.stop();
    await moto.stop();
    await plane.stop();
  });

  describe("leader election", () => {
    let a: OperatorProcess;
    let b: OperatorProcess;
    let leader: OperatorProcess;
    let standby: OperatorProcess;
    let standbyUser: string;

    it("makes exactly one of two replicas the leader, and the Lease names it", async () => {
      a = await startAs("operator-a", ["--lease-name", lease]);
      b = await startAs("operator-b", ["--lease-name", lease]);
      const holder = await eventually(async () => {
        const h = await leaseHolder();
        assert.notEqual(h, "");
        return h;
      });
      const identities = [startingLine(a).identity, startingLine(b).identity];
      assert.ok(identities.includes(holder), `lease holder ${holder} is neither replica`);
      leader = startingLine(a).identity === holder ? a : b;
      standby = leader === a ? b : a;
      standbyUser = standby === a ? "operator-a" : "operator-b";
      await eventually(() => {
        assert.ok(leader.logs().some((l) => l.includes("became the leader")));
      });
      assert.ok(!standby.logs().some((l) => l.includes("became the leader")), "the standby must not lead");
    });

    it("lets only the leader write Secrets and ServiceAccounts", async () => {
      await core.createNamespace({ body: { metadata: { name: "le-one" } } });
      await createCr("le-pull", ["le-*"]);
      await waitSynced("le-pull", "le-one");
      const events = readAuditLog(plane.auditLogPath);
      const leaderUser = standbyUser === "operator-a" ? "operator-b" : "operator-a";
      assert.ok(writesBy(events, leaderUser, ["secrets"]).length > 0, "the leader wrote the Secret");
      assert.deepEqual(writesBy(events, standbyUser, ["secrets", "serviceaccounts", "ecrpullsecrets"]), []);
    });

    it("hands over within 20 s when the leader is killed, and the new leader converges a change made meanwhile", async () => {
      const killedAt = Date.now();
      leader.process.kill("SIGKILL");
      await leader.process.exited;
      await core.createNamespace({ body: { metadata: { name: "le-two" } } });
      const next = startingLine(standby).identity ?? "";
      await eventually(
        async () => {
          assert.equal(await leaseHolder(), next);
        },
        { timeoutMs: 25_000 },
      );
      const handover = Date.now() - killedAt;
      assert.ok(handover < 20_000, `handover took ${handover} ms`);
      await waitSynced("le-pull", "le-two");
      leader = standby;
    });

    it("hands over within 3 s when the leader gets SIGTERM", async () => {
      const successor = await startAs("operator-c", ["--lease-name", lease]);
      await eventually(() => {
        assert.ok(successor.logs().some((l) => l.includes("standing by")));
      });
      const stoppedAt = Date.now();
      leader.process.kill("SIGTERM");
      const identity = startingLine(successor).identity ?? "";
      await eventually(
        async () => {
          assert.equal(await leaseHolder(), identity);
        },
        { timeoutMs: 10_000, intervalMs: 50 },
      );
      const handover = Date.now() - stoppedAt;
      assert.ok(handover < 3_000, `handover took ${handover} ms`);
      assert.equal(await leader.process.exited, 0);
      await successor.stop();
    });
  });

  describe("metrics and health", () => {
    it("exposes every metric, with the token expiry of each CR", async () => {
      await core.createNamespace({ body: { metadata: { name: "metrics-one" } } });
      // A region no earlier CR used: the token cannot be adopted from existing Secrets, so it is minted.
      await createCr("metrics-pull", ["metrics-*"], "us-west-2");
      const proc = await startAs("operator-metrics", ["--leader-elect=false"]);
      await waitSynced("metrics-pull", "metrics-one");
      const address = startingLine(proc).metrics ?? "";
      const cr = await eventually(async () => {
        const current = await readCr("metrics-pull");
        assert.equal(current.status?.conditions?.find((c) => c.type === "Ready")?.status, "True");
        return current;
      });
      const text = await eventually(async () => {
        const res = await fetch(`http://${address}/metrics`);
        const body = await res.text();
        assert.match(body, /ecr_creds_refresher_ecrpullsecret_ready\{ecrpullsecret="metrics-pull"\} 1/);
        return body;
      });
      for (const name of [
        "ecr_creds_refresher_token_expiry_timestamp_seconds",
        "ecr_creds_refresher_token_mints_total",
        "ecr_creds_refresher_reconcile_total",
        "ecr_creds_refresher_reconcile_duration_seconds",
        "ecr_creds_refresher_workqueue_depth",
        "ecr_creds_refresher_workqueue_adds_total",
        "ecr_creds_refresher_workqueue_retries_total",
        "ecr_creds_refresher_managed_secrets",
        "ecr_creds_refresher_managed_serviceaccounts",
        "ecr_creds_refresher_watch_restarts_total",
        "ecr_creds_refresher_leader",
        "ecr_creds_refresher_aws_errors_total",
        "ecr_creds_refresher_api_errors_total",
        "ecr_creds_refresher_write_failures_total",
        "ecr_creds_refresher_webhook_requests_total",
        "ecr_creds_refresher_webhook_mutations_total",
        "ecr_creds_refresher_webhook_request_duration_seconds",
        "ecr_creds_refresher_webhook_certificate_expiry_timestamp_seconds",
        "process_cpu_seconds_total",
        "nodejs_eventloop_lag_seconds",
      ]) {
        assert.match(text, new RegExp(`^# TYPE ${name} `, "m"), `${name} missing`);
      }
      const expiry = new RegExp(
        `ecr_creds_refresher_token_expiry_timestamp_seconds\\{ecrpullsecret="metrics-pull",registry="123456789012\\.dkr\\.ecr\\.us-west-2\\.amazonaws\\.com"\\} (\\d+)`,
      ).exec(text);
      assert.equal(Number(expiry?.[1]), Date.parse(cr.status?.tokenExpiresAt ?? "") / 1000);
      assert.match(
        text,
        /ecr_creds_refresher_token_mints_total\{result="success",region="us-west-2"\} [1-9]/,
      );
      assert.match(text, /ecr_creds_refresher_leader 1/);
      await proc.stop();
    });

    it("serves the Pod webhook over HTTPS with a certificate it issued, and is ready only then", async () => {
      const proc = await startAs("operator-webhook", [
        "--leader-elect=false",
        "--webhook-addr",
        "127.0.0.1:0",
        "--webhook-cert-hosts",
        "127.0.0.1",
        "--webhook-secret",
        "production-webhook-tls",
      ]);
      const serving = await eventually(() => {
        const line = proc
          .logs()
          .map((l) => JSON.parse(l) as { msg: string; address?: string })
          .find((l) => l.msg === "webhook serving");
        return line?.address ?? assert.fail("not serving yet");
      });
      assert.equal(await httpStatus(`http://${startingLine(proc).health ?? ""}/readyz`), 200);
      const secret = await core.readNamespacedSecret({
        namespace: operatorNamespace,
        name: "production-webhook-tls",
      });
      const ca = Buffer.from(secret.data?.["ca.crt"] ?? "", "base64").toString();
      const review = async (body: string): Promise<{ status: number; text: string }> =>
        new Promise((resolve, reject) => {
          const req = httpsRequest(
            `https://${serving}/mutate-v1-pod`,
            { method: "POST", ca, headers: { "content-type": "application/json" } },
            (res) => {
              const chunks: Buffer[] = [];
              res.on("data", (chunk: Buffer) => chunks.push(chunk));
              res.on("end", () => {
                resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString() });
              });
            },
          );
          req.on("error", reject);
          req.end(body);
        });
      const allowed = await review(
        JSON.stringify({
          apiVersion: "admission.k8s.io/v1",
          kind: "AdmissionReview",
          request: { uid: "u-1", kind: { group: "", version: "v1", kind: "Pod" }, operation: "DELETE" },
        }),
      );
      assert.equal(allowed.status, 200);
      assert.deepEqual(JSON.parse(allowed.text), {
        apiVersion: "admission.k8s.io/v1",
        kind: "AdmissionReview",
        response: { uid: "u-1", allowed: true },
      });
      assert.equal((await review("not json")).status, 400);
      await proc.stop();
    });

    it("reports not ready until the caches sync, and not alive while every watch is stuck", async () => {
      const proxy = await startTcpProxy(Number(new URL(plane.server).port));
      try {
        proxy.setMode("refuse");
        const user = await plane.userKubeConfig("operator-health", ["system:masters"]);
        const via = proxy.kubeConfigVia(user.kubeConfig);
        const path = join(plane.dir, "health-via-proxy.kubeconfig");
        const { writeFile } = await import("node:fs/promises");
        await writeFile(path, via.exportConfig());
        const proc = await startAs(
          "operator-health",
          ["--leader-elect=false", "--watch-stuck-after", "3s"],
          path,
        );
        const health = startingLine(proc).health ?? "";
        await eventually(async () => {
          assert.equal(await httpStatus(`http://${health}/readyz`), 503);
          assert.equal(await httpStatus(`http://${health}/healthz`), 200);
        });
        proxy.setMode("forward");
        await eventually(async () => {
          assert.equal(await httpStatus(`http://${health}/readyz`), 200);
        });
        proxy.setMode("stall");
        await eventually(
          async () => {
            assert.equal(await httpStatus(`http://${health}/healthz`), 503);
          },
          { timeoutMs: 20_000 },
        );
        proxy.setMode("forward");
        proxy.cutAll();
        await eventually(
          async () => {
            assert.equal(await httpStatus(`http://${health}/healthz`), 200);
          },
          { timeoutMs: 30_000 },
        );
        await proc.stop();
      } finally {
        await proxy.stop();
      }
    });
  });

  describe("once and --dry-run", () => {
    const cli = async (args: string[]): Promise<{ code: number; stdout: string; stderr: string }> => {
      const user = await plane.userKubeConfig("operator-once", ["system:masters"]);
      try {
        const { stdout, stderr } = await run(
          process.execPath,
          [join(repoRoot, "src", "main.ts"), ...args, "--kubeconfig", user.kubeconfigPath],
          {
            env: { PATH: process.env.PATH, HOME: plane.dir, AWS_EC2_METADATA_DISABLED: "true" },
            timeout: 60_000,
          },
        );
        return { code: 0, stdout, stderr };
      } catch (err) {
        const failed = err as { code?: number; stdout?: string; stderr?: string };
        return { code: failed.code ?? -1, stdout: failed.stdout ?? "", stderr: failed.stderr ?? "" };
      }
    };
    const onceArgs = (): string[] => ["once", ...clusterArgs()];

    it("plans with --dry-run and writes nothing", async () => {
      await core.createNamespace({ body: { metadata: { name: "dry-one" } } });
      // The controller manager creates the default ServiceAccount shortly after the namespace.
      await eventually(() => core.readNamespacedServiceAccount({ namespace: "dry-one", name: "default" }));
      await createCr("dry-pull", ["dry-*"]);
      const result = await cli([...onceArgs(), "--dry-run", "--output", "json"]);
      assert.equal(result.code, 0, `${result.stdout}\n${result.stderr}`);
      const report = JSON.parse(result.stdout.slice(0, result.stdout.indexOf("\n}\n") + 2)) as {
        plannedChanges: { action: string; kind: string; namespace: string; name: string }[];
      };
      assert.ok(
        report.plannedChanges.some(
          (c) => c.action === "create" && c.kind === "Secret" && c.namespace === "dry-one",
        ),
      );
      assert.ok(
        report.plannedChanges.some(
          (c) => c.action === "patch" && c.kind === "ServiceAccount" && c.namespace === "dry-one",
        ),
      );
      assert.deepEqual(writesBy(readAuditLog(plane.auditLogPath), "operator-once"), []);
      await assert.rejects(core.readNamespacedSecret({ namespace: "dry-one", name: "dry-pull" }));
    });

    it("exits 0 after one pass when every ECRPullSecret is Ready, with a summary", async () => {
      const result = await cli(onceArgs());
      assert.equal(result.code, 0, result.stderr);
      assert.match(result.stdout, /^NAME\s+READY\s+REASON\s+SYNCED/m);
      assert.match(result.stdout, /^dry-pull\s+True\s+Synced\s+1\/1/m);
      await core.readNamespacedSecret({ namespace: "dry-one", name: "dry-pull" });
    });

    it("exits 1 and names the CR that is not Ready", async () => {
      await objects.createClusterCustomObject({
        group: GROUP,
        version: VERSION,
        plural: PLURAL,
        body: {
          apiVersion: API_VERSION,
          kind: KIND,
          metadata: { name: "untrusted" },
          spec: {
            namespaces: ["dry-*"],
            aws: { credentialsSecretRef: { namespace: "kube-system", name: "stolen" } },
          },
        },
      });
      const result = await cli(onceArgs());
      assert.equal(result.code, 1);
      assert.match(result.stdout, /^untrusted\s+False\s+CredentialsNotTrusted/m);
      await objects.deleteClusterCustomObject({
        group: GROUP,
        version: VERSION,
        plural: PLURAL,
        name: "untrusted",
      });
    });

    it("exits 2 with a message naming a bad flag", async () => {
      const result = await cli([...onceArgs(), "--workers", "0"]);
      assert.equal(result.code, 2);
      assert.match(result.stderr, /--workers \(ECR_REFRESHER_WORKERS\): must be at least 1/);
      const webhook = await cli([
        ...onceArgs(),
        "--webhook-cert-hosts",
        "not a host!",
        "--webhook-cert-validity",
        "1s",
      ]);
      assert.equal(webhook.code, 2);
      assert.match(
        webhook.stderr,
        /--webhook-cert-hosts \(ECR_REFRESHER_WEBHOOK_CERT_HOSTS\): must be DNS names or IP/,
      );
      assert.match(
        webhook.stderr,
        /--webhook-cert-validity \(ECR_REFRESHER_WEBHOOK_CERT_VALIDITY\): must be a duration of at least 5s/,
      );
    });
  });
});
