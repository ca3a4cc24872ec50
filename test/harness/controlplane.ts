// A real Kubernetes control plane on loopback, started the way
// controller-runtime's envtest does it: etcd, kube-apiserver with its own CA,
// RBAC on and an admin client certificate; optionally the controller manager
// for namespace lifecycle, garbage collection and default ServiceAccounts.
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  ApiextensionsV1Api,
  KubeConfig,
  loadYaml,
  type V1CustomResourceDefinition,
} from "@kubernetes/client-node";
import {
  createCertificateAuthority,
  createServiceAccountSigningKey,
  issueCertificate,
  type CertificateAuthority,
} from "./certs.ts";
import { waitForHttpOk } from "./http-wait.ts";
import { binDir, requireBinary } from "./paths.ts";
import { freePort } from "./ports.ts";
import { startProcess, whileRunning, type ManagedProcess } from "./processes.ts";
import { eventually } from "./wait.ts";

export interface ControlPlaneOptions {
  /** Run kube-controller-manager's namespace, garbage-collector and serviceaccount controllers. */
  controllerManager?: boolean;
  /** CRDs to install and wait for, as plain manifests (JSON field names). */
  crds?: object[];
  /** Write the API server's audit log (every request's user, verb and resource) to `auditLogPath`. */
  audit?: boolean;
  /** Extra kube-apiserver flags. */
  apiServerArgs?: string[];
  /**
   * Turn the ServiceAccount admission plugin on, as in a real cluster: Pods then receive their
   * ServiceAccount's imagePullSecrets and token volume. Off by default, as in envtest.
   */
  serviceAccountAdmission?: boolean;
  /** The controller manager's controllers (with `controllerManager`); defaults to `baseControllers`. */
  controllers?: readonly string[];
  /** Run kube-scheduler, so that Pods naming no node are placed on a node. */
  scheduler?: boolean;
  /** More IP addresses the API server's certificate is valid for, e.g. one Pods reach it on. */
  servingAddresses?: readonly string[];
}

/** Namespace lifecycle, garbage collection and default ServiceAccounts: what every suite needs. */
export const baseControllers = [
  "namespace-controller",
  "garbage-collector-controller",
  "serviceaccount-controller",
] as const;

/**
 * The controllers that turn Deployments into running Pods with Services and their CA bundle, and
 * lift a new node's not-ready taint.
 */
export const workloadControllers = [
  ...baseControllers,
  "node-lifecycle-controller",
  "deployment-controller",
  "replicaset-controller",
  "endpointslice-controller",
  "root-ca-certificate-publisher-controller",
] as const;

/** The Service range; its first address is the `kubernetes` Service (a benchmarking range, never routed). */
export const serviceClusterIpRange = "198.19.0.0/24";
export const kubernetesServiceIp = "198.19.0.1";

export interface UserCredentials {
  kubeConfig: KubeConfig;
  kubeconfigPath: string;
}

export interface ControlPlane {
  readonly dir: string;
  readonly server: string;
  readonly kubeConfig: KubeConfig;
  readonly kubeconfigPath: string;
  readonly auditLogPath: string;
  /** The cluster CA, which signs the API server's and every client's certificate. */
  readonly ca: CertificateAuthority;
  readonly etcd: ManagedProcess;
  readonly apiServer: ManagedProcess;
  /** Milliseconds from start until etcd and the API server were ready. */
  readonly startupMs: number;
  /** A kubeconfig authenticating as `user` in `groups` (client certificate signed by the cluster CA). */
  userKubeConfig(user: string, groups?: readonly string[]): Promise<UserCredentials>;
  /** Kills the API server (SIGKILL) and starts it again on the same port. */
  restartApiServer(): Promise<void>;
  /** Stops etcd (SIGTERM, or `signal`); the API server keeps running and fails what needs storage. */
  stopEtcd(signal?: NodeJS.Signals): Promise<void>;
  /** Starts etcd again on the same ports and data directory, and waits until it is healthy. */
  startEtcd(): Promise<void>;
  stop(): Promise<void>;
}

const auditPolicy = `apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [RequestReceived]
rules:
  - level: Metadata
`;

function kubeConfigFor(
  server: string,
  caPem: string,
  user: string,
  certPem: string,
  keyPem: string,
): KubeConfig {
  const kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [
      { name: "local", server, caData: Buffer.from(caPem).toString("base64"), skipTLSVerify: false },
    ],
    users: [
      {
        name: user,
        certData: Buffer.from(certPem).toString("base64"),
        keyData: Buffer.from(keyPem).toString("base64"),
      },
    ],
    contexts: [{ name: "local", cluster: "local", user }],
    currentContext: "local",
  });
  return kc;
}

async function writeKubeConfig(path: string, kc: KubeConfig): Promise<void> {
  await writeFile(path, kc.exportConfig(), { mode: 0o600 });
}

export async function installCrds(kc: KubeConfig, manifests: readonly object[]): Promise<void> {
  const api = kc.makeApiClient(ApiextensionsV1Api);
  // client-node's generated models use their own property names (x_kubernetes_validations); read the
  // manifest into the model first, or the serializer silently drops every x-kubernetes-* field.
  const crds = manifests.map((manifest) => loadYaml<V1CustomResourceDefinition>(JSON.stringify(manifest)));
  for (const crd of crds) {
    await api.createCustomResourceDefinition({ body: crd });
  }
  for (const crd of crds) {
    const name = crd.metadata?.name ?? "";
    await eventually(
      async () => {
        const current = await api.readCustomResourceDefinition({ name });
        const established = current.status?.conditions?.find((c) => c.type === "Established");
        if (established?.status !== "True") {
          throw new Error(`CRD ${name} is not established yet`);
        }
      },
      { timeoutMs: 30_000, message: `CRD ${name} established` },
    );
  }
}

export async function startControlPlane(options: ControlPlaneOptions = {}): Promise<ControlPlane> {
  const started = Date.now();
  const dir = await mkdtemp(join(tmpdir(), "ecr-controlplane-"));
  const processes: ManagedProcess[] = [];
  try {
    const etcdBin = requireBinary(join(binDir, "etcd"));
    const apiServerBin = requireBinary(join(binDir, "kube-apiserver"));
    const [etcdClientPort, etcdPeerPort, apiPort] = [await freePort(), await freePort(), await freePort()];

    const ca = await createCertificateAuthority(dir);
    const serving = await issueCertificate(ca, {
      fileName: "apiserver",
      commonName: "kube-apiserver",
      altNames: [
        "IP:127.0.0.1",
        "DNS:localhost",
        `IP:${kubernetesServiceIp}`,
        "DNS:kubernetes.default.svc",
        ...(options.servingAddresses ?? []).map((address) => `IP:${address}`),
      ],
      usage: "server",
    });
    const kubeletClient = await issueCertificate(ca, {
      fileName: "apiserver-kubelet-client",
      commonName: "kube-apiserver-kubelet-client",
      organizations: ["system:masters"],
      usage: "client",
    });
    const admin = await issueCertificate(ca, {
      fileName: "admin",
      commonName: "admin",
      organizations: ["system:masters"],
      usage: "client",
    });
    const saKey = await createServiceAccountSigningKey(dir);

    const etcdUrl = `http://127.0.0.1:${etcdClientPort}`;
    const startEtcd = (): ManagedProcess =>
      startProcess(
        "etcd",
        etcdBin,
        [
          `--data-dir=${join(dir, "etcd")}`,
          `--listen-client-urls=${etcdUrl}`,
          `--advertise-client-urls=${etcdUrl}`,
          `--listen-peer-urls=http://127.0.0.1:${etcdPeerPort}`,
          `--initial-advertise-peer-urls=http://127.0.0.1:${etcdPeerPort}`,
          `--initial-cluster=default=http://127.0.0.1:${etcdPeerPort}`,
          "--unsafe-no-fsync",
          "--log-level=warn",
          "--quota-backend-bytes=8589934592",
        ],
        join(dir, "etcd.log"),
      );
    let etcd = startEtcd();
    processes.push(etcd);
    await whileRunning(etcd, waitForHttpOk(`${etcdUrl}/health`, 30_000));

    const server = `https://127.0.0.1:${apiPort}`;
    const auditLogPath = join(dir, "audit.log");
    const auditArgs: string[] = [];
    if (options.audit === true) {
      const policyPath = join(dir, "audit-policy.yaml");
      await writeFile(policyPath, auditPolicy);
      auditArgs.push(
        `--audit-policy-file=${policyPath}`,
        `--audit-log-path=${auditLogPath}`,
        "--audit-log-mode=blocking",
      );
    }
    const apiServerArgs = [
      `--etcd-servers=${etcdUrl}`,
      "--bind-address=127.0.0.1",
      "--advertise-address=127.0.0.1",
      `--secure-port=${apiPort}`,
      `--cert-dir=${join(dir, "apiserver-certs")}`,
      `--tls-cert-file=${serving.certPath}`,
      `--tls-private-key-file=${serving.keyPath}`,
      `--client-ca-file=${ca.certPath}`,
      "--authorization-mode=RBAC",
      `--service-account-issuer=${server}`,
      `--service-account-key-file=${saKey.publicKeyPath}`,
      `--service-account-signing-key-file=${saKey.privateKeyPath}`,
      `--service-cluster-ip-range=${serviceClusterIpRange}`,
      "--allow-privileged=true",
      ...(options.serviceAccountAdmission === true ? [] : ["--disable-admission-plugins=ServiceAccount"]),
      `--kubelet-client-certificate=${kubeletClient.certPath}`,
      `--kubelet-client-key=${kubeletClient.keyPath}`,
      "--kubelet-preferred-address-types=InternalIP",
      "--endpoint-reconciler-type=none",
      ...auditArgs,
      ...(options.apiServerArgs ?? []),
    ];
    const startApiServer = (): ManagedProcess =>
      startProcess("kube-apiserver", apiServerBin, apiServerArgs, join(dir, "apiserver.log"));
    let apiServer = startApiServer();
    processes.push(apiServer);
    const tlsOptions = { ca: ca.certPem, cert: admin.certPem, key: admin.keyPem };
    await whileRunning(apiServer, waitForHttpOk(`${server}/readyz`, 60_000, tlsOptions));
    const startupMs = Date.now() - started;

    const kubeConfig = kubeConfigFor(server, ca.certPem, "admin", admin.certPem, admin.keyPem);
    const kubeconfigPath = join(dir, "admin.kubeconfig");
    await writeKubeConfig(kubeconfigPath, kubeConfig);

    if (options.controllerManager === true) {
      processes.push(
        startControllerManager(
          dir,
          kubeconfigPath,
          ca,
          saKey.privateKeyPath,
          options.controllers ?? baseControllers,
        ),
      );
    }
    if (options.scheduler === true) {
      processes.push(startScheduler(dir, kubeconfigPath));
    }
    if (options.crds !== undefined && options.crds.length > 0) {
      await installCrds(kubeConfig, options.crds);
    }

    let userCount = 0;
    const plane: ControlPlane = {
      dir,
      server,
      kubeConfig,
      kubeconfigPath,
      auditLogPath,
      ca,
      get etcd() {
        return etcd;
      },
      get apiServer() {
        return apiServer;
      },
      startupMs,
      async userKubeConfig(user, groups = []) {
        userCount += 1;
        const pair = await issueCertificate(ca, {
          fileName: `user-${userCount}`,
          commonName: user,
          organizations: groups,
          usage: "client",
        });
        const kc = kubeConfigFor(server, ca.certPem, user, pair.certPem, pair.keyPem);
        const path = join(dir, `user-${userCount}.kubeconfig`);
        await writeKubeConfig(path, kc);
        return { kubeConfig: kc, kubeconfigPath: path };
      },
      async restartApiServer() {
        apiServer.kill("SIGKILL");
        await apiServer.exited;
        apiServer = startApiServer();
        processes.push(apiServer);
        await whileRunning(apiServer, waitForHttpOk(`${server}/readyz`, 60_000, tlsOptions));
      },
      async stopEtcd(signal = "SIGTERM") {
        if (signal === "SIGTERM") {
          await etcd.stop();
        } else {
          etcd.kill(signal);
          await etcd.exited;
        }
      },
      async startEtcd() {
        etcd = startEtcd();
        // Before the API server in the list, so that stop() still stops etcd last.
        processes.unshift(etcd);
        await whileRunning(etcd, waitForHttpOk(`${etcdUrl}/health`, 30_000));
      },
      async stop() {
        await stopAll(processes);
        await rm(dir, { recursive: true, force: true });
      },
    };
    return plane;
  } catch (err) {
    await stopAll(processes);
    throw err;
  }
}

function startControllerManager(
  dir: string,
  kubeconfigPath: string,
  ca: CertificateAuthority,
  saPrivateKeyPath: string,
  controllers: readonly string[],
): ManagedProcess {
  const bin = requireBinary(join(binDir, "kube-controller-manager"));
  return startProcess(
    "kube-controller-manager",
    bin,
    [
      `--kubeconfig=${kubeconfigPath}`,
      `--authentication-kubeconfig=${kubeconfigPath}`,
      `--authorization-kubeconfig=${kubeconfigPath}`,
      `--controllers=${controllers.join(",")}`,
      "--leader-elect=false",
      "--bind-address=127.0.0.1",
      "--secure-port=0",
      `--root-ca-file=${ca.certPath}`,
      `--service-account-private-key-file=${saPrivateKeyPath}`,
      "--concurrent-gc-syncs=5",
    ],
    join(dir, "controller-manager.log"),
  );
}

function startScheduler(dir: string, kubeconfigPath: string): ManagedProcess {
  return startProcess(
    "kube-scheduler",
    requireBinary(join(binDir, "kube-scheduler")),
    [
      `--kubeconfig=${kubeconfigPath}`,
      `--authentication-kubeconfig=${kubeconfigPath}`,
      `--authorization-kubeconfig=${kubeconfigPath}`,
      "--leader-elect=false",
      "--bind-address=127.0.0.1",
      "--secure-port=0",
    ],
    join(dir, "scheduler.log"),
  );
}

async function stopAll(processes: readonly ManagedProcess[]): Promise<void> {
  // Stop in reverse start order: controllers and API server before etcd.
  for (const proc of [...processes].reverse()) {
    await proc.stop();
  }
}
