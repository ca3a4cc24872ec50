// Runs the cluster-scale scenarios. One fresh environment per namespace count; the cold converge
// (and its baseline) runs at every count, the other scenarios at the largest count up to 5,000: idle
// right after converging, refresh, new namespaces, then start-up and memory with fresh operator
// processes. A count above that (20,000) gets cold converge, refresh and memory. Memory alone runs at
// a few more counts, and the CronJob-style script at a few, as a reference.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { repoRoot } from "../test/harness/paths.ts";
import { BenchEnv, type RunningOperator } from "./bench-env.ts";
import { benchNamespaces } from "./load.ts";
import { runCronJobScript } from "./cronjob.ts";
import {
  checkTargets,
  type BenchResults,
  type ComparatorResult,
  type ConvergeResult,
  type LargeScaleResult,
  type MemoryPoint,
} from "./results.ts";
import { runInfo } from "./run-info.ts";
import { percentile } from "./stats.ts";
import {
  addUnmanagedSecrets,
  convergeOperator,
  measureIdle,
  measureNewNamespaces,
  measureRefresh,
  measureStartup,
  prepareNamespaces,
  removeCr,
  runBaselineProcess,
  type BaselineRun,
  type IdleRun,
  type Log,
  type NewNamespaceRun,
  type OperatorConverge,
  type PullSecretTarget,
  type RefreshRun,
  type StartupRun,
} from "./scenarios.ts";

export interface BenchmarkOptions {
  /**
   * Namespace counts for the cold converge; the other scenarios run at the largest up to
   * `routineScaleLimit`, refresh and memory at any larger one.
   */
  namespaces: number[];
  /** More namespace counts at which only memory is measured: steady, and the cold converge's peak. */
  memoryNamespaces: number[];
  /** Namespace counts (of `namespaces`) at which the CronJob-style script runs too. */
  comparatorNamespaces: number[];
  /** Cold-converge rounds (baseline, then operator) per namespace count above `shortRoundsLimit`; medians are reported. */
  rounds: number;
  /**
   * Cold-converge rounds at counts up to `shortRoundsLimit`. Their rounds take seconds and, on a machine the
   * control plane keeps busy, differ by a tenth or more from one to the next: more of them make a steady median.
   */
  shortRounds: number;
  /** Fresh operators started at the largest N up to 5000 for the start-up time; the median is reported. */
  startups: number;
  /** New namespaces created one at a time for the latency scenario. */
  newNamespaces: number;
  idleSeconds: number;
  /** Unmanaged Secrets added for the second memory measurement. */
  unmanagedSecrets: number;
  /** How long steady RSS is sampled after each start-up settles. */
  settleSeconds: number;
  writeConcurrency: number;
  createConcurrency: number;
  /** CPU profiles and heap snapshots of the operator go here when set. */
  profileDir?: string;
  /** NODE_OPTIONS for the operator process, e.g. V8 heap flags; recorded with the results. */
  operatorNodeOptions?: string;
  /** "build": dist/main.js with the image's node flags, as shipped; "source": src/main.ts. */
  operatorEntry: "build" | "source";
  /** How the run was started, recorded with the results. */
  command: string;
  note?: string;
}

/** The Kubernetes version the harness builds, when the binary does not report one (built without ldflags). */
export function harnessKubernetesVersion(reported: string): string {
  if (!reported.startsWith("v0.0.0")) return reported;
  const goMod = readFileSync(join(repoRoot, "tools", "controlplane", "go.mod"), "utf8");
  return /^\s*k8s\.io\/kubernetes\s+(v\S+)/m.exec(goMod)?.[1] ?? reported;
}

/** The idle, new-namespace and start-up scenarios run at the largest count up to this. */
export const routineScaleLimit = 5000;

/** The largest namespace count whose cold converge runs `shortRounds` rounds. */
export const shortRoundsLimit = 1000;

function round2(value: number): number {
  return Math.round(value * 100) / 100;
}

interface ScaleRuns {
  namespaces: number;
  idle: IdleRun;
  refresh: RefreshRun;
  fresh: NewNamespaceRun;
  convergePeakMb: number;
  startup: StartupRun;
  /** Every fresh start-up before the unmanaged Secrets, `startup` first. */
  startups: StartupRun[];
  withUnmanaged: StartupRun;
}

async function stopOperator(operator: RunningOperator, profile: boolean): Promise<void> {
  if (profile) await operator.heapSnapshot();
  await operator.stop();
}

/**
 * The scenarios at the largest N, after the cold converge by `operator`: idle, refresh; then a fresh
 * operator for start-up and memory; unmanaged Secrets and another fresh operator for memory again;
 * new namespaces last, so that every other scenario sees exactly N target namespaces.
 */
async function runScaleScenarios(
  env: BenchEnv,
  operator: RunningOperator,
  names: readonly string[],
  secretName: string,
  options: BenchmarkOptions,
  log: Log,
): Promise<ScaleRuns> {
  const profile = options.profileDir !== undefined;
  let idle: IdleRun;
  let refresh: RefreshRun;
  let convergePeakMb: number;
  try {
    idle = await measureIdle(env, operator, options.idleSeconds, log);
    refresh = await measureRefresh(env, operator, names, secretName, log);
    convergePeakMb = operator.memory().hwmMb;
  } finally {
    await stopOperator(operator, profile);
  }
  // Start-up to ready alone, the median of several fresh operators: one start moves by a fifth
  // with what else the machine is doing.
  const readyOnly: StartupRun[] = [];
  for (let start = 1; start < options.startups; start++) {
    const { run, operator: started } = await measureStartup(env, 0, log);
    readyOnly.push(run);
    await stopOperator(started, profile);
  }
  const first = await measureStartup(env, options.settleSeconds * 1000, log);
  try {
    await addUnmanagedSecrets(env, names, options.unmanagedSecrets, log);
  } finally {
    await stopOperator(first.operator, profile);
  }
  const second = await measureStartup(env, options.settleSeconds * 1000, log);
  let fresh: NewNamespaceRun;
  try {
    fresh = await measureNewNamespaces(
      env,
      second.operator,
      benchNamespaces(options.newNamespaces, "bench-new-"),
      secretName,
      log,
    );
  } finally {
    await stopOperator(second.operator, profile);
  }
  return {
    namespaces: names.length,
    idle,
    refresh,
    fresh,
    convergePeakMb,
    startup: first.run,
    startups: [first.run, ...readyOnly],
    withUnmanaged: second.run,
  };
}

interface ConvergeRound {
  baseline: BaselineRun;
  operator: OperatorConverge;
}

/**
 * One round of cold converge: the baseline (with no operator running, so that nothing else watches
 * its writes), then a fresh operator and a new CR. Before the round, the previous round's CR and
 * what it wrote are removed. Returns the operator, still running, with the round's figures.
 */
async function convergeRound(
  env: BenchEnv,
  names: readonly string[],
  round: number,
  log: Log,
): Promise<ConvergeRound & { running: RunningOperator; target: PullSecretTarget }> {
  const baseline = await runBaselineProcess(env, names, `bench-baseline-${round}`, log);
  const running = await env.startOperator();
  try {
    await running.waitReady(120_000);
    const target = { cr: `bench-${round}`, secretName: `ecr-pull-${round}` };
    const operator = await convergeOperator(env, running, names, target, log);
    return { baseline, operator, running, target };
  } catch (err) {
    await running.stop();
    throw err;
  }
}

function median(values: readonly number[]): number {
  return percentile(values, 50);
}

/** The writes of the start-up that made the most: any write at start-up misses the target. */
function mostWrites(runs: readonly StartupRun[]): Record<string, number> {
  const most = runs.reduce<StartupRun | undefined>(
    (found, run) => (found === undefined || run.write_requests > found.write_requests ? run : found),
    undefined,
  );
  return most?.writes_by_resource ?? {};
}

function convergeResult(n: number, rounds: readonly ConvergeRound[]): ConvergeResult {
  const operatorRuns = rounds.map((r) => r.operator.seconds);
  const baselineRuns = rounds.map((r) => r.baseline.seconds);
  const last = rounds[rounds.length - 1]?.operator;
  return {
    namespaces: n,
    operator_s: median(operatorRuns),
    baseline_s: median(baselineRuns),
    ratio: round2(median(operatorRuns) / median(baselineRuns)),
    operator_runs_s: operatorRuns,
    baseline_runs_s: baselineRuns,
    operator_cpu_s: median(rounds.map((r) => r.operator.cpuSeconds)),
    baseline_cpu_s: round2(median(rounds.map((r) => r.baseline.outcome.cpuSeconds))),
    control_plane_cpu_s: {
      operator: median(rounds.map((r) => r.operator.controlPlaneCpuSeconds)),
      baseline: median(rounds.map((r) => r.baseline.controlPlaneCpuSeconds)),
    },
    operator_writes: last?.writes ?? {},
    operator_requests: last?.requests ?? {},
    operator_peak_rss_mb: Math.max(...rounds.map((r) => r.operator.peakRssMb)),
  };
}

/** What the memory figures at one count come from: a cold converge's process, then a fresh one. */
function memoryPoint(n: number, converge: OperatorConverge, fresh: StartupRun): MemoryPoint {
  return {
    namespaces: n,
    steady_rss_mb: fresh.steady_rss_mb,
    peak_rss_mb: fresh.peak_rss_mb,
    converge_process_peak_rss_mb: converge.peakRssMb,
    converge_s: converge.seconds,
    converge_cpu_s: converge.cpuSeconds,
    ready_s: fresh.ready_s,
    load1: fresh.load1,
  };
}

/** Steady memory of a fresh operator (it reconciles the CR in place, with no writes), then stops it. */
async function freshOperatorMemory(env: BenchEnv, options: BenchmarkOptions, log: Log): Promise<StartupRun> {
  const { run, operator } = await measureStartup(env, options.settleSeconds * 1000, log);
  await stopOperator(operator, options.profileDir !== undefined);
  return run;
}

function startEnv(options: BenchmarkOptions): Promise<BenchEnv> {
  return BenchEnv.start({
    writeConcurrency: options.writeConcurrency,
    createConcurrency: options.createConcurrency,
    profileDir: options.profileDir,
    operatorNodeOptions: options.operatorNodeOptions,
    operatorEntry: options.operatorEntry,
  });
}

/** Memory alone at `n`: one cold converge (its process's peak), then a fresh operator's steady RSS. */
async function runMemoryGroup(n: number, options: BenchmarkOptions, log: Log): Promise<MemoryPoint> {
  log(`--- N=${n} (memory): starting a fresh control plane`);
  const env = await startEnv(options);
  try {
    const names = benchNamespaces(n);
    await prepareNamespaces(env, names, log);
    const running = await env.startOperator();
    let converge: OperatorConverge;
    try {
      await running.waitReady(120_000);
      converge = await convergeOperator(
        env,
        running,
        names,
        { cr: "bench-1", secretName: "ecr-pull-1" },
        log,
      );
    } finally {
      await stopOperator(running, options.profileDir !== undefined);
    }
    const point = memoryPoint(n, converge, await freshOperatorMemory(env, options, log));
    log(
      `memory at N=${n}: steady ${point.steady_rss_mb} MiB, converge peak ${point.converge_process_peak_rss_mb} MiB (load ${point.load1})`,
    );
    return point;
  } finally {
    await env.stop();
  }
}

type GroupRole = "scale" | "large" | "converge";

interface GroupResult {
  converge: ConvergeResult;
  kubernetes: string;
  memory: MemoryPoint;
  scale?: ScaleRuns;
  large?: LargeScaleResult;
  comparator?: ComparatorResult;
}

/** Cold converge rounds at `n`, then what `role` asks for with the last round's operator and after it. */
async function runGroup(
  n: number,
  role: GroupRole,
  options: BenchmarkOptions,
  log: Log,
): Promise<GroupResult> {
  log(`--- N=${n}: starting a fresh control plane`);
  const env = await startEnv(options);
  try {
    const kubernetes = harnessKubernetesVersion(await env.kubernetesVersion());
    const names = benchNamespaces(n);
    await prepareNamespaces(env, names, log);
    const profile = options.profileDir !== undefined;
    const rounds: ConvergeRound[] = [];
    let last: { running: RunningOperator; target: PullSecretTarget; figures: ConvergeRound };
    for (let round = 1; ; round++) {
      const { running, target, ...figures } = await convergeRound(env, names, round, log);
      rounds.push(figures);
      if (round >= (n <= shortRoundsLimit ? options.shortRounds : options.rounds)) {
        last = { running, target, figures };
        break;
      }
      try {
        await removeCr(env, running, names, target, log);
      } finally {
        await stopOperator(running, profile);
      }
    }
    const converge = convergeResult(n, rounds);
    let memory: MemoryPoint;
    let scale: ScaleRuns | undefined;
    let large: LargeScaleResult | undefined;
    if (role === "scale") {
      scale = await runScaleScenarios(env, last.running, names, last.target.secretName, options, log);
      memory = memoryPoint(n, last.figures.operator, scale.startup);
    } else if (role === "large") {
      let refresh: RefreshRun;
      let convergePeakMb: number;
      try {
        refresh = await measureRefresh(env, last.running, names, last.target.secretName, log);
        convergePeakMb = last.running.memory().hwmMb;
      } finally {
        await stopOperator(last.running, profile);
      }
      memory = memoryPoint(n, last.figures.operator, await freshOperatorMemory(env, options, log));
      large = {
        namespaces: n,
        refresh: { namespaces: n, ...refresh },
        memory: { ...memory, converge_process_peak_rss_mb: Math.round(convergePeakMb * 10) / 10 },
      };
    } else {
      await stopOperator(last.running, profile);
      memory = memoryPoint(n, last.figures.operator, await freshOperatorMemory(env, options, log));
    }
    const result: GroupResult = { converge, kubernetes, memory, scale, large };
    if (options.comparatorNamespaces.includes(n)) {
      const script = await runCronJobScript(env, names, "ecr-cronjob", log);
      result.comparator = {
        ...script,
        operator_s: converge.operator_s,
        operator_api_requests: Object.values(converge.operator_requests ?? {}).reduce((sum, v) => sum + v, 0),
        operator_cpu_s: converge.operator_cpu_s,
      };
    }
    return result;
  } finally {
    await env.stop();
  }
}

/** The memory points alone (`--only memory`): no baseline, no other scenario. */
export async function runMemoryPoints(options: BenchmarkOptions, log: Log): Promise<MemoryPoint[]> {
  const points: MemoryPoint[] = [];
  for (const n of [...new Set(options.memoryNamespaces)].sort((a, b) => a - b)) {
    points.push(await runMemoryGroup(n, options, log));
  }
  return points;
}

/** The cold-converge rounds alone (`--only converge`), with the comparator where asked for. */
export async function runConvergePoints(
  options: BenchmarkOptions,
  log: Log,
): Promise<{ converge: ConvergeResult; comparator?: ComparatorResult }[]> {
  const points: { converge: ConvergeResult; comparator?: ComparatorResult }[] = [];
  for (const n of [...new Set(options.namespaces)].sort((a, b) => a - b)) {
    const { converge, comparator } = await runGroup(n, "converge", options, log);
    points.push(comparator === undefined ? { converge } : { converge, comparator });
  }
  return points;
}

/** The count the idle, new-namespace and start-up scenarios run at. */
export function scalePoint(sizes: readonly number[]): number | undefined {
  const routine = sizes.filter((n) => n <= routineScaleLimit);
  return routine.length > 0 ? Math.max(...routine) : Math.min(...sizes);
}

export async function runBenchmark(options: BenchmarkOptions, log: Log): Promise<BenchResults> {
  const sizes = [...new Set(options.namespaces)].sort((a, b) => a - b);
  const scaleAt = scalePoint(sizes);
  if (scaleAt === undefined) throw new Error("no namespace counts given");
  const converge: ConvergeResult[] = [];
  const memoryPoints: MemoryPoint[] = [];
  const comparator: ComparatorResult[] = [];
  let kubernetes = "unknown";
  let scale: ScaleRuns | undefined;
  let large: LargeScaleResult | undefined;
  for (const n of [...new Set([...sizes, ...options.memoryNamespaces])].sort((a, b) => a - b)) {
    if (!sizes.includes(n)) {
      memoryPoints.push(await runMemoryGroup(n, options, log));
      continue;
    }
    const role: GroupRole = n === scaleAt ? "scale" : n > scaleAt ? "large" : "converge";
    const group = await runGroup(n, role, options, log);
    converge.push(group.converge);
    memoryPoints.push(group.memory);
    if (group.comparator !== undefined) comparator.push(group.comparator);
    kubernetes = group.kubernetes;
    scale ??= group.scale;
    large = group.large ?? large;
  }
  if (scale === undefined) throw new Error("the scenarios at the largest N did not run");
  const { startup, startups, withUnmanaged } = scale;
  const partial: Omit<BenchResults, "targets"> = {
    ...runInfo(kubernetes, options),
    converge,
    new_namespace: { namespaces: scale.namespaces, ...scale.fresh },
    refresh: { namespaces: scale.namespaces, ...scale.refresh },
    idle: scale.idle,
    memory: {
      namespaces: scale.namespaces,
      rss_mb: startup.steady_rss_mb,
      rss_mb_with_unmanaged_secrets: withUnmanaged.steady_rss_mb,
      peak_rss_mb: startup.peak_rss_mb,
      peak_rss_mb_with_unmanaged_secrets: withUnmanaged.peak_rss_mb,
      unmanaged_secrets: options.unmanagedSecrets,
      growth_percent:
        Math.round(((withUnmanaged.steady_rss_mb - startup.steady_rss_mb) / startup.steady_rss_mb) * 1000) /
        10,
      converge_process_peak_rss_mb: Math.round(scale.convergePeakMb * 10) / 10,
      load1: startup.load1,
    },
    memory_by_namespaces: memoryPoints,
    ...(large === undefined ? {} : { large }),
    ...(comparator.length === 0 ? {} : { comparator }),
    startup: {
      namespaces: scale.namespaces,
      ready_s: median(startups.map((run) => run.ready_s)),
      ready_runs_s: startups.map((run) => run.ready_s),
      settled_s: median(startups.map((run) => run.settled_s)),
      write_requests: Math.max(...startups.map((run) => run.write_requests)),
      writes_by_resource: mostWrites(startups),
    },
  };
  return { ...partial, targets: checkTargets(partial) };
}
