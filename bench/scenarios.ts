// The benchmark's scenarios, each against a BenchEnv: cold converge with its baseline, new-namespace
// latency, refresh, idle, start-up and memory. Times come from the driver's watches
// (performance.now() at the event), request counts from the API server's audit log and /metrics.
import { spawn } from "node:child_process";
import { once } from "node:events";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { createInterface } from "node:readline";
import { setTimeout as delay } from "node:timers/promises";
import { ECRClient, GetAuthorizationTokenCommand, type AuthorizationData } from "@aws-sdk/client-ecr";
import { API_VERSION, GROUP, KIND, PLURAL, VERSION } from "../src/api/types.ts";
import { buildDockerConfigJson } from "../src/controller/plan/dockerconfig.ts";
import { EXPIRES_AT_ANNOTATION, REFRESHED_AT_ANNOTATION } from "../src/controller/plan/labels.ts";
import { isoSeconds } from "../src/controller/plan/status.ts";
import { motoDefaultCredentials } from "../test/harness/moto.ts";
import { repoRoot } from "../test/harness/paths.ts";
import { tlsMaterialOf } from "./api-client.ts";
import { auditWriteVerbs, countByResource, total, type AuditEntry } from "./audit-log.ts";
import type { BaselineConfig, BaselineOutcome } from "./baseline.ts";
import {
  credentialsSecretName,
  operatorNamespace,
  operatorUser,
  reconcileCount,
  type BenchEnv,
  type RunningOperator,
} from "./bench-env.ts";
import { createNamespaces, createServiceAccounts, createUnmanagedSecrets } from "./load.ts";
import { countOf, readVerbs, requestCounts, subtractCounts, sumOf, writeVerbs } from "./prometheus.ts";
import { cpuSeconds, machineBusySeconds, MemorySampler } from "./process-stats.ts";
import { percentile } from "./stats.ts";

export type Log = (message: string) => void;

const serviceAccount = "default";

/** One ECRPullSecret of the benchmark and the Secret name it writes. */
export interface PullSecretTarget {
  cr: string;
  secretName: string;
}

/** Generous bounds that grow with the namespace count; a miss fails the run rather than hang it. */
function timeoutFor(namespaces: number, perNamespaceMs: number, floorMs: number): number {
  return Math.max(floorMs, namespaces * perNamespaceMs);
}

function seconds(ms: number): number {
  return Math.round(ms) / 1000;
}

function round2(value: number): number {
  return Math.round(value * 100) / 100;
}

/**
 * Creates the namespaces and their `default` ServiceAccounts. The controller manager would create
 * those too, but at its client's 20 requests/s: minutes for thousands of namespaces.
 */
export async function prepareNamespaces(env: BenchEnv, names: readonly string[], log: Log): Promise<void> {
  const started = performance.now();
  await createNamespaces(env.api, names, env.options.createConcurrency);
  const created = performance.now();
  await createServiceAccounts(env.api, names, serviceAccount, env.options.createConcurrency);
  await env.watch.waitFor(
    names,
    (ns) => env.watch.serviceAccounts.get(serviceAccount, ns) !== undefined,
    timeoutFor(names.length, 60, 120_000),
    "default ServiceAccounts",
  );
  log(
    `created ${names.length} namespaces in ${seconds(created - started)} s, their ServiceAccounts after ${seconds(performance.now() - started)} s`,
  );
}

/** The stand-in's registry token, asked straight from moto (not through the counting proxy). */
export async function standInAuthorization(env: BenchEnv): Promise<AuthorizationData | undefined> {
  const ecr = new ECRClient({
    endpoint: env.moto.endpoint,
    region: "eu-west-1",
    credentials: motoDefaultCredentials,
  });
  try {
    const result = await ecr.send(new GetAuthorizationTokenCommand({}));
    return result.authorizationData?.[0];
  } finally {
    ecr.destroy();
  }
}

/**
 * The content the operator will write: the registry and user of a token minted straight from moto
 * (not through the counting proxy), with the password the proxy puts in every token it hands out.
 */
async function baselineSecret(env: BenchEnv, name: string): Promise<BaselineConfig["secret"]> {
  const data = await standInAuthorization(env);
  const decoded = Buffer.from(data?.authorizationToken ?? "", "base64").toString();
  const username = decoded.slice(0, decoded.indexOf(":"));
  const host = (data?.proxyEndpoint ?? "").replace(/^https?:\/\//, "");
  const now = Date.now();
  return {
    metadata: {
      name,
      // As many labels and annotations, of about the same size, as the operator's Secrets carry.
      labels: {
        "app.kubernetes.io/managed-by": "bench-baseline",
        "bench.ecr-creds-refresher.io/owner": "baseline",
      },
      annotations: {
        [EXPIRES_AT_ANNOTATION]: isoSeconds(now + 12 * 3_600_000),
        [REFRESHED_AT_ANNOTATION]: isoSeconds(now),
      },
    },
    type: "kubernetes.io/dockerconfigjson",
    data: {
      ".dockerconfigjson": Buffer.from(
        buildDockerConfigJson([{ host, username, password: env.ecrPassword }]),
      ).toString("base64"),
    },
  };
}

export interface BaselineRun {
  seconds: number;
  outcome: BaselineOutcome;
  /** CPU seconds kube-apiserver and etcd used meanwhile. */
  controlPlaneCpuSeconds: number;
}

/** Runs bench/baseline.ts as its own process; the time runs from its start signal to the watches seeing every namespace done. */
export async function runBaselineProcess(
  env: BenchEnv,
  names: readonly string[],
  secretName: string,
  log: Log,
): Promise<BaselineRun> {
  const dir = await mkdtemp(join(tmpdir(), "ecr-bench-baseline-"));
  try {
    const { server, tls } = await tlsMaterialOf(env.plane.kubeConfig);
    const config: BaselineConfig = {
      server,
      tls,
      namespaces: [...names],
      serviceAccount,
      concurrency: env.options.writeConcurrency,
      secret: await baselineSecret(env, secretName),
    };
    const configPath = join(dir, "config.json");
    await writeFile(configPath, JSON.stringify(config), { mode: 0o600 });
    const child = spawn(process.execPath, [join(repoRoot, "bench", "baseline.ts"), configPath], {
      stdio: ["pipe", "pipe", "inherit"],
      env: { PATH: process.env.PATH },
    });
    const exited = once(child, "exit");
    const lines = createInterface({ input: child.stdout });
    const iterator = lines[Symbol.asyncIterator]();
    try {
      const first = await iterator.next();
      if (first.done === true || first.value !== "ready")
        throw new Error("the baseline process did not start");
      const controlPlaneBefore = env.controlPlaneCpuSeconds();
      const started = performance.now();
      child.stdin.write("go\n");
      const converged = env.watch.waitFor(
        names,
        (ns) => env.watch.hasPullSecret(ns, secretName, serviceAccount),
        timeoutFor(names.length, 50, 120_000),
        "baseline",
      );
      // Awaited below; until then a failure must not surface as an unhandled rejection.
      converged.catch(() => undefined);
      const result = await iterator.next();
      if (result.done === true) throw new Error("the baseline process ended without a result");
      const outcome = JSON.parse(result.value) as BaselineOutcome;
      if (outcome.failures.length > 0) {
        throw new Error(
          `the baseline had ${outcome.failures.length} failures; first: ${outcome.failures[0] ?? ""}`,
        );
      }
      const { doneAt } = await converged;
      const run = {
        seconds: seconds(doneAt - started),
        outcome,
        controlPlaneCpuSeconds: round2(env.controlPlaneCpuSeconds() - controlPlaneBefore),
      };
      log(
        `baseline: ${outcome.secretsCreated} Secrets, ${outcome.serviceAccountsUpdated} ServiceAccounts in ${run.seconds} s using ${outcome.cpuSeconds.toFixed(2)} CPU s (API server and etcd ${run.controlPlaneCpuSeconds} CPU s)`,
      );
      return run;
    } finally {
      lines.close();
      if (child.exitCode === null) child.kill("SIGTERM");
      await exited;
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

export interface QuietOptions {
  /** How long nothing must happen. */
  quietMs: number;
  timeoutMs: number;
  /** Reconciles that must have finished first (0 when there is no CR yet). */
  minReconciles: number;
}

/**
 * Waits until the operator has settled: its queue empty, no reconcile finished and no write of its
 * in the audit log for `quietMs`. Returns performance.now() of the start of that quiet period.
 */
export async function waitForQuiet(
  env: BenchEnv,
  operator: RunningOperator,
  options: QuietOptions,
): Promise<number> {
  const deadline = performance.now() + options.timeoutMs;
  let mark = await env.audit.mark();
  let lastReconciles = -1;
  let quietSince = performance.now();
  while (performance.now() < deadline) {
    await delay(250);
    const samples = await operator.metrics();
    const reconciles = reconcileCount(samples);
    const depth = sumOf(samples, "ecr_creds_refresher_workqueue_depth");
    const next = await env.audit.mark();
    const byResource = countByResource(await env.audit.entries(mark, next), operatorUser, auditWriteVerbs);
    // A leader renews its Lease every few seconds whether or not it has work.
    delete byResource.leases;
    const writes = total(byResource);
    mark = next;
    if (reconciles !== lastReconciles || depth > 0 || writes > 0 || reconciles < options.minReconciles) {
      lastReconciles = reconciles;
      quietSince = performance.now();
      continue;
    }
    if (performance.now() - quietSince >= options.quietMs) return quietSince;
  }
  throw new Error(`the operator did not settle within ${options.timeoutMs} ms`);
}

export async function createCr(env: BenchEnv, target: PullSecretTarget): Promise<void> {
  await env.api.json("POST", `/apis/${GROUP}/${VERSION}/${PLURAL}`, {
    apiVersion: API_VERSION,
    kind: KIND,
    metadata: { name: target.cr },
    spec: { secretName: target.secretName, namespaces: ["bench-*"] },
  });
}

/**
 * Deletes the CR and waits until the operator has removed its Secrets and ServiceAccount entries,
 * so that the next cold converge starts from the same state.
 */
export async function removeCr(
  env: BenchEnv,
  operator: RunningOperator,
  names: readonly string[],
  target: PullSecretTarget,
  log: Log,
): Promise<void> {
  const started = performance.now();
  await env.api.json("DELETE", `/apis/${GROUP}/${VERSION}/${PLURAL}/${target.cr}`);
  await env.watch.waitFor(
    names,
    (ns) =>
      env.watch.secret(ns, target.secretName) === undefined &&
      !(env.watch.serviceAccounts.get(serviceAccount, ns)?.imagePullSecrets ?? []).some(
        (ref) => ref.name === target.secretName,
      ),
    timeoutFor(names.length, 50, 120_000),
    `clean-up of ${target.cr}`,
  );
  await waitForQuiet(env, operator, { quietMs: 1000, timeoutMs: 120_000, minReconciles: 0 });
  log(`removed ${target.cr} and what it wrote in ${seconds(performance.now() - started)} s`);
}

export interface OperatorConverge {
  seconds: number;
  /** CPU seconds the operator process used from creating the CR until every namespace was done. */
  cpuSeconds: number;
  /** CPU seconds kube-apiserver and etcd used meanwhile. */
  controlPlaneCpuSeconds: number;
  /** The operator's writes while converging, by resource (audit log). */
  writes: Record<string, number>;
  /** All of the operator's requests while converging, by verb and resource (audit log). */
  requests: Record<string, number>;
  /** VmHWM of the operator process once it has converged and settled, MiB. */
  peakRssMb: number;
}

/** Creates the CR with the operator running and ready; the time runs until the watches see every namespace done. */
export async function convergeOperator(
  env: BenchEnv,
  operator: RunningOperator,
  names: readonly string[],
  target: PullSecretTarget,
  log: Log,
): Promise<OperatorConverge> {
  await waitForQuiet(env, operator, { quietMs: 1000, timeoutMs: 60_000, minReconciles: 0 });
  const mark = await env.audit.mark();
  const cpuBefore = cpuSeconds(operator.pid);
  const controlPlaneBefore = env.controlPlaneCpuSeconds();
  const started = performance.now();
  await createCr(env, target);
  const { doneAt } = await env.watch.waitFor(
    names,
    (ns) => env.watch.hasPullSecret(ns, target.secretName, serviceAccount),
    timeoutFor(names.length, 50, 120_000),
    "operator converge",
  );
  const result = {
    seconds: seconds(doneAt - started),
    cpuSeconds: round2(cpuSeconds(operator.pid) - cpuBefore),
    controlPlaneCpuSeconds: round2(env.controlPlaneCpuSeconds() - controlPlaneBefore),
    writes: {} as Record<string, number>,
    requests: {} as Record<string, number>,
    peakRssMb: 0,
  };
  await waitForQuiet(env, operator, { quietMs: 2000, timeoutMs: 120_000, minReconciles: 1 });
  const entries = await env.audit.entries(mark);
  result.writes = countByResource(entries, operatorUser, auditWriteVerbs);
  result.requests = byVerbAndResource(entries, operatorUser);
  result.peakRssMb = Math.round(operator.memory().hwmMb * 10) / 10;
  log(
    `operator converged ${names.length} namespaces in ${result.seconds} s using ${result.cpuSeconds} CPU s (API server and etcd ${result.controlPlaneCpuSeconds} CPU s); writes ${JSON.stringify(result.writes)}`,
  );
  return result;
}

export interface NewNamespaceRun {
  samples: number;
  p50_ms: number;
  p99_ms: number;
  max_ms: number;
  /** Namespace creation to the Secret alone (the ServiceAccount comes from the controller manager first). */
  secret_p50_ms: number;
  secret_p99_ms: number;
  /** Reconciles the operator ran, and CPU milliseconds it used, per namespace created (until quiet). */
  reconciles_per_namespace: number;
  cpu_ms_per_namespace: number;
}

/** Creates the namespaces (all matching the CR) one at a time, each after the previous one is done. */
export async function measureNewNamespaces(
  env: BenchEnv,
  operator: RunningOperator,
  names: readonly string[],
  secretName: string,
  log: Log,
): Promise<NewNamespaceRun> {
  const full: number[] = [];
  const secretOnly: number[] = [];
  const reconcilesBefore = reconcileCount(await operator.metrics());
  const cpuBefore = cpuSeconds(operator.pid);
  for (const name of names) {
    const secretSeen = env.watch.waitFor(
      [name],
      (ns) => env.watch.secret(ns, secretName) !== undefined,
      30_000,
      `Secret in ${name}`,
    );
    const done = env.watch.waitFor(
      [name],
      (ns) => env.watch.hasPullSecret(ns, secretName, serviceAccount),
      30_000,
      `pull Secret and ServiceAccount in ${name}`,
    );
    // Awaited below; a failed create must surface as itself, not as an unhandled rejection.
    for (const wait of [secretSeen, done]) wait.catch(() => undefined);
    const started = performance.now();
    await env.api.json("POST", "/api/v1/namespaces", { metadata: { name } });
    const [secret, all] = await Promise.all([secretSeen, done]);
    secretOnly.push(secret.doneAt - started);
    full.push(all.doneAt - started);
  }
  await waitForQuiet(env, operator, { quietMs: 2000, timeoutMs: 120_000, minReconciles: 0 });
  const reconciles = reconcileCount(await operator.metrics()) - reconcilesBefore;
  const cpuMs = (cpuSeconds(operator.pid) - cpuBefore) * 1000;
  const round = (ms: number): number => Math.round(ms);
  const run = {
    reconciles_per_namespace: round2(reconciles / names.length),
    cpu_ms_per_namespace: round2(cpuMs / names.length),
    samples: full.length,
    p50_ms: round(percentile(full, 50)),
    p99_ms: round(percentile(full, 99)),
    max_ms: round(Math.max(...full)),
    secret_p50_ms: round(percentile(secretOnly, 50)),
    secret_p99_ms: round(percentile(secretOnly, 99)),
  };
  log(
    `new namespaces: p50 ${run.p50_ms} ms, p99 ${run.p99_ms} ms, max ${run.max_ms} ms over ${run.samples}; ${run.reconciles_per_namespace} reconciles and ${run.cpu_ms_per_namespace} CPU ms each`,
  );
  return run;
}

export interface RefreshRun {
  seconds: number;
  secret_writes: number;
  serviceaccount_writes: number;
  token_calls: number;
  secret_reads: number;
  serviceaccount_reads: number;
  /** The operator's own requests in the window by verb and resource (audit log). */
  operator_requests: Record<string, number>;
}

/** `user`'s requests by "verb resource"; requests for no resource (discovery) by "verb path". */
export function byVerbAndResource(entries: readonly AuditEntry[], user: string): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const entry of entries) {
    if (entry.user !== user) continue;
    const key = `${entry.verb} ${entry.resource === "" ? entry.requestURI.split("?")[0] : entry.resource}`;
    counts[key] = (counts[key] ?? 0) + 1;
  }
  return counts;
}

let rotation = 0;

/**
 * Rotates the access key id in the operator's credentials Secret: a new identity, so the operator
 * mints a new token and rewrites every Secret. Counts come from the API server's apiserver_request_total
 * (minus the driver's one PATCH of the credentials Secret) and the AWS proxy.
 */
export async function measureRefresh(
  env: BenchEnv,
  operator: RunningOperator,
  names: readonly string[],
  secretName: string,
  log: Log,
): Promise<RefreshRun> {
  await waitForQuiet(env, operator, { quietMs: 2000, timeoutMs: 120_000, minReconciles: 1 });
  const refreshedAt = (ns: string): string | undefined =>
    env.watch.secret(ns, secretName)?.metadata?.annotations?.[REFRESHED_AT_ANNOTATION];
  const previous = new Map(names.map((ns) => [ns, refreshedAt(ns)]));
  rotation += 1;
  const accessKeyId = `AKIABENCHROTATE${String(rotation).padStart(5, "0")}`;
  const before = requestCounts(await env.api.text("/metrics"));
  const tokenCallsBefore = env.aws.count("ecr:GetAuthorizationToken");
  const mark = await env.audit.mark();
  const started = performance.now();
  await env.api.json(
    "PATCH",
    `/api/v1/namespaces/${operatorNamespace}/secrets/${credentialsSecretName}`,
    { data: { AWS_ACCESS_KEY_ID: Buffer.from(accessKeyId).toString("base64") } },
    "application/merge-patch+json",
  );
  const { doneAt } = await env.watch.waitFor(
    names,
    (ns) => {
      const now = refreshedAt(ns);
      return now !== undefined && now !== previous.get(ns);
    },
    timeoutFor(names.length, 30, 120_000),
    "refresh",
  );
  await waitForQuiet(env, operator, { quietMs: 2000, timeoutMs: 120_000, minReconciles: 1 });
  const delta = subtractCounts(requestCounts(await env.api.text("/metrics")), before);
  const driverWrites = 1;
  const run: RefreshRun = {
    seconds: seconds(doneAt - started),
    secret_writes: countOf(delta, "secrets", writeVerbs) - driverWrites,
    serviceaccount_writes: countOf(delta, "serviceaccounts", writeVerbs),
    token_calls: env.aws.count("ecr:GetAuthorizationToken") - tokenCallsBefore,
    secret_reads: countOf(delta, "secrets", readVerbs),
    serviceaccount_reads: countOf(delta, "serviceaccounts", readVerbs),
    operator_requests: byVerbAndResource(await env.audit.entries(mark), operatorUser),
  };
  log(
    `refresh: ${run.secret_writes} Secret writes, ${run.serviceaccount_writes} ServiceAccount writes, ${run.token_calls} token calls in ${run.seconds} s`,
  );
  return run;
}

export interface IdleRun {
  seconds: number;
  write_requests: number;
  cpu_seconds: number;
  /** CPU seconds by the operator's own process_cpu_seconds_total, for comparison. */
  cpu_seconds_reported: number;
  operator_requests: Record<string, number>;
}

export async function measureIdle(
  env: BenchEnv,
  operator: RunningOperator,
  idleSeconds: number,
  log: Log,
): Promise<IdleRun> {
  await waitForQuiet(env, operator, { quietMs: 2000, timeoutMs: 120_000, minReconciles: 1 });
  const mark = await env.audit.mark();
  const cpuBefore = cpuSeconds(operator.pid);
  const reportedBefore = sumOf(await operator.metrics(), "process_cpu_seconds_total");
  const started = performance.now();
  await delay(idleSeconds * 1000);
  const elapsed = performance.now() - started;
  const cpuAfter = cpuSeconds(operator.pid);
  const reportedAfter = sumOf(await operator.metrics(), "process_cpu_seconds_total");
  const entries = await env.audit.entries(mark);
  const run: IdleRun = {
    seconds: seconds(elapsed),
    write_requests: total(countByResource(entries, operatorUser, auditWriteVerbs)),
    cpu_seconds: round2(cpuAfter - cpuBefore),
    cpu_seconds_reported: round2(reportedAfter - reportedBefore),
    operator_requests: byVerbAndResource(entries, operatorUser),
  };
  log(`idle ${run.seconds} s: ${run.write_requests} writes, ${run.cpu_seconds} CPU s`);
  return run;
}

export interface StartupRun {
  ready_s: number;
  /** Start to settled: ready, reconciled and quiet. */
  settled_s: number;
  write_requests: number;
  writes_by_resource: Record<string, number>;
  /** Median RSS over the settle window after start-up, MiB; NaN with no window. */
  steady_rss_mb: number;
  /** VmHWM at the end of the settle window, MiB. */
  peak_rss_mb: number;
  /** The machine's 1-minute load average at the end of the settle window: other work skews timings. */
  load1: number;
}

/** The most of a core the machine may use over a second and still count as at rest. */
const restingCores = 0.25;

/**
 * Waits, up to `timeoutMs`, until the machine has been at rest for a second: the control plane can
 * still be digesting the scenario before (a refresh's thousands of writes) when the operator stops.
 */
export async function waitForRest(timeoutMs: number, log: Log): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  let before = machineBusySeconds();
  let busy = Number.NaN;
  while (performance.now() < deadline) {
    await delay(1000);
    const now = machineBusySeconds();
    busy = now - before;
    before = now;
    if (busy <= restingCores) return;
  }
  log(
    `the machine was still busy after ${timeoutMs} ms (${busy.toFixed(2)} CPU s in the last second); going on`,
  );
}

/**
 * Starts a fresh operator against the synced cluster, once the machine is at rest: time to /readyz,
 * writes until it has settled, then steady and peak RSS over `settleMs`. The operator keeps running;
 * the caller stops it.
 */
export async function measureStartup(
  env: BenchEnv,
  settleMs: number,
  log: Log,
): Promise<{ run: StartupRun; operator: RunningOperator }> {
  await waitForRest(30_000, log);
  const mark = await env.audit.mark();
  const operator = await env.startOperator();
  const sampler = new MemorySampler(operator.pid, 250);
  try {
    const readyAt = await operator.waitReady(120_000);
    const quietAt = await waitForQuiet(env, operator, {
      quietMs: 3000,
      timeoutMs: 180_000,
      minReconciles: 1,
    });
    const writes = countByResource(await env.audit.entries(mark), operatorUser, auditWriteVerbs);
    const windowStart = Date.now();
    await delay(settleMs);
    const round = (mb: number): number => Math.round(mb * 10) / 10;
    const run: StartupRun = {
      ready_s: seconds(readyAt - operator.spawnedAt),
      settled_s: seconds(quietAt - operator.spawnedAt),
      write_requests: total(writes),
      writes_by_resource: writes,
      steady_rss_mb: round(sampler.medianSince(windowStart)),
      peak_rss_mb: round(operator.memory().hwmMb),
      load1: round2(loadavg()[0] ?? Number.NaN),
    };
    const memory = settleMs > 0 ? `; RSS ${run.steady_rss_mb} MiB, peak ${run.peak_rss_mb} MiB` : "";
    log(
      `start-up: ready in ${run.ready_s} s, settled in ${run.settled_s} s, ${run.write_requests} writes ${JSON.stringify(writes)}${memory}`,
    );
    return { run, operator };
  } catch (err) {
    await operator.stop();
    throw err;
  } finally {
    sampler.stop();
  }
}

export async function addUnmanagedSecrets(
  env: BenchEnv,
  namespaces: readonly string[],
  count: number,
  log: Log,
): Promise<void> {
  const started = performance.now();
  await createUnmanagedSecrets(env.api, namespaces, count, env.options.createConcurrency);
  log(`created ${count} unmanaged Secrets in ${seconds(performance.now() - started)} s`);
}
