// The list load of an idle operator: N namespaces holding S ServiceAccounts, one ECRPullSecret for
// all of them, and two replicas electing a leader, each reaching the API server through its own TCP
// proxy. After start-up, a quiet window in whose middle every connection of both replicas is cut
// once, so the watch restarts that follow are part of the figures. Counts come from the audit log
// (the operator user's LIST and WATCH requests, and which resourceVersion each LIST asked for) and
// from the API server's /metrics (what lists cost the API server and etcd, all clients).
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { setTimeout as delay } from "node:timers/promises";
import { startTcpProxy, type TcpProxy } from "../test/harness/tcp-proxy.ts";
import type { AuditEntry } from "./audit-log.ts";
import { BenchEnv, operatorUser, type RunningOperator } from "./bench-env.ts";
import { benchNamespaces, createServiceAccounts } from "./load.ts";
import { parseSamples, sumOf, type Sample } from "./prometheus.ts";
import { readResultFile, runInfo, type RunInfo, type TargetCheck } from "./run-info.ts";
import { createCr, prepareNamespaces, waitForQuiet, type Log } from "./scenarios.ts";

export interface ListLoadOptions {
  namespaces: number;
  /** ServiceAccounts in all, spread evenly: `default` plus as many more per namespace as it takes. */
  serviceAccounts: number;
  /** Length of the quiet window the per-hour figures are taken from. */
  windowSeconds: number;
  createConcurrency: number;
  writeConcurrency: number;
  operatorEntry: "build" | "source";
  operatorNodeOptions?: string;
  kubernetesVersion: (reported: string) => string;
  command: string;
  note?: string;
}

/** The operator's LIST requests by the resourceVersion they asked for, which decides who answers. */
export interface ListsByResourceVersion {
  /** No resourceVersion: a consistent read, answered from etcd (or by the cache after asking etcd). */
  consistent: number;
  /** resourceVersion=0: whatever the API server's watch cache holds. */
  any: number;
  /** A resourceVersion the client saw last: the watch cache, at least that fresh. */
  notOlderThan: number;
  /** With a continue token: the next page of a paged list. */
  continued: number;
}

export interface ListLoadWindow {
  seconds: number;
  /** The operator user's (both replicas') LIST requests, by resource. */
  lists: Record<string, number>;
  lists_by_resource_version: ListsByResourceVersion;
  watches: Record<string, number>;
  /** What the API server's lists cost, all clients, from its /metrics. */
  server: ServerListCost;
}

export interface ServerListCost {
  /** etcd range reads of whole collections (`etcd_request_duration_seconds_count`, operation list*). */
  etcd_lists: number;
  /**
   * etcd reads of the current revision (operation getCurrentResourceVersion): what a consistent list
   * costs etcd when the watch cache serves it.
   */
  etcd_revision_reads: number;
  /** Objects the API server went through to answer lists (`apiserver_storage_list_fetched_objects_total`). */
  objects_fetched: number;
}

export interface ListLoadResult extends RunInfo {
  namespaces: number;
  service_accounts: number;
  replicas: number;
  /** From spawning both replicas until they were ready, had converged and were quiet. */
  startup: ListLoadWindow;
  /** The quiet window, with the connection cut in its middle. */
  steady: ListLoadWindow & {
    lists_per_hour: number;
    watches_per_hour: number;
    etcd_lists_per_hour: number;
    etcd_revision_reads_per_hour: number;
    objects_fetched_per_hour: number;
    /** LIST requests after the cut; 0 when every watch resumed from its resourceVersion. */
    lists_after_cut: number;
    /** WATCH requests opened within 60 s after the cut and ended within the window. */
    watches_opened_within_60s_of_cut: number;
  };
  targets: TargetCheck[];
}

const replicas = 2;
const leaseName = "bench-list-load";
const secretName = "ecr-pull";

function countBy(entries: readonly AuditEntry[], verb: string): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const entry of entries) {
    if (entry.user !== operatorUser || entry.verb !== verb) continue;
    counts[entry.resource] = (counts[entry.resource] ?? 0) + 1;
  }
  return counts;
}

function listsByResourceVersion(entries: readonly AuditEntry[]): ListsByResourceVersion {
  const counts: ListsByResourceVersion = { consistent: 0, any: 0, notOlderThan: 0, continued: 0 };
  for (const entry of entries) {
    if (entry.user !== operatorUser || entry.verb !== "list") continue;
    const query = new URL(entry.requestURI, "https://audit.invalid").searchParams;
    const resourceVersion = query.get("resourceVersion") ?? "";
    if (query.has("continue")) counts.continued += 1;
    else if (resourceVersion === "") counts.consistent += 1;
    else if (resourceVersion === "0") counts.any += 1;
    else counts.notOlderThan += 1;
  }
  return counts;
}

function sumValues(counts: Readonly<Record<string, number>>): number {
  return Object.values(counts).reduce((sum, n) => sum + n, 0);
}

function sumWhere(
  samples: readonly Sample[],
  name: string,
  where: (labels: Sample["labels"]) => boolean,
): number {
  return samples.filter((s) => s.name === name && where(s.labels)).reduce((sum, s) => sum + s.value, 0);
}

async function serverListCost(env: BenchEnv): Promise<ServerListCost> {
  const samples = parseSamples(await env.api.text("/metrics"));
  const etcd = "etcd_request_duration_seconds_count";
  return {
    etcd_lists: sumWhere(samples, etcd, (l) => l.operation?.startsWith("list") === true),
    etcd_revision_reads: sumWhere(samples, etcd, (l) => l.operation === "getCurrentResourceVersion"),
    objects_fetched: sumWhere(samples, "apiserver_storage_list_fetched_objects_total", () => true),
  };
}

async function measureWindow(
  env: BenchEnv,
  from: number,
  before: ServerListCost,
  startedAt: number,
): Promise<ListLoadWindow> {
  const entries = await env.audit.entries(from);
  const after = await serverListCost(env);
  return {
    seconds: Math.round((performance.now() - startedAt) / 100) / 10,
    lists: countBy(entries, "list"),
    lists_by_resource_version: listsByResourceVersion(entries),
    watches: countBy(entries, "watch"),
    server: {
      etcd_lists: after.etcd_lists - before.etcd_lists,
      etcd_revision_reads: after.etcd_revision_reads - before.etcd_revision_reads,
      objects_fetched: after.objects_fetched - before.objects_fetched,
    },
  };
}

function perHour(count: number, seconds: number): number {
  return Math.round((count * 3600) / seconds);
}

/** ServiceAccounts per namespace besides `default`, named so the operator leaves them alone. */
function extraServiceAccountNames(namespaces: number, serviceAccounts: number): string[] {
  const perNamespace = Math.max(1, Math.ceil(serviceAccounts / namespaces));
  return Array.from({ length: perNamespace - 1 }, (_, i) => `bench-sa-${i + 1}`);
}

export async function runListLoad(options: ListLoadOptions, log: Log): Promise<ListLoadResult> {
  log(`--- list load: ${options.namespaces} namespaces, starting a fresh control plane`);
  const env = await BenchEnv.start({
    writeConcurrency: options.writeConcurrency,
    createConcurrency: options.createConcurrency,
    operatorNodeOptions: options.operatorNodeOptions,
    operatorEntry: options.operatorEntry,
  });
  const proxies: TcpProxy[] = [];
  const running: RunningOperator[] = [];
  const dir = await mkdtemp(join(tmpdir(), "ecr-bench-list-load-"));
  try {
    const kubernetes = options.kubernetesVersion(
      (await env.api.json<{ gitVersion?: string }>("GET", "/version")).gitVersion ?? "unknown",
    );
    const names = benchNamespaces(options.namespaces);
    await prepareNamespaces(env, names, log);
    const extra = extraServiceAccountNames(options.namespaces, options.serviceAccounts);
    for (const name of extra) {
      await createServiceAccounts(env.api, names, name, options.createConcurrency);
    }
    const serviceAccounts = names.length * (extra.length + 1);
    log(`created ${serviceAccounts} ServiceAccounts in all`);
    await createCr(env, { cr: "list-load", secretName });

    const startMark = await env.audit.mark();
    const startCost = await serverListCost(env);
    const startAt = performance.now();
    for (let i = 0; i < replicas; i++) {
      const proxy = await startTcpProxy(Number(new URL(env.plane.server).port));
      proxies.push(proxy);
      const path = join(dir, `replica-${i}.kubeconfig`);
      await writeFile(path, proxy.kubeConfigVia(env.operatorKubeConfig).exportConfig(), { mode: 0o600 });
      running.push(await env.startOperator({ leaseName, kubeconfigPath: path }));
    }
    for (const operator of running) await operator.waitReady(180_000);
    await env.watch.waitFor(
      names,
      (ns) => env.watch.hasPullSecret(ns, secretName, "default"),
      Math.max(120_000, names.length * 50),
      "list-load converge",
    );
    // A standby's queue fills and never drains, so only the leader can be waited on to settle.
    for (const operator of running) {
      if (sumOf(await operator.metrics(), "ecr_creds_refresher_leader") !== 1) continue;
      await waitForQuiet(env, operator, { quietMs: 3000, timeoutMs: 180_000, minReconciles: 1 });
    }
    const startup = await measureWindow(env, startMark, startCost, startAt);
    log(
      `list load start-up: lists ${JSON.stringify(startup.lists)}, server ${JSON.stringify(startup.server)}`,
    );

    // Only the operator (and the controller manager) from here on: the driver's watches stop.
    await env.watch.stop();
    const steadyMark = await env.audit.mark();
    const steadyCost = await serverListCost(env);
    const steadyAt = performance.now();
    const halfMs = (options.windowSeconds * 1000) / 2;
    // The window is the measurement itself: nothing to wait for but time.
    await delay(halfMs);
    const cutMark = await env.audit.mark();
    const cutAt = Date.now();
    for (const proxy of proxies) proxy.cutAll();
    log("cut every connection of both replicas");
    await delay(halfMs);
    const window = await measureWindow(env, steadyMark, steadyCost, steadyAt);
    const afterCut = await env.audit.entries(cutMark);
    for (const operator of running) {
      if (operator.process.process.child.exitCode !== null) throw new Error("a replica exited");
    }
    const lists = sumValues(window.lists);
    const watches = sumValues(window.watches);
    const steady: ListLoadResult["steady"] = {
      ...window,
      lists_per_hour: perHour(lists, window.seconds),
      watches_per_hour: perHour(watches, window.seconds),
      etcd_lists_per_hour: perHour(window.server.etcd_lists, window.seconds),
      etcd_revision_reads_per_hour: perHour(window.server.etcd_revision_reads, window.seconds),
      objects_fetched_per_hour: perHour(window.server.objects_fetched, window.seconds),
      lists_after_cut: sumValues(countBy(afterCut, "list")),
      watches_opened_within_60s_of_cut: afterCut.filter(
        (e) =>
          e.user === operatorUser &&
          e.verb === "watch" &&
          e.receivedAt >= cutAt &&
          e.receivedAt - cutAt <= 60_000,
      ).length,
    };
    log(
      `list load steady ${window.seconds} s: ${lists} lists, ${watches} watches (${steady.lists_per_hour} / ${steady.watches_per_hour} per hour); after the cut ${steady.lists_after_cut} lists`,
    );
    const result: Omit<ListLoadResult, "targets"> = {
      ...runInfo(kubernetes, options),
      namespaces: names.length,
      service_accounts: serviceAccounts,
      replicas,
      startup,
      steady,
    };
    return { ...result, targets: listLoadTargets(result) };
  } finally {
    for (const operator of running) await operator.stop();
    for (const proxy of proxies) await proxy.stop();
    await env.stop();
    await rm(dir, { recursive: true, force: true });
  }
}

export function listLoadTargets(result: Omit<ListLoadResult, "targets">): TargetCheck[] {
  const { steady } = result;
  return [
    {
      target: `no LIST in steady state (${result.replicas} replicas, ${steady.seconds} s)`,
      value: String(sumValues(steady.lists)),
      met: sumValues(steady.lists) === 0,
    },
    {
      target: "watch restarts after a connection cut resume without a relist",
      value: `${steady.lists_after_cut} lists after the cut`,
      met: steady.lists_after_cut === 0,
    },
  ];
}

function table(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const line = (cells: readonly string[]): string => `| ${cells.join(" | ")} |`;
  return [line(header), line(header.map(() => "---")), ...rows.map(line)].join("\n");
}

function byResource(counts: Readonly<Record<string, number>>): string {
  const entries = Object.entries(counts).sort(([a], [b]) => a.localeCompare(b));
  return entries.length === 0 ? "none" : entries.map(([resource, n]) => `${resource} ${n}`).join(", ");
}

function byResourceVersion(lists: ListsByResourceVersion): string {
  return `no resourceVersion (consistent) ${lists.consistent}, resourceVersion=0 ${lists.any}, last seen ${lists.notOlderThan}, continued pages ${lists.continued}`;
}

export function renderListLoad(result: ListLoadResult): string {
  const { startup, steady } = result;
  const windows = table(
    [
      "window",
      "seconds",
      "LIST (operator)",
      "WATCH (operator)",
      "etcd lists / revision reads (all clients)",
      "objects fetched by lists (all clients)",
    ],
    [
      [
        "start-up (spawn → ready, converged, quiet)",
        String(startup.seconds),
        `${sumValues(startup.lists)}: ${byResource(startup.lists)}`,
        `${sumValues(startup.watches)}: ${byResource(startup.watches)}`,
        `${startup.server.etcd_lists} / ${startup.server.etcd_revision_reads}`,
        String(startup.server.objects_fetched),
      ],
      [
        "steady (idle, one connection cut midway)",
        String(steady.seconds),
        `${sumValues(steady.lists)}: ${byResource(steady.lists)}`,
        `${sumValues(steady.watches)}: ${byResource(steady.watches)}`,
        `${steady.server.etcd_lists} / ${steady.server.etcd_revision_reads}`,
        String(steady.server.objects_fetched),
      ],
      [
        "steady, per hour",
        "3600",
        String(steady.lists_per_hour),
        String(steady.watches_per_hour),
        `${steady.etcd_lists_per_hour} / ${steady.etcd_revision_reads_per_hour}`,
        String(steady.objects_fetched_per_hour),
      ],
    ],
  );
  const targets = table(
    ["target", "value", "met"],
    result.targets.map((t) => [t.target, t.value, t.met ? "yes" : "**no**"]),
  );
  return `# List load of an idle operator

Generated by \`bench/run.ts\` on ${result.date}: Kubernetes ${result.kubernetes}, Node ${result.node}, ${result.cpus}
CPUs, the operator as ${result.operator_entry === "source" ? "`node src/main.ts run`" : "the compiled `dist/main.js run`"}.
${result.namespaces} namespaces with ${result.service_accounts} ServiceAccounts, one ECRPullSecret for all of them, and
${result.replicas} replicas electing a leader on a Lease, each through its own TCP proxy to the API server. Raw
figures: [list-load.json](list-load.json).${result.note === undefined ? "" : `\n\n> ${result.note}`}

Command:

\`\`\`
${result.command}
\`\`\`

${windows}

LISTs by the resourceVersion they asked for — start-up: ${byResourceVersion(startup.lists_by_resource_version)};
steady: ${byResourceVersion(steady.lists_by_resource_version)}. A LIST without a resourceVersion is a consistent read
(etcd, or the watch cache after asking etcd for its revision); one at resourceVersion 0 or at a version the client saw
is answered from the API server's watch cache. On this API server even a consistent list is served by the watch
cache, after one etcd read of the current revision; what a list costs shows as the objects the API server goes
through to answer it.

Midway through the steady window every connection of both replicas is cut (RST): ${steady.lists_after_cut} LISTs
followed, and ${steady.watches_opened_within_60s_of_cut} watches were opened within 60 s of the cut.

Counts: LIST and WATCH are the operator user's requests in the API server's audit log (a watch is counted when it
ends); etcd lists and revision reads are deltas of \`etcd_request_duration_seconds_count\` (operations list* and
getCurrentResourceVersion), objects fetched the delta of \`apiserver_storage_list_fetched_objects_total\`, on the API
server's /metrics, by every client (the controller manager included; the benchmark's own watches are stopped for
the steady window).

## Targets

${targets}
`;
}

/** Writes list-load.json and list-load.md into `dir`. */
export async function writeListLoad(dir: string, result: ListLoadResult): Promise<string[]> {
  const files = [
    [join(dir, "list-load.json"), `${JSON.stringify(result, null, 2)}\n`],
    [join(dir, "list-load.md"), renderListLoad(result)],
  ] as const;
  for (const [path, text] of files) await writeFile(path, text);
  return files.map(([path]) => path);
}

/** list-load.json in `dir`, if the scenario ran there. */
export function readListLoadResult(dir: string): Promise<ListLoadResult | undefined> {
  return readResultFile<ListLoadResult>(dir, "list-load.json");
}

/** The benchmark README's section on the list load, pointing at list-load.md. */
export function listLoadSection(result: ListLoadResult | undefined): string {
  const intro =
    "The LIST and WATCH requests of two idle replicas, and what their lists cost the API server and etcd";
  if (result === undefined) return `## List load\n\n${intro}: run \`npm run bench -- --only list-load\`.\n`;
  const { startup, steady } = result;
  return `## List load

${intro}, at ${result.namespaces} namespaces and ${result.service_accounts} ServiceAccounts (${result.date};
[list-load.md](list-load.md), \`npm run bench -- --only list-load\`): ${sumValues(startup.lists)} LISTs at start-up; in
${steady.seconds} s of steady state with one connection cut, ${sumValues(steady.lists)} LISTs and ${sumValues(steady.watches)} WATCHes
(${steady.lists_per_hour} and ${steady.watches_per_hour} per hour), ${steady.lists_after_cut} LISTs after the cut.
`;
}
