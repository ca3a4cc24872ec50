#!/usr/bin/env node
// ecr-creds-refresher command line: `run` (the controller), `once` (one pass, then exit),
// `version`. Usage and configuration errors exit with code 2.
import { existsSync, readFileSync } from "node:fs";
import { hostname } from "node:os";
import { randomBytes } from "node:crypto";
import { systemClock } from "./clock.ts";
import { parseCommandLine } from "./command-line.ts";
import { ConfigError, loadConfig, type Config, type RawConfig } from "./config.ts";
import { HeapRelease } from "./heap-release.ts";
import { Operator } from "./operator.ts";
import type { PlannedChange } from "./controller/writer.ts";
import type { ClusterAccess } from "./kube/kubeconfig/cluster-access.ts";
import { KubeConfigError } from "./kube/kubeconfig/kubeconfig-error.ts";
import { loadKubeConfig } from "./kube/kubeconfig/load.ts";
import { leaseApi, LeaderElector } from "./kube/leader-election.ts";
import { KubeClient } from "./kube/rest.ts";
import { createLogger, type Logger } from "./observability/logger.ts";
import { Metrics } from "./observability/metrics.ts";
import { MetricsObserver } from "./observability/metrics-observer.ts";
import { allOf } from "./observability/observer.ts";
import { MaglevOnDemand } from "./optimizing-compiler.ts";
import { startObservabilityServer, type ObservabilityServer } from "./observability/server.ts";
import { formatChanges, formatSummary } from "./report.ts";

const serviceAccountNamespaceFile = "/var/run/secrets/kubernetes.io/serviceaccount/namespace";
const fallbackNamespace = "ecr-creds-refresher";
/** How long after the caches are filled `run` loads the ECR SDK, unless a mint has already. */
const ecrSdkPreloadDelayMs = 500;

function version(): string {
  const pkg = JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8")) as {
    version: string;
  };
  return pkg.version;
}

function configFrom(cli: RawConfig): Config {
  const inCluster = existsSync(serviceAccountNamespaceFile)
    ? readFileSync(serviceAccountNamespaceFile, "utf8").trim()
    : undefined;
  return loadConfig(cli, process.env, { operatorNamespace: inCluster ?? fallbackNamespace });
}

/** --kubeconfig, else KUBECONFIG, else in-cluster when running in a Pod, else ~/.kube/config. */
function kubeConfigFor(config: Config): ClusterAccess {
  return loadKubeConfig({ path: config.kubeconfig, env: process.env });
}

function loggerFor(config: Config): Logger {
  const pretty = config.logFormat === "pretty" || (config.logFormat === "auto" && process.stdout.isTTY);
  return createLogger({ level: config.logLevel, pretty });
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : "unknown error";
}

async function run(config: Config): Promise<void> {
  const log = loggerFor(config);
  const kubeConfig = kubeConfigFor(config);
  const metrics = new Metrics();
  const observer = allOf(new MetricsObserver(metrics), new MaglevOnDemand({ log }));
  const identity = `${hostname()}_${randomBytes(4).toString("hex")}`;
  const elector = config.leaderElect
    ? new LeaderElector({
        api: leaseApi(new KubeClient(kubeConfig)),
        namespace: config.operatorNamespace,
        name: config.leaseName,
        identity,
        onStartedLeading: () => {
          log.info({ identity }, "became the leader; reconciling");
          operator.startWorkers();
        },
        onStoppedLeading: () => {
          observer.observe({ type: "Leading", leading: false });
          log.error({ identity }, "lost the leader lease; stopping so that another replica takes over");
          shutdown("lost leadership", 1);
        },
        onNewLeader: (leader) => {
          if (leader !== identity) log.info({ leader }, "standing by; another replica leads");
        },
        onError: (message) => {
          log.warn({ err: message }, "leader election request failed");
        },
      })
    : undefined;
  const operator = new Operator({
    config,
    kubeConfig,
    log,
    observer,
    canWrite: () => elector === undefined || elector.isLeader(),
  });
  const server: ObservabilityServer = await startObservabilityServer({
    metricsAddr: config.metricsAddr,
    healthAddr: config.healthAddr,
    registry: metrics.registry,
    live: [() => (operator.cachesSynced() ? operator.liveness(config.watchStuckAfter) : undefined)],
    ready: [() => operator.readiness()],
  });

  const heapRelease = new HeapRelease({ clock: systemClock, log });

  let stopping = false;
  const shutdown = (reason: string, code: number): void => {
    if (stopping) return;
    stopping = true;
    log.info({ reason }, "shutting down");
    heapRelease.stop();
    const forced = setTimeout(() => {
      log.error("shutdown took too long; exiting");
      process.exit(1);
    }, 4_500);
    forced.unref();
    // Finish in-flight writes first, then hand the lease back so a successor starts at once.
    operator
      .stop()
      .then(() => elector?.stop())
      .then(() => server.close())
      .then(
        () => {
          log.info("stopped");
          process.exit(code);
        },
        (err: unknown) => {
          log.error({ err: errorText(err) }, "error while stopping");
          process.exit(1);
        },
      );
  };
  process.once("SIGTERM", () => {
    shutdown("SIGTERM", 0);
  });
  process.once("SIGINT", () => {
    shutdown("SIGINT", 0);
  });

  log.info(
    {
      version: version(),
      identity,
      operatorNamespace: config.operatorNamespace,
      credentials:
        config.credentialsSecret === undefined
          ? "default chain"
          : `${config.credentialsSecret.namespace}/${config.credentialsSecret.name}`,
      trustedCredentialsNamespaces: config.trustedCredentialsNamespaces,
      leaderElect: config.leaderElect,
      dryRun: config.dryRun,
      metrics: server.addresses.metrics,
      health: server.addresses.health,
      webhook: config.webhookAddr === undefined ? "off" : config.webhookAddr,
    },
    "starting",
  );
  await operator.startCaches();
  // The initial lists are the largest burst of the process's life: their garbage goes before the
  // first reconcile adds its own.
  heapRelease.releaseNow("the caches are filled");
  heapRelease.markBurst();
  heapRelease.start();
  // The ECR SDK is the largest part of what the operator loads. Loaded at start, it held up the
  // lists, and ready, by about a tenth of a second at 5,000 namespaces; loaded as the caches fill,
  // it held up the answer to the first /readyz as long. Half a second later, ready has been
  // answered and the first reconciles have started (one that mints loads it at once); what loading
  // it leaves behind counts as a burst, released when the process is idle again.
  setTimeout(() => {
    operator.preloadSdk().then(
      () => {
        heapRelease.markBurst();
      },
      (err: unknown) => {
        log.error({ err: errorText(err) }, "could not load the ECR SDK");
      },
    );
  }, ecrSdkPreloadDelayMs).unref();
  operator.startWebhook();
  if (elector === undefined) {
    operator.startWorkers();
    return;
  }
  elector.start();
}

async function once(config: Config): Promise<number> {
  const log = createLogger({
    level: config.logFormat === "json" ? config.logLevel : "warn",
    pretty: false,
    destination: process.stderr,
  });
  const changes: PlannedChange[] = [];
  const operator = new Operator({
    config,
    kubeConfig: kubeConfigFor(config),
    log,
    observer: new MaglevOnDemand({ log }),
    onPlannedChange: (change) => changes.push(change),
  });
  try {
    await operator.startCaches();
    const reports = await operator.reconcileAllOnce();
    if (config.dryRun) {
      process.stdout.write(formatChanges(changes, config.output));
      if (config.output === "table") process.stdout.write("\nstatus once these changes are made:\n");
    }
    process.stdout.write(formatSummary(reports, config.output));
    const allReady = reports.every(
      (r) => r.status.conditions?.find((c) => c.type === "Ready")?.status === "True",
    );
    return allReady ? 0 : 1;
  } finally {
    await operator.stop();
  }
}

async function main(args: string[]): Promise<void> {
  const commandLine = parseCommandLine(args);
  if (commandLine.kind === "help") {
    process.stdout.write(commandLine.text);
    return;
  }
  if (commandLine.kind === "usage-error") {
    process.stderr.write(commandLine.text);
    process.exit(2);
  }
  if (commandLine.kind === "version") {
    console.log(version());
    return;
  }
  try {
    const config = configFrom(commandLine.flags);
    if (commandLine.kind === "run") {
      await run(config);
      return;
    }
    // Idle keep-alive sockets of the API and AWS clients would hold the process open.
    process.exit(await once(config));
  } catch (err) {
    if (err instanceof ConfigError) {
      console.error(`ecr-creds-refresher: invalid configuration:\n${err.message}`);
      process.exit(2);
    }
    if (err instanceof KubeConfigError) {
      console.error(`ecr-creds-refresher: invalid kubeconfig: ${err.message}`);
      process.exit(2);
    }
    console.error(`ecr-creds-refresher: ${errorText(err)}`);
    process.exit(1);
  }
}

await main(process.argv.slice(2));
