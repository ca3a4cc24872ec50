// The create-before-patch race on a real node: a Namespace and a Deployment in it arrive in one
// `kubectl apply -f`, as GitOps tools apply them, and each replica is followed until it runs or
// fails its pull. A Pod receives its ServiceAccount's imagePullSecrets only when it is admitted, so
// a Pod created before the operator patched the new namespace's ServiceAccount never pulls (unless
// the operator's Pod webhook adds the entry). The real-node suite and the benchmark share it.
import { appRepository, ecrHosts, waitingReasons, type NodeEnv } from "./node-env.ts";
import { eventually } from "./wait.ts";

export interface RacePod {
  name: string;
  /** Admitted with the CR's Secret in spec.imagePullSecrets. */
  hadSecret: boolean;
  /** The kubelet pulled its image (it has an imageID). */
  pulled: boolean;
  /** Container restarts when the round settled. */
  restarts: number;
}

export interface RaceRound {
  namespace: string;
  pods: RacePod[];
  /** From the apply until every replica was Available; undefined when some never could be. */
  availableMs: number | undefined;
}

export interface RaceResult {
  rounds: RaceRound[];
  /** Pods admitted without the secret, and of those the ones that pulled all the same. */
  podsWithoutSecret: number;
  pulledWithoutSecret: number;
  roundsAffected: number;
  pods: number;
  /** Median and maximum of availableMs over the rounds where every replica became Available. */
  availableMedianMs: number | undefined;
  availableMaxMs: number | undefined;
}

export interface RaceOptions {
  rounds: number;
  replicas: number;
  /** Namespaces are `<prefix><round>`; a CR must target `<prefix>*` with `secretName`. */
  namespacePrefix: string;
  secretName: string;
}

/** A Deployment of the walkthrough image that sleeps, pulling on every start. */
export function sleepingDeployment(name: string, replicas: number, namespace?: string): object {
  return {
    apiVersion: "apps/v1",
    kind: "Deployment",
    metadata: { name, namespace },
    spec: {
      replicas,
      selector: { matchLabels: { app: name } },
      template: {
        metadata: { labels: { app: name } },
        spec: {
          terminationGracePeriodSeconds: 1,
          containers: [
            {
              name,
              image: `${ecrHosts[0]}/${appRepository}`,
              imagePullPolicy: "Always",
              command: ["sleep", "3600"],
            },
          ],
        },
      },
    },
  };
}

function median(values: readonly number[]): number | undefined {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
}

/** Runs the rounds one after another, then deletes their namespaces without waiting. */
export async function runRace(env: NodeEnv, options: RaceOptions): Promise<RaceResult> {
  const rounds: RaceRound[] = [];
  for (let round = 1; round <= options.rounds; round += 1) {
    const namespace = `${options.namespacePrefix}${String(round)}`;
    const manifest = [
      { apiVersion: "v1", kind: "Namespace", metadata: { name: namespace } },
      sleepingDeployment("app", options.replicas, namespace),
    ]
      .map((doc) => JSON.stringify(doc))
      .join("\n---\n");
    const started = Date.now();
    await env.kubectl(["apply", "-f", "-"], manifest);
    rounds.push(await settleRound(env, namespace, options, started));
  }
  await env.kubectl(["delete", "namespace", ...rounds.map((r) => r.namespace), "--wait=false"]);
  const pods = rounds.flatMap((r) => r.pods);
  const without = pods.filter((p) => !p.hadSecret);
  const available = rounds.map((r) => r.availableMs).filter((ms): ms is number => ms !== undefined);
  return {
    rounds,
    pods: pods.length,
    podsWithoutSecret: without.length,
    pulledWithoutSecret: without.filter((p) => p.pulled).length,
    roundsAffected: rounds.filter((r) => r.pods.some((p) => !p.hadSecret)).length,
    availableMedianMs: median(available),
    availableMaxMs: available.length === 0 ? undefined : Math.max(...available),
  };
}

/** One line for a test's diagnostics or a benchmark's log. */
export function describeRace(result: RaceResult): string {
  const available =
    result.availableMedianMs === undefined
      ? "no round had every replica Available"
      : `all replicas Available in ${String(result.rounds.filter((r) => r.availableMs !== undefined).length)} rounds, median ${String(result.availableMedianMs)} ms, max ${String(result.availableMaxMs)} ms`;
  return (
    `${String(result.podsWithoutSecret)} of ${String(result.pods)} Pods admitted without the pull secret, ` +
    `in ${String(result.roundsAffected)} of ${String(result.rounds.length)} rounds; ` +
    `${String(result.pulledWithoutSecret)} of them pulled; ${available}`
  );
}

/** Waits until each replica either runs or has failed its pull, and records what happened. */
async function settleRound(
  env: NodeEnv,
  namespace: string,
  options: RaceOptions,
  started: number,
): Promise<RaceRound> {
  let availableMs: number | undefined;
  const pods = await eventually(
    async () => {
      const list = await env.core.listNamespacedPod({ namespace, labelSelector: "app=app" });
      if (list.items.length < options.replicas) {
        throw new Error(`${String(list.items.length)} of ${String(options.replicas)} Pods`);
      }
      const settled = list.items.map((pod): RacePod => {
        const name = pod.metadata?.name ?? "";
        const hadSecret = (pod.spec?.imagePullSecrets ?? []).some((ref) => ref.name === options.secretName);
        const status = pod.status?.containerStatuses?.[0];
        const pulled = (status?.imageID ?? "") !== "";
        if (!pulled && !waitingReasons(pod).some((r) => r === "ErrImagePull" || r === "ImagePullBackOff")) {
          throw new Error(`Pod ${name} has neither pulled nor failed yet`);
        }
        return { name, hadSecret, pulled, restarts: status?.restartCount ?? 0 };
      });
      if (availableMs === undefined && settled.every((p) => p.pulled)) {
        const current = await env.apps.readNamespacedDeployment({ namespace, name: "app" });
        if ((current.status?.availableReplicas ?? 0) < options.replicas) {
          throw new Error("not all replicas Available");
        }
        availableMs = Date.now() - started;
      }
      return settled;
    },
    { timeoutMs: 120_000, intervalMs: 200, message: `race round in ${namespace}` },
  );
  return { namespace, pods, availableMs };
}
