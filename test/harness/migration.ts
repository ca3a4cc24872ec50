// docs/migration.md's steps run exactly as the guide prints them (bash, kubectl, jq) against a
// cluster, and the probes that watch a migration: does every namespace's ServiceAccount keep a
// working pull secret, and what do Pods created meanwhile get.
import { execFile } from "node:child_process";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { setTimeout as delay } from "node:timers/promises";
import type { CoreV1Api, V1Pod } from "@kubernetes/client-node";
import { requireCommand } from "./commands.ts";
import { binDir, repoRoot, requireBinary } from "./paths.ts";
import { eventually } from "./wait.ts";

export const migrationGuidePath = join(repoRoot, "docs", "migration.md");

/** The guide's steps that run commands, in its order. */
export const migrationStepNames = [
  "export",
  "convert",
  "preview",
  "lost-entries",
  "retire",
  "adopt",
  "apply",
  "stale-pods",
  "remove-entries",
  "delete-original",
] as const;
export type MigrationStep = (typeof migrationStepNames)[number];

/** (a) keep the name Pods already use; (b) move to a name of your choice. */
export type MigrationPath = "keep-name" | "new-name";

export const migrationSteps: Record<MigrationPath, readonly MigrationStep[]> = {
  "keep-name": migrationStepNames.slice(0, migrationStepNames.indexOf("apply") + 1),
  "new-name": migrationStepNames,
};

/** The shell variables the guide asks users to set first. */
export interface MigrationVariables {
  OLD: string;
  REGISTRY: string;
  CR: string;
  NEW: string;
}

interface MigrationGuide {
  variables: string[];
  steps: Map<string, string>;
}

/** The fenced `sh` block after each `<!-- migration-… -->` marker, dedented. */
export async function readMigrationGuide(): Promise<MigrationGuide> {
  const lines = (await readFile(migrationGuidePath, "utf8")).split("\n");
  const blocks = new Map<string, string>();
  const order: string[] = [];
  for (let i = 0; i < lines.length; i++) {
    const marker = /^\s*<!-- (migration-variables|migration-step: ([a-z-]+)) -->\s*$/.exec(lines[i] ?? "");
    if (marker === null) continue;
    const key = marker[2] ?? "variables";
    const open = lines.findIndex((line, j) => j > i && line.trim() === "```sh");
    const close = lines.findIndex((line, j) => j > open && line.trim() === "```");
    if (open < 0 || close < 0) throw new Error(`${migrationGuidePath}: no sh block after the ${key} marker`);
    const indent = (lines[open] ?? "").indexOf("```");
    blocks.set(
      key,
      lines
        .slice(open + 1, close)
        .map((line) => line.slice(indent))
        .join("\n"),
    );
    if (key !== "variables") order.push(key);
  }
  if (order.join(" ") !== migrationStepNames.join(" ")) {
    throw new Error(
      `${migrationGuidePath} gives the steps ${order.join(", ")}; the harness runs ${migrationStepNames.join(", ")}`,
    );
  }
  const variables = [...(blocks.get("variables") ?? "").matchAll(/^([A-Z_]+)=/gm)].map((m) => m[1] ?? "");
  blocks.delete("variables");
  return { variables, steps: blocks };
}

/** Long base64 runs (tokens, .dockerconfigjson) out of anything a failed step printed. */
function redact(text: string): string {
  return text.replace(/[A-Za-z0-9+/=]{40,}/g, "[redacted]").slice(0, 4_000);
}

export interface MigrationShell {
  /** The working directory the guide's commands keep their files in. */
  readonly dir: string;
  readonly variables: MigrationVariables;
  /** Runs one step's commands (bash -euo pipefail) and returns what they printed. */
  run(step: MigrationStep): Promise<string>;
  dispose(): Promise<void>;
}

/** A shell for the guide's commands against the cluster of `kubeconfigPath`, with the control plane's kubectl. */
export async function openMigrationShell(
  kubeconfigPath: string,
  variables: MigrationVariables,
): Promise<MigrationShell> {
  const guide = await readMigrationGuide();
  const given = Object.keys(variables).sort().join(" ");
  if (guide.variables.slice().sort().join(" ") !== given) {
    throw new Error(`the guide sets ${guide.variables.join(", ")}; the test gives ${given}`);
  }
  const kubectl = requireBinary(join(binDir, "kubectl"));
  const jq = requireCommand("jq", "jq");
  const dir = await mkdtemp(join(tmpdir(), "ecr-migration-"));
  const env = {
    PATH: [dirname(kubectl), dirname(jq), process.env.PATH ?? ""].join(":"),
    // kubectl keeps its discovery cache under HOME: in the working directory, not the user's.
    HOME: dir,
    KUBECONFIG: kubeconfigPath,
    ...variables,
  };
  return {
    dir,
    variables,
    run(step) {
      const script = guide.steps.get(step) ?? "";
      return new Promise((resolve, reject) => {
        execFile(
          "bash",
          ["-euo", "pipefail", "-c", script],
          { cwd: dir, env, timeout: 180_000, maxBuffer: 16 * 1024 * 1024 },
          (err, stdout, stderr) => {
            if (err === null) {
              resolve(stdout);
              return;
            }
            const exit = err.killed ? "timed out" : `exit ${String(err.code)}`;
            reject(new Error(`migration step ${step} failed (${exit}): ${redact(stderr)}`));
          },
        );
      });
    },
    async dispose() {
      await rm(dir, { recursive: true, force: true });
    },
  };
}

function tsvRows(output: string): string[][] {
  return output
    .split("\n")
    .filter((line) => line.length > 0)
    .slice(1)
    .map((line) => line.split("\t"));
}

const names = (cell: string | undefined): string[] =>
  cell === undefined || cell === "" || cell === "-" ? [] : cell.split(",");

export interface ConvertedCr {
  apiVersion: string;
  kind: string;
  metadata: { name: string };
  spec: { secretName: string; namespaces: string[]; registries: string[]; serviceAccounts: string[] };
}

/** What step 3 wrote: the ECRPullSecrets step 7 applies. */
export async function convertedCrs(shell: MigrationShell): Promise<ConvertedCr[]> {
  const list = JSON.parse(await readFile(join(shell.dir, "ecrpullsecrets.json"), "utf8")) as {
    items: ConvertedCr[];
  };
  return list.items;
}

export interface PreviewRow {
  namespace: string;
  serviceAccount: string;
  now: string[];
  after: string[];
  secrets: string;
  note: string;
}

/** Step 4's first command, read: per namespace and ServiceAccount, what will change. */
export function parsePreview(output: string): PreviewRow[] {
  return tsvRows(output).map(
    ([namespace = "", serviceAccount = "", now, after, secrets = "", note = ""]) => ({
      namespace,
      serviceAccount,
      now: names(now),
      after: names(after),
      secrets,
      note,
    }),
  );
}

export interface LostEntriesRow {
  namespace: string;
  serviceAccount: string;
  seenElsewhere: string[];
}

/** Step 4's second command, read: ServiceAccounts the original operator overwrote, with names seen elsewhere. */
export function parseLostEntries(output: string): LostEntriesRow[] {
  return tsvRows(output).map(([namespace = "", serviceAccount = "", seen]) => ({
    namespace,
    serviceAccount,
    seenElsewhere: names(seen),
  }));
}

export interface PodRef {
  namespace: string;
  name: string;
  /** kind/name of its first owner, or "-". */
  owner: string;
}

/** Step 8's list, read: Pods that name only the old Secret. */
export function parseStalePods(output: string): PodRef[] {
  return tsvRows(output).map(([namespace = "", name = "", owner = "-"]) => ({
    namespace,
    name,
    owner,
  }));
}

export interface MigrationHooks {
  /** After each step, with what it printed: to check a preview, or to disturb the cluster. */
  afterStep?(step: MigrationStep, output: string): Promise<void>;
  /** Path (b), step 8: restart these Pods' workloads (or re-create bare Pods). */
  restartPods?(pods: PodRef[]): Promise<void>;
  /** How long step 8 may wait for restarted Pods to be gone; default 120 s. */
  restartTimeoutMs?: number;
}

/**
 * Runs every step of `path` in the guide's order. Step 8 restarts what it lists, then repeats until
 * it lists nothing (bounded), as the guide says.
 */
export async function runMigration(
  shell: MigrationShell,
  path: MigrationPath,
  hooks: MigrationHooks = {},
): Promise<void> {
  for (const step of migrationSteps[path]) {
    if (step === "stale-pods") {
      const restarted = new Set<string>();
      await eventually(
        async () => {
          const stale = parseStalePods(await shell.run("stale-pods"));
          const fresh = stale.filter((pod) => !restarted.has(`${pod.namespace}/${pod.name}`));
          if (fresh.length > 0) {
            if (hooks.restartPods === undefined)
              throw new Error("step 8 lists Pods and no hook restarts them");
            await hooks.restartPods(fresh);
            for (const pod of fresh) restarted.add(`${pod.namespace}/${pod.name}`);
          }
          if (stale.length > 0) {
            throw new Error(
              `Pods still naming only ${shell.variables.OLD}: ${stale.map((p) => `${p.namespace}/${p.name}`).join(", ")}`,
            );
          }
        },
        { timeoutMs: hooks.restartTimeoutMs ?? 120_000, intervalMs: 250, message: "step 8 lists no Pod" },
      );
      await hooks.afterStep?.(step, "");
      continue;
    }
    const output = await shell.run(step);
    await hooks.afterStep?.(step, output);
  }
}

/** Whether the registry would take this password for `registry` (ECR: a token from its own region). */
export type AcceptsToken = (registry: string, password: string) => boolean;

export interface PullSecretEntries {
  /** The ServiceAccount's imagePullSecrets, in order. */
  listed: string[];
  /** Those naming a Secret that would let a Pod pull from the registry. */
  working: string[];
}

function dockerAuthFor(
  data: Record<string, string> | undefined,
  registry: string,
): { username?: string; password?: string; auth?: string } | undefined {
  const encoded = data?.[".dockerconfigjson"];
  if (encoded === undefined) return undefined;
  try {
    const config = JSON.parse(Buffer.from(encoded, "base64").toString()) as {
      auths?: Record<string, { username?: string; password?: string; auth?: string }>;
    };
    return config.auths?.[registry];
  } catch {
    // Unreadable content is no working entry; what it held stays out of any message.
    return undefined;
  }
}

/** Which of a Secret's names would work for a Pod pulling from `registry` now. */
export async function workingSecrets(
  core: CoreV1Api,
  namespace: string,
  secretNames: readonly string[],
  registry: string,
  accepts: AcceptsToken,
): Promise<string[]> {
  const working: string[] = [];
  for (const name of secretNames) {
    let data: Record<string, string> | undefined;
    try {
      const secret = await core.readNamespacedSecret({ namespace, name });
      if (secret.type !== "kubernetes.io/dockerconfigjson") continue;
      data = secret.data;
    } catch (err) {
      if ((err as { code?: unknown }).code === 404) continue;
      throw err;
    }
    const auth = dockerAuthFor(data, registry);
    if (
      auth?.username === "AWS" &&
      auth.password !== undefined &&
      auth.auth === Buffer.from(`AWS:${auth.password}`).toString("base64") &&
      accepts(registry, auth.password)
    ) {
      working.push(name);
    }
  }
  return working;
}

/** The ServiceAccount's pull secrets and which of them work. */
export async function pullSecretEntries(
  core: CoreV1Api,
  namespace: string,
  serviceAccount: string,
  registry: string,
  accepts: AcceptsToken,
): Promise<PullSecretEntries> {
  let listed: string[] = [];
  try {
    const sa = await core.readNamespacedServiceAccount({ namespace, name: serviceAccount });
    listed = (sa.imagePullSecrets ?? []).map((ref) => ref.name ?? "");
  } catch (err) {
    if ((err as { code?: unknown }).code !== 404) throw err;
  }
  return { listed, working: await workingSecrets(core, namespace, listed, registry, accepts) };
}

export interface CoverageOptions {
  core: CoreV1Api;
  registry: string;
  accepts: AcceptsToken;
  /** Must have a working entry at every poll, from the first. */
  namespaces: readonly string[];
  /** Must have one by the end, and at every poll once they had one. */
  laterNamespaces?: readonly string[];
  serviceAccount?: string;
  intervalMs?: number;
  /** The monitor stops by itself after this long and reports it; default 300 s. */
  maxMs?: number;
}

export interface CoverageReport {
  polls: number;
  /** Each poll that found a namespace without a working entry (names only, never content). */
  gaps: string[];
  /** Later namespaces that never had a working entry. */
  neverCovered: string[];
  /** Reads that failed, and a monitor that ran out of time. */
  errors: string[];
}

export interface CoverageMonitor {
  stop(): Promise<CoverageReport>;
}

/** Polls every namespace's ServiceAccount until stopped: does it list a Secret that works? */
export function monitorPullSecretCoverage(options: CoverageOptions): CoverageMonitor {
  const serviceAccount = options.serviceAccount ?? "default";
  const interval = options.intervalMs ?? 25;
  const deadline = Date.now() + (options.maxMs ?? 300_000);
  const covered = new Set(options.namespaces);
  const later = options.laterNamespaces ?? [];
  const report: CoverageReport = { polls: 0, gaps: [], neverCovered: [], errors: [] };
  const state = { stopped: false };
  const poll = async (): Promise<void> => {
    const all = [...options.namespaces, ...later];
    const results = await Promise.allSettled(
      all.map((ns) => pullSecretEntries(options.core, ns, serviceAccount, options.registry, options.accepts)),
    );
    report.polls += 1;
    results.forEach((result, i) => {
      const ns = all[i] ?? "";
      if (result.status === "rejected") {
        report.errors.push(
          `${ns}: ${result.reason instanceof Error ? result.reason.message : "read failed"}`,
        );
      } else if (result.value.working.length > 0) {
        covered.add(ns);
      } else if (covered.has(ns)) {
        report.gaps.push(
          `poll ${report.polls}: ${ns}/${serviceAccount} lists [${result.value.listed.join(", ")}], none working`,
        );
      }
    });
  };
  const loop = (async () => {
    while (!state.stopped) {
      if (Date.now() > deadline) {
        report.errors.push("the coverage monitor ran out of time before it was stopped");
        return;
      }
      await poll();
      await delay(interval);
    }
    await poll();
  })();
  return {
    async stop() {
      state.stopped = true;
      await loop;
      report.neverCovered = later.filter((ns) => !covered.has(ns));
      return report;
    },
  };
}

/** A Pod as the API server admitted it: the imagePullSecrets its ServiceAccount gave it. */
export interface ProbePod {
  namespace: string;
  name: string;
  imagePullSecrets: string[];
}

export const probePodLabel = { "app.kubernetes.io/name": "migration-probe" } as const;

function probePodBody(name: string, image: string): V1Pod {
  return {
    metadata: { name, labels: { ...probePodLabel } },
    spec: {
      containers: [{ name: "app", image, imagePullPolicy: "Always" }],
      terminationGracePeriodSeconds: 0,
    },
  };
}

async function createProbePod(
  core: CoreV1Api,
  namespace: string,
  name: string,
  image: string,
): Promise<ProbePod> {
  const pod = await core.createNamespacedPod({ namespace, body: probePodBody(name, image) });
  return {
    namespace,
    name,
    imagePullSecrets: (pod.spec?.imagePullSecrets ?? []).map((ref) => ref.name ?? ""),
  };
}

/** A bare probe Pod restarted as a controller would: deleted, and created again under a new name. */
export async function recreateProbePod(core: CoreV1Api, pod: PodRef, image: string): Promise<ProbePod> {
  await core.deleteNamespacedPod({ namespace: pod.namespace, name: pod.name, gracePeriodSeconds: 0 });
  return createProbePod(core, pod.namespace, `${pod.name}-r`, image);
}

export interface PodStream {
  /** Stops creating Pods; returns every Pod created, with what it was admitted with. */
  stop(): Promise<{ pods: ProbePod[]; errors: string[] }>;
}

/** Creates a probe Pod in each namespace in turn, every `intervalMs`, until stopped (or `maxMs`). */
export function createPodsThroughout(
  core: CoreV1Api,
  options: { namespaces: readonly string[]; image: string; intervalMs?: number; maxMs?: number },
): PodStream {
  const pods: ProbePod[] = [];
  const errors: string[] = [];
  const deadline = Date.now() + (options.maxMs ?? 300_000);
  const state = { stopped: false };
  const loop = (async () => {
    for (let n = 0; !state.stopped; n++) {
      if (Date.now() > deadline) {
        errors.push("the Pod stream ran out of time before it was stopped");
        return;
      }
      const namespace = options.namespaces[n % options.namespaces.length] ?? "default";
      try {
        pods.push(await createProbePod(core, namespace, `probe-${n}`, options.image));
      } catch (err) {
        errors.push(
          `${namespace}/probe-${n}: ${err instanceof Error ? err.message.slice(0, 200) : "create failed"}`,
        );
      }
      await delay(options.intervalMs ?? 100);
    }
  })();
  return {
    async stop() {
      state.stopped = true;
      await loop;
      return { pods, errors };
    },
  };
}

export interface WatchedMigration {
  coverage: CoverageReport;
  /** Pods created during the migration and still there (restarted ones replaced by their successors). */
  pods: ProbePod[];
  podErrors: string[];
  outputs: Map<MigrationStep, string>;
}

export interface WatchOptions {
  core: CoreV1Api;
  /** What the registry accepts, for the coverage check. */
  accepts: AcceptsToken;
  /** Namespaces that must keep a working entry throughout, and where Pods are created. */
  namespaces: readonly string[];
  /** Namespaces that must have one by the end. */
  laterNamespaces?: readonly string[];
  /** The Pods' image; `<REGISTRY>/app:1` by default. */
  image?: string;
  /** Between two Pods; createPodsThroughout's default when unset. */
  podIntervalMs?: number;
  afterStep?: (step: MigrationStep, output: string) => Promise<void>;
}

/** Runs the guide's path while Pods are created and every namespace's entry is checked. */
export async function migrateWhileWatched(
  shell: MigrationShell,
  path: MigrationPath,
  options: WatchOptions,
): Promise<WatchedMigration> {
  const { core } = options;
  const image = options.image ?? `${shell.variables.REGISTRY}/app:1`;
  const coverage = monitorPullSecretCoverage({
    core,
    registry: shell.variables.REGISTRY,
    accepts: options.accepts,
    namespaces: options.namespaces,
    laterNamespaces: options.laterNamespaces ?? [],
  });
  const stream = createPodsThroughout(core, {
    namespaces: options.namespaces,
    image,
    intervalMs: options.podIntervalMs,
  });
  const restarted: ProbePod[] = [];
  const replaced = new Set<string>();
  const outputs = new Map<MigrationStep, string>();
  let created: Awaited<ReturnType<typeof stream.stop>>;
  let report: CoverageReport;
  try {
    await runMigration(shell, path, {
      afterStep: async (step, output) => {
        outputs.set(step, output);
        await options.afterStep?.(step, output);
      },
      restartPods: async (stale) => {
        for (const pod of stale) {
          restarted.push(await recreateProbePod(core, pod, image));
          replaced.add(`${pod.namespace}/${pod.name}`);
        }
      },
    });
  } finally {
    created = await stream.stop();
    report = await coverage.stop();
  }
  const pods = [...created.pods, ...restarted].filter((p) => !replaced.has(`${p.namespace}/${p.name}`));
  return { coverage: report, pods, podErrors: created.errors, outputs };
}
