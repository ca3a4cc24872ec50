// The benchmark's results: their JSON shape (plus a few fields that explain the figures), the
// targets checked against it, and the files written to bench/results/.
import { existsSync } from "node:fs";
import { availableParallelism } from "node:os";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { convergeChartSvg } from "./chart.ts";
import { listLoadSection, readListLoadResult, type ListLoadResult } from "./list-load.ts";
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
}

export interface NewNamespaceResult {
  namespaces: number;
  samples: number;
  p50_ms: number;
  p99_ms: number;
  max_ms: number;
  secret_p50_ms: number;
  secret_p99_ms: number;
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
  /** Peak RSS of the process that did the cold converge, idle, refresh and new-namespace runs. */
  converge_process_peak_rss_mb: number;
}

export interface StartupResult {
  namespaces: number;
  ready_s: number;
  settled_s: number;
  write_requests: number;
  writes_by_resource: Record<string, number>;
}

export interface TargetCheck {
  target: string;
  value: string;
  met: boolean;
}

/** Where and how a benchmark ran, recorded with its figures. */
export interface RunInfo {
  date: string;
  kubernetes: string;
  cpus: number;
  node: string;
  command: string;
  /** "build": the compiled dist/main.js with the image's node flags; "source": src/main.ts. */
  operator_entry?: "build" | "source";
  operator_node_options?: string;
  note?: string;
}

export function runInfo(
  kubernetes: string,
  options: {
    command: string;
    operatorEntry: "build" | "source";
    operatorNodeOptions?: string;
    note?: string;
  },
): RunInfo {
  return {
    date: new Date().toISOString(),
    kubernetes,
    cpus: availableParallelism(),
    node: process.version,
    command: options.command,
    operator_entry: options.operatorEntry,
    ...(options.operatorNodeOptions === undefined
      ? {}
      : { operator_node_options: options.operatorNodeOptions }),
    ...(options.note === undefined ? {} : { note: options.note }),
  };
}

export interface BenchResults extends RunInfo {
  converge: ConvergeResult[];
  new_namespace: NewNamespaceResult;
  refresh: RefreshResult;
  idle: IdleResult;
  memory: MemoryResult;
  startup: StartupResult;
  targets: TargetCheck[];
}

export function checkTargets(results: Omit<BenchResults, "targets">): TargetCheck[] {
  const checks: TargetCheck[] = [];
  for (const run of results.converge.filter((c) => c.namespaces >= 1000)) {
    checks.push({
      target: `converge ratio <= 1.25 at N=${run.namespaces}`,
      value: run.ratio.toFixed(2),
      met: run.ratio <= 1.25,
    });
  }
  const { new_namespace: fresh, refresh, idle, memory, startup } = results;
  checks.push(
    {
      target: `new-namespace p99 < 1 s at N=${fresh.namespaces}`,
      value: `${fresh.p99_ms} ms`,
      met: fresh.p99_ms < 1000,
    },
    {
      target: `refresh Secret writes = N (${refresh.namespaces})`,
      value: String(refresh.secret_writes),
      met: refresh.secret_writes === refresh.namespaces,
    },
    {
      target: "refresh ServiceAccount writes = 0",
      value: String(refresh.serviceaccount_writes),
      met: refresh.serviceaccount_writes === 0,
    },
    { target: "refresh token calls = 1", value: String(refresh.token_calls), met: refresh.token_calls === 1 },
    { target: "idle writes = 0", value: String(idle.write_requests), met: idle.write_requests === 0 },
    {
      target: "start-up writes = 0",
      value: String(startup.write_requests),
      met: startup.write_requests === 0,
    },
    {
      target: `memory < 150 MB RSS at N=${memory.namespaces}`,
      value: `${memory.rss_mb} MiB (peak ${memory.peak_rss_mb})`,
      met: memory.rss_mb < 150,
    },
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

export function renderReadme(results: BenchResults, race?: RaceResults, listLoad?: ListLoadResult): string {
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
        `p50 ${fresh.p50_ms} ms, p99 ${fresh.p99_ms} ms, max ${fresh.max_ms} ms over ${fresh.samples} (Secret alone: p50 ${fresh.secret_p50_ms} ms, p99 ${fresh.secret_p99_ms} ms)`,
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
        `${startup.ready_s} s (settled ${startup.settled_s} s); ${startup.write_requests} writes ${JSON.stringify(startup.writes_by_resource)}`,
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
  }. The AWS side is moto behind the counting proxy. Raw figures: [latest.json](latest.json).${
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
then the CR is deleted and the operator removes what it wrote); the table shows medians and CPU seconds per run.

${converge}

![Converge time against N for the operator and the baseline](converge.svg)

## Other scenarios

At the largest N, in this order: idle (right after the cold converge), refresh, start-up and memory (a fresh
operator process each time; the second after adding the unmanaged Secrets), then new namespaces (with the unmanaged
Secrets in place).

${scenarios}

The memory target is checked against the steady resident set of a fresh operator at the largest N; the peak of
the process that did the cold converge, with thousands of writes in flight, is shown beside it.

Counts: the refresh's Secret and ServiceAccount writes and reads are \`apiserver_request_total\` deltas (minus the
benchmark's one PATCH of the credentials Secret); token calls are counted at the AWS proxy; idle and start-up writes
are the operator user's create/update/patch/delete requests in the API server's audit log. Idle CPU is
utime + stime from \`/proc/<pid>/stat\`; memory is \`VmRSS\` (median over a settle window after start-up) and
\`VmHWM\` from \`/proc/<pid>/status\` of a freshly started operator.

## Targets

${targets}

${listLoadSection(listLoad)}
${raceSection(race)}`;
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
    [
      join(dir, "README.md"),
      renderReadme(results, await readRaceResults(dir), await readListLoadResult(dir)),
    ],
  ] as const;
  for (const [path, text] of files) await writeFile(path, text);
  return files.map(([path]) => path);
}

/** A results file in `dir`, if that part of the benchmark ran there. */
export async function readResultFile<T>(dir: string, name: string): Promise<T | undefined> {
  const path = join(dir, name);
  return existsSync(path) ? (JSON.parse(await readFile(path, "utf8")) as T) : undefined;
}

/** race.json in `dir`, written by bench/race.ts, if there is one. */
export function readRaceResults(dir: string): Promise<RaceResults | undefined> {
  return readResultFile<RaceResults>(dir, "race.json");
}

/** Rewrites README.md from latest.json, race.json and list-load.json, after one of the latter was written. */
export async function rewriteReadme(dir: string): Promise<void> {
  const results = JSON.parse(await readFile(join(dir, "latest.json"), "utf8")) as BenchResults;
  await writeFile(
    join(dir, "README.md"),
    renderReadme(results, await readRaceResults(dir), await readListLoadResult(dir)),
  );
}
