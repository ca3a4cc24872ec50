#!/usr/bin/env node
// ecr-creds-refresher command line: `run` starts the controller.
import { existsSync, readFileSync } from "node:fs";
import { KubeConfig } from "@kubernetes/client-node";
import { Command, Option } from "commander";
import { ConfigError, flags, loadConfig, type Config, type FlagName, type RawConfig } from "./config.ts";
import { Operator } from "./controller/operator.ts";
import { createLogger, type Logger } from "./observability/logger.ts";

const serviceAccountNamespaceFile = "/var/run/secrets/kubernetes.io/serviceaccount/namespace";
const fallbackNamespace = "ecr-creds-refresher";

function version(): string {
  const pkg = JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8")) as {
    version: string;
  };
  return pkg.version;
}

function addConfigOptions(command: Command): Command {
  for (const spec of Object.values(flags)) {
    const option = new Option(spec.flag, spec.description).env(spec.env);
    if ("default" in spec) option.default(spec.default);
    command.addOption(option);
  }
  return command;
}

function configFrom(command: Command): Config {
  const values = command.opts<Record<string, unknown>>();
  const cli: RawConfig = {};
  for (const key of Object.keys(flags) as FlagName[]) {
    const value = values[key];
    // commander already merged the environment and defaults; pass only what it found.
    if (typeof value === "string") cli[key] = value;
  }
  const inCluster = existsSync(serviceAccountNamespaceFile)
    ? readFileSync(serviceAccountNamespaceFile, "utf8").trim()
    : undefined;
  return loadConfig(cli, {}, { operatorNamespace: inCluster ?? fallbackNamespace });
}

export function loadKubeConfig(path: string | undefined): KubeConfig {
  const kc = new KubeConfig();
  if (path !== undefined) {
    kc.loadFromFile(path);
  } else {
    // In-cluster when running in a Pod, else KUBECONFIG / ~/.kube/config.
    kc.loadFromDefault();
  }
  return kc;
}

function loggerFor(config: Config): Logger {
  const pretty = config.logFormat === "pretty" || (config.logFormat === "auto" && process.stdout.isTTY);
  return createLogger({ level: config.logLevel, pretty });
}

async function run(config: Config): Promise<void> {
  const log = loggerFor(config);
  const operator = new Operator({ config, kubeConfig: loadKubeConfig(config.kubeconfig), log });
  const abort = new AbortController();
  let stopping = false;
  const shutdown = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, "shutting down");
    abort.abort();
    const forced = setTimeout(() => {
      log.error("shutdown took too long; exiting");
      process.exit(1);
    }, 5_000);
    forced.unref();
    operator.stop().then(
      () => {
        log.info("stopped");
        process.exit(0);
      },
      (err: unknown) => {
        log.error({ err: err instanceof Error ? err.message : "unknown" }, "error while stopping");
        process.exit(1);
      },
    );
  };
  process.once("SIGTERM", () => {
    shutdown("SIGTERM");
  });
  process.once("SIGINT", () => {
    shutdown("SIGINT");
  });
  log.info(
    {
      version: version(),
      operatorNamespace: config.operatorNamespace,
      credentials:
        config.credentialsSecret === undefined
          ? "default chain"
          : `${config.credentialsSecret.namespace}/${config.credentialsSecret.name}`,
      trustedCredentialsNamespaces: config.trustedCredentialsNamespaces,
    },
    "starting",
  );
  await operator.start(abort.signal);
}

export function buildProgram(): Command {
  const program = new Command("ecr-creds-refresher")
    .description("Keeps AWS ECR image pull secrets fresh across a Kubernetes cluster.")
    .version(version(), "--version", "print the version")
    .exitOverride();
  addConfigOptions(program.command("run").description("run the controller until SIGTERM or SIGINT")).action(
    async (_options: unknown, command: Command) => {
      await run(configFrom(command));
    },
  );
  program
    .command("version")
    .description("print the version")
    .action(() => {
      console.log(version());
    });
  return program;
}

async function main(argv: string[]): Promise<void> {
  const program = buildProgram();
  try {
    await program.parseAsync(argv);
  } catch (err) {
    if (err instanceof ConfigError) {
      console.error(`ecr-creds-refresher: invalid configuration:\n${err.message}`);
      process.exit(2);
    }
    const code = (err as { exitCode?: unknown }).exitCode;
    if (typeof code === "number") {
      process.exit(code);
    }
    console.error(`ecr-creds-refresher: ${err instanceof Error ? err.message : "failed"}`);
    process.exit(1);
  }
}

await main(process.argv);
