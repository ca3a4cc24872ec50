// The physical limit for cold converge: a minimal client that makes exactly the writes the operator
// has to make — create one pull Secret per namespace, then add it to each namespace's ServiceAccount
// by a merge patch on the resourceVersion it read — at the operator's write concurrency, over
// keep-alive connections, and nothing else. Like the operator's caches, it reads the
// ServiceAccounts once before its start signal, so the timed part is writes only (a 409 alone costs
// a re-read). Runs as its own process, like the operator:
//   node bench/baseline.ts <config.json>
// prints "ready", starts on a line on stdin, prints one JSON line with its counts, exits.
import { readFileSync } from "node:fs";
import { createInterface } from "node:readline";
import { mapLimit } from "../src/kube/concurrency.ts";
import { ApiClient, ApiError, type TlsMaterial } from "./api-client.ts";

export interface BaselineConfig {
  server: string;
  tls: TlsMaterial;
  namespaces: string[];
  serviceAccount: string;
  concurrency: number;
  /** The Secret to create in every namespace; metadata.namespace is filled in per namespace. */
  secret: {
    metadata: { name: string; labels: Record<string, string>; annotations: Record<string, string> };
    type: string;
    data: Record<string, string>;
  };
}

export interface BaselineOutcome {
  secretsCreated: number;
  serviceAccountsUpdated: number;
  conflictsRetried: number;
  failures: string[];
  /** User plus system CPU seconds the baseline process used for the writes. */
  cpuSeconds: number;
}

interface ServiceAccount {
  metadata: { namespace?: string; resourceVersion?: string };
  imagePullSecrets?: { name?: string }[];
}

const maxConflictRetries = 5;

/** Every ServiceAccount of that name, by namespace, read page by page. */
export async function readServiceAccounts(
  api: ApiClient,
  name: string,
): Promise<Map<string, ServiceAccount>> {
  const found = new Map<string, ServiceAccount>();
  let continueToken = "";
  do {
    const query = new URLSearchParams({ fieldSelector: `metadata.name=${name}`, limit: "500" });
    if (continueToken !== "") query.set("continue", continueToken);
    const page = await api.json<{ items: ServiceAccount[]; metadata: { continue?: string } }>(
      "GET",
      `/api/v1/serviceaccounts?${query.toString()}`,
    );
    for (const sa of page.items) found.set(sa.metadata.namespace ?? "", sa);
    continueToken = page.metadata.continue ?? "";
  } while (continueToken !== "");
  return found;
}

async function addPullSecret(
  api: ApiClient,
  namespace: string,
  name: string,
  secretName: string,
  known: ServiceAccount | undefined,
): Promise<{ updated: boolean; conflicts: number }> {
  const path = `/api/v1/namespaces/${namespace}/serviceaccounts/${name}`;
  let sa = known;
  for (let attempt = 0; ; attempt++) {
    sa ??= await api.json<ServiceAccount>("GET", path);
    const entries = sa.imagePullSecrets ?? [];
    if (entries.some((ref) => ref.name === secretName)) return { updated: false, conflicts: attempt };
    const patch = {
      metadata: { resourceVersion: sa.metadata.resourceVersion },
      imagePullSecrets: [...entries, { name: secretName }],
    };
    try {
      await api.json("PATCH", path, patch, "application/merge-patch+json");
      return { updated: true, conflicts: attempt };
    } catch (err) {
      if (!(err instanceof ApiError) || err.status !== 409 || attempt >= maxConflictRetries) throw err;
      sa = undefined;
    }
  }
}

export async function runBaseline(
  config: BaselineConfig,
  api: ApiClient,
  serviceAccounts: ReadonlyMap<string, ServiceAccount>,
): Promise<BaselineOutcome> {
  const cpuBefore = process.cpuUsage();
  const outcome: BaselineOutcome = {
    secretsCreated: 0,
    serviceAccountsUpdated: 0,
    conflictsRetried: 0,
    failures: [],
    cpuSeconds: 0,
  };
  const created = await mapLimit(config.namespaces, config.concurrency, async (namespace) =>
    api.json("POST", `/api/v1/namespaces/${namespace}/secrets`, {
      apiVersion: "v1",
      kind: "Secret",
      ...config.secret,
      metadata: { ...config.secret.metadata, namespace },
    }),
  );
  const withSecret: string[] = [];
  for (const result of created) {
    if (result.status === "fulfilled") {
      outcome.secretsCreated += 1;
      withSecret.push(result.item);
    } else {
      outcome.failures.push(String(result.reason));
    }
  }
  const edited = await mapLimit(withSecret, config.concurrency, (namespace) =>
    addPullSecret(
      api,
      namespace,
      config.serviceAccount,
      config.secret.metadata.name,
      serviceAccounts.get(namespace),
    ),
  );
  for (const result of edited) {
    if (result.status === "fulfilled") {
      if (result.value.updated) outcome.serviceAccountsUpdated += 1;
      outcome.conflictsRetried += result.value.conflicts;
    } else {
      outcome.failures.push(String(result.reason));
    }
  }
  const cpu = process.cpuUsage(cpuBefore);
  outcome.cpuSeconds = (cpu.user + cpu.system) / 1e6;
  return outcome;
}

async function main(configPath: string): Promise<void> {
  const config = JSON.parse(readFileSync(configPath, "utf8")) as BaselineConfig;
  const api = new ApiClient(config.server, config.tls, config.concurrency);
  const serviceAccounts = await readServiceAccounts(api, config.serviceAccount);
  const lines = createInterface({ input: process.stdin });
  const go = new Promise<void>((resolve, reject) => {
    lines.once("line", () => {
      resolve();
    });
    lines.once("close", () => {
      reject(new Error("stdin closed before the start signal"));
    });
  });
  process.stdout.write("ready\n");
  await go;
  lines.close();
  const outcome = await runBaseline(config, api, serviceAccounts);
  api.close();
  process.stdout.write(`${JSON.stringify(outcome)}\n`);
}

if (import.meta.main) {
  const configPath = process.argv[2];
  if (configPath === undefined) {
    console.error("usage: node bench/baseline.ts <config.json>");
    process.exit(2);
  }
  await main(configPath);
}
