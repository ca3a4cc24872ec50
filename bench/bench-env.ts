// One benchmark environment: a fresh control plane (audit log on, so the operator's requests can
// be told apart by user), moto behind the counting AWS proxy, the driver's watches, and the
// operator as a separate process started and stopped by the scenarios.
import { randomBytes } from "node:crypto";
import { performance } from "node:perf_hooks";
import { mkdir } from "node:fs/promises";
import { setTimeout as delay } from "node:timers/promises";
import { ecrPullSecretCrd } from "../src/api/crd.ts";
import { startAwsProxy, type AwsProxy } from "../test/harness/aws-proxy.ts";
import type { KubeConfig } from "@kubernetes/client-node";
import { startControlPlane, type ControlPlane, type UserCredentials } from "../test/harness/controlplane.ts";
import { httpStatus } from "../test/harness/http-wait.ts";
import { motoDefaultCredentials, startMoto, type Moto } from "../test/harness/moto.ts";
import { startOperatorProcess, type OperatorProcess } from "../test/harness/operator-process.ts";
import { freePort } from "../test/harness/ports.ts";
import { ApiClient } from "./api-client.ts";
import { AuditLog } from "./audit-log.ts";
import { ClusterWatch } from "./cluster-watch.ts";
import { parseSamples, sumOf, type Sample } from "./prometheus.ts";
import { cpuSeconds, memoryOf, type MemoryReading } from "./process-stats.ts";
import { ecrPasswordLength } from "./run-info.ts";

export const operatorUser = "ecr-operator";
export const operatorNamespace = "ecr-system";
export const credentialsSecretName = "aws-creds";

export interface BenchEnvOptions {
  writeConcurrency: number;
  /** Driver requests in flight when creating namespaces and Secrets in bulk. */
  createConcurrency: number;
  /** When set, the operator writes CPU and sampled heap profiles here, and heap snapshots on SIGUSR2. */
  profileDir?: string;
  /** NODE_OPTIONS for the operator process. */
  operatorNodeOptions?: string;
  operatorEntry: "build" | "source";
}

/** How one operator process is started; by default alone (no leader election), straight to the API server. */
export interface OperatorStart {
  /** Elect a leader on this Lease, as replicas of one Deployment do. */
  leaseName?: string;
  /** A kubeconfig for the operator's user other than the direct one, e.g. through a TCP proxy. */
  kubeconfigPath?: string;
}

export interface RunningOperator {
  readonly pid: number;
  /** performance.now() just before the process was spawned. */
  readonly spawnedAt: number;
  readonly process: OperatorProcess;
  /** Polls /readyz until 200; returns performance.now() of the first 200. */
  waitReady(timeoutMs: number): Promise<number>;
  metrics(): Promise<Sample[]>;
  memory(): MemoryReading;
  /** Writes a heap snapshot into the profile directory (only with profileDir). */
  heapSnapshot(): Promise<void>;
  stop(): Promise<void>;
}

export class BenchEnv {
  readonly plane: ControlPlane;
  readonly moto: Moto;
  readonly aws: AwsProxy;
  /** The driver's own client (admin). */
  readonly api: ApiClient;
  readonly watch: ClusterWatch;
  readonly audit: AuditLog;
  readonly options: BenchEnvOptions;
  /** The password in every ECR token the proxy hands out (ecrPasswordLength characters). */
  readonly ecrPassword: string;
  /** The operator user's kubeconfig (client certificate), straight to the API server. */
  readonly operatorKubeConfig: KubeConfig;
  readonly #operatorKubeconfigPath: string;

  private constructor(
    parts: {
      plane: ControlPlane;
      moto: Moto;
      aws: AwsProxy;
      api: ApiClient;
      watch: ClusterWatch;
      ecrPassword: string;
    },
    operator: UserCredentials,
    options: BenchEnvOptions,
  ) {
    this.plane = parts.plane;
    this.moto = parts.moto;
    this.aws = parts.aws;
    this.api = parts.api;
    this.watch = parts.watch;
    this.audit = new AuditLog(parts.plane.auditLogPath);
    this.operatorKubeConfig = operator.kubeConfig;
    this.#operatorKubeconfigPath = operator.kubeconfigPath;
    this.options = options;
    this.ecrPassword = parts.ecrPassword;
  }

  static async start(options: BenchEnvOptions): Promise<BenchEnv> {
    const plane = await startControlPlane({
      controllerManager: true,
      crds: [ecrPullSecretCrd],
      audit: true,
      // The log is read by offset: no rotation (the default rotates at 100 MB).
      apiServerArgs: ["--audit-log-maxsize=1000000", "--audit-log-maxbackup=0"],
    });
    let moto: Moto | undefined;
    let aws: AwsProxy | undefined;
    let api: ApiClient | undefined;
    let watch: ClusterWatch | undefined;
    try {
      moto = await startMoto();
      aws = await startAwsProxy(moto.endpoint);
      // Base64, as ECR's are: 3 bytes make 4 characters.
      const ecrPassword = randomBytes((ecrPasswordLength / 4) * 3).toString("base64");
      aws.setEcrTokenPassword(ecrPassword);
      api = await ApiClient.fromKubeConfig(plane.kubeConfig, Math.max(options.createConcurrency, 8));
      const operator = await plane.userKubeConfig(operatorUser, ["system:masters"]);
      await api.json("POST", "/api/v1/namespaces", { metadata: { name: operatorNamespace } });
      await api.json("POST", `/api/v1/namespaces/${operatorNamespace}/secrets`, {
        metadata: { name: credentialsSecretName },
        stringData: {
          AWS_ACCESS_KEY_ID: motoDefaultCredentials.accessKeyId,
          AWS_SECRET_ACCESS_KEY: motoDefaultCredentials.secretAccessKey,
        },
      });
      watch = new ClusterWatch(plane.kubeConfig);
      await watch.start();
      if (options.profileDir !== undefined) await mkdir(options.profileDir, { recursive: true });
      return new BenchEnv({ plane, moto, aws, api, watch, ecrPassword }, operator, options);
    } catch (err) {
      await watch?.stop();
      api?.close();
      await aws?.stop();
      await moto?.stop();
      await plane.stop();
      throw err;
    }
  }

  async startOperator(start: OperatorStart = {}): Promise<RunningOperator> {
    const [metricsPort, healthPort] = [await freePort(), await freePort()];
    const profileDir = this.options.profileDir;
    const nodeOptions = [
      this.options.operatorNodeOptions ?? "",
      profileDir === undefined
        ? ""
        : `--cpu-prof --cpu-prof-dir=${profileDir} --heap-prof --heap-prof-dir=${profileDir} --heapsnapshot-signal=SIGUSR2 --diagnostic-dir=${profileDir}`,
    ]
      .join(" ")
      .trim();
    const env: Record<string, string> = nodeOptions === "" ? {} : { NODE_OPTIONS: nodeOptions };
    const spawnedAt = performance.now();
    const proc = await startOperatorProcess({
      entry: this.options.operatorEntry,
      kubeconfigPath: start.kubeconfigPath ?? this.#operatorKubeconfigPath,
      env,
      args: [
        "--operator-namespace",
        operatorNamespace,
        "--credentials-secret",
        `${operatorNamespace}/${credentialsSecretName}`,
        "--region",
        "eu-west-1",
        "--aws-endpoint-url",
        this.aws.endpoint,
        ...(start.leaseName === undefined
          ? ["--leader-elect=false"]
          : ["--leader-elect=true", "--lease-name", start.leaseName]),
        "--metrics-addr",
        `127.0.0.1:${metricsPort}`,
        "--health-addr",
        `127.0.0.1:${healthPort}`,
        "--log-format",
        "json",
        "--write-concurrency",
        String(this.options.writeConcurrency),
      ],
    });
    const pid = proc.process.child.pid;
    if (pid === undefined) {
      await proc.stop();
      throw new Error("the operator process did not start");
    }
    const exitedEarly = (): Error =>
      new Error(`the operator exited; last log lines:\n${proc.logs().slice(-10).join("\n")}`);
    let exited = false;
    void proc.process.exited.then(() => {
      exited = true;
    });
    return {
      pid,
      spawnedAt,
      process: proc,
      async waitReady(timeoutMs) {
        const deadline = performance.now() + timeoutMs;
        while (performance.now() < deadline) {
          if (exited) throw exitedEarly();
          if ((await httpStatus(`http://127.0.0.1:${healthPort}/readyz`)) === 200) return performance.now();
          await delay(20);
        }
        throw new Error(`the operator was not ready within ${timeoutMs} ms`);
      },
      async metrics() {
        const response = await fetch(`http://127.0.0.1:${metricsPort}/metrics`);
        if (!response.ok) throw new Error(`operator /metrics answered ${response.status}`);
        return parseSamples(await response.text());
      },
      memory: () => memoryOf(pid),
      async heapSnapshot() {
        if (profileDir === undefined) return;
        proc.process.kill("SIGUSR2");
        // Writing a snapshot blocks the operator's event loop; /readyz answers again once it is done.
        await delay(500);
        const deadline = performance.now() + 120_000;
        while (
          performance.now() < deadline &&
          (await httpStatus(`http://127.0.0.1:${healthPort}/readyz`)) !== 200
        ) {
          await delay(200);
        }
      },
      stop: () => proc.stop(),
    };
  }

  /** CPU seconds used so far by kube-apiserver and etcd together. */
  controlPlaneCpuSeconds(): number {
    let total = 0;
    for (const proc of [this.plane.apiServer, this.plane.etcd]) {
      const pid = proc.child.pid;
      if (pid !== undefined) total += cpuSeconds(pid);
    }
    return total;
  }

  /** The API server's /version gitVersion. */
  async kubernetesVersion(): Promise<string> {
    const version = await this.api.json<{ gitVersion?: string }>("GET", "/version");
    return version.gitVersion ?? "unknown";
  }

  async stop(): Promise<void> {
    await this.watch.stop();
    this.api.close();
    await this.aws.stop();
    await this.moto.stop();
    await this.plane.stop();
  }
}

/** Reconciles the operator has finished so far, of any result. */
export function reconcileCount(samples: readonly Sample[]): number {
  return sumOf(samples, "ecr_creds_refresher_reconcile_total");
}
