// A real node for the local control plane: kubelet (built with the control plane), Debian's
// containerd and runc, a CNI bridge in a benchmarking range whose traffic never leaves the machine,
// and kube-proxy, so Pods run, pull images and reach the API server through the `kubernetes`
// Service with in-cluster configuration.
//
// containerd and the kubelet share one private mount namespace. In it, /etc/hosts is replaced by
// the node's own file (so ECR host names resolve to a loopback registry without touching the
// machine's), and every mount the kubelet makes goes away with the namespace.
import { execFile } from "node:child_process";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { CoreV1Api, DiscoveryV1Api, type V1Node } from "@kubernetes/client-node";
import { buildBusyboxImages } from "./busybox-image.ts";
import { requireCommand } from "./commands.ts";
import type { ControlPlane } from "./controlplane.ts";
import { binDir, requireBinary } from "./paths.ts";
import { freePort } from "./ports.ts";
import { startProcess, whileRunning, type ManagedProcess } from "./processes.ts";
import { acquireLock } from "./machine-lock.ts";
import { startTcpProxy, type TcpProxy } from "./tcp-proxy.ts";
import { eventually } from "./wait.ts";

const run = promisify(execFile);

/** The Pod network: a benchmarking range (RFC 2544), never routed off the machine. */
export const podSubnet = "198.18.0.0/24";
/** The node's address on the Pod bridge: Pods reach the host, and the API server the kubelet, here. */
export const nodeAddress = "198.18.0.1";
/** The Pod bridge; one node per machine owns it. */
export const nodeBridge = "ecrnode0";
const nodeName = "ecr-node";
/** The port Pods reach the API server on, at the node's address (the `kubernetes` Service's endpoint). */
const apiServerPodPort = 6443;

/** Which Debian package gives each command the node runs. */
const nodeCommands = {
  containerd: "containerd",
  ctr: "containerd",
  runc: "runc",
  unshare: "util-linux",
  nsenter: "util-linux",
  ip: "iproute2",
  iptables: "iptables",
  conntrack: "conntrack",
  busybox: "busybox-static",
  umoci: "umoci",
  skopeo: "skopeo",
} as const;

export interface RegistryAlias {
  /** The loopback address the registry listens on (port 443). */
  address: string;
  /** Host names that resolve to it on the node, e.g. ECR hosts. */
  hostNames: readonly string[];
  /** The registry's CA certificate, which containerd trusts for these hosts only. */
  caPath: string;
}

export interface NodeOptions {
  plane: ControlPlane;
  registry?: RegistryAlias;
}

export interface TestNode {
  readonly name: string;
  readonly dir: string;
  /** Imports an image archive (docker-archive or oci-archive) into the node's containerd. */
  importImage(archivePath: string): Promise<void>;
  /** The node's containerd, kubelet and kube-proxy, for a test that wants their logs. */
  readonly processes: readonly ManagedProcess[];
  stop(): Promise<void>;
}

/** Every command the node needs, or an error naming the Debian packages that are missing. */
export function checkNodePrerequisites(): void {
  const missing = new Set<string>();
  for (const [command, debianPackage] of Object.entries(nodeCommands)) {
    try {
      requireCommand(command, debianPackage);
    } catch {
      missing.add(debianPackage);
    }
  }
  if (!existsSync("/usr/lib/cni/bridge")) missing.add("containernetworking-plugins");
  if (missing.size > 0) {
    throw new Error(
      `the test node needs Debian packages that are not installed: run \`apt-get install ${[...missing].join(" ")}\` as root`,
    );
  }
  if (process.getuid?.() !== 0) {
    throw new Error("the test node runs containerd and the kubelet, which need root");
  }
}

/** Why no node can start here (not root, a package or the kubelet missing), or undefined if one can. */
export function nodeUnavailableReason(): string | undefined {
  try {
    checkNodePrerequisites();
    requireBinary(join(binDir, "kubelet"));
    return undefined;
  } catch (err) {
    return err instanceof Error ? err.message : String(err);
  }
}

async function sh(command: string, args: readonly string[]): Promise<string> {
  const { stdout } = await run(command, args, { maxBuffer: 16 * 1024 * 1024 });
  return stdout;
}

function bridgeExists(): boolean {
  return existsSync(`/sys/class/net/${nodeBridge}`);
}

const lockPath = join(tmpdir(), "ecr-creds-refresher-node.pid");

/**
 * One node per machine: it owns the bridge, the Pod range and kube-proxy's iptables chains. Waits
 * for a node another process runs (a test file, `npm run dev:up -- --node`) to stop; a bridge left
 * by a process that is gone is removed.
 */
async function takeNodeLock(): Promise<() => Promise<void>> {
  const release = await acquireLock(lockPath, {
    what: "the machine's test node (npm run dev:down stops a local one)",
    timeoutMs: 20 * 60_000,
  });
  if (bridgeExists()) await sh("ip", ["link", "del", nodeBridge]);
  return release;
}

/** The kubernetes Service's endpoint, which the API server does not write here (--endpoint-reconciler-type=none). */
async function publishApiServerEndpoint(plane: ControlPlane): Promise<void> {
  const discovery = plane.kubeConfig.makeApiClient(DiscoveryV1Api);
  await discovery.createNamespacedEndpointSlice({
    namespace: "default",
    body: {
      metadata: { name: "kubernetes", labels: { "kubernetes.io/service-name": "kubernetes" } },
      addressType: "IPv4",
      endpoints: [{ addresses: [nodeAddress], conditions: { ready: true } }],
      ports: [{ name: "https", port: apiServerPodPort, protocol: "TCP" }],
    },
  });
}

function kubeletConfig(dir: string, port: number, healthzPort: number): string {
  return JSON.stringify({
    apiVersion: "kubelet.config.k8s.io/v1beta1",
    kind: "KubeletConfiguration",
    address: nodeAddress,
    port,
    readOnlyPort: 0,
    healthzBindAddress: "127.0.0.1",
    healthzPort,
    authentication: { anonymous: { enabled: true }, webhook: { enabled: false } },
    authorization: { mode: "AlwaysAllow" },
    // This machine runs cgroup v1 in hybrid mode, without CAP_SYS_RESOURCE; see docs/testing.md.
    failCgroupV1: false,
    cgroupDriver: "cgroupfs",
    cgroupsPerQOS: false,
    enforceNodeAllocatable: [],
    failSwapOn: false,
    localStorageCapacityIsolation: false,
    evictionHard: {},
    imageGCHighThresholdPercent: 100,
    imageGCLowThresholdPercent: 99,
    serializeImagePulls: false,
    containerRuntimeEndpoint: `unix://${join(dir, "containerd.sock")}`,
    podLogsDir: join(dir, "pod-logs"),
    syncFrequency: "10s",
    nodeStatusUpdateFrequency: "2s",
  });
}

function containerdConfig(dir: string, registry: RegistryAlias | undefined): string {
  return `version = 2
root = "${join(dir, "containerd")}"
state = "${join(dir, "containerd-state")}"
[grpc]
  address = "${join(dir, "containerd.sock")}"
[ttrpc]
  address = "${join(dir, "containerd.sock.ttrpc")}"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "localhost/pause:1"
  # The machine refuses a negative oom_score_adj (no CAP_SYS_RESOURCE).
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
    runtime_type = "io.containerd.runc.v2"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
      Root = "${join(dir, "runc")}"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "${join(dir, "cni")}"
  [plugins."io.containerd.grpc.v1.cri".registry]
    config_path = "${registry === undefined ? "" : join(dir, "certs.d")}"
`;
}

function cniConfig(dir: string): string {
  return JSON.stringify({
    cniVersion: "1.0.0",
    name: "ecr-node",
    plugins: [
      {
        type: "bridge",
        bridge: nodeBridge,
        isGateway: true,
        ipMasq: false,
        hairpinMode: true,
        ipam: {
          type: "host-local",
          dataDir: join(dir, "cni-ipam"),
          ranges: [[{ subnet: podSubnet, gateway: nodeAddress }]],
          routes: [{ dst: "0.0.0.0/0" }],
        },
      },
      { type: "portmap", capabilities: { portMappings: true } },
      { type: "loopback" },
    ],
  });
}

export async function startNode(options: NodeOptions): Promise<TestNode> {
  checkNodePrerequisites();
  const kubelet = requireBinary(join(binDir, "kubelet"));
  const kubeProxy = requireBinary(join(binDir, "kube-proxy"));
  const { plane, registry } = options;
  const releaseLock = await takeNodeLock();
  const dir = await mkdtemp(join(tmpdir(), "ecr-node-"));
  const processes: ManagedProcess[] = [];
  let apiForwarder: TcpProxy | undefined;
  let namespaceHolder: ManagedProcess | undefined;

  const stop = async (): Promise<void> => {
    // Pods first (their processes outlive containerd otherwise), then the node's own processes.
    for (const proc of [...processes].reverse().filter((p) => p.name === "kubelet")) await proc.stop();
    await removeContainers(dir);
    for (const proc of [...processes].reverse()) await proc.stop();
    await namespaceHolder?.stop();
    await apiForwarder?.stop();
    await run(kubeProxy, ["--cleanup"]).catch(() => undefined);
    await removeKubeletChains();
    if (bridgeExists()) await sh("ip", ["link", "del", nodeBridge]).catch(() => undefined);
    await rm(dir, { recursive: true, force: true });
    await releaseLock();
  };

  try {
    // The bridge exists before the kubelet starts so that the node registers with its address.
    await sh("ip", ["link", "add", nodeBridge, "type", "bridge"]);
    await sh("ip", ["addr", "add", `${nodeAddress}/24`, "dev", nodeBridge]);
    await sh("ip", ["link", "set", nodeBridge, "up"]);
    apiForwarder = await startTcpProxy(Number(new URL(plane.server).port), {
      listenHost: nodeAddress,
      listenPort: apiServerPodPort,
    });
    await publishApiServerEndpoint(plane);

    await mkdir(join(dir, "cni"));
    await writeFile(join(dir, "cni", "10-ecr-node.conflist"), cniConfig(dir));
    const hosts = ["127.0.0.1 localhost", "::1 localhost"];
    if (registry !== undefined) {
      hosts.push(`${registry.address} ${registry.hostNames.join(" ")}`);
      for (const host of registry.hostNames) {
        await mkdir(join(dir, "certs.d", host), { recursive: true });
        await writeFile(
          join(dir, "certs.d", host, "hosts.toml"),
          `server = "https://${host}"\n[host."https://${host}"]\n  capabilities = ["pull", "resolve"]\n  ca = "${registry.caPath}"\n`,
        );
      }
    }
    await writeFile(join(dir, "hosts"), `${hosts.join("\n")}\n`);
    await writeFile(join(dir, "containerd.toml"), containerdConfig(dir, registry));

    namespaceHolder = startProcess(
      "node-namespace",
      "unshare",
      [
        "--mount",
        "--propagation",
        "private",
        "sh",
        "-c",
        `mount --bind ${join(dir, "hosts")} /etc/hosts && echo ready && exec sleep infinity`,
      ],
      join(dir, "namespace.log"),
    );
    const holderPid = namespaceHolder.child.pid;
    await whileRunning(
      namespaceHolder,
      eventually(() => {
        if (!readFileSync(join(dir, "namespace.log"), "utf8").includes("ready")) throw new Error("not yet");
      }),
    );
    const inNamespace = (command: string, args: readonly string[]): [string, string[]] => [
      "nsenter",
      [`--target=${String(holderPid)}`, "--mount", "--", command, ...args],
    ];

    const containerd = startProcess(
      "containerd",
      ...inNamespace("containerd", ["--config", join(dir, "containerd.toml")]),
      join(dir, "containerd.log"),
    );
    processes.push(containerd);
    const ctrArgs = ["--address", join(dir, "containerd.sock"), "--namespace", "k8s.io"];
    await whileRunning(
      containerd,
      eventually(() => sh("ctr", [...ctrArgs, "version"]), { timeoutMs: 30_000, message: "containerd" }),
    );

    const images = await buildBusyboxImages();
    try {
      const pauseArchive = join(dir, "pause.tar");
      await sh("skopeo", [
        "copy",
        "--insecure-policy",
        images.source("pause"),
        `docker-archive:${pauseArchive}:localhost/pause:1`,
      ]);
      await sh("ctr", [...ctrArgs, "images", "import", pauseArchive]);
    } finally {
      await images.remove();
    }

    const [kubeletPort, healthzPort] = [await freePort(nodeAddress), await freePort()];
    await writeFile(join(dir, "kubelet.json"), kubeletConfig(dir, kubeletPort, healthzPort));
    processes.push(
      startProcess(
        "kubelet",
        ...inNamespace(kubelet, [
          `--config=${join(dir, "kubelet.json")}`,
          `--kubeconfig=${plane.kubeconfigPath}`,
          `--root-dir=${join(dir, "kubelet")}`,
          `--cert-dir=${join(dir, "kubelet-pki")}`,
          `--hostname-override=${nodeName}`,
          `--node-ip=${nodeAddress}`,
          "--v=1",
        ]),
        join(dir, "kubelet.log"),
      ),
    );
    processes.push(
      startProcess(
        "kube-proxy",
        kubeProxy,
        [
          `--kubeconfig=${plane.kubeconfigPath}`,
          `--hostname-override=${nodeName}`,
          "--proxy-mode=iptables",
          `--cluster-cidr=${podSubnet}`,
          "--conntrack-max-per-core=0",
          `--metrics-bind-address=127.0.0.1:${await freePort()}`,
          `--healthz-bind-address=127.0.0.1:${await freePort()}`,
        ],
        join(dir, "kube-proxy.log"),
      ),
    );

    const core = plane.kubeConfig.makeApiClient(CoreV1Api);
    await whileRunning(
      processes.find((p) => p.name === "kubelet") ?? containerd,
      eventually(
        async () => {
          const node: V1Node = await core.readNode({ name: nodeName });
          const ready = node.status?.conditions?.find((c) => c.type === "Ready");
          if (ready?.status !== "True")
            throw new Error(`node Ready is ${ready?.status ?? "unset"}: ${ready?.message ?? ""}`);
          const taints = (node.spec?.taints ?? []).map((t) => t.key);
          if (taints.length > 0) throw new Error(`node still has taints ${taints.join(", ")}`);
        },
        { timeoutMs: 90_000, intervalMs: 500, message: `node ${nodeName} Ready` },
      ),
    );

    return {
      name: nodeName,
      dir,
      processes,
      async importImage(archivePath) {
        await sh("ctr", [...ctrArgs, "images", "import", archivePath]);
      },
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}

/** Splits an `iptables -S` line into arguments, keeping quoted comments whole. */
function ruleArgs(line: string): string[] {
  return [...line.matchAll(/"((?:[^"\\]|\\.)*)"|(\S+)/g)].map((m) => m[1] ?? m[2] ?? "");
}

/**
 * The kubelet's own iptables chains (KUBE-FIREWALL, KUBE-KUBELET-CANARY, ...), which stay after it
 * stops and kube-proxy's --cleanup leaves alone: unhook and remove them so the machine is as before.
 */
async function removeKubeletChains(): Promise<void> {
  for (const command of ["iptables", "ip6tables"]) {
    for (const table of ["filter", "nat", "mangle"]) {
      const rules = (await sh(command, ["-t", table, "-S"]).catch(() => "")).split("\n");
      const chains = rules.filter((r) => r.startsWith("-N KUBE-")).map((r) => r.slice(3).trim());
      const hooks = rules.filter(
        (r) => r.startsWith("-A ") && / -j KUBE-/.test(r) && !r.startsWith("-A KUBE-"),
      );
      for (const hook of hooks) {
        await sh(command, ["-t", table, "-D", ...ruleArgs(hook).slice(1)]).catch(() => undefined);
      }
      for (const chain of chains) await sh(command, ["-t", table, "-F", chain]).catch(() => undefined);
      for (const chain of chains) await sh(command, ["-t", table, "-X", chain]).catch(() => undefined);
    }
  }
}

/**
 * Kills and deletes every container the node's runc still holds, then containerd's shims for this
 * node (they outlive containerd by design), so no Pod process outlives the node.
 */
async function removeContainers(dir: string): Promise<void> {
  const root = join(dir, "runc", "k8s.io");
  if (existsSync(root)) {
    const ids = (await sh("runc", ["--root", root, "list", "-q"]).catch(() => ""))
      .split("\n")
      .filter(Boolean);
    for (const id of ids) {
      await sh("runc", ["--root", root, "delete", "--force", id]).catch(() => undefined);
    }
  }
  const socket = join(dir, "containerd.sock");
  for (const pid of readdirSync("/proc").filter((entry) => /^\d+$/.test(entry))) {
    let cmdline = "";
    try {
      cmdline = readFileSync(`/proc/${pid}/cmdline`, "utf8");
    } catch {
      continue;
    }
    if (cmdline.startsWith("/usr/bin/containerd-shim") && cmdline.includes(socket)) {
      try {
        process.kill(Number(pid), "SIGKILL");
      } catch {
        // Already gone.
      }
    }
  }
}
