// Shared steps of the reliability scenarios: namespaces in bulk, the operator as a process with
// its own user (so the audit log tells its requests apart), and reads of what it wrote.
import { mapLimit } from "../../src/kube/concurrency.ts";
import type { ECRPullSecret } from "../../src/api/types.ts";
import {
  credentialsSecretName,
  operatorNamespace,
  readCr,
  type OperatorEnv,
} from "../harness/operator-env.ts";
import { startOperatorProcess, type OperatorProcess } from "../harness/operator-process.ts";
export { metricValue } from "../harness/prometheus-text.ts";
import { eventually } from "../harness/wait.ts";

/** Creates namespaces `${prefix}-0000`... and waits until each has its default ServiceAccount. */
export async function createNamespaces(
  env: OperatorEnv,
  prefix: string,
  count: number,
  labels?: Record<string, string>,
): Promise<string[]> {
  const names = Array.from({ length: count }, (_, i) => `${prefix}-${String(i).padStart(4, "0")}`);
  const created = await mapLimit(names, 16, (name) =>
    env.core.createNamespace({ body: { metadata: { name, labels } } }),
  );
  const failed = created.filter((r) => r.status === "rejected");
  if (failed.length > 0) throw new Error(`${failed.length} namespaces could not be created`);
  await eventually(
    async () => {
      const sas = await env.core.listServiceAccountForAllNamespaces({
        fieldSelector: "metadata.name=default",
      });
      const have = new Set(sas.items.map((sa) => sa.metadata?.namespace));
      const missing = names.filter((n) => !have.has(n)).length;
      if (missing > 0)
        throw new Error(`${missing} of ${count} namespaces have no default ServiceAccount yet`);
    },
    { timeoutMs: 60_000 + count * 100, intervalMs: 500, message: `default ServiceAccounts in ${prefix}-*` },
  );
  return names;
}

export function readyOf(cr: ECRPullSecret): { status: string; reason: string; message: string } {
  const ready = cr.status?.conditions?.find((c) => c.type === "Ready");
  return { status: ready?.status ?? "", reason: ready?.reason ?? "", message: ready?.message ?? "" };
}

/** Waits until the CR reports Ready with `reason` for its current generation, and `desired` namespaces synced. */
export async function waitForCr(
  env: OperatorEnv,
  name: string,
  options: { reason?: string; synced?: number; timeoutMs?: number } = {},
): Promise<ECRPullSecret> {
  const reason = options.reason ?? "Synced";
  return eventually(
    async () => {
      const cr = await readCr(env, name);
      const ready = readyOf(cr);
      if (ready.reason !== reason || cr.status?.observedGeneration !== cr.metadata.generation) {
        throw new Error(`${name} Ready ${ready.status}/${ready.reason}: ${ready.message}`);
      }
      if (options.synced !== undefined && cr.status?.namespaces?.synced !== options.synced) {
        throw new Error(`${name} synced ${cr.status?.namespaces?.synced ?? 0}/${options.synced}`);
      }
      return cr;
    },
    { timeoutMs: options.timeoutMs ?? 60_000, intervalMs: 250, message: `${name} Ready/${reason}` },
  );
}

export interface RunningOperator {
  proc: OperatorProcess;
  user: string;
  identity: string;
  metrics: string;
  health: string;
}

/** A JSON log line's fields, as far as the tests read them. */
export interface LogRecord {
  level?: number;
  time?: string;
  msg?: string;
  identity?: string;
  metrics?: string;
  health?: string;
  informer?: string;
  reason?: string;
  /** The CR a reconcile line is about, and how often it has been retried. */
  cr?: string;
  retries?: number;
}

/** The JSON lines of an operator's output; anything else (a Node warning on stderr) is skipped. */
export function logRecords(lines: readonly string[]): LogRecord[] {
  const records: LogRecord[] = [];
  for (const line of lines) {
    if (!line.startsWith("{")) continue;
    try {
      records.push(JSON.parse(line) as LogRecord);
    } catch {
      // A line cut short while the process was writing it.
    }
  }
  return records;
}

function startingLine(proc: OperatorProcess): LogRecord {
  const line = logRecords(proc.logs()).find((l) => l.msg === "starting");
  if (line === undefined) throw new Error("the operator has not logged its start yet");
  return line;
}

/** Arguments every operator process of the suite gets: moto through the proxy, debug logs. */
export function operatorArgs(env: OperatorEnv): string[] {
  return [
    "--operator-namespace",
    operatorNamespace,
    "--credentials-secret",
    `${operatorNamespace}/${credentialsSecretName}`,
    "--region",
    "eu-west-1",
    "--aws-endpoint-url",
    env.aws.endpoint,
    "--metrics-addr",
    "127.0.0.1:0",
    "--health-addr",
    "127.0.0.1:0",
    "--log-level",
    "debug",
  ];
}

/**
 * Starts `node src/main.ts run` as `user` (a client certificate in `groups`), reading the kubeconfig
 * at `kubeconfigPath` when given (e.g. one that goes through a TCP proxy).
 */
export async function startOperatorAs(
  env: OperatorEnv,
  user: string,
  args: readonly string[],
  options: { groups?: readonly string[]; kubeconfigPath?: string; operatorArgs?: readonly string[] } = {},
): Promise<RunningOperator> {
  const kubeconfigPath =
    options.kubeconfigPath ??
    (await env.plane.userKubeConfig(user, options.groups ?? ["system:masters"])).kubeconfigPath;
  const proc = await startOperatorProcess({
    kubeconfigPath,
    args: [...(options.operatorArgs ?? operatorArgs(env)), ...args],
  });
  const line = await eventually(() => startingLine(proc), { timeoutMs: 30_000, message: `${user} started` });
  return {
    proc,
    user,
    identity: line.identity ?? "",
    metrics: line.metrics ?? "",
    health: line.health ?? "",
  };
}

/** Log lines at level error (50) or fatal (60), and lines that are not JSON (a crash's stack trace). */
export function errorLines(logs: readonly string[]): string[] {
  return logs.filter((line) => {
    const [record] = logRecords([line]);
    return record === undefined || (record.level ?? 0) >= 50;
  });
}

export async function scrape(metricsAddress: string): Promise<string> {
  const res = await fetch(`http://${metricsAddress}/metrics`);
  return res.text();
}
