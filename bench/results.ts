// The benchmark's results: their JSON shape (plus a few fields that explain the figures), the
// targets checked against it, and the files written to bench/results/.
import { existsSync } from "node:fs";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { convergeChartSvg } from "./chart.ts";
import type { CronJobRun } from "./cronjob.ts";
import { listLoadSection, readListLoadResult, type ListLoadResult } from "./list-load.ts";
import { readResultFile, type RunInfo, type TargetCheck } from "./run-info.ts";
import { raceSection, type RaceResults } from "./race-results.ts";

export interface ConvergeResult {
  namespaces: number;
  operator_s: number;
  baseline_s: number;
  ratio: number;
  /** Each round's time; operator_s and baseline_s are their medians. */
  operator_runs_s: number[];
  baseline_runs_s: number[];
  /** CPU seconds of the operator process and of the baseline process while converging. */
  operator_cpu_s: number;
  baseline_cpu_s: number;
  /** CPU seconds of kube-apiserver and etcd during each run. */
  control_plane_cpu_s: { operator: number; baseline: number };
  /** The operator's writes while converging, by resource (audit log). */
  operator_writes: Record<string, number>;
  /** All of the operator's requests while converging (last round), by verb and resource (audit log). */
  operator_requests?: Record<string, number>;
  /** VmHWM of the rounds' operator processes once converged, the largest, MiB. */
  operator_peak_rss_mb?: number;
}

/** Memory at one namespace count: a cold converge's process, then a freshly started operator. */
export interface MemoryPoint {
  namespaces: number;
  /** Median VmRSS of a fresh operator over the settle window after it settled, MiB. */
  steady_rss_mb: number;
  /** VmHWM of that fresh operator, MiB. */
  peak_rss_mb: number;
  /** VmHWM of the process that did the cold converge, once converged, MiB. */
  converge_process_peak_rss_mb: number;
  converge_s: number;
  converge_cpu_s: number;
  /** The fresh operator's start to /readyz, s. */
  ready_s: number;
  /** 1-minute load average when the steady figure was taken. */
  load1: number;
}

/** Cold converge, refresh and memory at a count above the routine scenarios' (20,000). */
export interface LargeScaleResult {
  namespaces: number;
  refresh: RefreshResult;
  /** As MemoryPoint; the converge process's peak here also covers the refresh. */
  memory: MemoryPoint;
}

/** The CronJob-style script at one count, beside the operator's cold converge there. */
export interface ComparatorResult extends CronJobRun {
  operator_s: number;
  operator_api_requests: number;
  operator_cpu_s: number;
}

export interface NewNamespaceResult {
  namespaces: number;
  samples: number;
  p50_ms: number;
  p99_ms: number;
  max_ms: number;
  secret_p50_ms: number;
  secret_p99_ms: number;
  /** Absent from results before these were measured. */
  reconciles_per_namespace?: number;
  cpu_ms_per_namespace?: number;
}

export interface RefreshResult {
  namespaces: number;
  seconds: number;
  secret_writes: number;
  serviceaccount_writes: number;
  token_calls: number;
  secret_reads: number;
  serviceaccount_reads: number;
  operator_requests: Record<string, number>;
}

export interface IdleResult {
  seconds: number;
  write_requests: number;
  cpu_seconds: number;
  cpu_seconds_reported: number;
  operator_requests: Record<string, number>;
}

export interface MemoryResult {
  namespaces: number;
  rss_mb: number;
  rss_mb_with_unmanaged_secrets: number;
  peak_rss_mb: number;
  peak_rss_mb_with_unmanaged_secrets: number;
  unmanaged_secrets: number;
  growth_percent: number;
  /** Peak RSS of the process that did the cold converge, idle and refresh runs. */
  converge_process_peak_rss_mb: number;
  load1?: number;
}

export interface StartupResult {
  namespaces: number;
  /** The median of the fresh operators' start-ups. */
  ready_s: number;
  /** Each fresh operator's; absent from results before they were kept. */
  ready_runs_s?: number[];
  settled_s: number;
  write_requests: number;
  writes_by_resource: Record<string, number>;
}

export interface BenchResults extends RunInfo {
  converge: ConvergeResult[];
  new_namespace: NewNamespaceResult;
  refresh: RefreshResult;
  idle: IdleResult;
  memory: MemoryResult;
  /** Memory at every count: the converge counts and the memory-only ones. */
  memory_by_namespaces?: MemoryPoint[];
  large?: LargeScaleResult;
  comparator?: ComparatorResult[];
  startup: StartupResult;
  targets: TargetCheck[];
}

/** Steady RSS ceilings by namespace count, MiB. */
export const steadyRssTargets: Readonly<Record<number, number>> = { 10: 70, 500: 80, 5000: 100, 20000: 150 };
/** Peak RSS ceilings of the process that did the cold converge, by namespace count, MiB. */
export const convergePeakTargets: Readonly<Record<number, number>> = { 5000: 130 };
/** Converge ratio ceilings to the baseline, by namespace count. */
export const convergeRatioTargets: Readonly<Record<number, number>> = { 1000: 1.1, 5000: 1.1, 20000: 1.25 };
export const newNamespaceTargets = { p50Ms: 60, p99Ms: 250 };
export const startupReadyTargetS = 1.0;

function refreshChecks(refresh: RefreshResult): TargetCheck[] {
  return [
    {
      target: `refresh Secret writes = N (${refresh.namespaces})`,
      value: String(refresh.secret_writes),
      met: refresh.secret_writes === refresh.namespaces,
    },
    {
      target: `refresh ServiceAccount writes = 0 at N=${refresh.namespaces}`,
      value: String(refresh.serviceaccount_writes),
      met: refresh.serviceaccount_writes === 0,
    },
    {
      target: `refresh token calls = 1 at N=${refresh.namespaces}`,
      value: String(refresh.token_calls),
      met: refresh.token_calls === 1,
    },
  ];
}

export function checkTargets(results: Omit<BenchResults, "targets">): TargetCheck[] {
  const checks: TargetCheck[] = [];
  for (const run of results.converge) {
    const ceiling = convergeRatioTargets[run.namespaces];
    if (ceiling === undefined) continue;
    checks.push({
      target: `converge ratio <= ${ceiling.toFixed(2)} at N=${run.namespaces}`,
      value: run.ratio.toFixed(2),
      met: run.ratio <= ceiling,
    });
  }
  for (const point of results.memory_by_namespaces ?? []) {
    const ceiling = steadyRssTargets[point.namespaces];
    if (ceiling === undefined) continue;
    checks.push({
      target: `steady RSS <= ${ceiling} MiB at N=${point.namespaces}`,
      value: `${point.steady_rss_mb} MiB`,
      met: point.steady_rss_mb <= ceiling,
    });
  }
  const { new_namespace: fresh, refresh, idle, memory, startup } = results;
  const peakCeiling = convergePeakTargets[memory.namespaces];
  if (peakCeiling !== undefined) {
    checks.push({
      target: `peak RSS of the converging process <= ${peakCeiling} MiB at N=${memory.namespaces}`,
      value: `${memory.converge_process_peak_rss_mb} MiB`,
      met: memory.converge_process_peak_rss_mb <= peakCeiling,
    });
  }
  checks.push(
    {
      target: `new-namespace p99 <= ${newNamespaceTargets.p99Ms} ms at N=${fresh.namespaces}`,
      value: `${fresh.p99_ms} ms`,
      met: fresh.p99_ms <= newNamespaceTargets.p99Ms,
    },
    {
      target: `new-namespace p50 <= ${newNamespaceTargets.p50Ms} ms at N=${fresh.namespaces}`,
      value: `${fresh.p50_ms} ms`,
      met: fresh.p50_ms <= newNamespaceTargets.p50Ms,
    },
    {
      target: `start-up to /readyz <= ${startupReadyTargetS.toFixed(1)} s at N=${startup.namespaces}`,
      value: `${startup.ready_s} s`,
      met: startup.ready_s <= startupReadyTargetS,
    },
    {
      target: "start-up writes = 0",
      value: String(startup.write_requests),
      met: startup.write_requests === 0,
    },
    ...refreshChecks(refresh),
    ...(results.large === undefined ? [] : refreshChecks(results.large.refresh)),
    { target: "idle writes = 0", value: String(idle.write_requests), met: idle.write_requests === 0 },
    {
      target: `memory < 10 % more with ${memory.unmanaged_secrets} unmanaged Secrets`,
      value: `${memory.growth_percent} %`,
      met: memory.growth_percent < 10,
    },
  );
  return checks;
}

function readsByOperator(requests: Readonly<Record<string, number>>): number {
  return Object.entries(requests)
    .filter(([key]) => /^(get|list) (secrets|serviceaccounts)$/.test(key))
    .reduce((sum, [, n]) => sum + n, 0);
}

function table(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const line = (cells: readonly string[]): string => `| ${cells.join(" | ")} |`;
  return [line(header), line(header.map(() => "---")), ...rows.map(line)].join("\n");
}

function memorySection(results: BenchResults): string {
  const points = results.memory_by_namespaces ?? [];
  if (points.length === 0) return "";
  const rows = points.map((p) => {
    const ceiling = steadyRssTargets[p.namespaces];
    return [
      String(p.namespaces),
      `${p.steady_rss_mb.toFixed(1)}${ceiling === undefined ? "" : ` (≤ ${ceiling})`}`,
      p.peak_rss_mb.toFixed(1),
      p.converge_process_peak_rss_mb.toFixed(1),
      p.converge_s.toFixed(2),
      p.converge_cpu_s.toFixed(1),
      p.ready_s.toFixed(2),
      p.load1.toFixed(2),
    ];
  });
  return `## Memory by namespace count

At each count, on a fresh control plane: one ECRPullSecret for every namespace, converged by one
operator process (its \`VmHWM\` once converged is the cold converge's peak), then a freshly started operator whose
\`VmRSS\` is sampled over the settle window once it has reconciled with no writes (steady) and whose \`VmHWM\` is its
start-up peak. Counts that have no cold-converge row above are measured for memory alone
(\`npm run bench -- --only memory --memory-namespaces 10,500\`). The load average is the machine's at the
steady figure: memory figures hold under load, timings less so.

${table(
  [
    "N namespaces",
    "steady RSS (MiB)",
    "start-up peak (MiB)",
    "cold converge peak (MiB)",
    "cold converge (s)",
    "its CPU (s)",
    "start-up to /readyz (s)",
    "load (1 min)",
  ],
  rows,
)}
`;
}

function largeSection(results: BenchResults): string {
  const large = results.large;
  if (large === undefined) return "";
  const converge = results.converge.find((c) => c.namespaces === large.namespaces);
  const { refresh, memory } = large;
  return `## At ${large.namespaces} namespaces

Behind \`--scale-20k\` (about 3 minutes more per round): cold converge${
    converge === undefined
      ? ""
      : ` ${converge.operator_s.toFixed(2)} s against the baseline's ${converge.baseline_s.toFixed(2)} s (ratio ${converge.ratio.toFixed(2)})`
  }; refresh ${refresh.seconds} s (Secret writes ${refresh.secret_writes}, ServiceAccount writes ${refresh.serviceaccount_writes}, token calls ${refresh.token_calls}); steady RSS ${memory.steady_rss_mb} MiB, peak of the process that did the cold converge and the refresh ${memory.converge_process_peak_rss_mb} MiB.
`;
}

function comparatorSection(results: BenchResults): string {
  const runs = results.comparator ?? [];
  if (runs.length === 0) return "";
  const rows = runs.map((r) => [
    String(r.namespaces),
    r.seconds.toFixed(2),
    String(r.api_requests),
    String(r.token_calls),
    r.cpu_seconds.toFixed(1),
    r.operator_s.toFixed(2),
    String(r.operator_api_requests),
    r.operator_cpu_s.toFixed(1),
  ]);
  return `## Beside a CronJob-style script

What many clusters run instead: \`bench/cronjob-refresh.sh\`, \`aws ecr get-login-password\` (the AWS CLI from PyPI,
against the same AWS stand-in), then per namespace \`kubectl create secret docker-registry --dry-run=client -o yaml |
kubectl apply -f -\` and \`kubectl patch serviceaccount\`, one namespace after another, run once as its own user with
no operator running. Its time runs from its start until the watches see every namespace done; its API requests are
its user's in the audit log (kubectl's discovery included); the operator's are its requests during its cold converge
at the same count (last round). A reference, not a target.

${table(
  [
    "N namespaces",
    "script (s)",
    "script API requests",
    "script token calls",
    "script CPU, with aws and kubectl (s)",
    "operator (s)",
    "operator API requests",
    "operator CPU (s)",
  ],
  rows,
)}
`;
}

export function renderReadme(
  results: BenchResults,
  race?: RaceResults,
  listLoad?: ListLoadResult,
  attribution?: string,
): string {
  const converge = table(
    [
      "N namespaces",
      "operator (s)",
      "baseline (s)",
      "ratio",
      "operator CPU (s)",
      "baseline CPU (s)",
      "API server + etcd CPU (s), operator / baseline",
      "rounds (s), operator / baseline",
    ],
    results.converge.map((c) => [
      String(c.namespaces),
      c.operator_s.toFixed(2),
      c.baseline_s.toFixed(2),
      c.ratio.toFixed(2),
      c.operator_cpu_s.toFixed(1),
      c.baseline_cpu_s.toFixed(1),
      `${c.control_plane_cpu_s.operator.toFixed(1)} / ${c.control_plane_cpu_s.baseline.toFixed(1)}`,
      `${c.operator_runs_s.map((v) => v.toFixed(2)).join(", ")} / ${c.baseline_runs_s.map((v) => v.toFixed(2)).join(", ")}`,
    ]),
  );
  const { new_namespace: fresh, refresh, idle, memory, startup } = results;
  const scenarios = table(
    ["scenario", "N", "result"],
    [
      [
        "new namespace (create → Secret and ServiceAccount)",
        String(fresh.namespaces),
        `p50 ${fresh.p50_ms} ms, p99 ${fresh.p99_ms} ms, max ${fresh.max_ms} ms over ${fresh.samples} (Secret alone: p50 ${fresh.secret_p50_ms} ms, p99 ${fresh.secret_p99_ms} ms)${fresh.reconciles_per_namespace === undefined ? "" : `; per namespace ${fresh.reconciles_per_namespace} reconciles, ${fresh.cpu_ms_per_namespace} operator CPU ms`}`,
      ],
      [
        "refresh (credentials rotated → every Secret rewritten)",
        String(refresh.namespaces),
        `${refresh.seconds} s; Secret writes ${refresh.secret_writes}, ServiceAccount writes ${refresh.serviceaccount_writes}, token calls ${refresh.token_calls}; reads by all clients: Secrets ${refresh.secret_reads}, ServiceAccounts ${refresh.serviceaccount_reads} (by the operator: ${readsByOperator(refresh.operator_requests)})`,
      ],
      [
        "idle",
        String(memory.namespaces),
        `${idle.seconds} s: ${idle.write_requests} writes, ${idle.cpu_seconds} CPU s`,
      ],
      [
        "memory (RSS, steady / peak)",
        String(memory.namespaces),
        `${memory.rss_mb} / ${memory.peak_rss_mb} MiB; with ${memory.unmanaged_secrets} unmanaged Secrets ${memory.rss_mb_with_unmanaged_secrets} / ${memory.peak_rss_mb_with_unmanaged_secrets} MiB (${memory.growth_percent >= 0 ? "+" : ""}${memory.growth_percent} %); peak of the process that did the cold converge ${memory.converge_process_peak_rss_mb} MiB`,
      ],
      [
        "start-up (process start → /readyz)",
        String(startup.namespaces),
        `${startup.ready_s} s${startup.ready_runs_s === undefined ? "" : ` (median of ${startup.ready_runs_s.map((v) => v.toFixed(2)).join(", ")})`}, settled ${startup.settled_s} s; ${startup.write_requests} writes ${JSON.stringify(startup.writes_by_resource)}`,
      ],
    ],
  );
  const targets = table(
    ["target", "value", "met"],
    results.targets.map((t) => [t.target, t.value, t.met ? "yes" : "**no**"]),
  );
  return `# Benchmark results

Generated by \`bench/run.ts\` on ${results.date}: Kubernetes ${results.kubernetes} (kube-apiserver + etcd +
kube-controller-manager from \`test/harness\`), Node ${results.node}, ${results.cpus} CPUs. The operator runs as its
own process, with its own client certificate user: ${
    results.operator_entry === "source"
      ? "`node src/main.ts run`"
      : "the compiled `dist/main.js run` with the Dockerfile's node flags, as the image runs it"
  }. The AWS side is moto behind the counting proxy${
    results.ecr_password_chars === undefined
      ? ", with moto's own ECR tokens (a password of 23 characters)"
      : `, which puts a password of ${results.ecr_password_chars.toLocaleString("en-US")} characters in every ECR token it hands out, as long as ECR's own (moto's are 23): each pull Secret is the size it is in a real cluster`
  }. Raw figures: [latest.json](latest.json).${
    results.operator_node_options === undefined
      ? ""
      : ` The operator ran with \`NODE_OPTIONS=${results.operator_node_options}\`.`
  }${results.note === undefined ? "" : `\n\n> ${results.note}`}

Command:

\`\`\`
${results.command}
\`\`\`

## Cold converge

Create N namespaces and their \`default\` ServiceAccounts, then one ECRPullSecret targeting all of them:
time from creating the CR until the benchmark's watches see, in every namespace, the Secret and the ServiceAccount
listing it. The baseline is a minimal client (\`bench/baseline.ts\`, its own process) that makes exactly the
necessary writes — create N Secrets of the same content size, then add the entry to N ServiceAccounts by a merge
patch on the resourceVersion it read before its start (as the operator's caches are filled before the CR appears) —
at the operator's write concurrency over keep-alive connections, against the same API server, timed the same way,
with no operator running. Each N runs a few rounds (baseline; a fresh operator and a new CR;
then the CR is deleted and the operator removes what it wrote), three times as many up to 1,000 namespaces, where a
round takes seconds and the next one can differ by a tenth or more; the table shows medians and CPU seconds per run.

${converge}

![Converge time against N for the operator and the baseline](converge.svg)

## Other scenarios

At the largest N up to 5000, in this order: idle (right after the cold converge), refresh, start-up and memory (a
fresh operator process each time, started once the machine has been at rest for a second; the start-up time is the
median of several, each listed, the memory that of the last of them and of one more after adding the unmanaged
Secrets), then new namespaces (with the unmanaged Secrets in place).

${scenarios}

The steady-memory targets are checked against the steady resident set of a fresh operator at each count (next
section); the peak target against the process that did the cold converge, idle and refresh at this N, with thousands
of writes in flight.

Counts: the refresh's Secret and ServiceAccount writes and reads are \`apiserver_request_total\` deltas (minus the
benchmark's one PATCH of the credentials Secret); token calls are counted at the AWS proxy; idle and start-up writes
are the operator user's create/update/patch/delete requests in the API server's audit log. Idle CPU is
utime + stime from \`/proc/<pid>/stat\`; memory is \`VmRSS\` (median over a settle window after start-up) and
\`VmHWM\` from \`/proc/<pid>/status\` of a freshly started operator.

${[memorySection(results), largeSection(results), comparatorSection(results)].map((x) => (x === "" ? "" : `${x}\n`)).join("")}## Targets

${targets}

${listLoadSection(listLoad)}
${raceSection(race)}${attribution === undefined ? "" : `\n${attribution.trimEnd()}\n`}`;
}

/** Writes latest.json, <date>.json, converge.svg and README.md into `dir`. */
export async function writeResults(dir: string, results: BenchResults): Promise<string[]> {
  await mkdir(dir, { recursive: true });
  const json = `${JSON.stringify(results, null, 2)}\n`;
  const day = results.date.slice(0, 10);
  const files = [
    [join(dir, "latest.json"), json],
    [join(dir, `${day}.json`), json],
    [join(dir, "converge.svg"), convergeChartSvg(results.converge)],
    [join(dir, "README.md"), await readmeWithSavedParts(dir, results)],
  ] as const;
  for (const [path, text] of files) await writeFile(path, text);
  return files.map(([path]) => path);
}

/** race.json in `dir`, written by bench/race.ts, if there is one. */
export function readRaceResults(dir: string): Promise<RaceResults | undefined> {
  return readResultFile<RaceResults>(dir, "race.json");
}

/**
 * memory-attribution.md in `dir`: where the operator's memory goes, written by hand from heap
 * snapshots and bench/module-memory.ts. README.md carries it at its end, whatever regenerates it.
 */
export async function readAttribution(dir: string): Promise<string | undefined> {
  const path = join(dir, "memory-attribution.md");
  return existsSync(path) ? await readFile(path, "utf8") : undefined;
}

/**
 * Rewrites README.md from latest.json, race.json, list-load.json and memory-attribution.md, after
 * one of the latter was written.
 */
export async function rewriteReadme(dir: string): Promise<void> {
  const results = JSON.parse(await readFile(join(dir, "latest.json"), "utf8")) as BenchResults;
  await writeFile(join(dir, "README.md"), await readmeWithSavedParts(dir, results));
}

/** README.md for `results`, with the race, list-load and memory-attribution parts saved in `dir`. */
async function readmeWithSavedParts(dir: string, results: BenchResults): Promise<string> {
  return renderReadme(
    results,
    await readRaceResults(dir),
    await readListLoadResult(dir),
    await readAttribution(dir),
  );
}
